"""Asset checks: what an analyst should see flagged next to the asset it concerns."""


import dagster as dg
import pandas as pd

from embtune_pipeline.assets.evaluation import eval_report
from embtune_pipeline.assets.queries import eval_set


@dg.asset_check(asset=eval_set, description="Warns when the eval set is synthetic: such queries flatter a model.")
def eval_set_is_real(eval_set: pd.DataFrame) -> dg.AssetCheckResult:
    synthetic = bool(eval_set["synthetic"].iloc[0])
    return dg.AssetCheckResult(
        passed=not synthetic, severity=dg.AssetCheckSeverity.WARN,
        metadata={"source": str(eval_set["eval_source"].iloc[0]), "queries": int(eval_set["query_id"].nunique())})


@dg.asset_check(asset=eval_report, description="The tuned model beats its base on nDCG@10: the paired bootstrap "
                "95% interval of the difference lies above zero, on real queries.")
def tuned_beats_base(eval_report: dict) -> dg.AssetCheckResult:
    c = eval_report["comparison"]
    return dg.AssetCheckResult(
        passed=bool(eval_report["promotable"]), severity=dg.AssetCheckSeverity.WARN,
        metadata={"delta": c["delta"], "ci_low": c["ci_low"], "ci_high": c["ci_high"], "queries": c["queries"],
                  "eval_synthetic": eval_report["eval_set"]["synthetic"]})
