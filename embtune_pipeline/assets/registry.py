"""registered_model (behind the promotion gate) and index_bindings."""


import dagster as dg
import pandas as pd

from embtune_pipeline.assets._common import table_metadata
from embtune_pipeline.lib.registry.versions import KEPT, read_bindings, version_tags
from embtune_pipeline.partitions import RETUNE_PARTITIONS, keys_of
from embtune_pipeline.resources.mlflow import MlflowResource
from embtune_pipeline.resources.settings import SettingsResource
from embtune_pipeline.resources.vector_store import VectorStore


@dg.asset(group_name="registry", kinds={"mlflow"}, partitions_def=RETUNE_PARTITIONS)
def registered_model(context: dg.AssetExecutionContext, mlflow: MlflowResource, eval_report: dict,
                     finetuned_model: dict) -> dg.Output[dict]:
    """The tuned model as a version of the MLflow registered model, tagged with its base model, snapshot, eval
    metrics and Dagster run, under the alias `lib.registry.versions.choose_alias` gives it (never champion again
    for a version someone rolled back). Runs unless the promotion_gate check failed as an error (the model is not
    better than its base)."""
    registry = mlflow.registry()
    base_key, snapshot = keys_of(context)
    report, model = eval_report, finetuned_model
    version = registry.version_for_run(model["mlflow_run_id"])  # a rerun that reused the model: same version
    if version is None:
        logged = model.get("mlflow_model_uri") or f"runs:/{model['mlflow_run_id']}/model"  # older records: plain files
        version = registry.register(model["mlflow_run_id"], logged,
                                    version_tags(model, report, base_key, snapshot, context.run_id))
    alias, why, previous = registry.assign_alias(version, report["promotable"], report["eval_set"]["synthetic"],
                                                 base_key)
    if alias == KEPT:  # a rerun of a version someone rolled back: the rollback stands
        context.log.warning(why)
    value = {"model_name": registry.name, "version": version.version, "alias": alias,
             "previous_champion": previous, "reason": why, "model_dir": model["model_dir"]}
    return dg.Output(value, metadata={
        "registered": f"{registry.name} v{version.version}, alias {alias}: {why}",
        "version": version.version, "alias": alias, "promotable": report["promotable"], "reason": why,
        "previous_champion": previous or "", **({"champion_kept": why} if alias == KEPT else {}),
        "registry": dg.MetadataValue.url(registry.version_url(version.version))})


@dg.asset(group_name="registry", kinds={"mlflow", "parquet"})
def index_bindings(settings: SettingsResource, mlflow: MlflowResource,
                   vector_store: VectorStore) -> dg.Output[pd.DataFrame]:
    """Which vector index serves vectors of which model version, next to the current champion: for each index
    in settings `indexes`, the version its pointer's table was built with (the vector_index asset moves it);
    for any other, the binding `embtune bind-index` recorded in data_dir/index_bindings.json. A stale index
    needs re-embedding: an `auto` one is being rolled out, a `manual` one is named with the version to roll to."""
    s = settings.get()
    registry = mlflow.registry()
    champion = registry.champion()
    champion_version = champion.version if champion else None
    bindings = read_bindings(s.layout.index_bindings)
    rows = []
    for index in s.indexes:
        pointer = vector_store.pointer(index.name)
        bindings.pop(index.name, None)
        rows.append({"index": index.name, "model": pointer.model if pointer else registry.name,
                     "version": pointer.version if pointer else "", "bound_at": pointer.moved_at if pointer else "",
                     "table": pointer.table if pointer else "", "rollout": index.rollout})
    rows += [{"index": name, "model": b["model"], "version": str(b["version"]), "bound_at": b["bound_at"],
              "table": "", "rollout": "manual"} for name, b in sorted(bindings.items())]
    frame = pd.DataFrame(rows, columns=["index", "model", "version", "bound_at", "table", "rollout"])
    frame["champion_version"] = champion_version or ""
    frame["stale"] = [champion_version is not None and m == registry.name and v != str(champion_version)
                      for m, v in zip(frame["model"], frame["version"])]
    return dg.Output(frame, metadata={"champion_version": champion_version or "(none)", "indexes": len(frame),
                                      "stale_indexes": int(frame["stale"].sum()), **table_metadata(frame)})
