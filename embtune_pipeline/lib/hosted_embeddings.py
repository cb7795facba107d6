"""An embedding model behind an API, reached through litellm (OpenAI, Cohere, Voyage, a self-hosted
OpenAI-compatible server): what a team would ship instead of tuning, measured like any local model."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Callable, Optional, Protocol

import numpy as np

from embtune_pipeline.lib.llm_calls import error_text, litellm_embedding, retrying
from embtune_pipeline.lib.secrets import safe_params


class EmbeddingModelSpec(Protocol):
    """An embedding model the settings name (settings.BaselineSettings, and TeacherSettings, which extends it):
    a litellm model string or a local directory, with what calling it takes."""

    model: str
    params: dict
    query_params: dict
    batch_size: int
    usd_per_million_tokens: float | None
    request_timeout_seconds: float
    max_retry_seconds: float

    @property
    def is_local(self) -> bool: ...

    @property
    def name(self) -> str: ...


class HostedEmbedder:
    """Has the `encode` of a sentence-transformers model, so EmbeddingStore caches its vectors by text hash as
    it does any model's: each text is sent once per (model, params). Texts go `batch_size` to a request; rate
    limits and server errors are retried with backoff; the key comes from the environment (litellm reads
    OPENAI_API_KEY, COHERE_API_KEY, VOYAGE_API_KEY...). `batches` counts the batches sent."""

    def __init__(self, model: str, params: Optional[dict] = None, request_timeout: float = 60.0,
                 max_retry_seconds: float = 300.0, embed: Optional[Callable[..., object]] = None):
        self.model, self.params = model, dict(params or {})
        self.request_timeout, self.max_retry_seconds = request_timeout, max_retry_seconds
        self._embed = embed
        self.batches = 0

    def encode(self, texts: list[str], batch_size: int = 64, convert_to_numpy: bool = True,
               normalize_embeddings: bool = True, show_progress_bar: bool = False) -> np.ndarray:
        embed = self._embed or litellm_embedding()
        rows: list[list[float]] = []
        for start in range(0, len(texts), batch_size):
            batch = list(texts[start:start + batch_size])
            try:
                for attempt in retrying(self.max_retry_seconds):
                    with attempt:
                        response = embed(model=self.model, input=batch, timeout=self.request_timeout, max_retries=0,
                                         **self.params)
            except Exception as e:  # the provider's own error, with any key it echoed blanked
                raise RuntimeError(f"embedding {len(batch)} texts with {self.model!r} failed: "
                                   f"{error_text(e)}") from None
            finally:
                self.batches += 1
            rows += _vectors(response, len(batch), self.model)
        vectors = np.asarray(rows, dtype=np.float32).reshape(len(rows), -1)
        if normalize_embeddings and len(vectors):
            vectors /= np.clip(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12, None)
        return vectors


def _vectors(response, expected: int, model: str) -> list[list[float]]:
    """The response's vectors in input order (`index` says which input each answers)."""
    data = response["data"] if isinstance(response, dict) else response.data
    items = [(d["index"], d["embedding"]) if isinstance(d, dict) else (d.index, d.embedding) for d in data]
    if len(items) != expected:
        raise RuntimeError(f"{model!r} answered {len(items)} vectors for {expected} texts")
    return [v for _, v in sorted(items, key=lambda item: item[0])]


def hosted_key(model: str, params: Optional[dict] = None) -> str:
    """The embedding store's key of an API model under these params (api_base, dimensions, input_type...): the
    same text under other params is another vector. Secrets never enter it."""
    digest = hashlib.sha256(json.dumps([model, safe_params(params or {})], sort_keys=True).encode()).hexdigest()
    return f"api-{re.sub(r'[^A-Za-z0-9]+', '-', model).strip('-').lower()}-{digest[:12]}"
