import pytest

from embtune_pipeline.lib.evaluation.report import (
    chart_png,
    comparison_records,
    comparison_rows,
    loss_curve_png,
    verdict,
)


def _report(delta: float, ci_low: float, synthetic: bool) -> dict:
    better = ci_low > 0
    return {"comparison": {"delta": delta, "ci_low": ci_low, "ci_high": delta + 0.02, "queries": 50,
                           "better": better},
            "eval_set": {"synthetic": synthetic}, "promotable": better and not synthetic}


@pytest.mark.parametrize("delta,ci_low,synthetic,start,then", [
    (0.04, 0.01, False, "promotable: beats its base on real queries", "(95% CI +0.0100 to +0.0600, 50 queries)"),
    (0.04, 0.01, True, "not promotable: better than its base on synthetic queries only", "registered as challenger"),
    (0.0, -0.02, False, "not promotable: not better than its base, nDCG@10 +0.0000", "not registered"),
    (0.0, -0.02, True, "not promotable: not better than its base on synthetic queries", "not registered"),
])
def test_one_vocabulary_for_the_verdict(delta, ci_low, synthetic, start, then):
    text = verdict(_report(delta, ci_low, synthetic))
    assert text.startswith(start) and then in text


def test_a_promotion_on_llm_judgments_names_the_judge():
    report = _report(0.04, 0.01, False)
    report["eval_set"]["llm_judge"] = "openai/gpt-4o-mini"
    assert verdict(report).startswith("promotable: beats its base on real queries (judged by the LLM "
                                      "openai/gpt-4o-mini, not by people: check its agreement), nDCG@10 +0.0400")


def _summary(mean: float) -> dict:
    return {m: {"mean": mean, "ci_low": mean - 0.1, "ci_high": mean + 0.05}
            for m in ("ndcg@10", "recall@10", "recall@100", "mrr@10")}


def test_the_comparison_reads_as_narrow_rounded_rows_and_charts_with_intervals(tmp_path):
    rows = comparison_rows({"384": _summary(0.61234567)}, {"384": _summary(0.7)})
    records = comparison_records(rows)
    assert records[:2] == [
        {"metric": "ndcg@10", "model": "base", "mean": 0.6123, "95% CI": "0.5123–0.6623", "vs base": ""},
        {"metric": "ndcg@10", "model": "tuned", "mean": 0.7, "95% CI": "0.6000–0.7500", "vs base": "+14.3%"}]
    several = comparison_records(comparison_rows({"384": _summary(0.6), "64": _summary(0.5)},
                                                 {"384": _summary(0.7), "64": _summary(0.6)}))
    assert [r["dim"] for r in several[::8]] == ["384", "64"]  # a dim column only when there are several
    assert chart_png(rows, tmp_path / "chart.png", "t").stat().st_size > 5000
    curve = loss_curve_png([(1, 2.0), (2, 1.5)], [(0, 0.5), (2, 0.6)], tmp_path / "loss.png")
    assert curve.stat().st_size > 5000


def test_the_report_compares_on_the_same_queries_and_writes_a_table_and_a_chart(tmp_path):
    import numpy as np
    import pandas as pd

    from embtune_pipeline.lib.evaluation.evaluate import evaluate_vectors
    from embtune_pipeline.lib.evaluation.measure import Measurement
    from embtune_pipeline.lib.evaluation.report import evaluation_report, report_metrics, write_report_files

    chunks = pd.DataFrame({"doc_id": ["d0", "d1", "d2", "d3"], "alias_doc_ids": [[], [], [], []]})
    eval_set = pd.DataFrame({"query_id": ["q0", "q1", "q2", "q3"], "query": ["a", "b", "c", "d"],
                             "doc_id": ["d0", "d1", "d2", "d3"], "score": 1, "eval_source": "labels.jsonl",
                             "synthetic": False})
    corpus = np.eye(4, dtype=np.float32)
    tuned_queries = corpus.copy()  # each query finds its document first
    base_queries = np.roll(corpus, 1, axis=1)  # each query finds its neighbour's first

    def measured(queries):
        per_query = evaluate_vectors(queries, corpus, [["d0"], ["d1"], ["d2"], ["d3"]], ["q0", "q1", "q2", "q3"],
                                     [{"d0": 1}, {"d1": 1}, {"d2": 1}, {"d3": 1}])
        return Measurement(queries, corpus, 8, 0, per_query=per_query)

    base, tuned = measured(base_queries), measured(tuned_queries)
    model = {"model_dir": "/m", "name": "m", "base_model": "b", "mlflow_run_id": "r", "training_pairs": 10}
    shipped = base.per_query.assign(baseline="openai/text-embedding-3-small")  # what they would ship: as the base
    report = evaluation_report(model, eval_set, chunks, base, tuned, base.per_query, 200, shipped)
    assert report["eval_set"] == {"source": "labels.jsonl", "synthetic": False, "queries": 4}
    [b] = report["baselines"]
    assert b["ndcg@10"] == report["base"]["ndcg@10"] and b["vs_tuned"]["delta"] == report["comparison"]["delta"]
    assert "; the tuned model beats baseline openai/text-embedding-3-small (nDCG@10 0." in verdict(report)
    assert report["finetuned"]["ndcg@10"] == 1.0 and report["base"]["ndcg@10"] < 1.0
    assert report["comparison"]["delta"] == pytest.approx(report["finetuned"]["ndcg@10"] - report["base"]["ndcg@10"])
    assert set(report["by_dim"]) == {"4"}
    assert report_metrics(report)["tuned_ndcg@10"] == 1.0
    chart, table = write_report_files(report, tmp_path / "reports")
    assert chart.read_bytes()[:4] == b"\x89PNG" and "| ndcg@10 |" in table.read_text()
    assert table.read_text().startswith("Eval set: real queries judged by people, 4 queries from labels.jsonl.")
    assert "| openai/text-embedding-3-small | " in table.read_text()
    assert report_metrics(report)["baseline_openai_text-embedding-3-small_ndcg@10"] == b["ndcg@10"]
    assert not (tmp_path / "reports" / "eval_report.json").exists()  # the document is the asset's value


def test_a_difference_shows_its_sign_even_when_it_rounds_to_zero():
    from embtune_pipeline.lib.evaluation.report import signed

    assert signed(2e-5) == "+0.00002"  # a lower bound that printed as +0.0000 beside "better than its base"
    assert signed(-3.4e-6) == "-0.000003"
    assert (signed(0.01234), signed(-0.01239), signed(0.0)) == ("+0.0123", "-0.0124", "+0.0000")


def test_a_recall_whose_k_reaches_the_corpus_size_is_flagged():
    from embtune_pipeline.lib.evaluation.report import comparison_records, comparison_rows, metric_label

    assert metric_label("recall@100", 60) == "recall@100 (k ≥ the corpus's 60 documents: always 1)"
    assert metric_label("recall@100", 5000) == "recall@100"
    assert metric_label("recall@10", 10).startswith("recall@10 (k ≥") and metric_label("ndcg@10", 3) == "ndcg@10"
    assert metric_label("recall@100", None) == "recall@100"  # a report from before the count was kept
    stats = {m: {"mean": 0.5, "ci_low": 0.4, "ci_high": 0.6} for m in ("ndcg@10", "recall@10", "recall@100", "mrr@10")}
    shown = {r["metric"] for r in comparison_records(comparison_rows({"384": stats}, {"384": stats}, 60))}
    assert "recall@100 (k ≥ the corpus's 60 documents: always 1)" in shown and "recall@10" in shown
