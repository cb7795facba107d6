"""base_model_eval, baseline_eval, eval_report: the base, what the team would ship instead, and the tuned model
on the same eval set."""


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
    baseline_records,
    comparison_records,
    eval_kind,
    evaluation_report,
    interval,
    report_metrics,
    report_rows,
    verdict,
    write_report_files,
)
from embtune_pipeline.partitions import RETUNE_PARTITIONS, keys_of
from embtune_pipeline.resources.baselines import BaselineModels
from embtune_pipeline.resources.corpus import CorpusSource
from embtune_pipeline.resources.embeddings import EmbeddingCache
from embtune_pipeline.resources.eval_sets import EvalSetBuilder
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


@dg.asset(group_name="evaluation", kinds={"litellm", "parquet"}, partitions_def=RETUNE_PARTITIONS)
def baseline_eval(context: dg.AssetExecutionContext, config: EvalConfig, settings: SettingsResource,
                  baselines: BaselineModels, embeddings: EmbeddingCache, eval_set: pd.DataFrame,
                  corpus: pd.DataFrame) -> dg.Output[pd.DataFrame]:
    """What the team would ship instead of tuning (settings `baselines`: an embedding API or a local model),
    measured like the base: per-query metrics, a `baseline` column naming each. What the APIs would be sent is
    priced before any call and refused above baselines_budget_usd; vectors are cached, so a rerun sends nothing."""
    s = settings.get()
    knobs = effective(s.run.evaluate, config)
    meta: dict = {}
    with timed(meta):
        per_query, costs = baselines.measure(embeddings, corpus, eval_set, reporter(context, s))
    rows = [{"baseline": name, "metric": m, "mean": rounded(v["mean"]), "95% CI": interval(v["ci_low"], v["ci_high"])}
            for name, group in per_query.groupby("baseline", sort=False)
            for m, v in summarize(group, knobs.bootstrap_samples).items()]
    return dg.Output(per_query, metadata={
        **meta, "baselines": len(costs), "summary": records_table(rows) if rows else "no baselines configured",
        **{f"{r['baseline']} ndcg@10": r["mean"] for r in rows if r["metric"] == "ndcg@10"},
        "costs": dg.MetadataValue.json(costs), "estimated_usd": sum(c["estimated_usd"] for c in costs),
        "texts_encoded": sum(c["texts_encoded"] for c in costs), **table_metadata(per_query)})


@dg.asset(group_name="evaluation", kinds={"mlflow", "json"}, partitions_def=RETUNE_PARTITIONS)
def eval_report(context: dg.AssetExecutionContext, config: EvalConfig, settings: SettingsResource,
                mlflow: MlflowResource, embeddings: EmbeddingCache, eval_set: pd.DataFrame, corpus: pd.DataFrame,
                base_corpus_embeddings: dict, base_model_eval: pd.DataFrame, baseline_eval: pd.DataFrame,
                finetuned_model: dict) -> dg.Output[dict]:
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
        report = evaluation_report(model, eval_set, corpus, base, tuned, base_model_eval, knobs.bootstrap_samples,
                                   baseline_eval)
        if knobs.serving_export:
            report["serving"] = _serving(embeddings, model, corpus, eval_set, report, emb["batch_size"],
                                         knobs.bootstrap_samples, progress)
    base_key, snapshot = keys_of(context)
    report["partition"] = {"base_model": base_key, "snapshot": snapshot}
    chart, table = write_report_files(report, s.layout.reports(context.partition_key))
    mlflow.tracker().log_evaluation(model["mlflow_run_id"], report_metrics(report), report, [chart, table],
                                    _published(report.get("serving")))
    return dg.Output(report, metadata={
        **_report_metadata(report, chart),
        **cache_metadata(base.distinct_texts + tuned.distinct_texts, base.encoded + tuned.encoded),
        "report_file": dg.MetadataValue.path(str(s.layout.asset("eval_report", context.partition_key, ".json"))),
        "mlflow_run": dg.MetadataValue.url(model["mlflow_run_url"]), **meta})


def _serving(embeddings: EmbeddingCache, model: dict, corpus, eval_set, report: dict, batch_size: int,
             samples: int, progress) -> dict:
    """The tuned model's serving exports beside it (the fp32 one the encoder made, when it made one) and their
    measurement (lib.evaluation.serving)."""
    from embtune_pipeline.lib.embeddings import EXPORT_DIR
    from embtune_pipeline.lib.encoders import INT8_RECIPE_NAME
    from embtune_pipeline.lib.evaluation.serving import measure_serving

    key = embeddings.key_for(model["model_dir"], model["max_seq_length"])
    int8_store = embeddings.store(f"{key}-{INT8_RECIPE_NAME}")  # vectors of another recipe are another's
    return measure_serving(model["model_dir"], model["max_seq_length"], int8_store, corpus, eval_set,
                           report["finetuned"]["ndcg@10"], batch_size, samples, progress,
                           prepared=embeddings.store(key).root / EXPORT_DIR)


def _report_metadata(report: dict, chart) -> dict:
    """What the asset page shows: the verdict, the comparison inline, the headline floats the Plots tab charts."""
    c = report["comparison"]
    return {
        "verdict": verdict(report),
        "promotable": report["promotable"],
        "comparison": records_table(comparison_records(report_rows(report)) + baseline_records(report)),
        "base_ndcg@10": rounded(report["base"]["ndcg@10"]),
        "tuned_ndcg@10": rounded(report["finetuned"]["ndcg@10"]),
        "ndcg@10_delta": rounded(c["delta"]),
        "ndcg@10_delta_ci_low": rounded(c["ci_low"]),
        "ndcg@10_delta_ci_high": rounded(c["ci_high"]),
        "eval_synthetic": report["eval_set"]["synthetic"],
        "eval_set": eval_kind(report["eval_set"]),
        "eval_queries": report["eval_set"]["queries"],
        **{f"baseline {b['name']} ndcg@10": rounded(b["ndcg@10"]) for b in report["baselines"]},
        **_serving_metadata(report.get("serving")),
        EVAL_CHART: png_markdown(chart, "base and tuned metrics with 95% confidence intervals"),
    }


def _published(serving) -> str | None:
    """The folder of serving forms to log with the model's run: none when they were skipped or not made."""
    return serving["export_dir"] if serving and "skipped" not in serving else None


def _serving_metadata(serving) -> dict:
    if not serving:
        return {}
    if "skipped" in serving:
        return {"serving_exports": serving["skipped"]}
    rates = serving["docs_per_s"]
    return {"int8_ndcg@10": rounded(serving["int8"]["ndcg@10"]),
            "int8_ndcg@10_minus_tuned": rounded(serving["int8_ndcg@10_minus_tuned"]),
            "docs_per_s": records_table([{"form": k, "docs/s": v, "vs torch": round(v / rates["torch"], 2)}
                                         for k, v in rates.items()]),
            "serving_exports": dg.MetadataValue.path(serving["export_dir"])}


@dg.asset(group_name="evaluation", kinds={"litellm", "sqlite"}, partitions_def=RETUNE_PARTITIONS,
          deps=["base_corpus_embeddings"])
def query_log_eval_set(context: dg.AssetExecutionContext, settings: SettingsResource, corpus_source: CorpusSource,
                       embeddings: EmbeddingCache, baselines: BaselineModels, eval_sets: EvalSetBuilder,
                       corpus: pd.DataFrame) -> dg.Output[dict]:
    """An eval set from real queries without judgments (settings eval_set_builder.queries, a search log), as
    `embtune eval-set build` makes it: each query's candidates pooled from the base model, its newest tuned
    model, the baselines and BM25, judged by the settings' LLM judge (or left to people: `embtune label`), and
    exported; point settings `eval_set` at the file. Not part of the retune job: materialize it when the log
    changes. Vectors, candidates and LLM answers are all kept, so a rerun pays only for what is new."""
    s = settings.get()
    base_key, snapshot = keys_of(context)
    meta: dict = {}
    with timed(meta):
        log = eval_sets.read_log()
        summary = eval_sets.build(s.eval_set_builder.queries.stem, log, corpus,
                                  corpus_source.snapshots().load(snapshot), eval_sets.retrievers(base_key),
                                  embeddings, baselines, reporter=reporter(context, s))
    export = summary.pop("export")
    return dg.Output(summary, metadata={
        **meta, **{k: v for k, v in summary.items() if isinstance(v, (int, float, str))},
        "retrievers": ", ".join(summary["retrievers"]), "judgments": export["judgments"],
        "judged_queries": export["queries"], "judges": ", ".join(export["judges"]),
        "eval_set_file": dg.MetadataValue.path(summary["eval_set_file"])})
