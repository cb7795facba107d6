"""The real CLI, as the README runs it, on tiny data."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from embtune_pipeline_tests.conftest import jaguar_docs, tiny_run_defaults, write_jsonl

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
DAGSTER = str(Path(sys.executable).with_name("dagster"))


def _env(tmp_path, settings):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    return {**os.environ, "DAGSTER_HOME": str(home), "EMBTUNE_CONFIG": str(settings)}


EMBTUNE = str(Path(sys.executable).with_name("embtune"))


def run(cmd, tmp_path, env, timeout=900) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=timeout)


def test_embtune_run_then_dagster_cli_rematerializes_one_partition(jaguar_beir, write_settings, tmp_path):
    learns = {"learning_rate": 1e-3, "epochs": 4, "batch_size": 8}  # the tiny model beats its base: a champion
    settings = write_settings(corpus={"path": str(jaguar_beir), "format": "beir"},
                              run={**tiny_run_defaults(), "train": learns})
    env = _env(tmp_path, settings)
    proc = run([EMBTUNE, "run"], tmp_path, env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    partition = proc.stdout.split("retune ", 1)[1].split()[0]
    assert "success" in proc.stdout
    report = json.loads(next((tmp_path / "data" / "assets" / "eval_report").glob("*/*.json")).read_text())
    assert Path(report["model_dir"], "modules.json").is_file()

    proc = run([EMBTUNE, "champion"], tmp_path, env)
    assert proc.returncode == 0 and "champion: embtune v1" in proc.stdout
    proc = run([EMBTUNE, "bind-index", "docs-prod"], tmp_path, env)
    assert proc.returncode == 0 and "docs-prod -> embtune v1" in proc.stdout
    proc = run([EMBTUNE, "indexes"], tmp_path, env)
    assert proc.returncode == 0 and "STALE" not in proc.stdout

    proc = run([DAGSTER, "asset", "materialize", "-m", "embtune_pipeline.definitions", "--select", "base_model_eval",
                "--partition", partition], tmp_path, env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "RUN_SUCCESS" in proc.stderr + proc.stdout

    proc = run([EMBTUNE, "snapshot"], tmp_path, env)
    assert proc.returncode == 0 and "already registered" in proc.stdout and f"partition {partition}" in proc.stdout


def test_embtune_reports_a_bad_corpus_row_by_file_and_line(write_settings, tmp_path):
    corpus = write_jsonl(tmp_path / "docs.jsonl", jaguar_docs())
    with corpus.open("a") as f:
        f.write("{not json\n")
    proc = run([EMBTUNE, "snapshot"], tmp_path, _env(tmp_path, write_settings(corpus={"path": str(corpus),
                                                                                       "format": "jsonl"})))
    assert proc.returncode != 0 and f"{corpus}, line 51: malformed JSON" in proc.stderr


def test_workspace_definitions_validate(tmp_path):
    proc = subprocess.run([DAGSTER, "definitions", "validate", "-w", "workspace.yaml"], cwd=REPO,
                          env={**os.environ, "DAGSTER_HOME": str(tmp_path)}, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Validation successful" in proc.stdout + proc.stderr
