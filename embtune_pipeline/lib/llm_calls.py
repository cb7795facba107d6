"""Calls to models behind litellm (hosted, a local OpenAI-compatible server, or the in-process SmolLM2): the one
way embtune asks an LLM or an embedding API. Every call is retried with backoff on rate limits and server
errors, answers are cached by content before anything else happens, errors are kept with secrets blanked, and a
step whose calls mostly fail stops asking."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Callable, Optional

from embtune_pipeline.lib.progress import SILENT, Reporter
from embtune_pipeline.lib.queries.cache import AnswerCache
from embtune_pipeline.lib.secrets import redact, redacted_excerpt

RETRY_STATUSES = {408, 409, 429, 500, 502, 503, 504, 529}
# errors some providers report as server errors though no retry can mend them: a missing or refused key
NEVER_TRANSIENT = ("Missing credentials", "Incorrect API key", "invalid_api_key", "API key not valid")
MIN_CALLS_BEFORE_STOPPING = 10  # a step stops early only once this many calls have told how the provider fares
ERROR_CHARS = 300  # an error kept or shown: its first characters, secrets blanked first

CompleteFn = Callable[..., object]


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
    if any(marker in str(error) for marker in NEVER_TRANSIENT):
        return False
    status = getattr(error, "status_code", None)
    if status is not None:
        return int(status) in RETRY_STATUSES
    return any(word in type(error).__name__ for word in ("Timeout", "Connection", "RateLimit", "Unavailable"))


def retrying(max_seconds: float, stopped: Optional[threading.Event] = None):
    """tenacity's loop: exponential backoff with jitter (1 s doubling to 60 s), or the provider's Retry-After when
    it gives one; no wait runs past `max_seconds` in all (then the last error is raised as it was). A wait ends
    early when `stopped` is set."""
    from tenacity import Retrying, retry_if_exception, stop_before_delay, wait_exponential_jitter

    backoff = wait_exponential_jitter(initial=1, max=60)

    def wait(state) -> float:
        asked = retry_after_seconds(state.outcome.exception())
        return asked if asked is not None else backoff(state)

    return Retrying(retry=retry_if_exception(is_transient), wait=wait, stop=stop_before_delay(max_seconds),
                    sleep=stopped.wait if stopped is not None else time.sleep, reraise=True)


def answer_text(response) -> str:
    """Text of a litellm ModelResponse (or of a plain dict shaped like one)."""
    choice = response["choices"][0] if isinstance(response, dict) else response.choices[0]
    message = choice["message"] if isinstance(choice, dict) else choice.message
    return (message["content"] if isinstance(message, dict) else message.content) or ""


def _litellm():
    import litellm

    from embtune_pipeline.lib.queries import local_llm

    local_llm.register(litellm)
    litellm.suppress_debug_info = True  # its "Give Feedback" banner repeats the provider's error, key and all
    return litellm


def litellm_completion() -> CompleteFn:
    return _litellm().completion


def litellm_embedding() -> Callable[..., object]:
    return _litellm().embedding


class CallsStopped(Exception):
    """A call not made: the step stopped asking (too many calls had failed)."""


def error_text(error: BaseException) -> str:
    """An error as it is kept and shown: its type and its first ERROR_CHARS characters, secrets blanked."""
    return redacted_excerpt(f"{type(error).__name__}: {error}", ERROR_CHARS)


class Breaker:
    """Trips once more than `max_share` of the calls made so far have failed, after `min_calls` of them: a
    provider failing every call is not asked every prompt, each with its full retries."""

    def __init__(self, max_share: float, min_calls: int = MIN_CALLS_BEFORE_STOPPING):
        self.max_share, self.min_calls = max_share, min_calls
        self.made, self.failed, self.last_error = 0, 0, ""
        self.tripped = threading.Event()
        self._lock = threading.Lock()

    def record(self, error: Optional[BaseException]) -> None:
        with self._lock:
            self.made += 1
            if error is not None:
                self.failed += 1
                self.last_error = error_text(error)
            if self.made >= self.min_calls and self.failed > self.max_share * self.made:
                self.tripped.set()


@dataclass
class CallStats:
    llm_calls: int = 0
    cache_hits: int = 0
    failures: int = 0
    errors: list[str] = field(default_factory=list)

    def as_metadata(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "errors"}


def ask_all(prompts: dict[str, str], model: str, litellm_model: str, cache: AnswerCache, params: dict,
            complete: Optional[CompleteFn] = None, concurrency: int = 4, request_timeout: float = 60.0,
            max_retry_seconds: float = 300.0, max_failures: float = 0.1,
            keep: Callable[[str, str], bool] = lambda key, answer: bool(answer),
            reporter: Reporter = SILENT, stats: Optional[CallStats] = None) -> tuple[dict[str, str], CallStats]:
    """The answer to each prompt, by its cache key (the caller's: model, prompt and whatever else changes the
    answer). Cached answers are read, the rest asked `concurrency` at a time; an answer is cached as it arrives
    when `keep(key, answer)`, and a cached one is used only when it still passes (an empty, garbled or refused
    one is asked again next time). Each request stops after `request_timeout` s; transient errors are retried
    for at most `max_retry_seconds`. Once more than `max_failures` of the calls made have failed (after
    MIN_CALLS_BEFORE_STOPPING of them), nothing more is asked and the step fails naming the provider and the last
    error; more than `max_failures` of all calls failing raises too. Either way what arrived is cached, so a
    rerun pays only for the rest."""
    stats = stats or CallStats()
    complete = complete or litellm_completion()
    answers, todo = {}, []
    for key in prompts:
        cached = cache.get(key)
        if cached is not None and keep(key, cached):
            answers[key] = cached
            stats.cache_hits += 1
        else:
            todo.append(key)
    breaker = Breaker(max_failures)

    def call(key: str) -> str:
        try:
            for attempt in retrying(max_retry_seconds, breaker.tripped):
                with attempt:
                    if breaker.tripped.is_set():
                        raise CallsStopped()
                    response = complete(model=litellm_model, messages=[{"role": "user", "content": prompts[key]}],
                                        timeout=request_timeout, max_retries=0, **params)
            text = answer_text(response)
        except CallsStopped:
            raise
        except Exception as e:
            breaker.record(e)
            raise
        breaker.record(None)
        return text

    progress = reporter.track(f"LLM calls to {model} ({stats.cache_hits} answers cached)", len(todo), "calls")
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        futures = {pool.submit(call, key): key for key in todo}
        for fut in as_completed(futures):
            if isinstance(fut.exception(), CallsStopped):
                continue
            key = futures[fut]
            stats.llm_calls += 1
            progress.advance()
            try:
                text = fut.result()
            except Exception as e:  # provider errors vary; count, keep going, report
                stats.failures += 1
                if len(stats.errors) < 5:
                    stats.errors.append(error_text(e))
                continue
            answers[key] = text
            if keep(key, text):
                cache.put(key, model, text)
    where = f"{litellm_model} at {params['api_base']}" if params.get("api_base") else litellm_model
    if breaker.tripped.is_set():
        raise RuntimeError(redact(
            f"stopped asking {model!r} ({where}): {breaker.failed} of the first {breaker.made} LLM calls failed, "
            f"more than max_failures ({max_failures:.0%}); {len(todo) - breaker.made} of {len(todo)} not made. "
            f"The last error: {breaker.last_error} (answers so far are cached; a rerun asks only for the rest)"))
    if todo and stats.failures > max_failures * len(todo):
        raise RuntimeError(redact(
            f"{stats.failures} of {len(todo)} LLM calls to {model!r} ({where}) failed (answers so far are cached; "
            f"a rerun retries only the failed ones). First errors: {stats.errors}"))
    return answers, stats
