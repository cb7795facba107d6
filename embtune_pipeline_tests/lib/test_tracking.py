from embtune_pipeline.lib.tracking import Tracker, is_secret, safe_params, secret_keys


def test_secrets_never_reach_params():
    params = safe_params({"epochs": 1, "api_key": "sk-123", "generator": {"api_base": "http://x", "auth_token": "t"},
                          "max_tokens": 64})
    assert params == {"epochs": 1, "generator.api_base": "http://x", "max_tokens": 64}


def test_secret_names_are_whole_words():
    assert all(map(is_secret, ["api_key", "apiKey", "OPENAI_API_KEY", "Authorization", "auth-token", "password"]))
    assert not any(map(is_secret, ["max_tokens", "keyword_boost", "monkey", "temperature"]))
    assert secret_keys({"extra_headers": {"Authorization": "Bearer x"}, "max_tokens": 9}) == [
        "extra_headers.Authorization"]


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
