"""Drop synthetic queries that would teach the wrong thing: too short or long, echoes of the passage, repeats."""

from __future__ import annotations

import re
from collections import Counter

import pandas as pd

from embtune_pipeline.lib.data.ingest import normalize_query

_WORD = re.compile(r"\w+")


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def implausible(query: str) -> bool:
    """Two or more runs of a repeated symbol (`### ???`), or letters under half of the characters: what a
    garbled answer looks like, and what no user types ("C++ std::vector", "what???" pass)."""
    chars = [c for c in query if not c.isspace()]
    letters = sum(c.isalpha() for c in chars)
    return len(re.findall(r"([^\w\s])\1{2,}", query)) >= 2 or (bool(chars) and letters / len(chars) < 0.5)


def filter_queries(
    queries: pd.DataFrame,
    min_words: int = 3,
    max_words: int = 40,
    echo_min_words: int = 6,
    max_overlap: float = 1.0,
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Keep the good queries; return them and the count rejected per filter.

    - too_short / too_long: word count outside [min_words, max_words];
    - echo: the query appears verbatim in its positive passage (a copied sentence, not a question);
    - overlap: more than `max_overlap` of the query's words occur in the passage (1.0 turns it off);
    - implausible: not a query a person types (runs of symbols, hardly any letters: a garbled LLM answer);
    - duplicate: the same normalized query was already kept (for any chunk).
    """
    rejects: Counter = Counter()
    keep, seen = [], set()
    for row in queries.itertuples(index=False):
        words = _words(row.query)
        if len(words) < min_words:
            rejects["too_short"] += 1
            continue
        if len(words) > max_words:
            rejects["too_long"] += 1
            continue
        if implausible(row.query):
            rejects["implausible"] += 1
            continue
        passage = " ".join(_words(row.positive))
        if len(words) >= echo_min_words and " ".join(words) in passage:
            rejects["echo"] += 1
            continue
        if max_overlap < 1.0:
            vocab = set(passage.split())
            if sum(w in vocab for w in words) / len(words) > max_overlap:
                rejects["overlap"] += 1
                continue
        key = normalize_query(row.query)
        if key in seen:
            rejects["duplicate"] += 1
            continue
        seen.add(key)
        keep.append(row)
    kept = pd.DataFrame(keep, columns=queries.columns) if keep else queries.iloc[0:0].copy()
    counts = {k: int(rejects.get(k, 0)) for k in ("too_short", "too_long", "implausible", "echo", "overlap",
                                                        "duplicate")}
    return kept.reset_index(drop=True), counts
