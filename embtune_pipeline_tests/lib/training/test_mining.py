import numpy as np
import pytest

from embtune_pipeline.lib.evaluation.retrieval import CorpusIndex
from embtune_pipeline.lib.training.mining import (
    fill_random,
    mine_hard_negatives,
    random_negative_warning,
    round_trip_kept,
)


def _unit(v):
    v = np.asarray(v, dtype=np.float32)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _corpus(scores):
    """An exact index over unit vectors whose inner product with the query e0 is exactly the given score."""
    return _exact(_unit([[s, np.sqrt(1 - s * s), 0] for s in scores]))


def _exact(vectors):
    return CorpusIndex.build(vectors, approximate=False)


def test_window_skips_the_top_and_margin_protects_likely_positives():
    # rows ranked by score with query e0: 0.95, 0.9, 0.8, 0.7, 0.6, 0.5
    scores = [0.5, 0.95, 0.7, 0.9, 0.6, 0.8]
    corpus = _corpus(scores)
    query = _unit([[1, 0, 0]])
    docs = [[f"d{i}"] for i in range(len(scores))]
    # positive scores 0.84: margin 0.05 -> ceiling 0.798; rank_start=1 skips 0.95
    negs, stats = mine_hard_negatives(query, np.array([0.84]), corpus, docs, [set()], rank_start=1, rank_end=6,
                                      relative_margin=0.05, per_query=2)
    assert negs == [[2, 4]]  # 0.7 and 0.6: 0.9 and 0.8 are within the margin of 0.84
    assert stats["skipped_within_margin"] == 2


def test_known_positives_are_never_negatives():
    corpus = _corpus([0.9, 0.8, 0.7])
    negs, stats = mine_hard_negatives(_unit([[1, 0, 0]]), np.array([1.0]), corpus, [["a"], ["b"], ["c"]],
                                      [{"a", "b"}], rank_start=0, rank_end=3, relative_margin=0.0, per_query=1)
    assert negs == [[2]] and stats["skipped_known_positive"] == 2


def test_fill_random_tops_up_without_positives():
    negs = [[], [1]]
    added, pairs = fill_random(negs, [{"d0"}, set()], [["d0"], ["d1"], ["d2"]], per_query=2, seed=0)
    assert (added, pairs) == (3, 2) and all(len(n) == 2 for n in negs) and 0 not in negs[0]
    assert fill_random([[1, 2]], [set()], [["d0"], ["d1"], ["d2"]], per_query=2, seed=0) == (0, 0)


def test_the_round_trip_filter_keeps_queries_whose_own_document_the_base_model_finds():
    corpus = _exact(np.eye(4, dtype=np.float32))
    docs = [["a"], ["b"], ["c"], ["d"]]
    queries = np.array([[1, 0.1, 0, 0], [0.9, 0.5, 0, 0], [0.2, 0.1, 0.05, 1]], dtype=np.float32)
    positives = [{"a"}, {"b"}, {"c"}]
    assert round_trip_kept(queries, corpus, docs, positives, 1).tolist() == [True, False, False]
    assert round_trip_kept(queries, corpus, docs, positives, 2).tolist() == [True, True, False]
    assert round_trip_kept(queries, corpus, docs, positives, 0).tolist() == [True, True, True]


def test_training_rows_keep_complete_pairs_with_their_negatives_and_origin():
    import pandas as pd

    from embtune_pipeline.lib.training.mining import training_rows

    pairs = pd.DataFrame({"query": ["q1", "q2", "q3"], "positive": ["p1", "p2", "p3"],
                          "positive_doc_id": ["d1", "d2", "d3"], "source": ["synthetic", "qa_pairs", "synthetic"],
                          "provenance": ["a", "b", "c"]})
    rows = training_rows(pairs, [[2, 0], [1], [0, 1]], np.array([0.9, 0.8, 0.7]), ["t0", "t1", "t2"],
                         ["c0", "c1", "c2"], per_query=2)
    assert rows["anchor"].tolist() == ["q1", "q3"]  # q2 had one negative of two: dropped
    assert rows["negative_1"].tolist() == ["t2", "t0"] and rows["negative_2"].tolist() == ["t0", "t1"]
    assert rows["mined_chunk_ids"].tolist() == [["c2", "c0"], ["c0", "c1"]]
    assert rows["positive_score"].tolist() == [0.9, 0.7] and rows["source"].tolist() == ["synthetic", "synthetic"]


def test_mining_training_rows_keeps_real_queries_and_counts_each_decision():
    import pandas as pd

    from embtune_pipeline.lib.training.mining import mine_training_rows

    chunks = pd.DataFrame({"chunk_id": [f"d{i}#0" for i in range(4)], "doc_id": [f"d{i}" for i in range(4)],
                           "title": [""] * 4, "text": [f"text {i}" for i in range(4)],
                           "alias_doc_ids": [[] for _ in range(4)]})
    corpus = np.eye(4, dtype=np.float32)
    pairs = pd.DataFrame({"query": ["gen lost", "real lost", "gen found"], "positive": ["p0", "p1", "p2"],
                          "positive_doc_id": ["d0", "d1", "d2"], "source": ["synthetic", "qa_pairs", "synthetic"],
                          "provenance": ["a", "b", "c"]})
    queries = np.array([[0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 1, 0]], dtype=np.float32)  # the first two miss
    rows, stats = mine_training_rows(pairs, queries, corpus[:3], _exact(corpus), chunks, rank_start=0, rank_end=4,
                                     relative_margin=0.0, per_query=1, round_trip_k=1, seed=0)
    assert rows["anchor"].tolist() == ["real lost", "gen found"]  # a real query trains even when it misses
    assert stats["rejected_round_trip"] == 1 and stats["mined_pairs"] == 2
    assert stats["dropped_without_negative"] == 0 and len(rows) == 2
    assert stats["random_negative_share"] == stats["pairs_with_random_negative"] / 2


def test_random_negatives_are_warned_about_with_the_window_to_widen():
    assert random_negative_warning({"pairs_with_random_negative": 0, "mined_pairs": 9,
                                    "random_negative_share": 0.0}, 3, 30) is None
    said = random_negative_warning({"pairs_with_random_negative": 3, "mined_pairs": 9,
                                    "random_negative_share": 1 / 3}, 3, 30)
    assert said.startswith("3 of 9 pairs (33%) got a random negative") and "rank window 3-30" in said
    with_teacher = random_negative_warning({"pairs_with_random_negative": 3, "mined_pairs": 9,
                                            "random_negative_share": 1 / 3, "teacher_check": {}}, 10, 50)
    assert "held too few candidates the teacher scores below the positive" in with_teacher
    assert "relative_margin" not in with_teacher


def test_a_teacher_judges_false_negatives_and_the_round_trip_and_labels_each_row():
    import pandas as pd

    from embtune_pipeline.lib.training.mining import mine_training_rows

    n = 6
    chunks = pd.DataFrame({"chunk_id": [f"d{i}#0" for i in range(n)], "doc_id": [f"d{i}" for i in range(n)],
                           "title": [""] * n, "text": [f"text {i}" for i in range(n)],
                           "alias_doc_ids": [[] for _ in range(n)]})
    corpus = np.eye(n, dtype=np.float32)
    # the base ranks every chunk alike for both queries: d0..d5 in order
    base = np.array([[0.6, 0.5, 0.4, 0.3, 0.2, 0.1]] * 3, dtype=np.float32)
    pairs = pd.DataFrame({"query": ["gen kept", "gen off-target", "real"], "positive": ["p0", "p0", "p5"],
                          "positive_doc_id": ["d0", "d0", "d5"], "source": ["synthetic", "synthetic", "qa_pairs"],
                          "provenance": ["a", "b", "c"]})
    # the teacher: "text 1" outscores every positive (an unlabelled positive); the off-target query's source
    # scores below two other chunks (it fails a round trip of 2); the real query's too (it trains anyway)
    judged = {("gen kept", "p0"): 0.9, ("gen off-target", "p0"): 0.1, ("real", "p5"): 0.1}
    def teacher(queries, passages):
        return np.array([judged.get((q, p), 0.95 if p == "text 1" else 0.5 if p == "text 2" else 0.05)
                         for q, p in zip(queries, passages)], dtype=np.float32)

    rows, stats = mine_training_rows(pairs, _unit(base), corpus[[0, 0, 5]], _exact(corpus), chunks, rank_start=0,
                                     rank_end=5, relative_margin=0.05, per_query=1, round_trip_k=2, seed=0,
                                     teacher=teacher)
    assert rows["anchor"].tolist() == ["gen kept", "real"] and stats["rejected_round_trip"] == 1
    # "gen kept": d0 is its own, text 1 outscores its positive; text 2 is the first below it. "real" (positive
    # 0.1): text 0 (0.05) is already below
    assert rows["negative_1"].tolist() == ["text 2", "text 0"]
    assert stats["skipped_teacher_above_positive"] == 1 and stats["skipped_known_positive"] == 1
    assert [list(s) for s in rows["teacher_scores"]] == [pytest.approx([0.9, 0.5]), pytest.approx([0.1, 0.05])]
    # the label-free check, over the synthetic queries: the base ranks both sources first; the teacher ranks
    # them 2nd and 3rd, so it is weaker here, on every query
    assert stats["teacher_check"] == {"queries": 2, "base_mrr": 1.0, "teacher_mrr": round((1 / 2 + 1 / 3) / 2, 4),
                                      "lead_ci": [round(-2 / 3, 4), -0.5], "teacher_is_stronger": False,
                                      "teacher_is_weaker": True}
