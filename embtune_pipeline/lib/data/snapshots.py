"""Corpus snapshots: the documents of one moment, named by their content and frozen on disk.

A snapshot key is the hash of every (doc_id, title, text): unchanged documents give the same key whatever the
file layout or row order. Registering freezes the documents under data_dir/snapshots, so any snapshot can be
re-chunked or backfilled later (for a new base model, say) even after the source files moved on."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from embtune_pipeline.lib.data.ingest import DOC_COLUMNS
from embtune_pipeline.lib.storage import utc_now, write_atomically


def document_hashes(docs: pd.DataFrame) -> pd.Series:
    """One hash per document, indexed by doc_id: what decides whether a document changed."""
    hashes = [hashlib.sha256(f"{t}\x00{x}".encode()).hexdigest()[:16] for t, x in zip(docs["title"], docs["text"])]
    return pd.Series(hashes, index=docs["doc_id"].values, name="doc_hash")


def snapshot_key(docs: pd.DataFrame) -> str:
    h = hashlib.sha256()
    for doc_id, doc_hash in sorted(document_hashes(docs).items()):
        h.update(f"{doc_id}\x00{doc_hash}\n".encode())
    return h.hexdigest()[:16]


def changed_fraction(old: pd.DataFrame, new: pd.DataFrame) -> float:
    """Documents added, removed or edited, over the larger of the two corpora."""
    a, b = document_hashes(old), document_hashes(new)
    ids = a.index.union(b.index)
    changed = (a.reindex(ids) != b.reindex(ids)).sum()  # NaN on either side counts as a change
    return float(changed) / max(len(a), len(b), 1)


@dataclass
class Snapshot:
    key: str
    documents: pd.DataFrame
    quarantined: int
    new: bool  # False: this content was registered before


class SnapshotStore:
    """data_dir/snapshots/<key>.parquet, one file per registered snapshot."""

    def __init__(self, path_of):
        self._path_of = path_of  # Layout.snapshot: the one path rule

    def register(self, docs: pd.DataFrame, quarantined: int = 0, source: str = "") -> Snapshot:
        key = snapshot_key(docs)
        path = Path(self._path_of(key))
        new = not path.exists()
        if new:
            write_atomically(path, lambda tmp: docs[DOC_COLUMNS].to_parquet(tmp, index=False))
            info = {"key": key, "documents": len(docs), "quarantined_rows": quarantined, "source": source,
                    "registered_at": utc_now()}
            write_atomically(path.with_suffix(".json"), lambda tmp: tmp.write_text(json.dumps(info, indent=2)))
        return Snapshot(key, docs, quarantined, new)

    def info(self, key: str) -> dict:
        path = Path(self._path_of(key)).with_suffix(".json")
        return json.loads(path.read_text()) if path.exists() else {}

    def load(self, key: str) -> pd.DataFrame:
        path = Path(self._path_of(key))
        if not path.exists():
            raise FileNotFoundError(f"corpus snapshot {key} is not registered (no {path}); register the current "
                                    "corpus with `embtune snapshot` or let the corpus_change_sensor do it")
        return pd.read_parquet(path)

    def exists(self, key: str) -> bool:
        return Path(self._path_of(key)).exists()
