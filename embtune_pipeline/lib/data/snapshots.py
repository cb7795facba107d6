"""Corpus snapshots: the documents of one moment, named by their content and frozen on disk.

A snapshot key is the hash of every (doc_id, title, text): unchanged documents give the same key whatever the
file layout or row order. Registering freezes the documents under data_dir/snapshots, so any snapshot can be
re-chunked or backfilled later (for a new base model, say) even after the source files moved on."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import pandas as pd

from embtune_pipeline.lib.data.ingest import DOC_COLUMNS
from embtune_pipeline.lib.storage import utc_now, write_atomically

log = logging.getLogger(__name__)


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


@dataclass(frozen=True)
class SnapshotChange:
    """Documents added, removed and edited from one snapshot to the next."""
    added: int
    removed: int
    edited: int

    def __str__(self) -> str:
        return f"+{self.added} added, -{self.removed} removed, {self.edited} edited"


def change_between(old: pd.DataFrame, new: pd.DataFrame) -> SnapshotChange:
    a, b = document_hashes(old), document_hashes(new)
    both = a.index.intersection(b.index)
    return SnapshotChange(added=len(b.index.difference(a.index)), removed=len(a.index.difference(b.index)),
                          edited=int((a.reindex(both) != b.reindex(both)).sum()))


@dataclass
class Snapshot:
    key: str
    documents: pd.DataFrame
    quarantined: int
    new: bool  # False: this content was registered before
    repaired: bool = False  # True: the stored copy was damaged and has been written again


class SnapshotStore:
    """data_dir/snapshots/<key>.parquet, one file per registered snapshot, and <key>.json: how many rows its
    corpus read set aside, in which quarantine file, from which source, when."""

    def __init__(self, path_of: Callable[[str], Path], quarantine_of: Optional[Callable[[str], Path]] = None):
        self._path_of = path_of  # Layout.snapshot: the one path rule
        self._quarantine_of = quarantine_of  # where a snapshot's bad rows are set aside (Layout.quarantine)

    def register(self, docs: pd.DataFrame, quarantined: int = 0, source: str = "") -> Snapshot:
        """Freeze `docs` unless that content is frozen already; a stored copy is trusted only when its documents
        still hash to its key (a truncated file said "already registered" and failed every later read)."""
        key = snapshot_key(docs)
        path = Path(self._path_of(key))
        new = not path.exists()
        damage = None if new else _read_intact(path, key)[1]
        if damage:
            log.warning("corpus snapshot %s: the stored copy %s is damaged (%s); written again from the corpus",
                        key, path, damage)
        if new or damage:
            write_atomically(path, lambda tmp: docs[DOC_COLUMNS].to_parquet(tmp, index=False))
        if new or not self.info(key):
            info = {"key": key, "documents": len(docs), "quarantined_rows": quarantined,
                    "quarantine_file": str(self._quarantine_of(key)) if quarantined and self._quarantine_of else "",
                    "source": source, "registered_at": utc_now()}
            write_atomically(path.with_suffix(".json"), lambda tmp: tmp.write_text(json.dumps(info, indent=2)))
        return Snapshot(key, docs, quarantined, new, repaired=bool(damage))

    def info(self, key: str) -> dict:
        """What register recorded of a snapshot; {} when nothing (or nothing readable) is recorded."""
        path = Path(self._path_of(key)).with_suffix(".json")
        try:
            return json.loads(path.read_text()) if path.exists() else {}
        except ValueError:
            return {}

    def load(self, key: str) -> pd.DataFrame:
        path = Path(self._path_of(key))
        if not path.exists():
            raise FileNotFoundError(f"corpus snapshot {key} is not registered (no {path}); register the current "
                                    "corpus with `embtune snapshot` or let the corpus_change_sensor do it")
        stored, damage = _read_intact(path, key)
        if damage:
            raise ValueError(f"corpus snapshot {key} is damaged ({damage}): register the corpus again while it "
                             f"holds that content (`embtune snapshot` writes {path} again), or delete that file")
        return stored

    def registered(self) -> list[dict]:
        """What register recorded of every snapshot, oldest first (for `embtune snapshots`)."""
        folder = Path(self._path_of("_")).parent
        found = []
        for path in folder.glob("*.json") if folder.is_dir() else []:
            info = self.info(path.stem)
            if info.get("key") == path.stem:  # registered_at has whole seconds: the file's time orders within one
                found.append(((info.get("registered_at", ""), path.stat().st_mtime_ns), info))
        return [info for _, info in sorted(found, key=lambda pair: pair[0])]

    def exists(self, key: str) -> bool:
        return Path(self._path_of(key)).exists()


def _read_intact(path: Path, key: str) -> tuple[Optional[pd.DataFrame], Optional[str]]:
    """A stored snapshot's documents, or what is wrong with the file: unreadable, or documents that do not hash
    to its key."""
    try:
        stored = pd.read_parquet(path)
        intact = snapshot_key(stored) == key
    except Exception as e:  # pyarrow raises several types for a corrupt file; a column may be missing
        return None, f"unreadable: {type(e).__name__}: {e}"
    return (stored, None) if intact else (None, "its documents do not hash to its key")
