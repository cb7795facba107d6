"""registered_model (behind the promotion gate) and index_bindings."""


import dagster as dg
import pandas as pd

from embtune_pipeline.assets._common import table_metadata
from embtune_pipeline.lib.evaluate import METRICS
from embtune_pipeline.lib.registry import CHALLENGER, CHAMPION, read_bindings, stale_indexes
from embtune_pipeline.partitions import RETUNE_PARTITIONS, keys_of
from embtune_pipeline.resources.mlflow import MlflowResource
from embtune_pipeline.resources.settings import SettingsResource


@dg.asset(group_name="registry", kinds={"mlflow"}, partitions_def=RETUNE_PARTITIONS)
def registered_model(context: dg.AssetExecutionContext, mlflow: MlflowResource, eval_report: dict,
                     finetuned_model: dict) -> dg.Output[dict]:
    """The tuned model as a version of the MLflow registered model, tagged with its base model, snapshot, eval
    metrics and Dagster run. Runs only after the promotion_gate check passed (it blocks this step otherwise).

    Alias rule: a promotable version (beats its base on real queries) becomes `champion` when there is none
    yet or the champion has the same base model; otherwise it becomes `challenger` and the base_model_upgrade
    report tells whether to promote it by hand (`embtune promote VERSION`). A version older than the champion
    (a backfill of an earlier partition) leaves the aliases alone."""
    registry = mlflow.registry()
    base_key, snapshot = keys_of(context)
    report, model = eval_report, finetuned_model
    version = registry.version_for_run(model["mlflow_run_id"])  # a rerun that reused the model: same version
    if version is None:
        logged = model.get("mlflow_model_uri") or f"runs:/{model['mlflow_run_id']}/model"  # older records: plain files
        version = registry.register(model["mlflow_run_id"], logged, {
            "base_model": model["base_model"], "base_model_key": base_key, "snapshot": snapshot,
            "dagster_run_id": context.run_id, "model_dir": model["model_dir"], "training_key": model["training_key"],
            "eval_source": report["eval_set"]["source"], "eval_synthetic": report["eval_set"]["synthetic"],
            "eval_queries": report["eval_set"]["queries"], "promotable": report["promotable"],
            **{f"base_{m}": round(report["base"][m], 4) for m in METRICS},
            **{f"tuned_{m}": round(report["finetuned"][m], 4) for m in METRICS},
            "ndcg@10_delta_ci_low": round(report["comparison"]["ci_low"], 4)})
    champion = registry.champion()
    previous = None
    if champion is not None and int(version.version) < int(champion.version):
        alias = "(unchanged)"  # a backfill of an older partition never takes the champion back
        why = f"older than champion v{champion.version}: aliases unchanged (`embtune promote` to choose it)"
    elif report["promotable"] and (champion is None or champion.tags.get("base_model_key") == base_key):
        previous = registry.promote(version.version)
        alias, why = CHAMPION, "beats its base on real queries"
    else:
        registry.set_challenger(version.version)
        alias = CHALLENGER
        why = ("not promotable: its gain was measured on synthetic queries, so it is never champion"
               if report["eval_set"]["synthetic"] else
               "not promotable: it did not beat its base on real queries" if not report["promotable"] else
               f"promotable, but champion v{champion.version} has another base model "
               f"({champion.tags.get('base_model_key')}): see base_model_upgrade, then `embtune promote`")
    value = {"model_name": registry.name, "version": version.version, "alias": alias,
             "previous_champion": previous, "reason": why, "model_dir": model["model_dir"]}
    return dg.Output(value, metadata={
        "registered": f"{registry.name} v{version.version}, alias {alias}: {why}",
        "version": version.version, "alias": alias, "promotable": report["promotable"], "reason": why,
        "previous_champion": previous or "",
        "registry": dg.MetadataValue.url(registry.version_url(version.version))})


@dg.asset(group_name="registry", kinds={"mlflow", "parquet"})
def index_bindings(settings: SettingsResource, mlflow: MlflowResource) -> dg.Output[pd.DataFrame]:
    """Which vector index was embedded with which model version (data_dir/index_bindings.json, written by
    `embtune bind-index`), next to the current champion: a stale index needs re-embedding."""
    s = settings.get()
    registry = mlflow.registry()
    champion = registry.champion()
    champion_version = champion.version if champion else None
    bindings = read_bindings(s.layout.index_bindings)
    stale = stale_indexes(bindings, registry.name, champion_version)
    rows = pd.DataFrame([{"index": name, "model": b["model"], "version": str(b["version"]), "bound_at": b["bound_at"],
                          "champion_version": champion_version or "", "stale": name in stale}
                         for name, b in sorted(bindings.items())],
                        columns=["index", "model", "version", "bound_at", "champion_version", "stale"])
    return dg.Output(rows, metadata={"champion_version": champion_version or "(none)", "indexes": len(rows),
                                     "stale_indexes": len(stale), **table_metadata(rows)})
