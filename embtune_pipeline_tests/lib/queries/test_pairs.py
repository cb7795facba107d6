import pandas as pd

from embtune_pipeline.lib.queries.pairs import (
    attach_targets,
    eval_from_judgments,
    held_out,
    style_examples,
    training_pairs,
)

CHUNKS = pd.DataFrame({"chunk_id": ["d1#0", "d1#1", "d2#0"], "doc_id": ["d1", "d1", "d2"], "chunk_index": [0, 1, 0],
                       "title": ["T1", "T1", ""], "text": ["first", "second", "other"], "chunk_hash": ["a", "b", "c"],
                       "alias_doc_ids": [[], [], ["d3"]]})


def _user(rows):
    return pd.DataFrame(rows, columns=["query_id", "query", "doc_id", "answer", "score", "provenance"])


def test_targets_are_the_first_chunk_or_the_answer_and_unknown_documents_are_named():
    raw = _user([("q1", "x", "d1", None, 1, "f.csv:line 2"), ("q2", "y", "d3", None, 1, "f.csv:line 3"),
                 ("q3", "z", None, "an answer", 1, "f.csv:line 4"), ("q4", "w", "nope", None, 1, "f.csv:line 5")])
    pairs, problems = attach_targets(raw, CHUNKS, "click_logs")
    assert pairs["positive_chunk_id"].iloc[:2].tolist() == ["d1#0", "d2#0"]
    assert pairs["positive_chunk_id"].isna().tolist() == [False, False, True]
    assert pairs["positive"].tolist() == ["T1\nfirst", "other", "an answer"]
    assert [(p.file, p.row) for p in problems] == [("f.csv", "line 5")]
    assert "'nope' is not in the corpus" in problems[0].problem


def test_leakage_guard_drops_pairs_whose_query_is_an_eval_query():
    synthetic = pd.DataFrame({"chunk_id": ["d1#0", "d2#0"], "query": ["How to reset?", "jaguar battery"],
                              "positive": ["p1", "p2"], "provenance": ["ict:a", "ict:c"]})
    user, _ = attach_targets(_user([("q1", "pair a phone", "d2", None, 1, "f:line 1")]), CHUNKS, "qa_pairs")
    evals = pd.DataFrame({"query_id": ["e"], "query": ["how to reset"], "doc_id": ["d1"], "score": [1],
                          "eval_source": "x", "synthetic": False})
    pairs, counts = training_pairs(synthetic, user, CHUNKS, evals)
    assert counts["leaked_eval_queries"] == 1 and counts["not_relevant"] == 0
    assert sorted(pairs["query"]) == ["jaguar battery", "pair a phone"]
    assert set(pairs["source"]) == {"synthetic", "qa_pairs"}
    assert pairs.set_index("query").loc["jaguar battery", "positive_doc_id"] == "d2"


def test_eval_from_judgments_keeps_relevant_rows_and_caps_queries():
    j = _user([(f"q{i}", f"query {i}", "d1", None, 1 if i % 3 else 0, "f") for i in range(30)])
    out = eval_from_judgments(j, "src", max_queries=10, seed=0)
    assert out["query_id"].nunique() == 10 and (out["score"] > 0).all() and not out["synthetic"].any()


def test_style_examples_never_show_a_held_out_query():
    raw = _user([(f"q{i}", f"query {i}", "d1", None, 1, "f") for i in range(200)])
    pairs, _ = attach_targets(raw, CHUNKS, "click_logs")
    held = set(held_out(pairs, 0.3, 0)["query"])
    assert 30 < len(held) < 90
    examples = style_examples(pairs, set(), k=20, holdout_fraction=0.3, seed=0)
    assert len(examples) == 20 and not set(examples) & held
    from_eval_file = {"query 1", "QUERY 2 ", *examples[:5]}  # compared as normalized queries
    again = style_examples(pairs, from_eval_file, k=200, holdout_fraction=0.3, seed=0)
    assert not {"query 1", "query 2", *examples[:5]} & set(again) and not set(again) & held
    assert len(again) == 200 - len(held | {"query 1", "query 2", *examples[:5]})


def test_judged_irrelevant_pairs_never_train_and_held_out_synthetic_chunks_stay_out():
    user, _ = attach_targets(_user([("q1", "shown not clicked", "d1", None, 0, "f:line 2"),
                                    ("q2", "clicked", "d2", None, 1, "f:line 3")]), CHUNKS, "click_logs")
    synthetic = pd.DataFrame({"chunk_id": ["d1#0", "d1#1", "d2#0"], "query": ["held q", "other q of d1", "free q"],
                              "positive": ["p", "p", "p"], "provenance": ["ict:a", "ict:b", "ict:c"]})
    synthetic_eval_set = pd.DataFrame({"query_id": ["s0"], "query": ["held q"], "doc_id": ["d1"], "score": [1],
                                       "eval_source": "held-out synthetic queries", "synthetic": True})
    pairs, counts = training_pairs(synthetic, user, CHUNKS, synthetic_eval_set)
    assert sorted(pairs["query"]) == ["clicked", "free q"]
    assert counts["not_relevant"] == 1 and counts["held_out_synthetic"] == 2


def test_held_out_user_queries_make_the_eval_set_only_when_there_are_enough():
    from embtune_pipeline.lib.queries.pairs import choose_eval_set

    user, _ = attach_targets(_user([(f"q{i}", f"user question {i}", "d1" if i % 2 else "d2", None, 1, f"f:line {i}")
                                    for i in range(200)]), CHUNKS, "click_logs")
    synthetic = pd.DataFrame({"chunk_id": ["d1#0", "d1#1", "d2#0"] * 20, "chunk_hash": ["a", "b", "c"] * 20,
                              "query": [f"generated {i}" for i in range(60)]})
    held = held_out(user, 0.2, 0)["query_id"].nunique()
    real = choose_eval_set(user, synthetic, CHUNKS, 0.2, 1000, min_real_queries=held, seed=0)
    assert not real["synthetic"].any() and real["eval_source"].iloc[0] == "held-out click_logs"
    assert real["query_id"].nunique() == held
    fallback = choose_eval_set(user, synthetic, CHUNKS, 0.2, 1000, min_real_queries=held + 1, seed=0)
    assert fallback["synthetic"].all() and fallback["query"].str.startswith("generated").all()
