"""Decisions taken from measurements after the first tune: is the champion still ahead of its base (quarterly),
and after a base-model upgrade, re-tune, skip or switch (no Dagster here)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import pandas as pd

from embtune_pipeline.lib.evaluation.evaluate import paired_comparison
from embtune_pipeline.lib.evaluation.report import signed

HISTORY_COLUMNS = ["evaluated_at", "champion_version", "base_model", "eval_source", "queries", "base_ndcg@10",
                   "champion_ndcg@10", "lead", "lead_ci_low", "lead_ci_high"]


def history_row(evaluated_at: str, champion_version: str, base_model: str, eval_source: str,
                base_pq: pd.DataFrame, champion_pq: pd.DataFrame, samples: int) -> dict:
    c = paired_comparison(base_pq, champion_pq, "ndcg@10", samples)
    return {"evaluated_at": evaluated_at, "champion_version": str(champion_version), "base_model": base_model,
            "eval_source": eval_source, "queries": c["queries"], "base_ndcg@10": float(base_pq["ndcg@10"].mean()),
            "champion_ndcg@10": float(champion_pq["ndcg@10"].mean()), "lead": c["delta"],
            "lead_ci_low": c["ci_low"], "lead_ci_high": c["ci_high"]}


def lead_verdict(history: pd.DataFrame, min_lead: float, max_drop: float) -> tuple[str, list[str]]:
    """'error' when the champion's nDCG@10 fell more than max_drop since the previous measurement of the same
    version, 'warn' when its lead over its base is below min_lead, else 'ok'; with the reasons, in numbers."""
    if history.empty:
        return "ok", []
    last = history.iloc[-1]
    reasons, level = [], "ok"
    same = history.iloc[:-1]
    same = same[same["champion_version"] == last["champion_version"]]
    if len(same):
        before = float(same.iloc[-1]["champion_ndcg@10"])
        drop = before - float(last["champion_ndcg@10"])
        if drop > max_drop:
            level = "error"
            reasons.append(f"champion v{last['champion_version']} nDCG@10 fell {drop:.4f} (from {before:.4f} to "
                           f"{last['champion_ndcg@10']:.4f}), more than max_drop {max_drop}")
    if float(last["lead"]) < min_lead:
        level = "error" if level == "error" else "warn"
        reasons.append(f"champion leads its base by {signed(last['lead'])} nDCG@10 (95% CI "
                       f"{signed(last['lead_ci_low'])} to {signed(last['lead_ci_high'])}), below min_lead {min_lead}")
    return level, reasons


def recommend_upgrade(champion_pq: pd.DataFrame, zero_shot_pq: pd.DataFrame, tuned_pq: pd.DataFrame | None,
                      samples: int = 1000) -> dict:
    """After a new base model arrives, on one eval set:

    - re-tune: the new base, tuned, beats the champion (paired 95% interval above zero) and its own zero-shot;
    - switch: the new base as it is beats the champion, and tuning it adds nothing measurable;
    - skip: neither beats the champion; keep it.
    """
    zero_vs_champion = paired_comparison(champion_pq, zero_shot_pq, "ndcg@10", samples)
    out = {"champion_ndcg@10": float(champion_pq["ndcg@10"].mean()),
           "zero_shot_ndcg@10": float(zero_shot_pq["ndcg@10"].mean()), "zero_shot_vs_champion": zero_vs_champion}
    if tuned_pq is not None:
        out["tuned_ndcg@10"] = float(tuned_pq["ndcg@10"].mean())
        out["tuned_vs_champion"] = tuned_vs_champion = paired_comparison(champion_pq, tuned_pq, "ndcg@10", samples)
        out["tuned_vs_zero_shot"] = tuned_vs_zero = paired_comparison(zero_shot_pq, tuned_pq, "ndcg@10", samples)
        if tuned_vs_champion["better"] and tuned_vs_zero["better"]:
            out["recommendation"] = "re-tune"
            out["reason"] = (f"the new base tuned beats the champion by {signed(tuned_vs_champion['delta'])} "
                             f"(95% CI {signed(tuned_vs_champion['ci_low'])} to "
                             f"{signed(tuned_vs_champion['ci_high'])}) "
                             f"and its zero-shot by {signed(tuned_vs_zero['delta'])}")
            return out
    if zero_vs_champion["better"]:
        out["recommendation"] = "switch"
        tail = "tuning it added nothing measurable" if tuned_pq is not None else "it is not tuned yet"
        out["reason"] = (f"the new base as it is beats the champion by {signed(zero_vs_champion['delta'])} (95% CI "
                         f"{signed(zero_vs_champion['ci_low'])} to {signed(zero_vs_champion['ci_high'])}); {tail}")
        return out
    out["recommendation"] = "skip"
    out["reason"] = (f"neither the new base ({signed(zero_vs_champion['delta'])} vs champion) nor its tuned model "
                     f"({signed(out.get('tuned_vs_champion', {}).get('delta', float('nan')))}) beats the champion "
                     "with a 95% interval above zero")
    return out


@dataclass
class StoredRetune:
    """What a retune run stored for one base model on one snapshot (None: not materialized)."""

    zero_shot: Optional[pd.DataFrame]  # base_model_eval
    chunks: Optional[pd.DataFrame]  # corpus
    report: Optional[dict]  # eval_report


def upgrade_eval_set(stored_eval_sets: list[Optional[pd.DataFrame]], snapshot: str) -> pd.DataFrame:
    """The eval set base models are compared on: the first one stored (the champion's partition first); it
    must be real, since a synthetic set flatters whichever model was tuned on its sibling queries."""
    evals = next((e for e in stored_eval_sets if e is not None), None)
    if evals is None:
        raise ValueError(f"snapshot {snapshot} has no eval set yet: run the retune job for it first")
    if bool(evals["synthetic"].iloc[0]):
        raise ValueError("base models can only be compared on real eval queries; this snapshot's eval set is "
                         "synthetic (configure eval_set)")
    return evals


def upgrade_candidates(champion_pq: pd.DataFrame, stored: dict[str, StoredRetune],
                       measure: Callable[[str, pd.DataFrame], pd.DataFrame], partition_of: Callable[[str], str],
                       samples: int) -> dict[str, dict]:
    """recommend_upgrade for each other base model that a retune measured ("measure first" for one that was
    not); `measure(model_dir, chunks)` scores its tuned model, when it has one, on the same eval set."""
    out = {}
    for key, run in stored.items():
        if run.zero_shot is None or run.chunks is None:
            out[key] = {"recommendation": "measure first",
                        "reason": f"run the retune job for partition {partition_of(key)}"}
            continue
        tuned_pq = measure(run.report["model_dir"], run.chunks) if run.report else None
        out[key] = recommend_upgrade(champion_pq, run.zero_shot, tuned_pq, samples)
    return out


def upgrade_rows(candidates: dict[str, dict]) -> list[dict]:
    """One row per measured candidate: zero-shot, tuned and champion nDCG@10, and the recommendation."""
    return [{"base_model": key, "zero_shot": round(c["zero_shot_ndcg@10"], 4),
             "tuned": round(c["tuned_ndcg@10"], 4) if "tuned_ndcg@10" in c else None,
             "champion": round(c["champion_ndcg@10"], 4), "recommendation": c["recommendation"]}
            for key, c in candidates.items() if "zero_shot_ndcg@10" in c]
