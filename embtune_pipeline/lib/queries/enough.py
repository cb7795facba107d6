"""Generating only as many queries as the training will draw: for the first chunks of a stable sample, then more
of them while the filters leave too few (an LLM's answers are cached, so chunks asked again cost nothing)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional

import pandas as pd

from embtune_pipeline.lib.data.sampling import stable_sample
from embtune_pipeline.lib.queries.filters import filter_queries

FIRST_MARGIN = 1.2  # the first round asks for this many queries per one needed: the filters reject some
GROWTH_MARGIN = 1.1  # when a round kept too few: the next asks for this much more than the keep rate implies


@dataclass
class Generated:
    kept: pd.DataFrame  # the queries the filters passed
    rejects: dict  # how many each filter rejected
    stats: object  # the generator's call statistics: llm_calls of every round, the rest of the last (which asked
    # every chunk of the rounds before again, from the cache)
    chunks_asked: int
    generated: int  # queries before the filters


def generate_enough(generate: Callable[[pd.DataFrame], tuple[pd.DataFrame, object]], sample: pd.DataFrame,
                    needed: Optional[int], queries_per_chunk: int, seed: int,
                    vocabulary: Optional[frozenset[str]] = None):
    """Filtered queries for the sample's chunks, or, with `needed` (queries the training can draw), for a stable
    subset of them: enough chunks for FIRST_MARGIN x needed queries first, grown by the keep rate until `needed`
    queries pass the filters (`vocabulary`: filters.query_vocabulary) or the sample is spent."""
    first = math.ceil(FIRST_MARGIN * (needed or 0) / max(1, queries_per_chunk))
    chunks = sample if needed is None else stable_sample(sample, min(first, len(sample)), seed)
    calls = 0
    while True:
        generated, stats = generate(chunks)
        calls += getattr(stats, "llm_calls", 0)
        kept, rejects = filter_queries(generated, vocabulary=vocabulary)
        if needed is None or len(kept) >= needed or len(chunks) >= len(sample):
            if hasattr(stats, "llm_calls"):
                stats.llm_calls = calls
            return Generated(kept, rejects, stats, len(chunks), len(generated))
        per_chunk = max(len(kept), 1) / len(chunks)
        more = max(len(chunks) + 1, math.ceil(GROWTH_MARGIN * needed / per_chunk))
        chunks = stable_sample(sample, min(more, len(sample)), seed)
