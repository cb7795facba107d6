"""Nearest chunks by inner product (vectors are unit length, so cosine), with faiss."""

from __future__ import annotations

import numpy as np

EXACT_LIMIT = 200_000  # above this many chunks, an HNSW graph instead of a flat scan


def top_k(queries: np.ndarray, corpus: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(scores, indices), each (n_queries, k'), best first; k' = min(k, corpus size)."""
    import faiss

    k = min(k, len(corpus))
    corpus = np.ascontiguousarray(corpus, dtype=np.float32)
    if len(corpus) > EXACT_LIMIT:
        index = faiss.IndexHNSWFlat(corpus.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efSearch = max(128, 2 * k)
    else:
        index = faiss.IndexFlatIP(corpus.shape[1])
    index.add(corpus)
    return index.search(np.ascontiguousarray(queries, dtype=np.float32), k)


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
