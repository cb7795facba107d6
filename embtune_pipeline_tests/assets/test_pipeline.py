"""The real assets through dagster.materialize on tiny data with a tiny model."""

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from embtune_pipeline.lib.data.ingest import normalize_query
from embtune_pipeline.lib.registry.versions import ModelRegistry
from embtune_pipeline.lib.training.record import MODEL_RECORD, read_model_record
from embtune_pipeline_tests.conftest import (
    asset_metadata,
    jaguar_docs,
    read_stored,
    report_of,
    run_pipeline,
    stored,
    tiny_run_defaults,
    write_jsonl,
)

pytestmark = pytest.mark.slow


LEARNS = {"ops": {"finetuned_model": {"config": {"learning_rate": 1e-3, "epochs": 4}}}}  # the tiny model learns
# tiny data holds too few queries for the default validation split: take more of them, accept fewer
VALIDATES = {"ops": {"finetuned_model": {"config": {**LEARNS["ops"]["finetuned_model"]["config"],
                                                   "validation_fraction": 0.3, "validation_min_queries": 10}}}}


def test_beir_corpus_end_to_end_then_a_rerun_reuses_paid_work(jaguar_beir, write_settings, tmp_path, openai_server,
                                                              tiny_embed, tiny_model):
    run = tiny_run_defaults()
    run["mining"]["approximate_above_chunks"] = 0  # mined through the HNSW index, as a large corpus is
    api = openai_server(embed=tiny_embed)  # an embedding API serving the base model: it must score as the base
    baselines = [{"model": "openai/tiny-embedder", "label": "tiny-api", "params": {"api_base": api.api_base},
                  "usd_per_million_tokens": 0}, str(tiny_model)]
    settings = write_settings(corpus={"path": str(jaguar_beir), "format": "beir"}, run=run, baselines=baselines)
    result = run_pipeline(settings, run_config=VALIDATES)
    assert result.success
    data = tmp_path / "data"
    report = report_of(data)
    assert report["eval_set"] == {"source": str(jaguar_beir), "synthetic": False,
                                  "queries": pd.read_csv(jaguar_beir / "qrels" / "test.tsv", sep="\t").shape[0]}
    for side in ("base", "finetuned"):
        assert set(report[side]) == {"ndcg@10", "recall@10", "recall@100", "mrr@10"}
        assert all(0 <= v <= 1 for v in report[side].values())
    assert report["model_dir"].startswith(str(data / "models"))
    assert next((data / "reports").glob("*/*/eval_report.png")).stat().st_size > 1000
    assert [b["name"] for b in report["baselines"]] == ["tiny-api", "st"]
    for b in report["baselines"]:
        assert b["ndcg@10"] == pytest.approx(report["base"]["ndcg@10"], abs=1e-6)
        assert b["vs_tuned"]["delta"] == pytest.approx(report["comparison"]["delta"], abs=1e-6)
    assert "baseline tiny-api (nDCG@10" in asset_metadata(result, "eval_report")["verdict"]
    assert "| tiny-api |" in next((data / "reports").glob("*/*/eval_report.md")).read_text()
    sent = api.embedded_texts
    assert sent == asset_metadata(result, "baseline_eval")["costs"][0]["texts_encoded"] > 0

    pairs = read_stored(data, "training_pairs")
    evals = read_stored(data, "eval_set")
    assert set(pairs["source"]) == {"qa_pairs", "synthetic"}
    assert not set(pairs["query"].map(normalize_query)) & set(evals["query"].map(normalize_query))
    assert pairs["provenance"].str.len().min() > 0

    negatives = read_stored(data, "hard_negatives")
    chunks = read_stored(data, "corpus")
    doc_of_chunk = dict(zip(chunks["chunk_id"], chunks["doc_id"]))
    positives_of = pairs.groupby("query")["positive_doc_id"].agg(set)
    for row in negatives.itertuples():
        assert len(row.mined_chunk_ids) == 1
        assert doc_of_chunk[row.mined_chunk_ids[0]] not in positives_of[row.anchor]
    mined = asset_metadata(result, "hard_negatives")
    assert (mined["corpus_index"], mined["corpus_index_reused"]) == ("hnsw", False)

    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks["eval_set_is_real"] is True and "promotion_gate" in checks

    tuned = asset_metadata(result, "finetuned_model")  # checkpoint and WiSE-FT ratio chosen on held-out queries
    print({k: v for k, v in tuned.items() if ("valid" in k or "interp" in k) and not k.startswith("chart")})
    # 30% of the BEIR train queries (real Q&A pairs) held out: at least validation_min_queries, so they validate
    assert tuned["validation_source"] == "real" and tuned["validation_queries"] >= 10
    assert tuned["training_pairs"] < len(negatives)  # the validation queries did not train
    assert 0 < tuned["pairs_per_epoch"] <= tuned["training_pairs"]  # fewer when sources are balanced
    record = read_model_record(Path(report["model_dir"]))
    # the record and the report are stored once: the record beside the model, the report as the asset's value
    assert json.loads(stored(data, "finetuned_model", ".json").read_text()) == {
        "model_record": str(Path(report["model_dir"]) / MODEL_RECORD)}
    assert not list((data / "reports").rglob("*.json"))
    assert sum(record["training_pairs_by_source"].values()) == tuned["training_pairs"]
    assert record["pairs_per_epoch"] == tuned["pairs_per_epoch"]
    assert not list((settings.parent / "data" / "checkpoints").glob("*/checkpoint-*"))  # removed after success
    alpha_scores = record["validation"]["alpha_scores"]  # the saved ratio is the best one on validation
    assert set(alpha_scores) == {"1.0", "0.75", "0.5"} and tuned["validation_best_step"] > 0
    assert alpha_scores[str(tuned["interpolation_alpha"])] == max(alpha_scores.values())
    assert tuned["validation_best_ndcg@10"] == round(max(alpha_scores.values()), 4)

    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{data / 'mlflow.db'}")
    run = mlflow.get_run(report["mlflow_run_id"])
    assert run.data.tags["dagster_run_id"] == result.run_id
    assert "tuned_ndcg_at_10" in run.data.metrics
    # the run's last validation score is the saved model's (a checkpoint and a weight mix), and the loss is named
    assert run.data.metrics["validation_ndcg_at_10"] == max(alpha_scores.values())
    assert run.data.params["loss"] in ("mnrl", "gist") and run.data.params["loss_setting"] == "auto"

    registered = asset_metadata(result, "registered_model")
    assert registered["alias"] == "champion" and registered["previous_champion"] == ""
    version = ModelRegistry(f"sqlite:///{data / 'mlflow.db'}", "embtune").champion()
    assert version.version == registered["version"]
    assert version.tags["dagster_run_id"] == result.run_id
    assert version.tags["snapshot"] in report["partition"]["snapshot"]
    assert float(version.tags["tuned_ndcg_at_10"]) == round(report["finetuned"]["ndcg@10"], 4)

    # encode-only work ran on the exported model (OpenVINO, on this CPU), which agreed with PyTorch first
    assert asset_metadata(result, "base_corpus_embeddings")["encoded_with"] == "openvino"
    serving = report["serving"]  # the tuned model's ONNX and int8 forms, beside it and in its MLflow run
    exports = Path(report["model_dir"]) / "serving"
    assert serving["export_dir"] == str(exports) and {"model.onnx", "model_int8.onnx"} <= {
        p.name for p in exports.iterdir()}
    assert serving["fp32_agreement"]["least_cosine"] >= 0.999  # checked before it is published
    assert 0 <= serving["int8"]["ndcg@10"] <= 1 and min(serving["docs_per_s"].values()) > 0
    assert float(version.tags["int8_ndcg_at_10"]) == round(serving["int8"]["ndcg@10"], 4)
    # the fp32 export is timed under OpenVINO too, where it agrees (the encoder's check, copied with the export),
    # and the version names the fastest form
    assert serving["openvino_agreement"]["least_cosine"] >= 0.999 and "openvino" in serving["docs_per_s"]
    fastest = serving["fastest"]
    assert serving["docs_per_s"][fastest["form"]] == max(serving["docs_per_s"].values())
    assert version.tags["fastest_serving_form"].startswith(fastest["runs"])
    logged = {a.path for a in mlflow.MlflowClient().list_artifacts(report["mlflow_run_id"], "serving")}
    assert {"serving/model.onnx", "serving/model_int8.onnx"} <= logged

    again = run_pipeline(settings, run_config=VALIDATES)
    assert asset_metadata(again, "base_corpus_embeddings")["embedding_cache_misses"] == 0
    assert api.embedded_texts == sent and asset_metadata(again, "baseline_eval")["texts_encoded"] == 0
    assert asset_metadata(again, "hard_negatives")["corpus_index_reused"] is True  # built once per snapshot
    assert asset_metadata(again, "finetuned_model")["reused"] is True
    assert asset_metadata(again, "registered_model")["version"] == registered["version"]  # not registered twice
    # the exports beside the model leave its fingerprint, and so its cached vectors, as they were
    assert asset_metadata(again, "eval_report")["embedding_cache_misses"] == 0
    assert report_of(data)["serving"]["int8_texts_encoded"] == 0 < serving["int8_texts_encoded"]


def test_without_eval_queries_the_eval_set_is_synthetic_and_never_promotable(write_settings, tmp_path):
    corpus = write_jsonl(tmp_path / "docs.jsonl", jaguar_docs())
    settings = write_settings(corpus={"path": str(corpus), "format": "jsonl"})
    result = run_pipeline(settings, run_config={"ops": {"finetuned_model": {"config": {"matryoshka_dims": [16]}}}},
                          selection=["*eval_report"], raise_on_error=False)
    report = report_of(tmp_path / "data")
    assert report["eval_set"]["synthetic"] is True and report["promotable"] is False
    assert set(report["by_dim"]) == {"32", "16"}
    verdict = asset_metadata(result, "eval_report")["verdict"]
    assert verdict.startswith("not promotable: ") and "synthetic queries" in verdict
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks["eval_set_is_real"] is False and checks["tuning_is_worth_it"] is False
    assert checks["promotion_gate"] is False  # the page never says "Passed" for a model it will not promote


def test_click_logs_provide_held_out_real_eval_queries(write_settings, tmp_path):
    docs = jaguar_docs()
    corpus = write_jsonl(tmp_path / "docs.jsonl", docs)
    clicks = pd.DataFrame({"query": [f"{d['title']} question {k}" for d in docs for k in range(3)],
                           "doc_id": [d["id"] for d in docs for _ in range(3)]})
    clicks["clicked"] = 1
    clicks.loc[0, "clicked"] = 0  # shown but not clicked: never a positive
    clicks.to_csv(tmp_path / "clicks.csv", index=False)
    faq = write_jsonl(tmp_path / "faq.jsonl", [{"question": "does jaguar support dark mode", "answer": "Yes, in 2.0."}])
    settings = write_settings(corpus={"path": str(corpus), "format": "jsonl"},
                              click_logs={"path": str(tmp_path / "clicks.csv"), "score_column": "clicked"},
                              qa_pairs={"path": str(faq), "query_column": "question", "doc_id_column": None,
                                        "answer_column": "answer"})
    result = run_pipeline(settings, selection=["corpus", "corpus_sample", "user_pairs", "synthetic_queries",
                                              "eval_set", "training_pairs"])
    meta = asset_metadata(result, "eval_set")
    assert meta["source"] == "held-out click_logs" and meta["synthetic"] is False
    pairs = read_stored(tmp_path / "data", "training_pairs")
    evals = read_stored(tmp_path / "data", "eval_set")
    train_clicks = pairs[pairs["source"] == "click_logs"]
    meta = asset_metadata(result, "training_pairs")
    assert meta["dropped_not_relevant"] == 1
    assert len(train_clicks) + meta["dropped_leaked_eval_queries"] + 1 == len(clicks)
    assert not set(train_clicks["query"]) & set(evals["query"])
    faq_pair = pairs[pairs["source"] == "qa_pairs"].iloc[0]
    assert faq_pair["positive"] == "Yes, in 2.0." and pd.isna(faq_pair["positive_doc_id"])


def test_bad_corpus_row_fails_naming_file_and_line_or_is_quarantined(write_settings, tmp_path):
    corpus = write_jsonl(tmp_path / "docs.jsonl", jaguar_docs())
    with corpus.open("a") as f:
        f.write('{"id": "broken", "text": \n')
    settings = write_settings(corpus={"path": str(corpus), "format": "jsonl"})
    with pytest.raises(Exception) as err:
        run_pipeline(settings, selection="corpus")
    assert f"{corpus}, line 51: malformed JSON" in str(err.value)

    settings = write_settings(corpus={"path": str(corpus), "format": "jsonl", "bad_rows": "quarantine"})
    result = run_pipeline(settings, selection="corpus")
    meta = asset_metadata(result, "corpus")
    assert meta["quarantined_rows"] == 1
    quarantined = Path(meta["quarantine_file"]).read_text()
    assert json.loads(quarantined)["row"] == "line 51"


def test_bad_settings_fail_before_any_work(tmp_path, tiny_model):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"corpus": {"format": "jsonl", "path": str(tmp_path / "absent.jsonl")}}))
    with pytest.raises(Exception, match="corpus.path: no such file or directory"):
        run_pipeline(path, selection="corpus")


def test_llm_generation_goes_through_litellm_and_a_rerun_pays_nothing(write_settings, tmp_path):
    corpus = write_jsonl(tmp_path / "docs.jsonl", jaguar_docs())
    answer = "Here are 2 questions:\n1. How do I reset my Jaguar device?\n2. What does the amber light mean?"
    settings = write_settings(corpus={"path": str(corpus), "format": "jsonl"},
                              generator={"model": "openai/gpt-4o-mini", "params": {"mock_response": answer}})
    steps = ["corpus", "corpus_sample", "user_pairs", "synthetic_queries"]
    first = asset_metadata(run_pipeline(settings, selection=steps), "synthetic_queries")
    assert first["llm_calls"] == 40 and first["cache_hits"] == 0  # sample_size 40
    assert first["generated"] == 80 and first["rejected_duplicate"] == 78 and first["kept"] == 2
    again = asset_metadata(run_pipeline(settings, selection=steps), "synthetic_queries")
    assert again["llm_calls"] == 0 and again["cache_hits"] == 40


def test_the_promotion_gate_blocks_a_deliberately_worse_model(jaguar_beir, write_settings, tmp_path):
    settings = write_settings(corpus={"path": str(jaguar_beir), "format": "beir"})
    ruin = {"ops": {"finetuned_model": {"config": {"learning_rate": 0.5, "epochs": 2}}}}
    result = run_pipeline(settings, run_config=ruin, raise_on_error=False)
    assert not result.success
    gate = next(e for e in result.get_asset_check_evaluations() if e.check_name == "promotion_gate")
    assert gate.passed is False and gate.metadata["ci_high"].value < 0
    assert result.asset_materializations_for_node("eval_report")  # measured and reported...
    assert not result.asset_materializations_for_node("registered_model")  # ...but never registered
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'data' / 'mlflow.db'}")
    assert client.search_model_versions("name='embtune'") == []


def test_balanced_training_pays_only_for_the_synthetic_pairs_its_epochs_draw(jaguar_beir, write_settings, tmp_path):
    import math

    run = tiny_run_defaults()
    run["train"].update({"validation_fraction": 0.3, "validation_min_queries": 5})  # real queries validate
    settings = write_settings(corpus={"path": str(jaguar_beir), "format": "beir"}, run=run)
    result = run_pipeline(settings, selection="*hard_negatives")
    assert result.success
    pairs, rows = read_stored(tmp_path / "data", "training_pairs"), read_stored(tmp_path / "data", "hard_negatives")
    real = int((pairs["source"] != "synthetic").sum())
    batch = run["train"]["batch_size"]
    draws = math.ceil(run["train"]["epochs"]) * math.ceil(real / batch) * batch
    generated = asset_metadata(result, "synthetic_queries")
    assert generated["chunks_not_generated"] > 0  # queries for fewer chunks than the sample holds
    assert (rows["source"] != "synthetic").sum() == real  # every real pair is mined
    assert (rows["source"] == "synthetic").sum() == draws < (pairs["source"] == "synthetic").sum()
    assert asset_metadata(result, "hard_negatives")["pairs_not_mined_beyond_balanced_epochs"] == len(pairs) - len(rows)
