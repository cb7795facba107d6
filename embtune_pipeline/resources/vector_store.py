"""The vector store as a Dagster resource. `VectorStore` is the small interface the vector_index asset, the
CLI and serving.open_index use: write a table, search it, list tables, move an index's pointer, drop a table.
`LanceDBStore` implements it with LanceDB (embedded: a folder, or any URI LanceDB accepts such as s3://...).
A team on Qdrant or pgvector subclasses VectorStore, implements the table methods, and swaps the resource in
definitions.py; the pointer (a small JSON file per index under data_dir, replaced whole) and the build lock
are shared by every implementation."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Optional

import dagster as dg
import numpy as np
import pandas as pd

from embtune_pipeline.lib.serving.pointer import Pointer, read_pointer, write_pointer
from embtune_pipeline.lib.serving.tables import TABLE_META_KEY, Hit, TableMeta, VectorIndexError, belongs_to
from embtune_pipeline.resources.settings import SettingsResource

INCOMPLETE = -1  # the rows of a table whose build did not finish (no record of its own yet)
ANN_ROWS_PER_PARTITION = 8192  # IVF partitions of an ANN index: one per this many rows
ANN_NPROBES, ANN_EF, ANN_REFINE = 20, 100, 2
SEARCH_BATCH = 256  # query vectors per LanceDB search call  # partitions searched, HNSW candidates, re-ranked with full vectors


class VectorStore(dg.ConfigurableResource):
    """Where an index's tables live (settings `indexes[].uri`) and which one it serves (its pointer)."""

    settings: SettingsResource
    lock_timeout_seconds: float = 3600.0  # a build waits this long for another build of the same index

    # ------------------------------------------------------------ the pointer: the same for every store

    @contextmanager
    def lock(self, index: str) -> Iterator[None]:
        """Held by a build or a rollback of `index` from its plan to its pointer move: two builds of one
        index run one after the other, so the pointer names one whole table."""
        from filelock import FileLock, Timeout

        path = self.settings.get().layout.index_lock(index)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with FileLock(str(path), timeout=self.lock_timeout_seconds):
                yield
        except Timeout:
            raise VectorIndexError(f"index {index}: another build has held {path} for "
                                   f"{self.lock_timeout_seconds:.0f} s; the pointer is unchanged") from None

    def pointer(self, index: str) -> Optional[Pointer]:
        """The table `index` serves now (None before its first build): read whole, once per call, so a
        reader gets one table even while a build moves the pointer."""
        return read_pointer(self.settings.get().layout.index_pointer(index))

    def set_pointer(self, index: str, pointer: Pointer) -> Pointer:
        """Move the pointer (replaced whole: readers see the old table or the new one). Call under lock()."""
        return write_pointer(self.settings.get().layout.index_pointer(index), pointer)

    def search_current(self, index: str, vectors: np.ndarray, k: int) -> tuple[Pointer, list[list[Hit]]]:
        """Search the table the pointer names now, the pointer read once: a search during a switch is answered
        whole by the old table or the new one (the old one stays: `keep` >= 0 keeps it until the next build)."""
        pointer = self.pointer(index)
        if pointer is None:
            raise VectorIndexError(f"index {index} has no table yet: build it (`embtune index build {index}`)")
        return pointer, self.search(index, pointer.table, vectors, k)

    def uri(self, index: str) -> str:
        return self.settings.get().index_uri(index)

    # ------------------------------------------------------------ the tables: what a store implements

    def tables(self, index: str) -> list[TableMeta]:
        """Every table of the index with its record (rows == INCOMPLETE: a build that did not finish)."""
        raise NotImplementedError

    def write_table(self, index: str, meta: TableMeta, rows: pd.DataFrame, base: Optional[str] = None,
                    delete_ids: tuple[str, ...] = ()) -> None:
        """Create table meta.table from `rows` (lib.serving.tables.COLUMNS) with `meta` recorded; with `base`,
        a copy of that table (sharing its files where the store can) with `delete_ids` deleted and `rows`
        added. The record is written last: a table without its own is INCOMPLETE."""
        raise NotImplementedError

    def set_table_meta(self, index: str, meta: TableMeta) -> None:
        raise NotImplementedError

    def table_rows(self, index: str, table: str) -> pd.DataFrame:
        """The table's (chunk_id, chunk_hash) rows: what an incremental build compares with."""
        raise NotImplementedError

    def shape(self, index: str, table: str) -> tuple[int, int]:
        """(rows, vector dimension) as stored."""
        raise NotImplementedError

    def vectors(self, index: str, table: str) -> tuple[pd.DataFrame, np.ndarray]:
        """Every row (without its vector) and the vectors, in one order."""
        raise NotImplementedError

    def sample(self, index: str, table: str, n: int) -> tuple[pd.DataFrame, np.ndarray]:
        """A few rows and their vectors (serving checks its model against them); default: from vectors()."""
        rows, vectors = self.vectors(index, table)
        return rows.head(n), vectors[:n]

    def create_ann_index(self, index: str, table: str) -> None:
        raise NotImplementedError

    def search(self, index: str, table: str, vectors: np.ndarray, k: int, exact: bool = False) -> list[list[Hit]]:
        """The k nearest chunks (cosine) of each query vector, best first; exact=True: no ANN index."""
        raise NotImplementedError

    def drop_table(self, index: str, table: str) -> None:
        raise NotImplementedError

    def has_table(self, index: str, table: str) -> bool:
        return any(m.table == table for m in self.tables(index))


class LanceDBStore(VectorStore):
    """LanceDB (pip lancedb, pinned): an index's tables in one LanceDB database at its uri; an incremental
    build is a shallow clone of the previous table (its files shared) with the changed rows deleted and added."""

    def _db(self, index: str):
        import lancedb

        try:
            return lancedb.connect(self.uri(index))
        except Exception as e:  # noqa: BLE001 - an unreachable object store, a bad URI: name it
            raise VectorIndexError(f"index {index}: cannot open the vector store at {self.uri(index)} "
                                   f"({type(e).__name__}: {e})") from None

    def _open(self, index: str, table: str):
        try:
            return self._db(index).open_table(table)
        except ValueError as e:
            raise VectorIndexError(f"index {index}: no table {table} at {self.uri(index)} ({e})") from None

    @staticmethod
    def _names(db) -> list[str]:
        names, token = [], None
        while True:
            page = db.list_tables(page_token=token)
            names += list(page.tables)
            token = page.page_token
            if not token:
                return names

    @staticmethod
    def _meta_of(table, name: str, index: str) -> TableMeta:
        raw = (table.schema.field("vector").metadata or {}).get(TABLE_META_KEY.encode())
        meta = TableMeta.from_json(raw.decode()) if raw else None
        if meta is None or meta.table != name:  # a clone that has not got its own record yet
            return TableMeta(index, name, "", "", "", "", INCOMPLETE, 0, "")
        return meta

    def tables(self, index: str) -> list[TableMeta]:
        db = self._db(index)
        try:
            names = self._names(db)
        except Exception as e:  # noqa: BLE001 - the store did not answer (an object store down, no access)
            raise VectorIndexError(f"index {index}: cannot list the tables at {self.uri(index)} "
                                   f"({type(e).__name__}: {e})") from None
        return [self._meta_of(db.open_table(n), n, index) for n in names if belongs_to(n, index)]

    @staticmethod
    def _arrow(rows: pd.DataFrame, dim: int, meta: Optional[TableMeta] = None):
        import pyarrow as pa

        vector = pa.field("vector", pa.list_(pa.float32(), dim),
                          metadata={TABLE_META_KEY: meta.to_json()} if meta else None)
        schema = pa.schema([pa.field("chunk_id", pa.string()), pa.field("doc_id", pa.string()),
                            pa.field("alias_doc_ids", pa.list_(pa.string())), pa.field("chunk_hash", pa.string()),
                            pa.field("title", pa.string()), pa.field("text", pa.string()), vector])
        columns = {c: rows[c].tolist() for c in ("chunk_id", "doc_id", "alias_doc_ids", "chunk_hash", "title",
                                                  "text")}
        flat = np.asarray(np.stack(rows["vector"].tolist()) if len(rows) else np.zeros((0, dim)), np.float32)
        columns["vector"] = pa.FixedSizeListArray.from_arrays(pa.array(flat.reshape(-1)), dim)
        return pa.table(columns, schema=schema)

    def write_table(self, index: str, meta: TableMeta, rows: pd.DataFrame, base: Optional[str] = None,
                    delete_ids: tuple[str, ...] = ()) -> None:
        db = self._db(index)
        if base is None:
            db.create_table(meta.table, self._arrow(rows, meta.dim, meta))  # one commit: whole or absent
            return
        source = self._open(index, base)
        table = db.clone_table(meta.table, source.uri)
        for start in range(0, len(delete_ids), 1000):
            ids = ", ".join("'" + i.replace("'", "''") + "'" for i in delete_ids[start:start + 1000])
            table.delete(f"chunk_id IN ({ids})")
        if len(rows):
            table.add(self._arrow(rows, meta.dim))
        self.set_table_meta(index, meta)

    def set_table_meta(self, index: str, meta: TableMeta) -> None:
        self._open(index, meta.table).update_field_metadata(
            {"path": "vector", "metadata": {TABLE_META_KEY: meta.to_json()}})

    def table_rows(self, index: str, table: str) -> pd.DataFrame:
        return self._open(index, table).to_arrow().select(["chunk_id", "chunk_hash"]).to_pandas()

    def shape(self, index: str, table: str) -> tuple[int, int]:
        t = self._open(index, table)
        return int(t.count_rows()), int(t.schema.field("vector").type.list_size)

    def vectors(self, index: str, table: str) -> tuple[pd.DataFrame, np.ndarray]:
        return self._split(self._open(index, table).to_arrow())

    def sample(self, index: str, table: str, n: int) -> tuple[pd.DataFrame, np.ndarray]:
        return self._split(self._open(index, table).head(n))

    @staticmethod
    def _split(data) -> tuple[pd.DataFrame, np.ndarray]:
        vectors = data.column("vector").combine_chunks()
        flat = vectors.values.to_numpy(zero_copy_only=False).reshape(len(data), -1) if len(data) else \
            np.zeros((0, 0), np.float32)
        return data.drop_columns(["vector"]).to_pandas(), flat.astype(np.float32)

    def create_ann_index(self, index: str, table: str) -> None:
        t = self._open(index, table)
        rows = t.count_rows()
        t.create_index(metric="cosine", index_type="IVF_HNSW_SQ", num_partitions=max(1, rows // ANN_ROWS_PER_PARTITION),
                       vector_column_name="vector")

    def search(self, index: str, table: str, vectors: np.ndarray, k: int, exact: bool = False) -> list[list[Hit]]:
        """Queries go SEARCH_BATCH at a time (LanceDB answers a batch in one scan, a query_index per row)."""
        t = self._open(index, table)
        vectors = np.asarray(vectors, dtype=np.float32).reshape(len(vectors), -1)
        out: list[list[Hit]] = [[] for _ in range(len(vectors))]
        for start in range(0, len(vectors), SEARCH_BATCH):
            batch = vectors[start:start + SEARCH_BATCH]
            q = t.search(batch if len(batch) > 1 else batch[0], vector_column_name="vector").metric("cosine").limit(
                k).select(["chunk_id", "doc_id", "alias_doc_ids", "title", "text", "_distance"])
            q = q.bypass_vector_index() if exact else q.nprobes(ANN_NPROBES).ef(max(ANN_EF, 4 * k)).refine_factor(
                ANN_REFINE)
            rows = q.to_arrow().to_pylist()
            for r in sorted(rows, key=lambda r: (r.get("query_index", 0), r["_distance"])):
                out[start + r.get("query_index", 0)].append(
                    Hit(r["chunk_id"], r["doc_id"], 1.0 - float(r["_distance"]), r["text"], r["title"] or "",
                        tuple(r["alias_doc_ids"] or ())))
        return out

    def drop_table(self, index: str, table: str) -> None:
        self._db(index).drop_table(table)
