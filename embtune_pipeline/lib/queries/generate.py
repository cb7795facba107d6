"""Synthetic queries for corpus chunks: through any LLM litellm reaches, or model-free (inverse cloze task)."""

from __future__ import annotations

import logging
import random
import re
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Optional

import pandas as pd

from embtune_pipeline.lib.data.chunking import embedding_text
from embtune_pipeline.lib.llm_calls import CallStats, CompleteFn, ask_all
from embtune_pipeline.lib.progress import SILENT, Reporter
from embtune_pipeline.lib.queries import ICT_MAX_WORDS
from embtune_pipeline.lib.queries.cache import AnswerCache, cache_key
from embtune_pipeline.lib.queries.filters import llm_junk, query_vocabulary
from embtune_pipeline.lib.queries.local_llm import litellm_model_name, local_generation_params
from embtune_pipeline.lib.secrets import safe_params

log = logging.getLogger(__name__)

DEFAULT_PROMPT = Path(__file__).parent / "prompts" / "queries.txt"
PROMPTS = {"questions": DEFAULT_PROMPT, "claims": Path(__file__).parent / "prompts" / "claims.txt"}
ICT = "ict"
QUERY_COLUMNS = ["chunk_id", "chunk_hash", "query", "positive", "generator", "provenance"]


# ---------------------------------------------------------------- prompt and parsing


def render_prompt(template: str, passage: str, n: int, examples: list[str]) -> str:
    """Fill $passage, $n and $examples; the examples are real user queries, shown for style only."""
    block = ""
    if examples:
        block = "\nReal queries from our users, to match their style (not their topics):\n" + "\n".join(
            f"- {e}" for e in examples) + "\n"
    return Template(template).safe_substitute(passage=passage, n=n, examples=block)


_PREAMBLE = re.compile(
    r"^(here (are|is)|sure|certainly|of course|okay|ok\b|below (are|is)|the following|as requested|"
    r"i('| a)m happy|questions?:|queries:|search queries:)", re.I)
_MARKER = re.compile(  # bullets, "1." "2)" "(3)", "a)", "Q1:", "Question 2:"
    r"^\s*(?:[-*\u2022>]+|\(?\d{1,2}[.):\]]|\(?[a-zA-Z][.)]\s|(?:q(?:uery|uestion)?\s*\d*\s*[:.)-]))\s*", re.I)


def parse_questions(answer: str, n: int) -> list[str]:
    """The queries in an LLM answer: strips numbering, bullets, quotes and preambles; drops empties and repeats."""
    out, seen = [], set()
    for raw in (answer or "").splitlines():
        line = raw.strip().strip("`").strip()
        if not line:
            continue
        prev = None
        while prev != line:  # "1. - Q1: ..." nests markers
            prev = line
            line = _MARKER.sub("", line, count=1).strip()
        line = line.strip("\"'\u201c\u201d*_ ").strip()
        if not line or _PREAMBLE.match(line) or (line.endswith(":") and "?" not in line):
            continue
        if len(line.split()) < 2:
            continue
        key = re.sub(r"\W+", " ", line.lower()).strip()
        if key in seen:
            continue
        seen.add(key)
        out.append(line)
        if len(out) == n:
            break
    return out


# ---------------------------------------------------------------- model-free


_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")


def ict_pairs(title: str, text: str, n: int, seed_key: str,
              max_words: int = ICT_MAX_WORDS) -> list[tuple[str, str]]:
    """Inverse cloze task: a sentence of the chunk is the query (a random run of `max_words` of its words when
    longer); the chunk without the whole sentence is the positive. The same seed picks the same sentences
    whatever `max_words` is, so only the queries change with it."""
    sentences = [s.strip() for s in _SENTENCE.split(text) if s.strip()]
    candidates = [i for i, s in enumerate(sentences) if len(s.split()) >= 4]
    if len(sentences) < 2 or not candidates:
        return []
    rng = random.Random(seed_key)
    picks = rng.sample(candidates, min(n, len(candidates)))
    pairs = []
    for i in picks:
        words = sentences[i].split()
        if len(words) > max_words:
            start = rng.randrange(0, len(words) - max_words + 1)
            words = words[start:start + max_words]
        rest = " ".join(s for j, s in enumerate(sentences) if j != i)
        pairs.append((" ".join(words), embedding_text(title, rest)))
    return pairs


# ---------------------------------------------------------------- LLM


@dataclass
class GenerationStats(CallStats):
    chunks: int = 0
    unparseable: int = 0


def generate_queries(
    chunks: pd.DataFrame,
    n: int,
    model: str,
    cache: Optional[AnswerCache] = None,
    template: Optional[str] = None,
    examples: Optional[list[str]] = None,
    params: Optional[dict] = None,
    complete: Optional[CompleteFn] = None,
    concurrency: int = 4,
    max_failures: float = 0.1,
    request_timeout: float = 60.0,
    max_retry_seconds: float = 300.0,
    reporter: Reporter = SILENT,
    ict_max_words: int = ICT_MAX_WORDS,
    vocabulary: Optional[frozenset[str]] = None,
) -> tuple[pd.DataFrame, GenerationStats]:
    """n queries per chunk. LLM answers are cached by (model, rendered prompt, params) as each arrives; a failed
    call, or an answer with no question in it but junk (filters.llm_junk, against `vocabulary`: by default the
    chunks' words), is not cached, so a rerun retries only those. Each request stops
    after `request_timeout` s; rate limits and server errors are retried (Retry-After honoured) for at most
    `max_retry_seconds`. More than `max_failures` of calls failing raises after caching the rest (and stops the
    asking early: llm_calls.ask_all). Errors are
    stored and raised with every secret from the environment blanked."""
    stats = GenerationStats(chunks=len(chunks))
    rows: list[tuple] = []
    if model == ICT:
        for c in chunks.itertuples(index=False):
            for q, pos in ict_pairs(c.title, c.text, n, seed_key=c.chunk_hash, max_words=ict_max_words):
                rows.append((c.chunk_id, c.chunk_hash, q, pos, ICT, f"ict:{c.chunk_hash}"))
        return pd.DataFrame(rows, columns=QUERY_COLUMNS), stats

    if cache is None:
        raise ValueError("an LLM generator needs an answer cache")
    template = template or DEFAULT_PROMPT.read_text()
    local = local_generation_params(model, n)
    params = {"max_tokens": local["max_tokens"], **(params or {})} if local else dict(params or {})
    # the same prompt under other params (temperature, server, local decoding) is another answer
    answer_params = {**safe_params(params), **{k: v for k, v in local.items() if k.startswith("local.")}}
    jobs = {}
    for c in chunks.itertuples(index=False):
        passage = embedding_text(c.title, c.text)
        prompt = render_prompt(template, passage, n, examples or [])
        jobs[cache_key(model, prompt, answer_params)] = (c, passage, prompt)

    if vocabulary is None:
        vocabulary = query_vocabulary(passage for _c, passage, _prompt in jobs.values())

    def usable(key: str, answer: str) -> bool:
        passage = jobs[key][1]
        return any(llm_junk(q, passage, vocabulary) is None for q in parse_questions(answer, n))

    answers, _ = ask_all({key: prompt for key, (_c, _p, prompt) in jobs.items()}, model, litellm_model_name(model),
                         cache, params, complete, concurrency, request_timeout, max_retry_seconds, max_failures,
                         keep=usable, reporter=reporter, stats=stats)
    for key, (c, passage, _prompt) in jobs.items():
        if key not in answers:
            continue
        questions = parse_questions(answers[key], n)
        if not questions:
            stats.unparseable += 1
        for q in questions:
            rows.append((c.chunk_id, c.chunk_hash, q, passage, model, f"{model}:{c.chunk_hash}"))
    return pd.DataFrame(rows, columns=QUERY_COLUMNS), stats
