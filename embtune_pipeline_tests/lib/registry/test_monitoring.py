import numpy as np
import pandas as pd

from embtune_pipeline.lib.registry.monitoring import HISTORY_COLUMNS, history_row, lead_verdict, recommend_upgrade


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
