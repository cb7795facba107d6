"""The check a new table passes before an index's pointer moves to it: every chunk is there, the vectors have
the model's dimension, and nDCG@10 of the eval set searched through the table (exact search) matches what the
version's evaluation measured; with an approximate (ANN) index, its top-10 overlap with exact search is
reported beside it."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional

import numpy as np

from embtune_pipeline.lib.evaluation.evaluate import ndcg_at_k
from embtune_pipeline.lib.evaluation.evaluate import chunk_depth
from embtune_pipeline.lib.evaluation.retrieval import rank_documents
from embtune_pipeline.lib.serving.tables import Hit

NDCG_TOLERANCE = 0.005


def search_depth(chunks: int, documents: int) -> int:
    """Chunks to fetch per query: the evaluation's depth (lib.evaluation.evaluate.chunk_depth), so the index is
    scored on the same candidates as eval_report."""
    return chunk_depth(chunks, documents)


def ranked_documents(hits: list[Hit], k: int = 10) -> list[str]:
    """A query's hits collapsed to documents, best chunk first (lib.evaluation.retrieval.rank_documents)."""
    return rank_documents(np.arange(len(hits)), [h.doc_ids for h in hits], k)


def index_ndcg(hits: list[list[Hit]], gains: list[dict[str, int]]) -> float:
    """Mean nDCG@10 of the eval set's queries searched through a table (the evaluation's own formula)."""
    if not gains:
        return float("nan")
    return float(np.mean([ndcg_at_k(ranked_documents(h), g, 10) for h, g in zip(hits, gains)]))


def top10_overlap(exact: list[list[Hit]], approximate: list[list[Hit]]) -> float:
    """Mean share of exact search's top-10 chunks that the approximate search also returns in its top 10."""
    shares = [len({h.chunk_id for h in e[:10]} & {h.chunk_id for h in a[:10]}) / max(len(e[:10]), 1)
              for e, a in zip(exact, approximate)]
    return float(np.mean(shares)) if shares else float("nan")


@dataclass(frozen=True)
class CheckResult:
    passed: bool
    reasons: tuple[str, ...]
    rows: int
    expected_rows: int
    dim: int
    expected_dim: int
    ndcg: float  # through the table, exact search
    reference_ndcg: float
    reference: str  # where reference_ndcg comes from
    queries: int
    ann_top10_overlap: Optional[float] = None

    @property
    def delta(self) -> float:
        return self.ndcg - self.reference_ndcg

    def summary(self) -> str:
        if not self.passed:
            return "; ".join(self.reasons)
        ann = f"; ANN top-10 overlap with exact {self.ann_top10_overlap:.3f}" if self.ann_top10_overlap is not None \
            else ""
        return (f"{self.rows} rows, dim {self.dim}; nDCG@10 through the index {self.ndcg:.4f} vs "
                f"{self.reference_ndcg:.4f} ({self.reference}){ann}")

    def as_dict(self) -> dict:
        return {**asdict(self), "delta": self.delta}


def check_table(rows: int, expected_rows: int, dim: int, expected_dim: int, ndcg: float, reference_ndcg: float,
                reference: str, queries: int, ann_top10_overlap: Optional[float] = None,
                tolerance: float = NDCG_TOLERANCE) -> CheckResult:
    """Pass only when rows and dimension are right and nDCG@10 is within `tolerance` of the reference."""
    reasons = []
    if rows != expected_rows:
        reasons.append(f"the table has {rows} rows, the snapshot {expected_rows} chunks")
    if dim != expected_dim:
        reasons.append(f"the table's vectors have dimension {dim}, the model's {expected_dim}")
    if not queries:
        reasons.append("no eval queries to check the table with")
    elif not (abs(ndcg - reference_ndcg) <= tolerance):  # NaN fails too
        reasons.append(f"nDCG@10 through the index {ndcg:.4f} differs from {reference_ndcg:.4f} ({reference}) by "
                       f"{abs(ndcg - reference_ndcg):.4f}, more than {tolerance}")
    return CheckResult(not reasons, tuple(reasons), int(rows), int(expected_rows), int(dim), int(expected_dim),
                       float(ndcg), float(reference_ndcg), reference, int(queries), ann_top10_overlap)
