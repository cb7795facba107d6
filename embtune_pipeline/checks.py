"""Asset checks: what an analyst should see flagged next to the asset it concerns, and the gates."""


import dagster as dg
import pandas as pd

from embtune_pipeline.assets.evaluation import base_model_eval, eval_report
from embtune_pipeline.assets.monitoring import eval_history
from embtune_pipeline.assets.queries import eval_set
from embtune_pipeline.assets.registry import index_bindings
from embtune_pipeline.lib.monitoring import lead_verdict
from embtune_pipeline.partitions import RETUNE_PARTITIONS
from embtune_pipeline.resources.settings import SettingsResource

WARN, ERROR = dg.AssetCheckSeverity.WARN, dg.AssetCheckSeverity.ERROR


@dg.asset_check(asset=eval_set, partitions_def=RETUNE_PARTITIONS,
                description="Warns when the eval set is synthetic: such queries flatter a model.")
def eval_set_is_real(eval_set: pd.DataFrame) -> dg.AssetCheckResult:
    synthetic = bool(eval_set["synthetic"].iloc[0])
    return dg.AssetCheckResult(
        passed=not synthetic, severity=WARN,
        metadata={"source": str(eval_set["eval_source"].iloc[0]), "queries": int(eval_set["query_id"].nunique())})


@dg.asset_check(asset=base_model_eval, partitions_def=RETUNE_PARTITIONS,
                additional_ins={"corpus": dg.AssetIn("corpus"), "eval_set": dg.AssetIn("eval_set")},
                description="Is fine-tuning worth it here? Warns, with the numbers, when the corpus is small, "
                "there is no real eval set, or the baseline already meets the target.")
def tuning_is_worth_it(settings: SettingsResource, base_model_eval: pd.DataFrame, corpus: pd.DataFrame,
                       eval_set: pd.DataFrame) -> dg.AssetCheckResult:
    gates = settings.get().gates
    documents = int(corpus["doc_id"].nunique())
    synthetic = bool(eval_set["synthetic"].iloc[0])
    baseline = float(base_model_eval["ndcg@10"].mean())
    reasons = []
    if documents < gates.min_documents:
        reasons.append(f"corpus has {documents} documents, under {gates.min_documents}: a tuned model may not "
                       "generalize beyond it")
    if synthetic:
        reasons.append("no real eval set: a gain on synthetic queries proves little")
    if baseline >= gates.baseline_target:
        reasons.append(f"base nDCG@10 {baseline:.4f} already meets the target {gates.baseline_target}")
    return dg.AssetCheckResult(passed=not reasons, severity=WARN, metadata={
        "documents": documents, "min_documents": gates.min_documents, "eval_synthetic": synthetic,
        "base_ndcg@10": baseline, "baseline_target": gates.baseline_target,
        "reasons": dg.MetadataValue.md("\n".join(f"- {r}" for r in reasons) or "all clear")})


@dg.asset_check(asset=eval_report, blocking=True, partitions_def=RETUNE_PARTITIONS,
                description="Promotion gate: the tuned model beats its base on nDCG@10 (the paired bootstrap 95% "
                "interval of the difference lies above zero). Blocks registered_model when it fails.")
def promotion_gate(eval_report: dict) -> dg.AssetCheckResult:
    c = eval_report["comparison"]
    return dg.AssetCheckResult(
        passed=bool(c["better"]), severity=ERROR,
        description=None if c["better"] else "not better than base: the model is not registered",
        metadata={"delta": c["delta"], "ci_low": c["ci_low"], "ci_high": c["ci_high"], "queries": c["queries"],
                  "eval_synthetic": eval_report["eval_set"]["synthetic"], "promotable": eval_report["promotable"]})


@dg.asset_check(asset=eval_history, description="The champion still leads its base: warns when the lead falls "
                "below monitoring.min_lead, errors when its nDCG@10 dropped more than monitoring.max_drop.")
def champion_holds_lead(settings: SettingsResource, eval_history: pd.DataFrame) -> dg.AssetCheckResult:
    m = settings.get().monitoring
    level, reasons = lead_verdict(eval_history, m.min_lead, m.max_drop)
    last = eval_history.iloc[-1].to_dict() if len(eval_history) else {}
    return dg.AssetCheckResult(
        passed=level == "ok", severity=ERROR if level == "error" else WARN,
        metadata={"reasons": dg.MetadataValue.md("\n".join(f"- {r}" for r in reasons) or "champion holds its lead"),
                  "lead": float(last.get("lead", float("nan"))), "min_lead": m.min_lead, "max_drop": m.max_drop,
                  "measurements": len(eval_history)})


@dg.asset_check(asset=index_bindings, description="Every vector index is bound to the champion version; "
                "an index on an older version serves stale vectors and needs re-embedding.")
def indexes_use_champion(index_bindings: pd.DataFrame) -> dg.AssetCheckResult:
    stale = index_bindings[index_bindings["stale"]]
    return dg.AssetCheckResult(
        passed=stale.empty, severity=WARN,
        metadata={"stale": dg.MetadataValue.json({r.index: r.version for r in stale.itertuples()}),
                  "champion_version": str(index_bindings["champion_version"].iloc[0]) if len(index_bindings) else ""})


CHECKS = [eval_set_is_real, tuning_is_worth_it, promotion_gate, champion_holds_lead, indexes_use_champion]
