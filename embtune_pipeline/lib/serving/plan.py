"""What a build does: a full build (a new model version, or no earlier table of this model) writes every chunk;
an incremental one (a new snapshot, same model) clones the previous table and rewrites only changed chunks:
deleted by chunk id, then added. Vectors come from the embedding store; only what it lacks is encoded."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pandas as pd

from embtune_pipeline.lib.serving.tables import TableMeta

FULL, INCREMENTAL, READY = "full", "incremental", "ready"
MAX_INCREMENTAL_SHARE = 0.5  # more chunks changed than this: a full build (a clone would mostly be rewritten)
MAX_CLONE_DEPTH = 8  # clones of clones: the ninth build is full, so a chain of shared files stays short


@dataclass(frozen=True)
class BuildPlan:
    """mode: full, incremental (clone `base`, delete `delete_ids`, add `add`), or ready (the table is already
    built and whole: check it and switch)."""

    mode: str
    table: str
    add: pd.DataFrame  # chunk rows to write (a full build: all of them)
    delete_ids: tuple[str, ...] = ()
    base: Optional[str] = None
    why: str = ""

    @property
    def rewritten(self) -> int:
        """Rows written or deleted by this build."""
        return len(self.add) + len(self.delete_ids)


def plan_build(chunks: pd.DataFrame, table: str, fingerprint: str, existing: Optional[TableMeta],
               previous: Optional[TableMeta], previous_rows: Optional[pd.DataFrame],
               clone_depth: int = 0) -> BuildPlan:
    """The plan for building `table` from `chunks` with the model of `fingerprint`.

    `existing`: the table of that name, if one was built before (a rerun, or a rollback's table); whole when
    its rows are the chunks' count. `previous`/`previous_rows`: the index's current table and its (chunk_id,
    chunk_hash) rows; a table of the same model on another snapshot is cloned, and only chunks whose id is new
    or whose content changed are rewritten."""
    if existing is not None and existing.fingerprint == fingerprint and existing.rows == len(chunks):
        return BuildPlan(READY, table, chunks.iloc[:0], why=f"table {table} is already built: checked again")
    if previous is None or previous_rows is None:
        return BuildPlan(FULL, table, chunks, why="the index's first table")
    if previous.fingerprint != fingerprint:
        return BuildPlan(FULL, table, chunks, why=f"a new model version (v{previous.version} built the current "
                         "table): every chunk is embedded again")
    if previous.table == table:
        return BuildPlan(FULL, table, chunks, why="rebuilding the current table's inputs in full")
    if clone_depth >= MAX_CLONE_DEPTH:
        return BuildPlan(FULL, table, chunks, why=f"{clone_depth} incremental builds in a row: a full one")
    old = dict(zip(previous_rows["chunk_id"], previous_rows["chunk_hash"]))
    new = dict(zip(chunks["chunk_id"], chunks["chunk_hash"]))
    changed = [c for c, h in new.items() if old.get(c) != h]
    gone = [c for c in old if c not in new]
    deletes = tuple(sorted({*gone, *(c for c in changed if c in old)}))
    if len(changed) + len(gone) > MAX_INCREMENTAL_SHARE * max(len(new), 1):
        return BuildPlan(FULL, table, chunks, why=f"{len(changed) + len(gone)} of {len(new)} chunks changed: "
                         "a full build")
    add = chunks[chunks["chunk_id"].isin(set(changed))]
    return BuildPlan(INCREMENTAL, table, add, deletes, previous.table,
                     why=f"snapshot {previous.snapshot} -> new: {len(add)} chunks added or changed, "
                     f"{len(gone)} removed; the other {len(new) - len(add)} carried over from {previous.table}")
