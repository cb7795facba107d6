"""An eval set from real queries without judgments (a search log): pool each query's candidates from several
retrievers, then have them judged (lib.evaluation.judging by an LLM, the labelling page by people)."""

from __future__ import annotations

import pandas as pd

from embtune_pipeline.lib.data.sampling import stable_sample
from embtune_pipeline.lib.evaluation.measure import Encoded
from embtune_pipeline.lib.evaluation.pooling import BM25, bm25_rankings, dense_rankings, pool, pool_frame

SEED = 0


def queries_to_judge(log: pd.DataFrame, max_queries: int) -> pd.DataFrame:
    """At most max_queries of the log, a stable sample: the same queries stay in as the log grows."""
    return stable_sample(log, max_queries, SEED, key_column="query_id") if len(log) > max_queries else log


def pool_queries(queries: pd.DataFrame, chunks: pd.DataFrame, documents: pd.DataFrame, dense: dict[str, Encoded],
                 size: int) -> pd.DataFrame:
    """Each query's candidates (lib.evaluation.judgments.POOL_COLUMNS): taken in turn from the top of every
    dense retriever given (its vectors of these queries and of the chunks) and of BM25, `size` at most."""
    rankings = {name: dense_rankings(e.query_vectors, e.corpus_vectors, chunks, size) for name, e in dense.items()}
    rankings[BM25] = bm25_rankings(chunks, queries["query"].tolist(), size)
    return pool_frame(queries, pool(rankings, size), documents)
