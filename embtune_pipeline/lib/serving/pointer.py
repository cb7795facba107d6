"""An index's pointer: the table it serves now and every move before (built, rolled back), kept in one small
JSON file replaced whole (lib.storage.write_atomically), so a reader sees the old pointer or the new one."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

from embtune_pipeline.lib.serving.tables import TableMeta, VectorIndexError
from embtune_pipeline.lib.storage import utc_now, write_atomically

HISTORY_KEPT = 50  # moves remembered per index


@dataclass(frozen=True)
class Move:
    """One move of the pointer: to which table (built by which version from which snapshot), when, and why."""

    table: str
    version: str
    snapshot: str
    moved_at: str
    reason: str  # "build", "rollback", "rollback with the champion"


@dataclass(frozen=True)
class Pointer:
    """The table an index serves now, the registered model and version that built it, and its history (the
    current move last)."""

    index: str
    table: str
    model: str
    version: str
    fingerprint: str
    snapshot: str
    moved_at: str
    history: tuple[Move, ...] = field(default_factory=tuple)

    def moved_to(self, meta: TableMeta, reason: str) -> "Pointer":
        return point_at(meta, reason, self)

    def previous(self, exists=lambda table: True) -> Optional[Move]:
        """Where a rollback goes: the table served before the current one came in, that still exists. A
        rollback undoes a move, so the tables rolled back from are not "before" any more: after builds A, B, C
        and a rollback to B, the next rollback goes to A, never back to C."""
        served: list[Move] = []  # the moves still standing, oldest first
        for move in self.history:
            if move.reason.startswith("rollback") and any(m.table == move.table for m in served):
                while served and served[-1].table != move.table:
                    served.pop()
                served[-1] = move
            else:
                served.append(move)
        for move in reversed(served[:-1]):
            if move.table != self.table and exists(move.table):
                return move
        return None

    def last_on(self, version: str, exists=lambda table: True) -> Optional[Move]:
        """The latest move to a table of `version` that still exists (a rollback with the champion)."""
        for move in reversed(self.history):
            if move.version == str(version) and exists(move.table):
                return move
        return None

    def history_rows(self) -> list[dict]:
        """The history as rows, newest first (for metadata and `embtune index list`)."""
        return [asdict(m) for m in reversed(self.history)]


def point_at(meta: TableMeta, reason: str, current: Optional[Pointer] = None) -> Pointer:
    """The pointer after moving `current` (None: the index's first table) to the table `meta` describes."""
    now = utc_now()
    history = (*(current.history if current else ()), Move(meta.table, meta.version, meta.snapshot, now, reason))
    return Pointer(meta.index, meta.table, meta.model, meta.version, meta.fingerprint, meta.snapshot, now,
                   history[-HISTORY_KEPT:])


def read_pointer(path: Path) -> Optional[Pointer]:
    """The pointer stored at `path`, None when the index has none yet; a damaged file is a VectorIndexError
    naming it (and is never written over)."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        raw = json.loads(path.read_text())
        return Pointer(**{**{k: raw[k] for k in Pointer.__dataclass_fields__ if k != "history"},
                          "history": tuple(Move(**m) for m in raw.get("history", []))})
    except (ValueError, KeyError, TypeError) as e:
        raise VectorIndexError(f"{path}: a damaged index pointer ({type(e).__name__}: {e}); restore it from "
                               "its history or delete it and build the index again") from None


def write_pointer(path: Path, pointer: Pointer) -> Pointer:
    text = json.dumps(asdict(pointer), indent=2)
    write_atomically(Path(path), lambda tmp: tmp.write_text(text))
    return pointer
