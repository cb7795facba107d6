"""eval_history (quarterly re-evaluation of the champion) and base_model_upgrade (re-tune / skip / switch)."""


import dagster as dg
import pandas as pd

from embtune_pipeline.assets._common import png_markdown, records_table, rounded, table_metadata, timed
from embtune_pipeline.lib.evaluation.report import history_png
from embtune_pipeline.lib.models import resolve_model_path
from embtune_pipeline.lib.queries.pairs import judged_eval_set
from embtune_pipeline.lib.registry.monitoring import (
    HISTORY_COLUMNS,
    StoredRetune,
    history_row,
    upgrade_candidates,
    upgrade_eval_set,
    upgrade_rows,
)
from embtune_pipeline.lib.storage import utc_now
from embtune_pipeline.partitions import SNAPSHOTS, retune_key
from embtune_pipeline.resources.corpus import CorpusSource
from embtune_pipeline.resources.embeddings import EmbeddingCache
from embtune_pipeline.resources.mlflow import MlflowResource
from embtune_pipeline.resources.settings import SettingsResource
from embtune_pipeline.settings import Settings


def _measure(s: Settings, embeddings: EmbeddingCache, evals: pd.DataFrame, model_path, chunks) -> pd.DataFrame:
    """One model's per-query metrics on `evals`, with vectors from (and into) the shared content-keyed cache."""
    e = s.run.embed
    return embeddings.measure(model_path, e.max_seq_length, chunks, evals, e.batch_size).per_query


@dg.asset(group_name="evaluation", kinds={"mlflow", "parquet"})
def eval_history(settings: SettingsResource, mlflow: MlflowResource, embeddings: EmbeddingCache,
                 corpus_source: CorpusSource) -> dg.Output[pd.DataFrame]:
    """One row per re-evaluation: the champion and its base on the current corpus and the fresh eval set
    (monitoring.eval_set, else eval_set). The quarterly schedule appends a row; the check below reads the trend."""
    s = settings.get()
    history = s.layout.read_asset("eval_history")
    history = pd.DataFrame(columns=HISTORY_COLUMNS) if history is None else history
    registry = mlflow.registry()
    if (champion := registry.champion()) is None:
        return dg.Output(history, metadata={"skipped": "no champion in the registry yet", "rows": len(history)})
    if (ps := s.monitoring_eval_set) is None:
        raise ValueError("re-evaluation needs real labelled queries: set monitoring.eval_set (or eval_set)")
    meta: dict = {}
    with timed(meta):
        base_ref = champion.tags["base_model"]
        chunks, _ = corpus_source.chunk(corpus_source.read_current()[0], base_ref)
        evals, _ = judged_eval_set(ps.source, chunks, s.corpus.bad_rows, s.layout.quarantine("monitoring_eval_set"),
                                   s.run.eval_split.max_queries, s.run.eval_split.seed)
        base_pq = _measure(s, embeddings, evals, resolve_model_path(base_ref), chunks)
        champion_pq = _measure(s, embeddings, evals, registry.local_dir(champion, s.layout.downloaded_models), chunks)
    row = history_row(utc_now(), champion.version, base_ref, str(ps.path), base_pq, champion_pq,
                      s.run.evaluate.bootstrap_samples)
    history = pd.concat([history, pd.DataFrame([row])], ignore_index=True)[HISTORY_COLUMNS]
    chart = history_png(history, s.layout.reports() / "eval_history.png")
    return dg.Output(history, metadata={
        "champion_ndcg@10": rounded(row["champion_ndcg@10"]), "base_ndcg@10": rounded(row["base_ndcg@10"]),
        "lead": rounded(row["lead"]), "champion_version": champion.version,
        "chart: champion and base nDCG@10 over time": png_markdown(chart, "champion and base nDCG@10 over time"),
        **meta, **table_metadata(history, preview_rows=12)})


@dg.asset(group_name="evaluation", kinds={"sentence_transformers", "json"}, partitions_def=SNAPSHOTS,
          deps=[dg.AssetDep("eval_report", partition_mapping=dg.MultiToSingleDimensionPartitionMapping("snapshot"))])
def base_model_upgrade(context: dg.AssetExecutionContext, settings: SettingsResource, mlflow: MlflowResource,
                       embeddings: EmbeddingCache, corpus_source: CorpusSource) -> dg.Output[dict]:
    """After a base model is added to settings (a new base_model partition): on this snapshot's real eval set,
    the new base zero-shot, the current champion, and the new base tuned, with a recommendation per new base."""
    s, snapshot, registry = settings.get(), context.partition_key, mlflow.registry()
    if (champion := registry.champion()) is None:
        raise ValueError("no champion in the registry yet: nothing to compare a new base model against")
    champion_key = champion.tags.get("base_model_key", "")

    def stored(asset: str, base_key: str):
        return s.layout.read_asset(asset, retune_key(base_key, snapshot))

    evals = upgrade_eval_set([stored("eval_set", k) for k in [champion_key, *s.base_model_keys]], snapshot)
    champion_chunks = stored("corpus", champion_key)
    if champion_chunks is None:
        champion_chunks, _ = corpus_source.chunk(corpus_source.snapshots().load(snapshot), champion.tags["base_model"])
    champion_pq = _measure(s, embeddings, evals, registry.local_dir(champion, s.layout.downloaded_models),
                           champion_chunks)
    others = {k: StoredRetune(stored("base_model_eval", k), stored("corpus", k), stored("eval_report", k))
              for k in s.base_model_keys if k != champion_key}
    candidates = upgrade_candidates(champion_pq, others, lambda model_dir, chunks: _measure(
        s, embeddings, evals, model_dir, chunks), lambda k: retune_key(k, snapshot), s.run.evaluate.bootstrap_samples)
    rows = upgrade_rows(candidates)
    return dg.Output({"snapshot": snapshot, "champion_version": champion.version, "champion_base_model": champion_key,
                      "eval_queries": int(evals["query_id"].nunique()), "candidates": candidates}, metadata={
        "champion_version": champion.version, "champion_base_model": champion_key,
        "recommendations": dg.MetadataValue.json({k: v["recommendation"] for k, v in candidates.items()}),
        "comparison": records_table(rows) if rows else "(no other base model measured)",
        "reasons": dg.MetadataValue.md("\n".join(f"- **{k}**: {v['recommendation']} — {v['reason']}"
                                                 for k, v in candidates.items()) or "(no other base model)"),
        "rows": len(rows)})
