import yaml

from embtune_pipeline.lib.tracking import Tracker, artifact_location, is_remote, serving_requirements


def test_training_run_logs_a_loadable_sentence_transformers_model(tmp_path, tiny_model):
    t = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}", "exp", tmp_path / "artifacts", "http://127.0.0.1:5000")
    logged = t.log_training("run", {"epochs": 1}, [(1, 2.0), (2, 1.5)], tiny_model, {"base_model": "m"})
    t.log_evaluation(logged.run_id, {"tuned_ndcg@10": 0.5}, [tiny_model / "modules.json"])
    run = t.mlflow.get_run(logged.run_id)
    assert run.data.params["epochs"] == "1" and run.data.tags["base_model"] == "m"
    assert run.data.metrics["tuned_ndcg_at_10"] == 0.5
    assert logged.model_uri.startswith("models:/m-")
    mlmodel = yaml.safe_load(next((tmp_path / "artifacts").rglob("MLmodel")).read_text())
    assert "sentence_transformers" in mlmodel["flavors"] and "python_function" in mlmodel["flavors"]
    assert mlmodel["signature"]["inputs"]  # inferred from the input example
    requirements = next((tmp_path / "artifacts").rglob("requirements.txt")).read_text().split()
    assert set(serving_requirements()) <= set(requirements)
    assert t.run_url(logged.run_id).endswith(f"/runs/{logged.run_id}")


def test_artifacts_go_to_the_server_store_when_the_tracking_uri_is_a_server(tmp_path):
    assert is_remote("http://mlflow:5000") and is_remote("https://mlflow.example.org")
    assert not is_remote("sqlite:///x.db") and not is_remote("/tmp/mlruns")
    assert not is_remote("postgresql+psycopg2://u@h/db")
    assert artifact_location("http://mlflow:5000", tmp_path) is None
    assert artifact_location("sqlite:///x.db", tmp_path) == tmp_path.resolve().as_uri()
