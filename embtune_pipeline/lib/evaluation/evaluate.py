"""Retrieval metrics (the one place their formulas live), per query, with bootstrap confidence intervals."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from embtune_pipeline.lib.evaluation.retrieval import rank_documents, top_k

DEPTH = 100  # documents ranked per query: the deepest cutoff below
METRICS = ("ndcg@10", "recall@10", "recall@100", "mrr@10")


def ndcg_at_k(ranked: list[str], gains: dict[str, int], k: int) -> float:
    """Linear gains, log2 discount (as trec_eval and BEIR); ideal ranking from all judged documents."""
    dcg = sum(gains.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sorted((g for g in gains.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at_k(ranked: list[str], gains: dict[str, int], k: int) -> float:
    relevant = {d for d, g in gains.items() if g > 0}
    return len(relevant.intersection(ranked[:k])) / len(relevant) if relevant else 0.0


def mrr_at_k(ranked: list[str], gains: dict[str, int], k: int) -> float:
    for i, d in enumerate(ranked[:k]):
        if gains.get(d, 0) > 0:
            return 1.0 / (i + 1)
    return 0.0


def query_metrics(ranked: list[str], gains: dict[str, int]) -> dict[str, float]:
    return {
        "ndcg@10": ndcg_at_k(ranked, gains, 10),
        "recall@10": recall_at_k(ranked, gains, 10),
        "recall@100": recall_at_k(ranked, gains, 100),
        "mrr@10": mrr_at_k(ranked, gains, 10),
    }


def qrels_of(eval_set: pd.DataFrame) -> tuple[list[str], list[str], list[dict[str, int]]]:
    """(query ids, query texts, gains per query) from the long-format eval table."""
    ids, texts, gains = [], [], []
    for qid, group in eval_set.groupby("query_id", sort=True):
        ids.append(str(qid))
        texts.append(group["query"].iloc[0])
        gains.append(dict(zip(group["doc_id"].astype(str), group["score"].astype(int))))
    return ids, texts, gains


def truncate(vecs: np.ndarray, dim: int | None) -> np.ndarray:
    """Matryoshka: the first `dim` components, renormalized."""
    if not dim or dim >= vecs.shape[1]:
        return vecs
    cut = vecs[:, :dim]
    return cut / np.clip(np.linalg.norm(cut, axis=1, keepdims=True), 1e-12, None)


def chunk_depth(chunks: int, documents: int) -> int:
    """Chunks fetched per query so that DEPTH distinct documents are among them (a document ranks by its best
    chunk): the one search depth of the evaluation and of an index's check."""
    return max(1, min(chunks, DEPTH * math.ceil(chunks / max(documents, 1)) + 50))


def evaluate_vectors(query_vecs: np.ndarray, corpus_vecs: np.ndarray, chunk_docs: list[list[str]],
                     query_ids: list[str], gains: list[dict[str, int]], dim: int | None = None) -> pd.DataFrame:
    """Per-query metrics of a ranking by cosine similarity; documents rank by their best chunk."""
    depth = chunk_depth(len(corpus_vecs), len({d for docs in chunk_docs for d in docs}))
    _, rows = top_k(truncate(query_vecs, dim), truncate(corpus_vecs, dim), depth)
    records = []
    for qid, g, r in zip(query_ids, gains, rows):
        ranked = rank_documents(r, chunk_docs, DEPTH)
        records.append({"query_id": qid, **query_metrics(ranked, g)})
    return pd.DataFrame(records)


def bootstrap_ci(values: np.ndarray, samples: int = 1000, seed: int = 0, alpha: float = 0.05) -> tuple[float, float]:
    values = np.asarray(values, dtype=float)
    if len(values) == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(samples, len(values)))].mean(axis=1)
    return float(np.quantile(means, alpha / 2)), float(np.quantile(means, 1 - alpha / 2))


def summarize(per_query: pd.DataFrame, samples: int = 1000, seed: int = 0) -> dict[str, dict[str, float]]:
    out = {}
    for m in METRICS:
        lo, hi = bootstrap_ci(per_query[m].to_numpy(), samples, seed)
        out[m] = {"mean": float(per_query[m].mean()), "ci_low": lo, "ci_high": hi}
    return out


def paired_comparison(base: pd.DataFrame, tuned: pd.DataFrame, metric: str = "ndcg@10", samples: int = 1000,
                      seed: int = 0) -> dict[str, float | bool]:
    """Tuned minus base over the same queries, with a paired bootstrap 95% interval.

    `better` is true only when the whole interval lies above zero: the rule for promotion.
    """
    merged = base[["query_id", metric]].merge(tuned[["query_id", metric]], on="query_id", suffixes=("_base", "_tuned"))
    diff = (merged[f"{metric}_tuned"] - merged[f"{metric}_base"]).to_numpy()
    lo, hi = bootstrap_ci(diff, samples, seed)
    base_mean = float(merged[f"{metric}_base"].mean()) if len(merged) else float("nan")
    delta = float(diff.mean()) if len(diff) else float("nan")
    return {"metric": metric, "delta": delta, "relative": delta / base_mean if base_mean else float("nan"),
            "ci_low": lo, "ci_high": hi, "better": bool(lo > 0), "queries": int(len(diff))}


def compare_by_dim(base_queries: np.ndarray, base_corpus: np.ndarray, tuned_queries: np.ndarray,
                   tuned_corpus: np.ndarray, base_full: pd.DataFrame, chunk_docs: list[list[str]], qids: list[str],
                   gains: list[dict[str, int]], matryoshka_dims, samples: int) -> tuple[dict, dict, dict, pd.DataFrame]:
    """Base and tuned on one eval set at full dimension and at each Matryoshka dimension below it: the
    summaries by dimension label, the paired comparison of nDCG@10 at full dimension, and the tuned model's
    per-query result at full dimension. `base_full` is the base's per-query result at full dimension, measured
    once before any tuning (base_model_eval)."""
    full = int(base_corpus.shape[1])
    dims = [full] + sorted({d for d in matryoshka_dims or [] if 0 < d < full}, reverse=True)
    base_pq = {full: base_full} | {d: evaluate_vectors(base_queries, base_corpus, chunk_docs, qids, gains, d)
                                   for d in dims[1:]}
    tuned_pq = {d: evaluate_vectors(tuned_queries, tuned_corpus, chunk_docs, qids, gains, d) for d in dims}
    base_by_dim = {str(d): summarize(base_pq[d], samples) for d in dims}
    tuned_by_dim = {str(d): summarize(tuned_pq[d], samples) for d in dims}
    return base_by_dim, tuned_by_dim, paired_comparison(base_full, tuned_pq[full], "ndcg@10", samples), tuned_pq[full]
