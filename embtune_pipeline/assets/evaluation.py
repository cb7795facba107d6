"""base_model_eval, eval_report: the base and the tuned model on the same eval set."""


import dagster as dg
import pandas as pd

from embtune_pipeline.assets._common import (
    cache_metadata,
    effective,
    optional_config,
    png_markdown,
    records_table,
    reporter,
    rounded,
    table_metadata,
    timed,
)
from embtune_pipeline.lib.evaluation.evaluate import summarize
from embtune_pipeline.lib.evaluation.report import (
    comparison_records,
    evaluation_report,
    interval,
    report_metrics,
    report_rows,
    verdict,
    write_report_files,
)
from embtune_pipeline.partitions import RETUNE_PARTITIONS, keys_of
from embtune_pipeline.resources.embeddings import EmbeddingCache
from embtune_pipeline.resources.mlflow import MlflowResource
from embtune_pipeline.resources.settings import SettingsResource
from embtune_pipeline.settings import EvalKnobs

EvalConfig = optional_config(EvalKnobs, "EvalConfig")
EVAL_CHART = "chart: base vs tuned, 95% confidence intervals"


@dg.asset(group_name="evaluation", kinds={"sentence_transformers", "parquet"}, partitions_def=RETUNE_PARTITIONS)
def base_model_eval(context: dg.AssetExecutionContext, config: EvalConfig, settings: SettingsResource,
                    embeddings: EmbeddingCache, eval_set: pd.DataFrame, corpus: pd.DataFrame,
                    base_corpus_embeddings: dict) -> dg.Output[pd.DataFrame]:
    """The baseline, measured first: per-query nDCG@10, Recall@10/100, MRR@10 of the base model."""
    s = settings.get()
    knobs = effective(s.run.evaluate, config)
    emb = base_corpus_embeddings
    meta: dict = {}
    with timed(meta):
        base = embeddings.measure(emb["model_path"], emb["max_seq_length"], corpus, eval_set, emb["batch_size"],
                                  reporter(context, s), "the base model", store=embeddings.store(emb["key"]))
    summary = summarize(base.per_query, knobs.bootstrap_samples)
    return dg.Output(base.per_query, metadata={
        **meta, **{m: rounded(v["mean"]) for m, v in summary.items()},
        "summary": records_table([{"metric": m, "mean": rounded(v["mean"]),
                                   "95% CI": interval(v["ci_low"], v["ci_high"])} for m, v in summary.items()]),
        **cache_metadata(base.distinct_texts, base.encoded), "queries": len(base.per_query),
        "eval_synthetic": bool(eval_set["synthetic"].iloc[0]), "base_model": emb["base_model"],
        **table_metadata(base.per_query)})


@dg.asset(group_name="evaluation", kinds={"mlflow", "json"}, partitions_def=RETUNE_PARTITIONS)
def eval_report(context: dg.AssetExecutionContext, config: EvalConfig, settings: SettingsResource,
                mlflow: MlflowResource, embeddings: EmbeddingCache, eval_set: pd.DataFrame, corpus: pd.DataFrame,
                base_corpus_embeddings: dict, base_model_eval: pd.DataFrame, finetuned_model: dict) -> dg.Output[dict]:
    """Tuned vs base on the same eval set (per Matryoshka dim when trained so), with a paired bootstrap interval
    on the nDCG@10 difference: a model is promotable only when that interval lies above zero on real queries.
    The report document is this asset's value (stored by the IO manager, logged to the model's MLflow run)."""
    s = settings.get()
    knobs = effective(s.run.evaluate, config)
    emb, model = base_corpus_embeddings, finetuned_model
    meta: dict = {}
    with timed(meta):
        progress = reporter(context, s)  # the base's vectors were stored, and scored, by base_model_eval
        base = embeddings.measure(emb["model_path"], emb["max_seq_length"], corpus, eval_set, emb["batch_size"],
                                  progress, "the base model", store=embeddings.store(emb["key"]), score=False)
        tuned = embeddings.measure(model["model_dir"], model["max_seq_length"], corpus, eval_set, emb["batch_size"],
                                   progress, "the tuned model")
        report = evaluation_report(model, eval_set, corpus, base, tuned, base_model_eval, knobs.bootstrap_samples)
    base_key, snapshot = keys_of(context)
    report["partition"] = {"base_model": base_key, "snapshot": snapshot}
    chart, table = write_report_files(report, s.layout.reports(context.partition_key))
    mlflow.tracker().log_evaluation(model["mlflow_run_id"], report_metrics(report), report, [chart, table])
    return dg.Output(report, metadata={
        **_report_metadata(report, chart),
        **cache_metadata(base.distinct_texts + tuned.distinct_texts, base.encoded + tuned.encoded),
        "report_file": dg.MetadataValue.path(str(s.layout.asset("eval_report", context.partition_key, ".json"))),
        "mlflow_run": dg.MetadataValue.url(model["mlflow_run_url"]), **meta})


def _report_metadata(report: dict, chart) -> dict:
    """What the asset page shows: the verdict, the comparison inline, the headline floats the Plots tab charts."""
    c = report["comparison"]
    return {
        "verdict": verdict(report),
        "promotable": report["promotable"],
        "comparison": records_table(comparison_records(report_rows(report))),
        "base_ndcg@10": rounded(report["base"]["ndcg@10"]),
        "tuned_ndcg@10": rounded(report["finetuned"]["ndcg@10"]),
        "ndcg@10_delta": rounded(c["delta"]),
        "ndcg@10_delta_ci_low": rounded(c["ci_low"]),
        "ndcg@10_delta_ci_high": rounded(c["ci_high"]),
        "eval_synthetic": report["eval_set"]["synthetic"],
        "eval_queries": report["eval_set"]["queries"],
        EVAL_CHART: png_markdown(chart, "base and tuned metrics with 95% confidence intervals"),
    }
