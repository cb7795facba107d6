"""The CLI's registry commands without a pipeline run (fast): an MLflow that cannot be reached, a version that
does not exist and a damaged bindings file are each one line and a non-zero exit, never a traceback."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from embtune_pipeline import cli
from embtune_pipeline.settings import load_settings
from embtune_pipeline_tests.lib.registry.test_versions import fail_fast_env
from embtune_pipeline_tests.resources.corpus_settings import corpus_settings
from embtune_pipeline_tests.servers import free_port

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def settings(write_settings, tmp_path) -> str:
    return corpus_settings(write_settings, tmp_path).config_path


def test_champion_with_mlflow_down_fails_within_seconds_naming_the_uri(settings, tmp_path):
    uri = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_HTTP_REQUEST")}  # MLflow's defaults
    env.update(EMBTUNE_MLFLOW_TRACKING_URI=uri, PYTHONPATH=str(REPO), DAGSTER_HOME=str(tmp_path))
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "embtune_pipeline.cli", "--config", settings, "champion"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    elapsed = time.monotonic() - started
    print(f"embtune champion, MLflow down: exit {proc.returncode} after {elapsed:.1f} s: {proc.stderr.strip()}")
    assert proc.returncode != 0 and "champion:" not in proc.stdout  # not "champion: (none)"
    assert proc.stderr.strip().splitlines() == [
        f"embtune: cannot reach MLflow at {uri} (Connection refused): is the tracking server up? (settings "
        "mlflow.tracking_uri, or EMBTUNE_MLFLOW_TRACKING_URI)"]
    assert elapsed < 60  # MLflow's own retries took 501 s; the seconds themselves: benchmarks/registry_down.py


@pytest.mark.parametrize("command", [["promote", "1"], ["rollback"], ["indexes"], ["bind-index", "docs-prod"],
                                     ["bind-index", "docs-prod", "--version", "1"]])
def test_every_registry_command_says_mlflow_cannot_be_reached(settings, monkeypatch, command):
    fail_fast_env(monkeypatch)
    uri = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("EMBTUNE_MLFLOW_TRACKING_URI", uri)
    with pytest.raises(SystemExit, match=f"^embtune: cannot reach MLflow at {uri} "):
        cli.main(["--config", settings, *command])


def test_promote_of_a_missing_version_and_a_damaged_bindings_file_are_one_line(settings, capsys):
    s = load_settings(settings)
    assert cli.main(["--config", settings, "champion"]) == 0  # a registry that answers "none" is not an error
    assert capsys.readouterr().out == "champion: (none)\nchallenger: (none)\n"
    with pytest.raises(SystemExit) as raised:
        cli.main(["--config", settings, "promote", "99"])
    assert raised.value.code == (f"embtune: embtune has no version 99 at {s.mlflow_tracking_uri} "
                                 "(its versions: none yet)")

    s.layout.index_bindings.parent.mkdir(parents=True, exist_ok=True)
    s.layout.index_bindings.write_text('{"docs-prod": {"model": "embtune"')
    with pytest.raises(SystemExit) as raised:
        cli.main(["--config", settings, "indexes"])
    assert str(raised.value.code).startswith(f"embtune: {s.layout.index_bindings}: not valid JSON (")
    assert "\n" not in str(raised.value.code)


def test_binding_an_index_to_a_version_that_is_not_promotable_warns(settings, tmp_path, capsys):
    import mlflow

    s = load_settings(settings)
    client = mlflow.MlflowClient(s.mlflow_tracking_uri)
    client.create_registered_model(s.registry.model_name)
    run = client.create_run(client.create_experiment("bind-test"))
    client.create_model_version(s.registry.model_name, f"runs:/{run.info.run_id}/model", run_id=run.info.run_id,
                                tags={"promotable": "False", "eval_source": "synthetic"})
    assert cli.main(["--config", settings, "bind-index", "docs-prod", "--version", "1"]) == 0
    said = capsys.readouterr()
    assert said.out == "docs-prod -> embtune v1\n"
    assert said.err.endswith("warning: embtune v1 is not promotable (measured on its synthetic eval set): an index "
                             "embedded with it serves a model that was not shown to beat its base\n")
