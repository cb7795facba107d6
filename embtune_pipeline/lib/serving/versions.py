"""A registered version as an index builds and serves it: its model on this machine, the max_seq_length it
was evaluated at, its base model (whose tokenizer chunked its corpus) and the partition of its evaluation."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from embtune_pipeline.lib.training.record import read_model_record


@dataclass(frozen=True)
class VersionModel:
    model: str  # the registered model's name
    version: str
    model_dir: str
    max_seq_length: int
    base_model: str  # a name or directory: the tokenizer the corpus is chunked with
    base_key: str
    snapshot: str  # the snapshot it was trained and evaluated on

    @property
    def partition(self) -> str:
        """The retune partition of its evaluation ("base|snapshot", as layout paths take it)."""
        return f"{self.base_key}|{self.snapshot}"


def version_model(registry, version, cache_dir: Path, default_max_seq_length: int) -> VersionModel:
    """`version` (a lib.registry.versions.Version) with its model as a local directory (registry.local_dir:
    where it was trained, else downloaded once). max_seq_length: its tag, else its model record, else the
    settings' run.embed.max_seq_length."""
    model_dir = registry.local_dir(version, cache_dir)
    record = read_model_record(Path(model_dir)) or {}
    length = int(version.tags.get("max_seq_length") or record.get("max_seq_length") or default_max_seq_length)
    return VersionModel(registry.name, str(version.version), str(model_dir), length,
                        version.tags.get("base_model") or record.get("base_model", ""),
                        version.tags.get("base_model_key", ""), version.tags.get("snapshot", ""))
