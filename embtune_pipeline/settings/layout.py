"""Where everything under data_dir lives."""

from __future__ import annotations

from pathlib import Path
from typing import Optional


class Layout:
    """Where everything under data_dir lives: the one path rule."""

    def __init__(self, data_dir: Path):
        self.root = Path(data_dir)

    def asset(self, name: str, partition: Optional[str] = None, suffix: str = ".parquet") -> Path:
        """assets/<name>.<suffix>, or assets/<name>/<base model>/<snapshot>.<suffix> for a partition
        ("base|snapshot" multi-partition keys become folders)."""
        base = self.root / "assets" / name
        return (base / f"{partition.replace('|', '/')}{suffix}") if partition else base.with_suffix(suffix)

    def asset_partitions(self, name: str, base_model: str, suffix: str = ".json") -> list[Path]:
        """The stored partitions of an asset for one base model (every snapshot's), oldest first."""
        folder = self.asset(name, f"{base_model}|-", suffix).parent
        return sorted(folder.glob(f"*{suffix}"), key=lambda p: p.stat().st_mtime)

    def read_asset(self, name: str, partition: Optional[str] = None):
        """The stored value of an asset (a DataFrame from Parquet, else the JSON value), None when it was never
        materialized: the one reader of what the IO manager wrote, for it and for whoever reads other
        partitions (the monitoring assets, the benchmarks). A model record is read from beside its model."""
        import json

        import pandas as pd

        from embtune_pipeline.lib.training.record import resolve_record_pointer

        table, record = self.asset(name, partition, ".parquet"), self.asset(name, partition, ".json")
        if table.exists():
            return pd.read_parquet(table)
        return resolve_record_pointer(json.loads(record.read_text())) if record.exists() else None

    def snapshot(self, key: str) -> Path:
        """The documents of a registered corpus snapshot, frozen so any snapshot can be rebuilt or backfilled."""
        return self.root / "snapshots" / f"{key}.parquet"

    @property
    def index_bindings(self) -> Path:
        return self.root / "index_bindings.json"

    def index_folder(self, name: str) -> Path:
        """A vector index's own folder: its pointer (pointer.json: the current table and its history), the lock
        builds take, and its tables unless settings give the index a uri."""
        return self.root / "indexes" / name

    def index_pointer(self, name: str) -> Path:
        return self.index_folder(name) / "pointer.json"

    def index_lock(self, name: str) -> Path:
        return self.index_folder(name) / ".build.lock"

    def index_tables(self, name: str) -> Path:
        return self.index_folder(name) / "tables"

    @property
    def llm_cache(self) -> Path:
        return self.root / "cache" / "llm.sqlite"

    @property
    def teacher_scores(self) -> Path:
        """A cross-encoder teacher's scores, by (teacher, query, passage)."""
        return self.root / "cache" / "teacher_scores.sqlite"

    def embeddings(self, model_key: str) -> Path:
        return self.root / "cache" / "embeddings" / model_key

    @property
    def step_outputs(self) -> Path:
        """What one step hands the next inside a graph (the corpus encoding's shards and their texts), pickled by
        Dagster's filesystem IO manager under a folder per run: on the data volume, so steps in separate pods
        read each other's; merge_corpus_shards deletes its run's folder once every vector is stored."""
        return self.root / "steps"

    def eval_set_workspace(self, name: str) -> Path:
        """An eval set built from a query log: its pool and judgments (judgments.sqlite) and the exported
        eval-set file (eval_set.jsonl)."""
        return self.root / "eval_sets" / name

    def model(self, name: str) -> Path:
        return self.root / "models" / name

    @property
    def downloaded_models(self) -> Path:
        return self.root / "cache" / "registry"

    def checkpoints(self, name: str) -> Path:
        return self.root / "checkpoints" / name

    def reports(self, partition: Optional[str] = None) -> Path:
        base = self.root / "reports"
        return base / partition.replace("|", "/") if partition else base

    def quarantine(self, source: str, snapshot: Optional[str] = None) -> Path:
        """The rows of a source set aside as bad: quarantine/<source>.jsonl, or quarantine/<source>/<snapshot>.jsonl
        for the rows a corpus snapshot was read without, so reading another snapshot leaves them be."""
        folder = self.root / "quarantine"
        return folder / source / f"{snapshot}.jsonl" if snapshot else folder / f"{source}.jsonl"

    @property
    def mlflow_db(self) -> Path:
        return self.root / "mlflow.db"

    @property
    def mlflow_artifacts(self) -> Path:
        return self.root / "mlartifacts"
