"""base_model_eval, eval_report: the base and the tuned model on the same eval set."""


import json

import dagster as dg
import pandas as pd

from embtune_pipeline.assets._common import (
    cache_metadata,
    effective,
    embedding_store,
    model_store,
    optional_config,
    png_markdown,
    records_table,
    reporter,
    rounded,
    table_metadata,
    timed,
)
from embtune_pipeline.lib.data.chunking import chunk_doc_ids, chunk_texts
from embtune_pipeline.lib.embeddings import encode_cached, model_if_needed, text_hash
from embtune_pipeline.lib.evaluation.evaluate import METRICS, compare_by_dim, evaluate_vectors, qrels_of, summarize
from embtune_pipeline.lib.evaluation.report import (
    build_report,
    chart_png,
    comparison_records,
    comparison_rows,
    interval,
    markdown_table,
    verdict,
)
from embtune_pipeline.partitions import RETUNE_PARTITIONS, keys_of
from embtune_pipeline.resources.mlflow import MlflowResource
from embtune_pipeline.resources.settings import SettingsResource
from embtune_pipeline.settings import EvalKnobs

EvalConfig = optional_config(EvalKnobs, "EvalConfig")
EVAL_CHART = "chart: base vs tuned, 95% confidence intervals"


@dg.asset(group_name="evaluation", kinds={"sentence_transformers", "parquet"}, partitions_def=RETUNE_PARTITIONS)
def base_model_eval(context: dg.AssetExecutionContext, config: EvalConfig, settings: SettingsResource,
                    eval_set: pd.DataFrame, corpus: pd.DataFrame,
                    base_corpus_embeddings: dict) -> dg.Output[pd.DataFrame]:
    """The baseline, measured first: per-query nDCG@10, Recall@10/100, MRR@10 of the base model."""
    s = settings.get()
    knobs = effective(s.run.evaluate, config)
    emb = base_corpus_embeddings
    store = embedding_store(s, emb["key"])
    qids, texts, gains = qrels_of(eval_set)
    meta: dict = {}
    with timed(meta):
        model = model_if_needed(store, [text_hash(t) for t in texts], emb["model_path"], emb["max_seq_length"])
        query_vecs, encoded = encode_cached(store, model, texts, emb["batch_size"], reporter(context, s))
        per_query = evaluate_vectors(query_vecs, store.get(corpus["chunk_hash"].tolist()), chunk_doc_ids(corpus),
                                     qids, gains)
    summary = summarize(per_query, knobs.bootstrap_samples)
    meta.update({
        **{m: rounded(v["mean"]) for m, v in summary.items()},
        "summary": records_table([{"metric": m, "mean": rounded(v["mean"]),
                                   "95% CI": interval(v["ci_low"], v["ci_high"])} for m, v in summary.items()]),
        **cache_metadata(len(set(texts)), encoded),
        "queries": len(per_query),
        "eval_synthetic": bool(eval_set["synthetic"].iloc[0]),
        "base_model": emb["base_model"],
        **table_metadata(per_query),
    })
    return dg.Output(per_query, metadata=meta)


@dg.asset(group_name="evaluation", kinds={"mlflow", "json"}, partitions_def=RETUNE_PARTITIONS)
def eval_report(context: dg.AssetExecutionContext, config: EvalConfig, settings: SettingsResource,
                mlflow: MlflowResource, eval_set: pd.DataFrame, corpus: pd.DataFrame, base_corpus_embeddings: dict,
                base_model_eval: pd.DataFrame, finetuned_model: dict) -> dg.Output[dict]:
    """Tuned vs base on the same eval set (per Matryoshka dim when trained so), with a paired bootstrap interval
    on the nDCG@10 difference: a model is promotable only when that interval lies above zero on real queries."""
    s = settings.get()
    knobs = effective(s.run.evaluate, config)
    emb, tuned = base_corpus_embeddings, finetuned_model
    base_store = embedding_store(s, emb["key"])
    qids, texts, gains = qrels_of(eval_set)
    docs = chunk_doc_ids(corpus)
    meta: dict = {}
    with timed(meta):
        tuned_store = model_store(s, tuned["model_dir"], tuned["max_seq_length"])
        tuned_model = model_if_needed(tuned_store, [*corpus["chunk_hash"], *(text_hash(t) for t in texts)],
                                      tuned["model_dir"], tuned["max_seq_length"])
        progress = reporter(context, s)
        tuned_corpus, corpus_encoded = tuned_store.encode(tuned_model, corpus["chunk_hash"].tolist(),
                                                          chunk_texts(corpus), emb["batch_size"], progress,
                                                          "encoding the corpus with the tuned model")
        tuned_queries, queries_encoded = encode_cached(tuned_store, tuned_model, texts, emb["batch_size"], progress)
        base_corpus = base_store.get(corpus["chunk_hash"].tolist())
        base_queries = base_store.get([text_hash(t) for t in texts])  # stored by base_model_eval
        base_by_dim, tuned_by_dim, comparison = compare_by_dim(
            base_queries, base_corpus, tuned_queries, tuned_corpus, base_model_eval, docs, qids, gains,
            tuned.get("matryoshka_dims"), knobs.bootstrap_samples)
    full = str(base_corpus.shape[1])
    synthetic = bool(eval_set["synthetic"].iloc[0])
    eval_info = {"source": eval_set["eval_source"].iloc[0], "synthetic": synthetic, "queries": len(qids)}
    report = build_report(tuned, eval_info, base_by_dim, tuned_by_dim, comparison, full)
    report["partition"] = {"base_model": keys_of(context)[0], "snapshot": keys_of(context)[1]}

    rows = comparison_rows(base_by_dim, tuned_by_dim)
    table = markdown_table(rows, synthetic)
    reports = s.layout.reports(context.partition_key)
    reports.mkdir(parents=True, exist_ok=True)
    kind = "synthetic" if synthetic else "real"
    chart = chart_png(rows, reports / "eval_report.png", f"{tuned['name']} vs its base, {len(qids)} {kind} queries")
    (reports / "eval_report.md").write_text(table + "\n")
    report_file = reports / "eval_report.json"
    report_file.write_text(json.dumps(report, indent=2))
    mlflow.tracker().log_evaluation(
        tuned["mlflow_run_id"],
        {**{f"base_{m}": report["base"][m] for m in METRICS}, **{f"tuned_{m}": report["finetuned"][m] for m in METRICS},
         "ndcg@10_delta_ci_low": comparison["ci_low"]},
        [report_file, chart, reports / "eval_report.md"])
    return dg.Output(report, metadata={
        "verdict": verdict(report),
        "promotable": report["promotable"],
        "comparison": records_table(comparison_records(rows)),
        "base_ndcg@10": rounded(report["base"]["ndcg@10"]),
        "tuned_ndcg@10": rounded(report["finetuned"]["ndcg@10"]),
        "ndcg@10_delta": rounded(comparison["delta"]),
        "ndcg@10_delta_ci_low": rounded(comparison["ci_low"]),
        "ndcg@10_delta_ci_high": rounded(comparison["ci_high"]),
        "eval_synthetic": synthetic,
        "eval_queries": len(qids),
        EVAL_CHART: png_markdown(chart, "base and tuned metrics with 95% confidence intervals"),
        **cache_metadata(len(corpus) + len(set(texts)), corpus_encoded + queries_encoded),
        "report_file": dg.MetadataValue.path(str(report_file)),
        "mlflow_run": dg.MetadataValue.url(tuned["mlflow_run_url"]),
        **meta,
    })
