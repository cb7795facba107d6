import numpy as np
import pandas as pd
import pytest

from embtune_pipeline.lib.registry.monitoring import (
    HISTORY_COLUMNS,
    StoredRetune,
    history_row,
    lead_verdict,
    recommend_upgrade,
    upgrade_candidates,
    upgrade_eval_set,
    upgrade_rows,
)


def per_query(scores) -> pd.DataFrame:
    return pd.DataFrame({"query_id": [f"q{i}" for i in range(len(scores))], "ndcg@10": scores})


def row(version, champion, base):
    return history_row("2027-01-01", version, "minilm", "eval.jsonl", per_query(np.full(50, base)),
                       per_query(np.full(50, champion)), 200)


def test_the_verdict_warns_on_a_thin_lead_and_errors_on_a_drop():
    h = pd.DataFrame([row("1", 0.70, 0.60)], columns=HISTORY_COLUMNS)
    assert lead_verdict(h, 0.01, 0.02) == ("ok", [])
    h = pd.DataFrame([row("1", 0.70, 0.60), row("1", 0.605, 0.60)], columns=HISTORY_COLUMNS)
    level, reasons = lead_verdict(h, 0.01, 0.02)
    assert level == "error" and "fell 0.0950" in reasons[0] and "below min_lead" in reasons[1]
    h = pd.DataFrame([row("1", 0.70, 0.60), row("2", 0.605, 0.60)], columns=HISTORY_COLUMNS)
    assert lead_verdict(h, 0.01, 0.02)[0] == "warn"  # a new champion is not compared with the old one


def test_upgrade_recommendations_follow_the_measurements():
    rng = np.random.default_rng(0)
    champion = per_query(rng.uniform(0.5, 0.7, 200))
    better = per_query(champion["ndcg@10"] + 0.1)
    worse = per_query(champion["ndcg@10"] - 0.1)
    assert recommend_upgrade(champion, worse, better)["recommendation"] == "re-tune"
    assert recommend_upgrade(champion, better, better)["recommendation"] == "switch"
    assert recommend_upgrade(champion, better, None)["recommendation"] == "switch"
    skip = recommend_upgrade(champion, worse, worse)
    assert skip["recommendation"] == "skip" and "-0.1000" in skip["reason"]


def test_base_models_are_compared_on_the_first_stored_eval_set_and_only_a_real_one():
    real = pd.DataFrame({"query_id": ["q1"], "synthetic": [False]})
    synthetic = pd.DataFrame({"query_id": ["s1"], "synthetic": [True]})
    assert upgrade_eval_set([None, real, synthetic], "snap") is real
    with pytest.raises(ValueError, match="snapshot snap has no eval set yet"):
        upgrade_eval_set([None, None], "snap")
    with pytest.raises(ValueError, match="only be compared on real eval queries"):
        upgrade_eval_set([synthetic, real], "snap")


def test_each_new_base_gets_a_recommendation_or_is_sent_to_be_measured_first():
    rng = np.random.default_rng(0)
    champion = per_query(rng.uniform(0.5, 0.7, 200))
    better = per_query(champion["ndcg@10"] + 0.1)
    chunks = pd.DataFrame({"chunk_id": ["d1#0"]})
    measured = []

    def measure(model_dir, on_chunks):
        measured.append((model_dir, on_chunks is chunks))
        return better

    stored = {"tuned": StoredRetune(champion, chunks, {"model_dir": "/models/tuned"}),
              "zero-shot only": StoredRetune(better, chunks, None),
              "never run": StoredRetune(None, None, None)}
    out = upgrade_candidates(champion, stored, measure, lambda k: f"{k}|snap", 200)
    assert measured == [("/models/tuned", True)]  # only a tuned model is measured, on its own chunks
    assert out["tuned"]["recommendation"] == "re-tune" and out["zero-shot only"]["recommendation"] == "switch"
    assert out["never run"] == {"recommendation": "measure first",
                                "reason": "run the retune job for partition never run|snap"}
    rows = upgrade_rows(out)
    assert [r["base_model"] for r in rows] == ["tuned", "zero-shot only"]
    assert rows[1]["tuned"] is None and rows[0]["tuned"] == round(float(better["ndcg@10"].mean()), 4)
