"""Drop synthetic queries that would teach the wrong thing: too short or long, echoes of the passage, repeats, and an
LLM's junk (refusals, words of no language the corpus or the tokenizer knows)."""

from __future__ import annotations

import re
from collections import Counter
from typing import Iterable, Optional

import pandas as pd

from embtune_pipeline.lib.data.ingest import normalize_query
from embtune_pipeline.lib.queries.variety import content_words

_WORD = re.compile(r"\w+")


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def implausible(query: str) -> bool:
    """Two or more runs of a repeated symbol (`### ???`), or letters under half of the characters: what a
    garbled answer looks like, and what no user types ("C++ std::vector", "what???" pass)."""
    chars = [c for c in query if not c.isspace()]
    letters = sum(c.isalpha() for c in chars)
    return len(re.findall(r"([^\w\s])\1{2,}", query)) >= 2 or (bool(chars) and letters / len(chars) < 0.5)


_REFUSAL = re.compile(
    r"^\W*(?:i'?m sorry|i am sorry|sorry,|i apologi[sz]e|unfortunately,? i\b)"
    r"|\bas an? (?:ai|artificial intelligence|(?:ai )?(?:large )?language model)\b"
    r"|\bi (?:can ?not|can't|won't|am unable to|'m unable to|am not able to|'m not able to)"
    r" (?:help|assist|comply|provide|generate|create|write|fulfil)", re.I)


def refusal(query: str) -> bool:
    """An assistant declining ("I'm sorry, but as an AI language model I can't..."), not a query."""
    return bool(_REFUSAL.search(query.replace("\u2019", "'")))


def _stem(word: str) -> str:
    """A crude stem, the same on both sides of a comparison ("batteries" and "battery" meet)."""
    word = word.removesuffix("'s")
    for suffix, repl in (("ies", "y"), ("es", ""), ("s", ""), ("ing", ""), ("ed", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)] + repl
    return word


def tokenizer_words(tokenizer) -> frozenset[str]:
    """The whole words of a tokenizer's vocabulary: WordPiece's pieces that start a word (not ##...), or the
    pieces SentencePiece and byte-level BPE mark as starting one (\u2581word, \u0120word); letters only."""
    vocab = tokenizer.get_vocab()
    marked = [t[1:] for t in vocab if t[:1] in ("\u2581", "\u0120")]
    words = marked or [t for t in vocab if not t.startswith("##")]
    return frozenset(_stem(w.lower()) for w in words if len(w) > 1 and w.isalpha())


def query_vocabulary(texts: Iterable[str], tokenizer=None) -> frozenset[str]:
    """The words a query may be made of: those of the corpus `texts`, and the tokenizer's whole words when the
    model's tokenizer is at hand (stemmed as `unrelated` compares them)."""
    words = {_stem(w) for text in texts for w in content_words(text)}
    return frozenset(words | (tokenizer_words(tokenizer) if tokenizer is not None else set()))


def unrelated(query: str, passage: str, vocabulary: frozenset[str]) -> bool:
    """No content word in common with its passage, and most of its words in neither the corpus nor the
    tokenizer's vocabulary ("frobnicate wibble vexil blorp"): an LLM's gibberish. Words with digits (model
    numbers, years) count only when shared."""
    words = [_stem(w) for w in content_words(query)]
    if not words or set(words) & {_stem(w) for w in content_words(passage)}:
        return False
    judged = [w for w in words if not any(c.isdigit() for c in w)]
    return bool(judged) and sum(w not in vocabulary for w in judged) > len(judged) / 2


def llm_junk(query: str, passage: str, vocabulary: frozenset[str]) -> Optional[str]:
    """Why an LLM's query is junk ("refusal", "unrelated"), or None."""
    if refusal(query):
        return "refusal"
    if unrelated(query, passage, vocabulary):
        return "unrelated"
    return None


def filter_queries(
    queries: pd.DataFrame,
    min_words: int = 3,
    max_words: int = 40,
    echo_min_words: int = 6,
    max_overlap: float = 1.0,
    vocabulary: Optional[frozenset[str]] = None,
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Keep the good queries; return them and the count rejected per filter.

    - too_short / too_long: word count outside [min_words, max_words];
    - echo: the query appears verbatim in its positive passage (a copied sentence, not a question);
    - overlap: more than `max_overlap` of the query's words occur in the passage (1.0 turns it off);
    - implausible: not a query a person types (runs of symbols, hardly any letters: a garbled LLM answer);
    - refusal / unrelated: an assistant declining, or gibberish (`llm_junk`; `vocabulary`, the corpus's words
      and the tokenizer's, defaults to the words of the positives);
    - duplicate: the same normalized query was already kept (for any chunk).
    """
    rejects: Counter = Counter()
    keep, seen = [], set()
    if vocabulary is None:
        vocabulary = query_vocabulary(queries["positive"].drop_duplicates())
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
        junk = llm_junk(row.query, row.positive, vocabulary)
        if junk:
            rejects[junk] += 1
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
    counts = {k: int(rejects.get(k, 0)) for k in ("too_short", "too_long", "implausible", "refusal", "unrelated",
                                                        "echo", "overlap", "duplicate")}
    return kept.reset_index(drop=True), counts
