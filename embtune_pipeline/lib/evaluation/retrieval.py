"""Nearest chunks by inner product (vectors are unit length, so cosine), with faiss: an exact scan, or an HNSW
graph (approximate) for corpora too large to scan for every query."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Iterable

import numpy as np

from embtune_pipeline.lib.storage import write_atomically

EXACT_LIMIT = 200_000  # above this many chunks, evaluation searches an HNSW graph instead of a flat scan
HNSW_NEIGHBORS = 32  # faiss's M: graph degree (memory: about 2 x M x 4 bytes per vector beside the vector)
HNSW_EF_CONSTRUCTION = 80


class CorpusIndex:
    """A faiss index over corpus rows, searched for the k nearest; exact (flat) or HNSW. An HNSW index is worth
    saving: building it is the expensive part (see benchmarks/scale.py), searching it is cheap."""

    def __init__(self, index, build_seconds: float = 0.0):
        self.index, self.build_seconds = index, build_seconds

    @property
    def kind(self) -> str:
        """hnsw (approximate) or exact, as the faiss index is."""
        import faiss

        return "hnsw" if isinstance(self.index, faiss.IndexHNSW) else "exact"

    @classmethod
    def build(cls, vectors: np.ndarray, approximate: bool) -> "CorpusIndex":
        return cls.build_from_blocks([vectors], approximate)

    @classmethod
    def build_from_blocks(cls, blocks: Iterable[np.ndarray], approximate: bool) -> "CorpusIndex":
        """Rows added a block at a time, so the corpus's vectors are never all in RAM beside the index's copy."""
        import faiss

        start, index = time.perf_counter(), None
        for block in blocks:
            block = np.ascontiguousarray(block, dtype=np.float32)
            if index is None:
                if approximate:
                    index = faiss.IndexHNSWFlat(block.shape[1], HNSW_NEIGHBORS, faiss.METRIC_INNER_PRODUCT)
                    index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
                else:
                    index = faiss.IndexFlatIP(block.shape[1])
            index.add(block)
        if index is None:
            raise ValueError("no vectors to index")
        return cls(index, time.perf_counter() - start)

    def save(self, path: Path) -> Path:
        """Replaced whole (lib.storage.write_atomically): a reader never opens half an index."""
        import faiss

        return write_atomically(path, lambda tmp: faiss.write_index(self.index, str(tmp)))

    @classmethod
    def load(cls, path: Path) -> "CorpusIndex":
        import faiss

        return cls(faiss.read_index(str(path)))

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def top_k(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, rows), each (n_queries, k'), best first; k' = min(k, corpus size); a row of -1 is none found."""
        k = min(k, len(self))
        if self.kind == "hnsw":
            self.index.hnsw.efSearch = max(256, 2 * k)  # recall against exact: see benchmarks/scale.py
        return self.index.search(np.ascontiguousarray(queries, dtype=np.float32), k)


def corpus_index_name(chunk_hashes: list[str], approximate: bool) -> str:
    """The file name of the index over these chunks in this order: the rows of an index are positions in the
    list, so the same chunks in the same order (any snapshot) share one index."""
    digest = hashlib.sha256("\n".join(chunk_hashes).encode()).hexdigest()[:24]
    return f"{digest}-{'hnsw' + str(HNSW_NEIGHBORS) if approximate else 'flat'}.faiss"


def top_k(queries: np.ndarray, corpus: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(scores, indices), each (n_queries, k'), best first; k' = min(k, corpus size); searched once, not kept."""
    return CorpusIndex.build(corpus, approximate=len(corpus) > EXACT_LIMIT).top_k(queries, k)


def rank_documents(chunk_rows: np.ndarray, chunk_docs: list[list[str]], k: int) -> list[str]:
    """Collapse a ranked list of chunks into a ranked list of documents (a document ranks by its best chunk)."""
    out, seen = [], set()
    for i in chunk_rows:
        if i < 0:
            continue
        for d in chunk_docs[i]:
            if d not in seen:
                seen.add(d)
                out.append(d)
        if len(out) >= k:
            break
    return out[:k]
