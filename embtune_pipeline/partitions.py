"""The partitions every re-tune is keyed by: one base model x one corpus snapshot.

Both dimensions are dynamic: snapshots appear as the corpus changes (the corpus_change_sensor or
`embtune snapshot` adds them), base models as settings list them (the sensor and the CLI add each one)."""

from __future__ import annotations

import dagster as dg

BASE_MODELS = dg.DynamicPartitionsDefinition(name="base_models")
SNAPSHOTS = dg.DynamicPartitionsDefinition(name="corpus_snapshots")
RETUNE_PARTITIONS = dg.MultiPartitionsDefinition({"base_model": BASE_MODELS, "snapshot": SNAPSHOTS})


def retune_key(base_model: str, snapshot: str) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({"base_model": base_model, "snapshot": snapshot})


def keys_of(context) -> tuple[str, str]:
    """(base model key, snapshot key) of the partition a step runs for."""
    dims = context.partition_key.keys_by_dimension
    return dims["base_model"], dims["snapshot"]


def add_missing(instance: dg.DagsterInstance, partitions: dg.DynamicPartitionsDefinition, keys: list[str]) -> list[str]:
    """Register keys not yet known to the instance; returns those added. Safe against another process adding
    the same keys at the same moment (the storage's unique constraint refuses the second insert)."""
    known = set(instance.get_dynamic_partitions(partitions.name))
    new = [k for k in dict.fromkeys(keys) if k not in known]
    for key in new:
        try:
            instance.add_dynamic_partitions(partitions.name, [key])
        except Exception:  # noqa: BLE001 - the storage's integrity error, whichever backend raised it
            if not instance.has_dynamic_partition(partitions.name, key):
                raise
    return new
