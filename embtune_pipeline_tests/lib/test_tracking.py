from embtune_pipeline.lib.tracking import Tracker


def test_training_run_is_logged_with_model_and_metrics(tmp_path):
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "config.json").write_text("{}")
    t = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}", "exp", tmp_path / "artifacts", "http://127.0.0.1:5000")
    run_id = t.log_training("run", {"epochs": 1}, [(1, 2.0), (2, 1.5)], model_dir, {"base_model": "m"})
    t.log_evaluation(run_id, {"tuned_ndcg@10": 0.5}, [model_dir / "config.json"])
    run = t.mlflow.get_run(run_id)
    assert run.data.params["epochs"] == "1" and run.data.tags["base_model"] == "m"
    assert run.data.metrics["tuned_ndcg_at_10"] == 0.5
    assert list((tmp_path / "artifacts").rglob("config.json"))
    assert t.run_url(run_id).endswith(f"/runs/{run_id}")
