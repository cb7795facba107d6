"""A vector index's tables: their names, the record each keeps of what built it, and the hits a search returns."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import Optional

TABLE_META_KEY = "embtune.table"  # the vector column's metadata key holding a TableMeta as JSON
COLUMNS = ("chunk_id", "doc_id", "alias_doc_ids", "chunk_hash", "title", "text", "vector")


class VectorIndexError(ValueError):
    """A vector index cannot be built, checked, switched or served: one line naming the index and why."""


def table_name(index: str, version: str | int, snapshot: str) -> str:
    """The table of `index` embedded by model version `version` from corpus snapshot `snapshot`: one name per
    build input, so a rerun finds its own table and two inputs never share one."""
    safe = re.sub(r"[^A-Za-z0-9_-]+", "-", f"{index}__v{version}__{snapshot}")
    return safe[:200]


def belongs_to(table: str, index: str) -> bool:
    """Whether a table at an index's URI is one of that index's (several indexes may share a URI: another's
    tables are never listed, kept or dropped as this one's)."""
    return table.startswith(f"{index}__v")


@dataclass(frozen=True)
class TableMeta:
    """What built a table, stored with it (the vector column's metadata): which index, which registered model
    and version, the model's fingerprint (its embedding store's key), which snapshot, its rows and dimension,
    and the table it was shallow-cloned from (an incremental build shares that table's unchanged rows)."""

    index: str
    table: str
    model: str
    version: str
    fingerprint: str
    snapshot: str
    rows: int
    dim: int
    built_at: str
    base_table: Optional[str] = None  # cloned from: it must outlive this table
    ann: bool = False

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "TableMeta":
        raw = json.loads(text)
        return cls(**{k: raw[k] for k in cls.__dataclass_fields__ if k in raw})

    def with_rows(self, rows: int, ann: bool) -> "TableMeta":
        return TableMeta(**{**asdict(self), "rows": int(rows), "ann": bool(ann)})


@dataclass(frozen=True)
class Hit:
    """One search result: the chunk, the document it is part of, its cosine similarity to the query, its text."""

    chunk_id: str
    doc_id: str
    score: float
    text: str
    title: str = ""
    alias_doc_ids: tuple[str, ...] = field(default_factory=tuple)

    @property
    def doc_ids(self) -> list[str]:
        """Every document the chunk stands for (identical chunks of other documents collapsed into it)."""
        return [self.doc_id, *self.alias_doc_ids]


def clone_depth(table: str, tables: dict[str, TableMeta]) -> int:
    """How many clones deep `table` is: 0 for a table built in full."""
    depth, seen = 0, {table}
    while (meta := tables.get(table)) is not None and meta.base_table and meta.base_table not in seen:
        depth, table = depth + 1, meta.base_table
        seen.add(table)
    return depth


def tables_to_drop(tables: dict[str, TableMeta], current: Optional[str], keep: int,
                   replaced: Optional[str] = None) -> list[str]:
    """The tables an index no longer needs: all but the current one, the `keep` newest others, the table just
    `replaced` (a reader that read the pointer before the switch may still be searching it: it goes at the next
    build), and every table one of those was cloned from (a clone reads its base's files)."""
    others = sorted((m for m in tables.values() if m.table != current), key=lambda m: m.built_at, reverse=True)
    kept = {current, replaced, *(m.table for m in others[:keep])} - {None}
    for name in list(kept):
        while (meta := tables.get(name)) is not None and meta.base_table and meta.base_table not in kept:
            kept.add(meta.base_table)
            name = meta.base_table
    return [m.table for m in others if m.table not in kept]
