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
