"""Asset checks: what an analyst should see flagged next to the asset it concerns, and the gates."""


import dagster as dg
import pandas as pd

from embtune_pipeline.assets.evaluation import base_model_eval, eval_report
from embtune_pipeline.assets.monitoring import eval_history
from embtune_pipeline.assets.queries import eval_set
from embtune_pipeline.assets.registry import index_bindings
from embtune_pipeline.lib.evaluation.gates import CheckOutcome, eval_set_outcome, promotion_outcome, tuning_outcome
from embtune_pipeline.lib.evaluation.report import eval_set_info
from embtune_pipeline.lib.registry.monitoring import lead_verdict
from embtune_pipeline.partitions import RETUNE_PARTITIONS
from embtune_pipeline.resources.settings import SettingsResource

WARN, ERROR = dg.AssetCheckSeverity.WARN, dg.AssetCheckSeverity.ERROR


def _result(outcome: CheckOutcome, metadata: dict) -> dg.AssetCheckResult:
    """A lib decision as Dagster's check result; a note (a trial's choice) is shown in the metadata too."""
    note = {"note": outcome.note} if outcome.note else {}
    return dg.AssetCheckResult(passed=outcome.passed, severity=ERROR if outcome.severity == "error" else WARN,
                               description=outcome.description, metadata={**note, **metadata})


@dg.asset_check(asset=eval_set, partitions_def=RETUNE_PARTITIONS,
                description="Warns when the eval set is synthetic (such queries flatter a model), or when an LLM, "
                "not people, judged its real queries (promotable, but only as far as the judge agrees with people). "
                "In a trial (gates.trial, as the demo) a synthetic eval set is chosen on purpose: passes with a note.")
def eval_set_is_real(settings: SettingsResource, eval_set: pd.DataFrame) -> dg.AssetCheckResult:
    info = eval_set_info(eval_set)
    return _result(eval_set_outcome(info, settings.get().gates.trial), {
        "source": str(info["source"]), "queries": info["queries"], "llm_judge": info.get("llm_judge", ""),
        **({"agreement_kappa": round(info["agreement"]["kappa"], 4),
            "agreement_pairs": info["agreement"]["pairs"]} if "agreement" in info else {})})


@dg.asset_check(asset=base_model_eval, partitions_def=RETUNE_PARTITIONS,
                additional_ins={"corpus": dg.AssetIn("corpus"), "eval_set": dg.AssetIn("eval_set"),
                                "baseline_eval": dg.AssetIn("baseline_eval")},
                description="Is fine-tuning worth it here? Warns, with the numbers, when the corpus is small, "
                "there is no real eval set, or the base model or a baseline the team could ship instead already "
                "meets the target. In a trial (gates.trial, as the demo) a small corpus and a synthetic eval set "
                "are chosen on purpose: notes, not reasons.")
def tuning_is_worth_it(settings: SettingsResource, base_model_eval: pd.DataFrame, corpus: pd.DataFrame,
                       eval_set: pd.DataFrame, baseline_eval: pd.DataFrame) -> dg.AssetCheckResult:
    gates = settings.get().gates
    documents = int(corpus["doc_id"].nunique())
    synthetic = bool(eval_set["synthetic"].iloc[0])
    baseline = float(base_model_eval["ndcg@10"].mean())
    shipped = ({str(k): float(v) for k, v in baseline_eval.groupby("baseline")["ndcg@10"].mean().items()}
               if len(baseline_eval) else {})
    outcome = tuning_outcome(documents, synthetic, baseline, shipped, gates.min_documents, gates.baseline_target,
                             gates.trial)
    return _result(outcome, {
        "documents": documents, "min_documents": gates.min_documents, "eval_synthetic": synthetic,
        "base_ndcg@10": round(baseline, 4), "baseline_target": gates.baseline_target,
        **{f"baseline {name} ndcg@10": round(score, 4) for name, score in shipped.items()}})


@dg.asset_check(asset=eval_report, blocking=True, partitions_def=RETUNE_PARTITIONS,
                description="Promotion gate: passes only for a promotable model (it beats its base on real queries: "
                "the paired bootstrap 95% interval of the nDCG@10 difference lies above zero). Better on synthetic "
                "queries only: fails as a warning, and the model is registered as challenger, never champion (in a "
                "trial, gates.trial as the demo, that passes with a note). Not better: fails as an error, which "
                "blocks registered_model, in a trial too.")
def promotion_gate(settings: SettingsResource, eval_report: dict) -> dg.AssetCheckResult:
    c = eval_report["comparison"]
    outcome = promotion_outcome(eval_report, settings.get().gates.trial)
    return _result(outcome, {
        "promotable": bool(eval_report["promotable"]), "delta": round(c["delta"], 4),
        "ci_low": round(c["ci_low"], 4), "ci_high": round(c["ci_high"], 4), "queries": c["queries"],
        "eval_synthetic": eval_report["eval_set"]["synthetic"]})


@dg.asset_check(asset=eval_history, description="The champion still leads its base: warns when the lead falls "
                "below monitoring.min_lead, errors when its nDCG@10 dropped more than monitoring.max_drop.")
def champion_holds_lead(settings: SettingsResource, eval_history: pd.DataFrame) -> dg.AssetCheckResult:
    m = settings.get().monitoring
    level, reasons = lead_verdict(eval_history, m.min_lead, m.max_drop)
    last = eval_history.iloc[-1].to_dict() if len(eval_history) else {}
    return dg.AssetCheckResult(
        passed=level == "ok", severity=ERROR if level == "error" else WARN,
        description="; ".join(reasons) or "the champion holds its lead",
        metadata={"lead": round(float(last.get("lead", float("nan"))), 4), "min_lead": m.min_lead,
                  "max_drop": m.max_drop, "measurements": len(eval_history)})


@dg.asset_check(asset=index_bindings, description="Every vector index serves vectors of the champion version; "
                "a stale `auto` index is being rolled out (vector_index_rollout_sensor), a stale `manual` one is "
                "named with the version to roll to.")
def indexes_use_champion(index_bindings: pd.DataFrame) -> dg.AssetCheckResult:
    from embtune_pipeline.lib.serving.rollout import stale_advice

    stale = index_bindings[index_bindings["stale"]]
    rollout = stale["rollout"] if "rollout" in stale else pd.Series("manual", index=stale.index)
    advice = [stale_advice(r.index, mode, r.version or None, r.champion_version)
              for r, mode in zip(stale.itertuples(), rollout)]
    return dg.AssetCheckResult(
        passed=stale.empty, severity=WARN,
        description=(f"{len(stale)} index(es) on an older version than the champion: " + "; ".join(advice))
        if len(stale) else "every index uses the champion",
        metadata={"stale": dg.MetadataValue.json({r.index: r.version for r in stale.itertuples()}),
                  "champion_version": str(index_bindings["champion_version"].iloc[0]) if len(index_bindings) else ""})


CHECKS = [eval_set_is_real, tuning_is_worth_it, promotion_gate, champion_holds_lead, indexes_use_champion]
