"""The build plan, the check, the pointer and what is kept: decisions on small inputs."""

import pandas as pd
import pytest

from embtune_pipeline.lib.serving.check import check_table, index_ndcg, search_depth, top10_overlap
from embtune_pipeline.lib.serving.plan import FULL, INCREMENTAL, READY, plan_build
from embtune_pipeline.lib.serving.pointer import point_at, read_pointer, write_pointer
from embtune_pipeline.lib.serving.tables import Hit, TableMeta, VectorIndexError, table_name, tables_to_drop


def chunks(texts: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame({"chunk_id": list(texts), "doc_id": [c.split("#")[0] for c in texts],
                         "alias_doc_ids": [[] for _ in texts], "chunk_hash": [f"h-{t}" for t in texts.values()],
                         "title": "", "text": list(texts.values())})


def meta(table: str, version="1", fingerprint="fp1", snapshot="s1", rows=3, built_at="2026-01-01T00:00:00Z",
         base=None) -> TableMeta:
    return TableMeta("docs", table, "embtune", version, fingerprint, snapshot, rows, 8, built_at, base)


def test_a_table_is_named_by_index_version_and_snapshot():
    assert table_name("docs", 3, "abc123") == "docs__v3__abc123"
    assert table_name("docs", "3", "abc123") != table_name("docs", "4", "abc123")


def test_the_first_build_and_a_new_version_are_full_a_new_snapshot_is_incremental():
    same = {f"k{i}#0": f"kept {i}" for i in range(4)}
    old = chunks({"a#0": "alpha", "b#0": "beta", "c#0": "gamma", "d#0": "delta", **same})
    first = plan_build(old, "docs__v1__s1", "fp1", None, None, None)
    assert first.mode == FULL and len(first.add) == 8
    current = meta("docs__v1__s1", rows=8)
    rows = old[["chunk_id", "chunk_hash"]]
    assert plan_build(old, "docs__v2__s1", "fp2", None, current, rows).mode == FULL  # another model: all again

    new = chunks({"a#0": "alpha", "b#0": "beta v2", "c#0": "gamma", "e#0": "epsilon", **same})  # b edited, d gone
    plan = plan_build(new, "docs__v1__s2", "fp1", None, current, rows)
    assert plan.mode == INCREMENTAL and plan.base == "docs__v1__s1"
    assert sorted(plan.add["chunk_id"]) == ["b#0", "e#0"] and plan.delete_ids == ("b#0", "d#0")
    assert plan.rewritten == 4

    mostly_new = chunks({"x#0": "x", "y#0": "y", "z#0": "z", "w#0": "w", "v#0": "v", "a#0": "alpha"})
    assert plan_build(mostly_new, "docs__v1__s3", "fp1", None, current, rows).mode == FULL
    assert plan_build(new, "docs__v1__s2", "fp1", None, current, rows, clone_depth=8).mode == FULL


def test_a_whole_table_of_the_same_inputs_is_ready_a_half_built_one_is_built_again():
    c = chunks({"a#0": "alpha", "b#0": "beta"})
    assert plan_build(c, "t", "fp1", meta("t", rows=2), None, None).mode == READY
    assert plan_build(c, "t", "fp1", meta("t", rows=-1), None, None).mode == FULL


def test_the_check_passes_only_the_right_shape_and_ndcg():
    ok = check_table(10, 10, 8, 8, 0.700, 0.703, "eval_report", 5)
    assert ok.passed and "nDCG@10 through the index 0.7000 vs 0.7030" in ok.summary()
    bad = check_table(9, 10, 16, 8, 0.60, 0.70, "eval_report", 5)
    assert not bad.passed and bad.reasons == (
        "the table has 9 rows, the snapshot 10 chunks", "the table's vectors have dimension 16, the model's 8",
        "nDCG@10 through the index 0.6000 differs from 0.7000 (eval_report) by 0.1000, more than 0.005")
    assert not check_table(10, 10, 8, 8, float("nan"), 0.7, "eval_report", 5).passed
    assert not check_table(10, 10, 8, 8, 0.7, 0.7, "eval_report", 0).passed  # nothing to check it with


def test_ndcg_through_hits_uses_the_evaluation_formula_and_collapses_chunks_to_documents():
    hits = [[Hit("a#0", "a", 0.9, ""), Hit("a#1", "a", 0.8, ""), Hit("b#0", "b", 0.7, "", alias_doc_ids=("c",))]]
    assert index_ndcg(hits, [{"a": 1}]) == 1.0
    assert index_ndcg(hits, [{"c": 1}]) == pytest.approx(0.5)  # rank 3 (a, b, c): 1/log2(4)
    assert search_depth(1000, 100) == 1000 and search_depth(100_000, 50_000) == 250 and search_depth(20, 10) == 20
    assert top10_overlap(hits, [hits[0][:2]]) == pytest.approx(2 / 3)


def test_the_pointer_keeps_its_history_and_knows_where_a_rollback_goes(tmp_path):
    path = tmp_path / "pointer.json"
    assert read_pointer(path) is None
    p = point_at(meta("t1"), "build")
    p = p.moved_to(meta("t2", version="2"), "build")
    write_pointer(path, p)
    back = read_pointer(path)
    assert back == p and back.table == "t2" and [m.table for m in back.history] == ["t1", "t2"]
    assert back.previous().table == "t1" and back.previous(exists=lambda t: t != "t1") is None
    assert back.last_on("1").table == "t1" and back.history_rows()[0]["table"] == "t2"
    third = back.moved_to(meta("t3", version="3"), "build")
    undone = third.moved_to(meta("t2", version="2"), "rollback")  # t3 rolled back: the next rollback goes to t1
    assert undone.previous().table == "t1" and undone.moved_to(meta("t1"), "rollback").previous() is None
    path.write_text("{not json")
    with pytest.raises(VectorIndexError, match="pointer.json: a damaged index pointer"):
        read_pointer(path)


def test_only_keep_previous_tables_survive_and_a_clone_keeps_its_base():
    tables = {m.table: m for m in [meta("t1", built_at="2026-01-01T00:00:01Z"),
                                   meta("t2", built_at="2026-01-01T00:00:02Z"),
                                   meta("t3", built_at="2026-01-01T00:00:03Z"),
                                   meta("t4", built_at="2026-01-01T00:00:04Z", base="t1")]}
    assert tables_to_drop(tables, "t4", keep=1) == ["t2"]  # t3 kept, t1 is t4's base
    assert tables_to_drop(tables, "t3", keep=0) == ["t4", "t2", "t1"]  # the clone goes before its base
    assert sorted(tables_to_drop(tables, "t2", keep=0)) == ["t1", "t3", "t4"]
    assert tables_to_drop(tables, "t2", keep=0, replaced="t4") == ["t3"]  # read until the next build


def test_only_auto_indexes_off_the_champion_are_rolled_out_and_stale_ones_say_how():
    from embtune_pipeline.lib.serving.rollout import rollout_requests, stale_advice

    indexes = [("docs", "auto"), ("faq", "auto"), ("legal", "manual"), ("new", "auto")]
    bound = {"docs": "1", "faq": "2", "legal": "1", "new": None}
    assert rollout_requests(indexes, bound, "2") == [("docs", "2"), ("new", "2")]
    assert rollout_requests(indexes, bound, None) == []
    assert stale_advice("legal", "manual", "1", "2") == \
        "legal (on v1): roll to v2 with `embtune index build legal --version 2`"
    assert stale_advice("new", "auto", None, "2") == \
        "new (not built yet): rolling out v2 (vector_index_rollout_sensor builds it)"
    assert stale_advice("faq", "auto", "2", "2") is None
