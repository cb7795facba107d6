import math

import numpy as np
import pandas as pd
import pytest

from embtune_pipeline.lib.evaluation.evaluate import (
    evaluate_vectors,
    mrr_at_k,
    ndcg_at_k,
    paired_comparison,
    recall_at_k,
    summarize,
    truncate,
)


def test_ndcg_matches_a_hand_computed_value():
    ranked = ["x", "a", "y", "b"]
    gains = {"a": 2, "b": 1, "c": 1}
    dcg = 2 / math.log2(3) + 1 / math.log2(5)
    idcg = 2 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)
    assert ndcg_at_k(ranked, gains, 10) == pytest.approx(dcg / idcg)
    assert ndcg_at_k(["a", "b", "c"], gains, 10) == pytest.approx(1.0)
    assert ndcg_at_k(["x"], gains, 10) == 0.0


def test_recall_and_mrr():
    gains = {"a": 1, "b": 1}
    assert recall_at_k(["x", "a", "y"], gains, 2) == 0.5
    assert recall_at_k(["x", "a", "b"], gains, 2) == 0.5
    assert recall_at_k(["b", "a"], gains, 2) == 1.0
    assert mrr_at_k(["x", "y", "a"], gains, 10) == pytest.approx(1 / 3)
    assert mrr_at_k(["x", "y", "a"], gains, 2) == 0.0
    assert recall_at_k(["a"], {"a": 0}, 10) == 0.0  # judged non-relevant does not count


def test_documents_rank_by_their_best_chunk():
    corpus = np.array([[1, 0], [0.8, 0.6], [0, 1]], dtype=np.float32)
    docs = [["d1"], ["d2", "d3"], ["d1"]]  # chunk 1 stands for two documents (collapsed duplicate)
    out = evaluate_vectors(np.array([[1, 0]], dtype=np.float32), corpus, docs, ["q"], [{"d3": 1}])
    # ranking: d1 (chunk 0), then d2 and d3 (chunk 1): d3 at rank 3
    assert out.loc[0, "mrr@10"] == pytest.approx(1 / 3)


def test_truncate_renormalizes():
    v = truncate(np.array([[3, 4, 12]], dtype=np.float32), 2)
    assert np.allclose(v, [[0.6, 0.8]])


def test_paired_comparison_needs_the_interval_above_zero():
    base = pd.DataFrame({"query_id": range(200), "ndcg@10": 0.5})
    better = pd.DataFrame({"query_id": range(200), "ndcg@10": [0.6 if i % 4 else 0.45 for i in range(200)]})
    noisy = pd.DataFrame({"query_id": range(200), "ndcg@10": [0.9 if i % 2 else 0.1 for i in range(200)]})
    assert paired_comparison(base, better)["better"] is True
    c = paired_comparison(base, noisy)
    assert c["better"] is False and c["ci_low"] < 0 < c["ci_high"]


def test_summarize_intervals_shrink_with_agreement_and_more_queries():
    metrics = ["ndcg@10", "recall@10", "recall@100", "mrr@10"]
    constant = summarize(pd.DataFrame({m: [0.4] * 50 for m in metrics}))
    assert constant["ndcg@10"] == {"mean": pytest.approx(0.4), "ci_low": pytest.approx(0.4),
                                   "ci_high": pytest.approx(0.4)}
    few = summarize(pd.DataFrame({m: [0.0, 1.0] * 10 for m in metrics}))["mrr@10"]
    many = summarize(pd.DataFrame({m: [0.0, 1.0] * 500 for m in metrics}))["mrr@10"]
    assert few["ci_low"] < many["ci_low"] < 0.5 < many["ci_high"] < few["ci_high"]
    assert many["ci_high"] - many["ci_low"] < 0.08  # about 2 * 1.96 * 0.5 / sqrt(1000) = 0.062
