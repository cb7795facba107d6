import json
import math

import pandas as pd
import pytest

from embtune_pipeline.lib.data.ingest import PairsSource
from embtune_pipeline.lib.evaluation.judgments import JudgmentStore, agreement, binary_agreement, choose_judgments
from embtune_pipeline.lib.evaluation.report import eval_kind, eval_set_info
from embtune_pipeline.lib.queries.pairs import judged_eval_set

POOL = pd.DataFrame({"query_id": ["q1", "q1", "q2", "q2"], "query": ["reset jaguar"] * 2 + ["jaguar battery"] * 2,
                     "doc_id": ["reset", "battery", "battery", "reset"], "title": "", "text": "t",
                     "pool_rank": [0, 1, 0, 1], "sources": "bm25"})


def test_judgments_are_kept_as_made_and_the_pool_resumes_where_it_stopped(tmp_path):
    store = JudgmentStore(tmp_path / "j.sqlite")
    assert store.add_pool(POOL) == 4 and store.add_pool(POOL) == 0
    store.record("q1", "reset", "human:ann", 3)
    reopened = JudgmentStore(tmp_path / "j.sqlite")
    assert [q["judged"] for q in reopened.queries("human:ann")] == [1, 0]
    assert [c["grade"] for c in reopened.candidates("q1", "human:ann")] == [3, None]
    assert [c["grade"] for c in reopened.candidates("q1", "human:bob")] == [None, None]  # per judge
    with pytest.raises(ValueError, match="grade 4 is not one of"):
        reopened.record("q1", "reset", "human:ann", 4)
    with pytest.raises(KeyError, match="not a pooled candidate"):
        reopened.record("q1", "nope", "human:ann", 1)


def test_people_win_over_the_llm_per_query_and_their_agreement_is_kappa():
    rows = pd.DataFrame({"query_id": ["q1", "q1", "q1", "q1", "q2"], "doc_id": ["a", "b", "a", "b", "a"],
                         "judge": ["human", "human", "llm:m", "llm:m", "llm:m"], "score": [2, 0, 3, 0, 1]})
    chosen = choose_judgments(rows)
    assert chosen["judge"].tolist() == ["human", "human", "llm:m"]
    assert agreement(rows) | {"kappa": 1.0} == {"kappa": 1.0, "pairs": 2, "agree": 1.0, "relevant_first": 1,
                                                "relevant_second": 1}
    assert agreement(rows[rows["judge"] == "llm:m"]) is None
    a = binary_agreement([1, 1, 0, 0], [1, 0, 0, 0])  # observed 0.75, chance 0.5 -> kappa 0.5
    assert a["kappa"] == pytest.approx(0.5) and a["agree"] == 0.75
    assert math.isnan(binary_agreement([1, 1], [1, 1])["kappa"])  # undefined when nobody ever disagrees or varies


def test_the_export_is_an_eval_set_file_that_says_who_judged_it(tmp_path):
    store = JudgmentStore(tmp_path / "j.sqlite")
    store.add_pool(POOL)
    store.record_many([("q1", "reset", "llm:openai/judge", 3), ("q1", "battery", "llm:openai/judge", 1),
                       ("q2", "battery", "llm:openai/judge", 2), ("q2", "reset", "llm:openai/judge", 0)])
    store.record("q1", "reset", "human:ann", 3)
    store.record("q1", "battery", "human:ann", 0)
    counts = store.export(tmp_path / "eval_set.jsonl")
    assert counts == {"judgments": 6, "queries": 2, "judges": ["human:ann", "llm:openai/judge"]}
    first = json.loads((tmp_path / "eval_set.jsonl").read_text().splitlines()[0])
    assert set(first) == {"query_id", "query", "doc_id", "score", "judge", "judged_at"}
    chunks = pd.DataFrame({"doc_id": ["reset", "battery"], "alias_doc_ids": [[], []]})
    evals, _ = judged_eval_set(PairsSource(tmp_path / "eval_set.jsonl", "jsonl", score_column="score"), chunks,
                               "error", tmp_path / "q.jsonl", 100, 0)
    by_query = {q: g for q, g in evals.groupby("query")}
    assert by_query["reset jaguar"][["doc_id", "judge"]].values.tolist() == [["reset", "human:ann"]]
    assert by_query["jaguar battery"][["doc_id", "score", "judge"]].values.tolist() == [
        ["battery", 2, "llm:openai/judge"]]
    info = eval_set_info(evals)
    assert info["llm_judge"] == "openai/judge" and info["llm_judged_queries"] == 1
    assert info["agreement"] == {"kappa": 0.0, "pairs": 2}  # people: 1 of 2 relevant, the LLM: both
    assert eval_kind(info).startswith("real queries judged by the LLM openai/judge (1 of them; the rest by people)")
