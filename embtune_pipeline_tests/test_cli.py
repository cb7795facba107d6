"""The real CLI, as the README runs it, on tiny data."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from embtune_pipeline_tests.conftest import jaguar_docs, write_jsonl

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
DAGSTER = str(Path(sys.executable).with_name("dagster"))


def _env(tmp_path, settings):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    return {**os.environ, "DAGSTER_HOME": str(home), "EMBTUNE_CONFIG": str(settings)}


def test_cli_materializes_every_asset(write_settings, tmp_path):
    corpus = write_jsonl(tmp_path / "docs.jsonl", jaguar_docs())
    settings = write_settings(corpus={"path": str(corpus), "format": "jsonl"})
    proc = subprocess.run([DAGSTER, "asset", "materialize", "-m", "embtune_pipeline.definitions", "--select", "*"],
                          cwd=tmp_path, env=_env(tmp_path, settings), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "RUN_SUCCESS" in proc.stderr + proc.stdout
    report = json.loads((tmp_path / "data" / "reports" / "eval_report.json").read_text())
    assert Path(report["model_dir"], "modules.json").is_file()


def test_workspace_definitions_validate(tmp_path):
    proc = subprocess.run([DAGSTER, "definitions", "validate", "-w", "workspace.yaml"], cwd=REPO,
                          env={**os.environ, "DAGSTER_HOME": str(tmp_path)}, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Validation successful" in proc.stdout + proc.stderr
