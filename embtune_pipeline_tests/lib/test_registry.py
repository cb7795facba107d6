"""MLflow registry aliases, rollback, and index bindings, against a real local MLflow store."""

import pytest

from embtune_pipeline.lib.registry import ModelRegistry, bind_index, read_bindings, stale_indexes


def logged_run(tracking_uri: str, tmp_path, name: str) -> str:
    """A training run with a (tiny, fake) model directory logged as its `model` artifact."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    model_dir = tmp_path / name
    model_dir.mkdir()
    (model_dir / "modules.json").write_text("[]")
    with mlflow.start_run(run_name=name) as run:
        mlflow.log_artifacts(str(model_dir), artifact_path="model")
    return run.info.run_id


@pytest.fixture
def registry(tmp_path):
    return ModelRegistry(f"sqlite:///{tmp_path / 'mlflow.db'}", "embtune", "http://mlflow.local")


def test_versions_are_tagged_and_aliases_move_and_roll_back(registry, tmp_path):
    uri = registry.tracking_uri
    v1 = registry.register(logged_run(uri, tmp_path, "m1"), {"base_model": "minilm", "tuned_ndcg@10": 0.7})
    v2 = registry.register(logged_run(uri, tmp_path, "m2"), {"base_model": "minilm", "tuned_ndcg@10": 0.72})
    assert (v1.version, v2.version) == ("1", "2")
    assert v1.tags == {"base_model": "minilm", "tuned_ndcg_at_10": "0.7"}
    assert registry.champion() is None

    assert registry.promote(v1.version) is None
    registry.set_challenger(v2.version)
    assert registry.champion().version == "1" and registry.by_alias("challenger").version == "2"

    assert registry.promote(v2.version) == "1"
    assert registry.champion().version == "2"
    assert registry.by_alias("challenger") is None  # the challenger won
    assert registry.get("2").tags["previous_champion"] == "1"

    assert registry.rollback() == ("2", "1")
    assert registry.champion().version == "1"
    assert "rolled_back_at" in registry.get("2").tags
    with pytest.raises(ValueError, match="replaced no earlier version"):
        registry.rollback()
    assert registry.version_url("2") == "http://mlflow.local/#/models/embtune/versions/2"


def test_a_version_is_found_locally_or_downloaded_from_mlflow(registry, tmp_path):
    version = registry.register(logged_run(registry.tracking_uri, tmp_path, "m1"), {"model_dir": str(tmp_path / "m1")})
    assert registry.local_dir(version, tmp_path / "dl") == str(tmp_path / "m1")
    (tmp_path / "m1" / "modules.json").unlink()  # the training machine's copy is gone
    fetched = registry.local_dir(version, tmp_path / "dl")
    assert fetched == str(tmp_path / "dl" / "embtune-v1") and (tmp_path / "dl" / "embtune-v1" / "modules.json").exists()


def test_index_bindings_flag_indexes_left_on_an_older_version(tmp_path):
    path = tmp_path / "index_bindings.json"
    assert read_bindings(path) == {}
    bind_index(path, "docs-prod", "embtune", "1")
    bind_index(path, "docs-staging", "embtune", "2")
    bind_index(path, "other", "another-model", "9")
    assert set(read_bindings(path)) == {"docs-prod", "docs-staging", "other"}
    assert stale_indexes(read_bindings(path), "embtune", "2") == {"docs-prod": "1"}
    bind_index(path, "docs-prod", "embtune", "2")  # re-embedded
    assert stale_indexes(read_bindings(path), "embtune", "2") == {}
    assert stale_indexes(read_bindings(path), "embtune", None) == {}
    with pytest.raises(ValueError, match="index name"):
        bind_index(path, " ", "embtune", "2")
    path.write_text("{broken")
    with pytest.raises(ValueError, match="index_bindings.json: not valid JSON"):
        read_bindings(path)
