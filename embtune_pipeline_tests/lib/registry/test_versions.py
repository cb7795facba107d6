"""MLflow registry aliases, rollback, and index bindings, against a real local MLflow store (and a port where no
server listens)."""

import time
from pathlib import Path

import pytest

from embtune_pipeline.lib.registry.versions import ModelRegistry, bind_index, read_bindings, stale_indexes
from embtune_pipeline_tests.servers import free_port


def logged_run(registry: ModelRegistry, model_dir, name: str) -> tuple[str, str]:
    """A training run that logged `model_dir` with the sentence_transformers flavor: (run id, model URI)."""
    from embtune_pipeline.lib.registry.tracking import Tracker

    artifacts = Path(registry.tracking_uri.removeprefix("sqlite:///")).with_name("artifacts")  # beside the store
    tracker = Tracker(registry.tracking_uri, "test", artifacts)
    logged = tracker.finish_training(tracker.start_training(name, {}, {}), model_dir, {}, {})
    return logged.run_id, logged.model_uri


@pytest.fixture
def registry(tmp_path):
    return ModelRegistry(f"sqlite:///{tmp_path / 'mlflow.db'}", "embtune", "http://mlflow.local")


def test_versions_are_tagged_and_aliases_move_and_roll_back(registry, tiny_model):
    v1 = registry.register(*logged_run(registry, tiny_model, "m1"), {"base_model": "minilm", "tuned_ndcg@10": 0.7})
    v2 = registry.register(*logged_run(registry, tiny_model, "m2"), {"base_model": "minilm", "tuned_ndcg@10": 0.72})
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


def test_the_champion_loads_with_mlflow_and_locally(registry, tmp_path, tiny_model):
    import shutil

    import mlflow

    trained = tmp_path / "m1"
    shutil.copytree(tiny_model, trained)
    version = registry.register(*logged_run(registry, trained, "m1"), {"model_dir": str(trained)})
    registry.promote(version.version)
    mlflow.set_tracking_uri(registry.tracking_uri)
    served = mlflow.sentence_transformers.load_model("models:/embtune@champion")
    assert served.encode(["reset the Jaguar X1"]).shape == (1, 32)
    assert mlflow.pyfunc.load_model("models:/embtune@champion").predict(["reset the Jaguar X1"]).shape == (1, 32)

    assert registry.local_dir(version, tmp_path / "dl") == str(trained)
    shutil.rmtree(trained)  # the training machine's copy is gone
    fetched = registry.local_dir(version, tmp_path / "dl")
    assert fetched == str(tmp_path / "dl" / "embtune-v1") and (tmp_path / "dl" / "embtune-v1" / "modules.json").exists()
    assert [p.name for p in (tmp_path / "dl").iterdir()] == ["embtune-v1"]  # the download folder is cleaned up


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


@pytest.mark.parametrize("text,problem", [
    ('["docs-prod"]', "expected an object of index bindings, found list"),
    ('{"docs-prod": "1"}', "index 'docs-prod' has no model, version, bound_at"),
    ('{"docs-prod": {"model": "embtune", "version": "1"}}', "index 'docs-prod' has no bound_at"),
    (b"\xff\xfe{}", "not valid JSON"),
])
def test_a_damaged_bindings_file_is_one_line_naming_it(tmp_path, text, problem):
    path = tmp_path / "index_bindings.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(ValueError) as raised:
        read_bindings(path)
    assert str(raised.value).startswith(f"{path}: ") and problem in str(raised.value)
    assert "\n" not in str(raised.value)
    with pytest.raises(ValueError):
        bind_index(path, "docs-staging", "embtune", "2")
    assert path.read_bytes() == (text if isinstance(text, bytes) else text.encode())  # nothing written over


def test_a_version_that_does_not_exist_is_one_line(registry):
    run_id = registry_run(registry)
    registry.register(run_id, f"runs:/{run_id}/model", {})
    for missing in ("99", "abc"):
        with pytest.raises(ValueError) as raised:
            registry.promote(missing)
        assert str(raised.value) == f"embtune has no version {missing} at {registry.tracking_uri} (its versions: 1)"
    assert registry.champion() is None


def fail_fast_env(monkeypatch) -> None:
    """MLflow's waits as fail_fast sets them, undone after the test (fail_fast keeps what is already set)."""
    from embtune_pipeline.lib.registry.versions import FAIL_FAST_HTTP

    for name, value in FAIL_FAST_HTTP.items():
        monkeypatch.setenv(name, value)


def test_an_unreachable_registry_is_an_error_not_an_empty_registry(monkeypatch):
    fail_fast_env(monkeypatch)
    uri = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    registry = ModelRegistry(uri, "embtune", fail_fast=True)
    for ask in (registry.champion, lambda: registry.get("1"), registry.rollback):
        started = time.monotonic()
        with pytest.raises(ValueError, match=f"^cannot reach MLflow at {uri} \\(Connection refused\\)"):
            ask()
        assert time.monotonic() - started < 10


def test_a_server_that_never_answers_fails_within_seconds(monkeypatch):
    import socket

    fail_fast_env(monkeypatch)
    with socket.socket() as silent:  # accepts connections (the kernel's backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        uri = f"http://127.0.0.1:{silent.getsockname()[1]}"
        started = time.monotonic()
        with pytest.raises(ValueError, match=f"^cannot reach MLflow at {uri} \\(no answer within 3 s\\)"):
            ModelRegistry(uri, "embtune", fail_fast=True).champion()
        assert time.monotonic() - started < 10


def registry_run(registry: ModelRegistry) -> str:
    """A training run with nothing logged: enough to register a version of it."""
    from embtune_pipeline.lib.registry.tracking import Tracker

    return Tracker(registry.tracking_uri, "test").start_training("m", {}, {})


@pytest.mark.parametrize("version,promotable,synthetic,champion,champion_base,alias,why,rolled_back_at", [
    (1, True, False, None, None, "champion", "beats its base", None),  # the first promotable version
    (3, True, False, 2, "minilm", "champion", "beats its base", None),  # same base as the champion
    (3, True, False, 2, "bge", "challenger", "another base model (bge)", None),  # a base switch is a person's call
    (3, False, True, 2, "minilm", "challenger", "synthetic queries only, so it is never champion", None),
    (3, False, False, None, None, "challenger", "did not beat its base", None),
    (2, True, False, 3, "minilm", "(unchanged)", "older than champion v3", None),  # a backfill never takes it back
    (2, True, False, 1, "minilm", "(champion kept)", "champion kept: v1 (v2 was rolled back at T", "T"),  # a rerun
    (2, True, False, 2, "minilm", "champion", "beats its base", "T"),  # it is the champion (rolled back to)
])
def test_the_alias_rule(version, promotable, synthetic, champion, champion_base, alias, why, rolled_back_at):
    from embtune_pipeline.lib.registry.versions import choose_alias

    chosen, reason = choose_alias(version, promotable, synthetic, "minilm", champion, champion_base,
                                  **({"rolled_back_at": rolled_back_at} if rolled_back_at else {}))
    assert chosen == alias and why in reason


def test_indexes_bound_at_once_are_all_kept(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    from embtune_pipeline.lib.registry.versions import bind_index, read_bindings

    path = tmp_path / "index_bindings.json"
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: bind_index(path, f"index-{i}", "embtune", "1"), range(16)))
    assert sorted(read_bindings(path)) == sorted(f"index-{i}" for i in range(16))
