import pytest
import yaml

from embtune_pipeline.lib.registry.tracking import Tracker, artifact_location, is_remote, serving_requirements


def test_training_run_is_live_before_the_model_and_logs_a_loadable_sentence_transformers_model(tmp_path, tiny_model):
    t = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}", "exp", tmp_path / "artifacts", "http://127.0.0.1:5000")
    run_id = t.start_training("run", {"epochs": 1}, {"base_model": "m"})
    for step, loss in ((1, 2.0), (2, 1.5)):
        t.log_metrics(run_id, step, {"train_loss": loss, "validation_ndcg@10": step / 4})
    live = t.mlflow.get_run(run_id)  # what the MLflow UI shows while it trains
    assert live.info.status == "RUNNING" and live.data.metrics["validation_ndcg_at_10"] == 0.5
    assert [m.value for m in t.client.get_metric_history(run_id, "train_loss")] == [2.0, 1.5]
    assert t.start_training("run", {}, {}, resume_run_id=run_id) == run_id  # a resumed training goes on in it
    logged = t.finish_training(run_id, tiny_model, {"pairs_per_epoch": 10}, {"training_key": "k"})
    t.log_evaluation(logged.run_id, {"tuned_ndcg@10": 0.5}, {"promotable": False}, [tiny_model / "modules.json"])
    run = t.mlflow.get_run(logged.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["epochs"] == "1" and run.data.params["pairs_per_epoch"] == "10"
    assert run.data.tags["base_model"] == "m" and run.data.tags["training_key"] == "k"
    assert run.data.metrics["tuned_ndcg_at_10"] == 0.5
    assert t.mlflow.artifacts.load_dict(f"runs:/{logged.run_id}/eval/eval_report.json") == {"promotable": False}
    experiment = t.mlflow.get_experiment(t.experiment_id)  # opens as model development, not GenAI traces
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    assert logged.model_uri.startswith("models:/m-")
    mlmodel = yaml.safe_load(next((tmp_path / "artifacts").rglob("MLmodel")).read_text())
    assert "sentence_transformers" in mlmodel["flavors"] and "python_function" in mlmodel["flavors"]
    assert mlmodel["signature"]["inputs"]  # inferred from the input example
    requirements = next((tmp_path / "artifacts").rglob("requirements.txt")).read_text().split()
    assert set(serving_requirements()) <= set(requirements)
    assert t.run_url(logged.run_id).endswith(f"/runs/{logged.run_id}?workflowType=machine_learning")  # not GenAI


def test_artifacts_go_to_the_server_store_when_the_tracking_uri_is_a_server(tmp_path):
    assert is_remote("http://mlflow:5000") and is_remote("https://mlflow.example.org")
    assert not is_remote("sqlite:///x.db") and not is_remote("/tmp/mlruns")
    assert not is_remote("postgresql+psycopg2://u@h/db")
    assert artifact_location("http://mlflow:5000", tmp_path) is None
    assert artifact_location("sqlite:///x.db", tmp_path) == tmp_path.resolve().as_uri()


def test_a_failed_training_is_marked_failed_and_its_resumption_goes_on_in_the_same_run(tmp_path):
    t = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}", "exp", tmp_path / "artifacts")
    checkpoints = tmp_path / "ckpt"
    with pytest.raises(RuntimeError, match="boom"):
        with t.training_run(checkpoints, "run", {"epochs": 1}, {"dagster_run_id": "first"}) as first:
            raise RuntimeError("boom")
    assert t.mlflow.get_run(first).info.status == "FAILED"
    with t.training_run(checkpoints, "run", {"epochs": 1}, {"dagster_run_id": "second"}) as resumed:
        assert t.mlflow.get_run(resumed).info.status == "RUNNING"
    assert resumed == first and t.mlflow.get_run(first).data.tags["dagster_run_id"] == "second"
    t.client.delete_run(first)  # a run deleted in the UI is not resumed: a new one opens
    fresh = t.start_training("run", {}, {}, resume_run_id=first)
    assert fresh != first and t.mlflow.get_run(fresh).info.status == "RUNNING"
