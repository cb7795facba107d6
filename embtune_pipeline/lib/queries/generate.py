"""Synthetic queries for corpus chunks: through any LLM litellm reaches, or model-free (inverse cloze task)."""

from __future__ import annotations

import logging
import random
import re
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from typing import Callable, Optional

import pandas as pd

from embtune_pipeline.lib.data.chunking import embedding_text
from embtune_pipeline.lib.progress import SILENT, Reporter
from embtune_pipeline.lib.queries.cache import AnswerCache, cache_key
from embtune_pipeline.lib.queries.local_llm import litellm_model_name, local_generation_params
from embtune_pipeline.lib.secrets import redact, safe_params

log = logging.getLogger(__name__)

DEFAULT_PROMPT = Path(__file__).parent / "prompts" / "queries.txt"
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


def ict_pairs(title: str, text: str, n: int, seed_key: str, max_words: int = 24) -> list[tuple[str, str]]:
    """Inverse cloze task: a sentence of the chunk is the query; the chunk without it is the positive."""
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
class GenerationStats:
    chunks: int = 0
    llm_calls: int = 0
    cache_hits: int = 0
    failures: int = 0
    unparseable: int = 0
    errors: list[str] = field(default_factory=list)

    def as_metadata(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "errors"}


CompleteFn = Callable[..., object]


def _answer_text(response) -> str:
    """Text of a litellm ModelResponse (or of a plain dict shaped like one)."""
    choice = response["choices"][0] if isinstance(response, dict) else response.choices[0]
    message = choice["message"] if isinstance(choice, dict) else choice.message
    return (message["content"] if isinstance(message, dict) else message.content) or ""


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
) -> tuple[pd.DataFrame, GenerationStats]:
    """n queries per chunk. LLM answers are cached by (model, rendered prompt, params) as each arrives; a failed
    call, or an answer with no question in it, is not cached, so a rerun retries only those. Each request stops
    after `request_timeout` s; rate limits and server errors are retried (Retry-After honoured) for at most
    `max_retry_seconds`. More than `max_failures` of calls failing raises after caching the rest. Errors are
    stored and raised with every secret from the environment blanked."""
    stats = GenerationStats(chunks=len(chunks))
    rows: list[tuple] = []
    if model == ICT:
        for c in chunks.itertuples(index=False):
            for q, pos in ict_pairs(c.title, c.text, n, seed_key=c.chunk_hash):
                rows.append((c.chunk_id, c.chunk_hash, q, pos, ICT, f"ict:{c.chunk_hash}"))
        return pd.DataFrame(rows, columns=QUERY_COLUMNS), stats

    if cache is None:
        raise ValueError("an LLM generator needs an answer cache")
    template = template or DEFAULT_PROMPT.read_text()
    complete = complete or _litellm_completion()
    local = local_generation_params(model, n)
    params = {"max_tokens": local["max_tokens"], **(params or {})} if local else dict(params or {})
    # the same prompt under other params (temperature, server, local decoding) is another answer
    answer_params = {**safe_params(params), **{k: v for k, v in local.items() if k.startswith("local.")}}
    jobs = {}
    for c in chunks.itertuples(index=False):
        passage = embedding_text(c.title, c.text)
        prompt = render_prompt(template, passage, n, examples or [])
        jobs[cache_key(model, prompt, answer_params)] = (c, passage, prompt)

    answers: dict[str, str] = {}
    todo = []
    for key, (c, passage, prompt) in jobs.items():
        cached = cache.get(key)
        if cached is not None:
            answers[key] = cached
            stats.cache_hits += 1
        else:
            todo.append(key)

    def call(key: str) -> str:
        prompt = jobs[key][2]
        for attempt in retrying(max_retry_seconds):
            with attempt:
                response = complete(model=litellm_model_name(model), messages=[{"role": "user", "content": prompt}],
                                    timeout=request_timeout, max_retries=0, **params)
        return _answer_text(response)

    progress = reporter.track(f"LLM calls to {model} ({stats.cache_hits} answers cached)", len(todo), "calls")
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        futures = {pool.submit(call, key): key for key in todo}
        for fut in as_completed(futures):
            key = futures[fut]
            stats.llm_calls += 1
            progress.advance()
            try:
                text = fut.result()
            except Exception as e:  # provider errors vary; count, keep going, report
                stats.failures += 1
                if len(stats.errors) < 5:
                    stats.errors.append(redact(f"{type(e).__name__}: {str(e)[:300]}"))
                continue
            answers[key] = text
            if parse_questions(text, n):  # an empty or garbled answer is asked again next time, not kept
                cache.put(key, model, text)

    if todo and stats.failures > max_failures * len(todo):
        raise RuntimeError(
            f"{stats.failures} of {len(todo)} LLM calls to {model!r} failed (answers so far are cached; "
            f"a rerun retries only the failed ones). First errors: {stats.errors}")

    for key, (c, passage, _prompt) in jobs.items():
        if key not in answers:
            continue
        questions = parse_questions(answers[key], n)
        if not questions:
            stats.unparseable += 1
        for q in questions:
            rows.append((c.chunk_id, c.chunk_hash, q, passage, model, f"{model}:{c.chunk_hash}"))
    return pd.DataFrame(rows, columns=QUERY_COLUMNS), stats


RETRY_STATUSES = {408, 409, 429, 500, 502, 503, 504, 529}


def retry_after_seconds(error: BaseException) -> Optional[float]:
    """The wait a provider asked for (a Retry-After header in seconds), if it said one."""
    response = getattr(error, "response", None)
    headers = getattr(response, "headers", None) or {}
    try:
        return float(headers.get("retry-after") or headers.get("Retry-After"))
    except (TypeError, ValueError):
        return None


def is_transient(error: BaseException) -> bool:
    """Worth another try: rate limits, server errors, timeouts and dropped connections; not a bad request or a
    refused key."""
    status = getattr(error, "status_code", None)
    if status is not None:
        return int(status) in RETRY_STATUSES
    return any(word in type(error).__name__ for word in ("Timeout", "Connection", "RateLimit", "Unavailable"))


def retrying(max_seconds: float):
    """tenacity's loop: exponential backoff with jitter (1 s doubling to 60 s), or the provider's Retry-After when
    it gives one; no wait runs past `max_seconds` in all (then the last error is raised as it was)."""
    from tenacity import Retrying, retry_if_exception, stop_before_delay, wait_exponential_jitter

    backoff = wait_exponential_jitter(initial=1, max=60)

    def wait(state) -> float:
        asked = retry_after_seconds(state.outcome.exception())
        return asked if asked is not None else backoff(state)

    return Retrying(retry=retry_if_exception(is_transient), wait=wait, stop=stop_before_delay(max_seconds),
                    reraise=True)


def _litellm_completion() -> CompleteFn:

    import litellm

    from embtune_pipeline.lib.queries import local_llm

    local_llm.register(litellm)
    litellm.suppress_debug_info = True  # its "Give Feedback" banner repeats the provider's error, key and all
    return litellm.completion
