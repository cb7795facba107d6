"""Query variety: real query logs mix questions, claims and keyword queries (SciFact's queries are claims; a
search box gets keywords), and a model trained on one form alone learns that form. The generator writes
natural-language queries (questions or claims, by its prompt; model-free ICT cuts claim-like sentences); a share
of them becomes keyword queries: their content words, as people type them."""

from __future__ import annotations

import hashlib
import re
from functools import cache

import pandas as pd

QUESTION, CLAIM, KEYWORDS = "question", "claim", "keywords"
_WORD = re.compile(r"[^\W_](?:[\w'.-]*[^\W_])?")


@cache
def _stopwords() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_EN_PLUS

    return frozenset(STOPWORDS_EN_PLUS)


def content_words(text: str) -> list[str]:
    """The text's words, lower-cased, without stop words and single letters, in order."""
    stop = _stopwords()
    return [w for w in (w.lower() for w in _WORD.findall(text)) if w not in stop and (len(w) > 1 or w.isdigit())]


def keyword_query(text: str, max_words: int = 6) -> str:
    """The text's first `max_words` distinct content words, lower-cased ("How long does the Jaguar X2 battery
    last?" -> "long jaguar x2 battery last")."""
    return " ".join(list(dict.fromkeys(content_words(text)))[:max_words])


def _share_point(seed: int, text: str) -> float:
    """A stable draw in [0, 1) per query: the same queries become keywords on every rerun."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{text}".encode()).digest()[:8], "big") / 2 ** 64


def vary_queries(queries: pd.DataFrame, keyword_share: float, natural_kind: str, seed: int = 0) -> pd.DataFrame:
    """The queries with a `kind` column: `keyword_share` of them (a stable draw) turned into keyword queries,
    the rest `natural_kind` as generated. A query with fewer than two content words stays as it was."""
    out = queries.assign(kind=natural_kind)
    if keyword_share <= 0 or out.empty:
        return out
    drawn = out["query"].map(lambda q: _share_point(seed, q) < keyword_share)
    keywords = out.loc[drawn, "query"].map(keyword_query)
    usable = keywords[keywords.str.split().str.len() >= 2]
    out.loc[usable.index, "query"] = usable
    out.loc[usable.index, "kind"] = KEYWORDS
    return out.drop_duplicates(["chunk_hash", "query"]) if "chunk_hash" in out.columns else out
