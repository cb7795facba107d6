"""eval_history (quarterly re-evaluation of the champion) and base_model_upgrade (re-tune / skip / switch)."""


import json

import dagster as dg
import pandas as pd

from embtune_pipeline.assets._common import model_store, png_markdown, records_table, rounded, table_metadata, timed
from embtune_pipeline.lib.data.snapshots import SnapshotStore, chunk_as_configured, read_current_documents
from embtune_pipeline.lib.embeddings import measure_model
from embtune_pipeline.lib.evaluation.report import history_png
from embtune_pipeline.lib.models import resolve_model_path
from embtune_pipeline.lib.queries.pairs import judged_eval_set
from embtune_pipeline.lib.registry.monitoring import HISTORY_COLUMNS, history_row, recommend_upgrade
from embtune_pipeline.lib.storage import utc_now
from embtune_pipeline.partitions import SNAPSHOTS, retune_key
from embtune_pipeline.resources.mlflow import MlflowResource
from embtune_pipeline.resources.settings import SettingsResource
from embtune_pipeline.settings import Settings


def _measure(s: Settings, model_path, chunks: pd.DataFrame, evals: pd.DataFrame) -> pd.DataFrame:
    """One model's per-query metrics, with vectors from (and into) the shared content-keyed cache."""
    e = s.run.embed
    return measure_model(model_path, e.max_seq_length, model_store(s, model_path, e.max_seq_length), chunks, evals,
                         e.batch_size)


@dg.asset(group_name="evaluation", kinds={"mlflow", "parquet"})
def eval_history(settings: SettingsResource, mlflow: MlflowResource) -> dg.Output[pd.DataFrame]:
    """One row per re-evaluation: the champion and its base on the current corpus and the fresh eval set
    (monitoring.eval_set, else eval_set). The quarterly schedule appends a row; the check below reads the trend."""
    s = settings.get()
    stored = s.layout.asset("eval_history")
    history = pd.read_parquet(stored) if stored.exists() else pd.DataFrame(columns=HISTORY_COLUMNS)
    registry = mlflow.registry()
    champion = registry.champion()
    if champion is None:
        return dg.Output(history, metadata={"skipped": "no champion in the registry yet", "rows": len(history)})
    ps = s.monitoring_eval_set
    if ps is None:
        raise ValueError("re-evaluation needs real labelled queries: set monitoring.eval_set (or eval_set)")
    meta: dict = {}
    with timed(meta):
        base_ref = champion.tags["base_model"]
        docs, _ = read_current_documents(s)
        chunks, _ = chunk_as_configured(s, docs, base_ref)
        evals, _ = judged_eval_set(ps, chunks, s.corpus.bad_rows, s.layout.quarantine("monitoring_eval_set"),
                                   s.run.eval_split.max_queries, s.run.eval_split.seed)
        base_pq = _measure(s, resolve_model_path(base_ref), chunks, evals)
        champion_pq = _measure(s, registry.local_dir(champion, s.layout.downloaded_models), chunks, evals)
    row = history_row(utc_now(), champion.version, base_ref, str(ps.path),
                      base_pq, champion_pq, s.run.evaluate.bootstrap_samples)
    history = pd.concat([history, pd.DataFrame([row])], ignore_index=True)[HISTORY_COLUMNS]
    chart = history_png(history, s.layout.reports() / "eval_history.png")
    return dg.Output(history, metadata={
        "champion_ndcg@10": rounded(row["champion_ndcg@10"]), "base_ndcg@10": rounded(row["base_ndcg@10"]),
        "lead": rounded(row["lead"]), "champion_version": champion.version,
        "chart: champion and base nDCG@10 over time": png_markdown(chart, "champion and base nDCG@10 over time"),
        **meta, **table_metadata(history, preview_rows=12)})


@dg.asset(group_name="evaluation", kinds={"sentence_transformers", "json"}, partitions_def=SNAPSHOTS,
          deps=[dg.AssetDep("eval_report", partition_mapping=dg.MultiToSingleDimensionPartitionMapping("snapshot"))])
def base_model_upgrade(context: dg.AssetExecutionContext, settings: SettingsResource,
                       mlflow: MlflowResource) -> dg.Output[dict]:
    """After a base model is added to settings (a new base_model partition): on this snapshot's real eval set,
    the new base zero-shot, the current champion, and the new base tuned, with a recommendation per new base."""
    s = settings.get()
    snapshot = context.partition_key
    registry = mlflow.registry()
    champion = registry.champion()
    if champion is None:
        raise ValueError("no champion in the registry yet: nothing to compare a new base model against")
    champion_key = champion.tags.get("base_model_key", "")

    def stored(asset: str, base_key: str, suffix: str = ".parquet"):
        path = s.layout.asset(asset, retune_key(base_key, snapshot), suffix)
        if not path.exists():
            return None
        return pd.read_parquet(path) if suffix == ".parquet" else json.loads(path.read_text())

    evals = next((e for k in [champion_key, *s.base_model_keys] if (e := stored("eval_set", k)) is not None), None)
    if evals is None:
        raise ValueError(f"snapshot {snapshot} has no eval set yet: run the retune job for it first")
    if bool(evals["synthetic"].iloc[0]):
        raise ValueError("base models can only be compared on real eval queries; this snapshot's eval set is "
                         "synthetic (configure eval_set)")
    champion_chunks = stored("corpus", champion_key)
    if champion_chunks is None:
        champion_chunks, _ = chunk_as_configured(s, SnapshotStore(s.layout.snapshot).load(snapshot),
                                                 champion.tags["base_model"])
    champion_pq = _measure(s, registry.local_dir(champion, s.layout.downloaded_models), champion_chunks, evals)
    samples = s.run.evaluate.bootstrap_samples
    candidates, rows = {}, []
    for key in s.base_model_keys:
        if key == champion_key:
            continue
        zero_shot, chunks, report = stored("base_model_eval", key), stored("corpus", key), stored("eval_report", key,
                                                                                                  ".json")
        if zero_shot is None or chunks is None:
            candidates[key] = {"recommendation": "measure first",
                               "reason": f"run the retune job for partition {retune_key(key, snapshot)}"}
            continue
        tuned_pq = _measure(s, report["model_dir"], chunks, evals) if report else None
        candidates[key] = recommend_upgrade(champion_pq, zero_shot, tuned_pq, samples)
        c = candidates[key]
        rows.append({"base_model": key, "zero_shot": round(c["zero_shot_ndcg@10"], 4),
                     "tuned": round(c["tuned_ndcg@10"], 4) if "tuned_ndcg@10" in c else None,
                     "champion": round(c["champion_ndcg@10"], 4), "recommendation": c["recommendation"]})
    value = {"snapshot": snapshot, "champion_version": champion.version, "champion_base_model": champion_key,
             "eval_queries": int(evals["query_id"].nunique()), "candidates": candidates}
    return dg.Output(value, metadata={
        "champion_version": champion.version, "champion_base_model": champion_key,
        "recommendations": dg.MetadataValue.json({k: v["recommendation"] for k, v in candidates.items()}),
        "comparison": records_table(rows) if rows else "(no other base model measured)",
        "reasons": dg.MetadataValue.md("\n".join(f"- **{k}**: {v['recommendation']} — {v['reason']}"
                                                 for k, v in candidates.items()) or "(no other base model)"),
        "rows": len(rows)})
