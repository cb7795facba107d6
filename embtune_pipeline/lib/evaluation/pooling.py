"""Pooling: the candidates a judge sees for a real query are the union of what several retrievers rank at the
top (the base model, the tuned one, the baselines, BM25), so the eval set does not favour one of them."""

from __future__ import annotations

import numpy as np
import pandas as pd

from embtune_pipeline.lib.data.chunking import chunk_doc_ids, chunk_texts
from embtune_pipeline.lib.evaluation.judgments import POOL_COLUMNS
from embtune_pipeline.lib.evaluation.retrieval import rank_documents, top_k

BM25 = "bm25"


def dense_rankings(query_vectors: np.ndarray, corpus_vectors: np.ndarray, chunks: pd.DataFrame,
                   depth: int) -> list[list[str]]:
    """Each query's top `depth` documents by cosine (a document ranks by its best chunk)."""
    docs = chunk_doc_ids(chunks)
    _, rows = top_k(query_vectors, corpus_vectors, min(len(chunks), depth * 4 + 20))
    return [rank_documents(r, docs, depth) for r in rows]


def bm25_rankings(chunks: pd.DataFrame, queries: list[str], depth: int) -> list[list[str]]:
    """Each query's top `depth` documents by BM25 over the chunks (bm25s, English stop words, no stemming):
    the lexical retriever every pool should include, since it finds what embeddings miss."""
    import bm25s

    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize(chunk_texts(chunks), stopwords="en", show_progress=False), show_progress=False)
    k = min(len(chunks), depth * 4 + 20)
    rows, _ = retriever.retrieve(bm25s.tokenize(list(queries), stopwords="en", show_progress=False), k=k,
                                 show_progress=False)
    docs = chunk_doc_ids(chunks)
    return [rank_documents(r, docs, depth) for r in rows]


def pool(rankings: dict[str, list[list[str]]], size: int) -> list[list[tuple[str, list[str]]]]:
    """Per query, at most `size` documents taken in turn from each ranking's top (round robin: each retriever's
    first, then each one's second, ...), each with the retrievers that ranked it that high or higher."""
    names = list(rankings)
    n_queries = len(next(iter(rankings.values()))) if rankings else 0
    out = []
    for q in range(n_queries):
        chosen: dict[str, list[str]] = {}
        depth = max((len(rankings[n][q]) for n in names), default=0)
        for rank in range(depth):
            for name in names:
                ranked = rankings[name][q]
                if rank < len(ranked):
                    doc = ranked[rank]
                    if doc in chosen:
                        if name not in chosen[doc]:
                            chosen[doc].append(name)
                    elif len(chosen) < size:
                        chosen[doc] = [name]
            if len(chosen) >= size:
                break
        out.append(list(chosen.items()))
    return out


def pool_frame(queries: pd.DataFrame, pooled: list[list[tuple[str, list[str]]]],
               documents: pd.DataFrame) -> pd.DataFrame:
    """The pool as rows a JudgmentStore keeps (POOL_COLUMNS), with each document's title and text to judge."""
    text_of = documents.set_index("doc_id")[["title", "text"]].to_dict("index")
    rows = []
    for q, candidates in zip(queries.itertuples(index=False), pooled):
        for rank, (doc, sources) in enumerate(candidates):
            d = text_of.get(doc, {"title": "", "text": ""})
            rows.append((q.query_id, q.query, doc, d["title"] or "", d["text"] or "", rank, ",".join(sources)))
    return pd.DataFrame(rows, columns=POOL_COLUMNS)
