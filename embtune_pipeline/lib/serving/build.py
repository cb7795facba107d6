"""A blue/green build of one index: plan, write the new table (encoding only what the embedding store lacks),
check it, and only then move the index's pointer to it and record the binding, under the index's lock so two
builds never interleave. On any failure the pointer stays where it was and no table is deleted.

`store` is the VectorStore resource (resources/vector_store.py), used through its plain methods."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np
import pandas as pd

from embtune_pipeline.lib.data.chunking import chunk_doc_ids
from embtune_pipeline.lib.evaluation.evaluate import evaluate_vectors
from embtune_pipeline.lib.serving.check import CheckResult, check_table, index_ndcg, search_depth, top10_overlap
from embtune_pipeline.lib.serving.plan import FULL, INCREMENTAL, READY, BuildPlan, plan_build
from embtune_pipeline.lib.serving.pointer import Pointer, point_at
from embtune_pipeline.lib.serving.tables import (
    TableMeta,
    VectorIndexError,
    clone_depth,
    table_name,
    tables_to_drop,
)
from embtune_pipeline.lib.storage import utc_now_precise

Encode = Callable[[pd.DataFrame], tuple[np.ndarray, int]]  # chunk rows -> (their vectors, how many were encoded)


@dataclass(frozen=True)
class BuildRequest:
    """What a build needs: the index and its retention, the version and its model's fingerprint and dimension,
    the snapshot's chunks, and the eval set (query vectors by the same version, gains) with the reference
    nDCG@10 to match (the version's eval_report; None: the evaluation's exact scan of the table's vectors)."""

    index: str
    model: str
    version: str
    fingerprint: str
    snapshot: str
    chunks: pd.DataFrame
    dim: int
    query_vectors: np.ndarray
    gains: list[dict[str, int]]
    reference_ndcg: Optional[float] = None
    reference: str = ""
    keep: int = 2
    ann_above_rows: int = 100_000

    @property
    def table(self) -> str:
        return table_name(self.index, self.version, self.snapshot)


@dataclass(frozen=True)
class BuildResult:
    table: str
    meta: TableMeta
    plan: BuildPlan
    encoded: int
    reused: int
    check: CheckResult
    pointer: Pointer
    previous_table: Optional[str]
    dropped: list[str] = field(default_factory=list)
    seconds: float = 0.0  # the whole build, lock wait excluded
    write_seconds: float = 0.0  # encoding and writing the table (and its ANN index)
    check_seconds: float = 0.0


def with_vectors(rows: pd.DataFrame, vectors: np.ndarray) -> pd.DataFrame:
    """Chunk rows as a table stores them: the columns of lib.serving.tables.COLUMNS."""
    out = rows[["chunk_id", "doc_id", "alias_doc_ids", "chunk_hash", "title", "text"]].copy()
    out["alias_doc_ids"] = out["alias_doc_ids"].map(lambda a: [str(x) for x in a])
    out["vector"] = list(np.asarray(vectors, dtype=np.float32))
    return out


def build_index(store, request: BuildRequest, encode: Encode,
                on_switch: Callable[[Pointer], None] = lambda pointer: None) -> BuildResult:
    """Build, check and switch one index (see the module's docstring); `on_switch` runs right after the pointer
    moved, under the same lock (the asset records the binding there)."""
    r, name = request, request.table
    with store.lock(r.index):
        start = time.perf_counter()
        current = store.pointer(r.index)
        tables = {m.table: m for m in store.tables(r.index)}
        previous = tables.get(current.table) if current else None
        existing = tables.get(name)
        if current is not None and current.table == name and existing is not None:
            plan = BuildPlan(READY, name, r.chunks.iloc[:0], why=f"the index already serves {name}: checked again")
        else:
            same_model = previous is not None and previous.fingerprint == r.fingerprint
            plan = plan_build(r.chunks, name, r.fingerprint, existing, previous,
                              store.table_rows(r.index, previous.table) if same_model else None,
                              clone_depth(previous.table, tables) if previous else 0)
        encoded = 0
        meta = existing if plan.mode == READY else TableMeta(
            r.index, name, r.model, str(r.version), r.fingerprint, r.snapshot, len(r.chunks), r.dim, utc_now_precise(),
            plan.base if plan.mode == INCREMENTAL else None)
        if plan.mode != READY:
            if existing is not None:  # a build that died before its check: not served, built again
                store.drop_table(r.index, name)
            vectors, encoded = encode(plan.add) if len(plan.add) else (np.zeros((0, r.dim), np.float32), 0)
            if len(plan.add) and vectors.shape[1] != r.dim:
                raise VectorIndexError(f"index {r.index}: the model encodes {vectors.shape[1]}-d vectors, v{r.version} "
                                       f"is recorded as {r.dim}-d; the pointer stays at "
                                       f"{current.table if current else '(none)'}")
            rows = with_vectors(plan.add, vectors)
            if plan.mode == FULL:
                store.write_table(r.index, meta, rows)
            else:
                store.write_table(r.index, meta, rows, base=plan.base, delete_ids=plan.delete_ids)
        ann = len(r.chunks) > r.ann_above_rows
        if ann and not meta.ann:
            store.create_ann_index(r.index, name)
        written_rows, written_dim = store.shape(r.index, name)
        meta = meta.with_rows(written_rows, ann)
        written = time.perf_counter()
        check = check_new_table(store, request, written_rows, written_dim, ann)
        checked = time.perf_counter()
        if not check.passed:
            raise VectorIndexError(f"index {r.index}: table {name} failed its check ({check.summary()}): the "
                                   f"pointer stays at {current.table if current else '(none)'}, and {name} is kept "
                                   "for a look (a rerun checks it again)")
        store.set_table_meta(r.index, meta)
        if current is not None and current.table == name:
            pointer = current  # checked again, served already: no move
        else:
            pointer = store.set_pointer(r.index, point_at(meta, "build", current))
            on_switch(pointer)
        survivors = {**tables, name: meta}
        dropped = tables_to_drop(survivors, name, r.keep, current.table if current else None)
        for table in dropped:
            store.drop_table(r.index, table)
        seconds = time.perf_counter() - start
    reused = written_rows - encoded
    return BuildResult(name, meta, plan, encoded, reused, check, pointer, current.table if current else None,
                       dropped, seconds, written - start, checked - written)


def check_new_table(store, r: BuildRequest, rows: int, dim: int, ann: bool) -> CheckResult:
    """lib.serving.check on the table as written: its shape, the eval set through it by exact search (and by
    its ANN index, for the overlap), against the reference nDCG@10."""
    depth = search_depth(len(r.chunks), r.chunks["doc_id"].nunique())
    exact = store.search(r.index, r.table, r.query_vectors, depth, exact=True) if len(r.gains) else []
    ndcg = index_ndcg(exact, r.gains)
    reference, source = r.reference_ndcg, r.reference
    if reference is None:  # another snapshot than the version's evaluation: the evaluation's scan of these vectors
        stored, vectors = store.vectors(r.index, r.table)
        per_query = evaluate_vectors(r.query_vectors, vectors, chunk_doc_ids(stored),
                                     [str(i) for i in range(len(r.gains))], r.gains)
        reference = float(per_query["ndcg@10"].mean()) if len(per_query) else float("nan")
        source = source or "the evaluation's exact scan of the table's vectors"
    overlap = None
    if ann and len(r.gains):
        approximate = store.search(r.index, r.table, r.query_vectors, depth, exact=False)
        overlap = top10_overlap(exact, approximate)
    return check_table(rows, len(r.chunks), dim, r.dim, ndcg, reference, source, len(r.gains), overlap)


def rollback_index(store, index: str, to_version: Optional[str] = None, reason: str = "rollback",
                   on_switch: Callable[[Pointer], None] = lambda pointer: None) -> tuple[Pointer, Pointer]:
    """Move `index` back: to the table it served before (to_version None), or to its latest table of
    `to_version` that still exists; returns (before, after). A VectorIndexError when there is none to go to."""
    with store.lock(index):
        current = store.pointer(index)
        if current is None:
            raise VectorIndexError(f"index {index} has no table yet: nothing to roll back")
        if to_version is not None and current.version == str(to_version):
            return current, current  # already there
        tables = {m.table: m for m in store.tables(index) if m.rows >= 0}
        move = current.last_on(to_version, tables.__contains__) if to_version else current.previous(
            tables.__contains__)
        if move is None:
            what = f"kept table of v{to_version}" if to_version else "earlier table still kept"
            raise VectorIndexError(f"index {index} has no {what} (it serves {current.table}): build it "
                                   f"(`embtune index build {index}{' --version ' + to_version if to_version else ''}`)")
        after = store.set_pointer(index, point_at(tables[move.table], reason, current))
        on_switch(after)
    return current, after
