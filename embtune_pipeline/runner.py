"""Register the current corpus and the settings' base models as partitions, then run the retune assets for them:
what `embtune run`, the benchmarks and the tests share (the sensor does the same on its own schedule)."""

from __future__ import annotations

import dagster as dg

from embtune_pipeline.lib.snapshots import Snapshot, SnapshotStore, read_current_documents
from embtune_pipeline.partitions import BASE_MODELS, RETUNE_PARTITIONS, SNAPSHOTS, add_missing, retune_key
from embtune_pipeline.settings import Settings


def register_snapshot(instance: dg.DagsterInstance, s: Settings) -> Snapshot:
    """Freeze the corpus as it is now and make it, and every base model in settings, a partition."""
    docs, quarantined = read_current_documents(s)
    snapshot = SnapshotStore(s.layout.snapshot).register(docs, quarantined, source=str(s.corpus.path or
                                                                                         s.corpus.format))
    add_missing(instance, SNAPSHOTS, [snapshot.key])
    add_missing(instance, BASE_MODELS, s.base_model_keys)
    return snapshot


def retune_assets(defs: dg.Definitions) -> list:
    """The assets keyed by (base model, snapshot), and the checks on them."""
    assets = [a for a in defs.assets if getattr(a, "partitions_def", None) == RETUNE_PARTITIONS]
    keys = {k for a in assets for k in a.keys}
    checks = [c for c in defs.asset_checks if all(ck.asset_key in keys for ck in c.check_keys)]
    return [*assets, *checks]


def materialize_retune(defs: dg.Definitions, instance: dg.DagsterInstance, base_model: str, snapshot: str,
                       selection=None, run_config=None, raise_on_error: bool = True):
    return dg.materialize(retune_assets(defs), selection=selection, partition_key=retune_key(base_model, snapshot),
                          instance=instance, resources=defs.resources, run_config=run_config,
                          raise_on_error=raise_on_error)
