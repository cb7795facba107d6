"""The models a team would ship instead of tuning (an embedding API, or a local model), measured on the same
eval set and chunked corpus as base and tuned. What the APIs would be sent is priced first, and nothing is sent
when the total is above the budget."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import pandas as pd

from embtune_pipeline.lib.costs import check_budget, count_tokens, estimate_usd
from embtune_pipeline.lib.data.chunking import chunk_texts, text_hash
from embtune_pipeline.lib.embeddings import EmbeddingStore, model_if_needed
from embtune_pipeline.lib.evaluation.evaluate import qrels_of
from embtune_pipeline.lib.evaluation.measure import Encoded, agreement_texts, encode_with, scored
from embtune_pipeline.lib.hosted_embeddings import EmbeddingModelSpec, HostedEmbedder, hosted_key
from embtune_pipeline.lib.progress import SILENT, Reporter

BUDGET_SETTING = "baselines_budget_usd"


Baseline = EmbeddingModelSpec  # a settings `baselines:` entry (settings.BaselineSettings)


@dataclass
class _Plan:
    baseline: Baseline
    corpus_store: EmbeddingStore
    query_store: EmbeddingStore
    texts_to_send: int = 0
    tokens_to_send: int = 0
    estimated_usd: float | None = 0.0

    def encoder(self, params: dict) -> HostedEmbedder:
        b = self.baseline
        return HostedEmbedder(b.model, params, b.request_timeout_seconds, b.max_retry_seconds)


def _query_params(b: Baseline) -> dict:
    """What queries are embedded with: the params, and the query-only ones over them."""
    return {**b.params, **b.query_params}


def plan(baselines: list[Baseline], store_for: Callable[[str], EmbeddingStore],
         local_store: Callable[[str], EmbeddingStore], chunks: pd.DataFrame, queries: list[str]) -> list[_Plan]:
    """Each baseline's stores and what its API would be sent now (texts not cached yet), priced."""
    hashes, texts = chunks["chunk_hash"].tolist(), chunk_texts(chunks)
    plans = []
    for b in baselines:
        if b.is_local:
            store = local_store(b.model)
            plans.append(_Plan(b, store, store))
            continue
        p = _Plan(b, store_for(hosted_key(b.model, b.params)),
                  store_for(hosted_key(b.model, _query_params(b))))
        unsent = p.corpus_store.unsent(hashes, texts) + p.query_store.unsent([text_hash(q) for q in queries],
                                                                  queries)
        p.texts_to_send, p.tokens_to_send = len(unsent), count_tokens(b.model, unsent)
        p.estimated_usd = estimate_usd(b.model, p.tokens_to_send, 0, b.usd_per_million_tokens) if unsent else 0.0
        plans.append(p)
    return plans


def check_plans(plans: list[_Plan], budget_usd: float) -> float:
    """Refuse before any call: a baseline whose price nobody knows, or a total above the budget. Returns the
    total estimate."""
    for p in plans:
        check_budget(f"measuring baseline {p.baseline.name!r}", p.baseline.model, p.estimated_usd, float("inf"),
                     BUDGET_SETTING)
    total = sum(p.estimated_usd for p in plans)
    check_budget(f"embedding {sum(p.texts_to_send for p in plans)} texts for the baselines "
                 f"({sum(p.tokens_to_send for p in plans)} tokens)", ", ".join(p.baseline.model for p in plans),
                 total, budget_usd, BUDGET_SETTING)
    return total


def encode_baselines(baselines: list[Baseline], store_for: Callable[[str], EmbeddingStore],
                     local_store: Callable[[str], EmbeddingStore], chunks: pd.DataFrame, queries: list[str],
                     budget_usd: float, max_seq_length: int, batch_size: int = 64,
                     reporter: Reporter = SILENT, backend: str = "torch") -> list[tuple[str, Encoded, dict]]:
    """Every baseline's vectors of the chunks and the queries, once the whole is within budget: (name, vectors,
    what it cost: texts encoded, tokens, the estimate, batches, cache hits). API vectors are cached by (model,
    params, text hash): a rerun sends nothing."""
    plans = plan(baselines, store_for, local_store, chunks, queries)
    check_plans(plans, budget_usd)
    out = []
    for p in plans:
        b, label = p.baseline, f"baseline {p.baseline.name}"
        if b.is_local:
            model = model_if_needed(p.corpus_store, set(chunks["chunk_hash"]) | {text_hash(q) for q in queries},
                                    b.model, max_seq_length, backend, agreement_texts(chunks, queries))
            encoded = encode_with(model, p.corpus_store, model, p.query_store, chunks, queries, batch_size, reporter,
                                  label)
            batches = None
        else:
            docs, asks = p.encoder(b.params), p.encoder(_query_params(b))
            encoded = encode_with(docs, p.corpus_store, asks, p.query_store, chunks, queries, b.batch_size, reporter,
                                  label)
            batches = docs.batches + asks.batches
        out.append((b.name, encoded, {
            "baseline": b.name, "model": b.model, "kind": "local" if b.is_local else "api",
            "texts_encoded": encoded.encoded, "cache_hits": encoded.cache_hits, "batches": batches,
            "tokens_sent": p.tokens_to_send, "estimated_usd": round(p.estimated_usd, 6)}))
    return out


def measure_baselines(baselines: list[Baseline], store_for: Callable[[str], EmbeddingStore],
                      local_store: Callable[[str], EmbeddingStore], chunks: pd.DataFrame, eval_set: pd.DataFrame,
                      budget_usd: float, max_seq_length: int, batch_size: int = 64,
                      reporter: Reporter = SILENT, backend: str = "torch") -> tuple[pd.DataFrame, list[dict]]:
    """Per-query metrics of every baseline (a `baseline` column names it), and what each cost (encode_baselines)."""
    _, queries, _ = qrels_of(eval_set)
    encoded = encode_baselines(baselines, store_for, local_store, chunks, queries, budget_usd, max_seq_length,
                               batch_size, reporter, backend)
    frames = [scored(e, chunks, eval_set).per_query.assign(baseline=name) for name, e, _ in encoded]
    per_query = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["query_id", "baseline"])
    return per_query, [cost for _, _, cost in encoded]
