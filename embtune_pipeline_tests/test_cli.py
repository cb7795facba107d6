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
    shutil.copy(REPO / "workspace.yaml", home / "workspace.yaml")  # as DAGSTER_HOME=$PWD has it in the README
    return {**os.environ, "DAGSTER_HOME": str(home), "EMBTUNE_CONFIG": str(settings)}


EMBTUNE = str(Path(sys.executable).with_name("embtune"))


def run(cmd, tmp_path, env, timeout=900) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=timeout)


def test_embtune_run_then_dagster_cli_rematerializes_one_partition(jaguar_beir, write_settings, tmp_path,
                                                                  monkeypatch):
    learns = {"learning_rate": 1e-3, "epochs": 4, "batch_size": 8}  # the tiny model beats its base: a champion
    settings = write_settings(corpus={"path": str(jaguar_beir), "format": "beir"},
                              run={**tiny_run_defaults(), "train": learns})
    env = _env(tmp_path, settings)
    proc = run([EMBTUNE, "run"], tmp_path, env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    partition = proc.stdout.split("retune ", 1)[1].split()[0]
    assert "running here" in proc.stdout and "success" in proc.stdout  # no daemon: executed in this process
    run_id = proc.stdout.split("run ", 1)[1].split(":")[0]
    import dagster as dg

    monkeypatch.setenv("DAGSTER_HOME", env["DAGSTER_HOME"])  # dagster.yaml reads it
    with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        recorded = instance.get_run_by_id(run_id)
        assert recorded.job_name == "retune" and recorded.tags["dagster/partition"] == partition
        assert recorded.remote_job_origin.location_name == "embtune_pipeline.definitions"  # workspace.yaml's
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


def test_embtune_names_every_missing_path_of_the_settings_in_one_error(write_settings, tmp_path):
    corpus = write_jsonl(tmp_path / "docs.jsonl", jaguar_docs())
    settings = write_settings(corpus={"path": str(corpus), "format": "jsonl"}, click_logs={"path": "clicks.csv"},
                              eval_set={"path": "labelled.csv"}, teacher="./models/teacher")
    proc = run([EMBTUNE, "run"], tmp_path, _env(tmp_path, settings))
    assert proc.returncode != 0
    error = [line for line in proc.stderr.splitlines() if line.startswith("embtune: ")]
    assert error == [f"embtune: invalid settings file {settings}:"], proc.stderr[-3000:]  # one error, its lines:
    for key, missing in [("click_logs.path", "clicks.csv"), ("eval_set.path", "labelled.csv"),
                         ("teacher", "models/teacher")]:
        assert f"  {key}: " in proc.stderr and str(tmp_path / missing) in proc.stderr, (key, proc.stderr[-3000:])
    assert "Traceback" not in proc.stderr


def test_workspace_definitions_validate(tmp_path):
    proc = subprocess.run([DAGSTER, "definitions", "validate", "-w", "workspace.yaml"], cwd=REPO,
                          env={**os.environ, "DAGSTER_HOME": str(tmp_path)}, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Validation successful" in proc.stdout + proc.stderr


def test_a_run_of_embtune_run_is_re_executed_from_the_ui(jaguar_beir, write_settings, tmp_path, processes):
    """What the UI's *Re-execute* button sends (launchPipelineReexecution with the parent run) succeeds for a run
    `embtune run` executed in-process: the run names the code location the webserver loads."""
    import urllib.request

    from embtune_pipeline_tests.servers import free_port, wait_until

    settings = write_settings(corpus={"path": str(jaguar_beir), "format": "beir"})
    env = _env(tmp_path, settings)
    proc = run([EMBTUNE, "run"], tmp_path, env)
    run_id = proc.stdout.split("run ", 1)[1].split(":")[0]  # success or not: a run to re-execute
    port = free_port()
    processes.start("webserver", [str(Path(sys.executable).with_name("dagster-webserver")), "-h", "127.0.0.1",
                                  "-p", str(port), "-w", str(REPO / "workspace.yaml")], env, REPO)
    wait_until(lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info").status == 200, 180,
               "dagster-webserver", log=processes.log("webserver"))
    query = ('mutation { launchPipelineReexecution(reexecutionParams: {parentRunId: "%s", strategy: ALL_STEPS}) '
             '{ __typename ... on PythonError { message } ... on LaunchRunSuccess { run { runId jobName } } } }'
             % run_id)

    def reexecute():
        req = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data=json.dumps({"query": query}).encode(),
                                     headers={"Content-Type": "application/json"})
        answer = json.loads(urllib.request.urlopen(req).read())["data"]["launchPipelineReexecution"]
        return answer if answer["__typename"] != "PythonError" or "not found" not in answer["message"] else None

    answer = wait_until(reexecute, 120, "the code location to load", interval=3, log=processes.log("webserver"))
    assert answer["__typename"] == "LaunchRunSuccess", answer
    assert answer["run"]["jobName"] == "retune" and answer["run"]["runId"] != run_id


def test_two_snapshots_at_once_on_a_fresh_home_leave_a_usable_instance(tmp_path):
    """Both succeed, the next command works, one alembic head per database (3 trials; benchmarks/concurrency.py
    runs 20). Before the instance lock, 3 of 8 trials left two heads and every later command failed."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("concurrency", REPO / "benchmarks" / "concurrency.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    settings = tmp_path / "settings.yaml"
    settings.write_text(json.dumps({"corpus": {"path": str(write_jsonl(tmp_path / "docs.jsonl", jaguar_docs())),
                                               "format": "jsonl"}}))
    for trial in range(3):
        result = bench.race_trial(tmp_path / f"trial{trial}", settings)
        assert result["usable"], result
        assert result["heads"] and set(result["heads"].values()) == {1}


def test_a_run_killed_while_training_does_not_wedge_the_next(jaguar_beir, write_settings, tmp_path, monkeypatch):
    """kill -9 while the training step holds the `gpu` pool's one slot: the next `embtune run` releases the dead
    run (marked failed, slot freed) and completes, with no manual step. Before, it waited on the slot forever."""
    import signal
    import time

    import dagster as dg

    slow = {**tiny_run_defaults(), "train": {"epochs": 200, "batch_size": 4, "save_steps": 1000}}
    env = _env(tmp_path, write_settings(corpus={"path": str(jaguar_beir), "format": "beir"}, run=slow))
    monkeypatch.setenv("DAGSTER_HOME", env["DAGSTER_HOME"])
    doomed = subprocess.Popen([EMBTUNE, "run"], cwd=tmp_path, env=env, stdout=subprocess.PIPE, text=True)
    with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        deadline = time.time() + 300
        while not instance.event_log_storage.get_concurrency_info("gpu").active_slot_count:
            assert doomed.poll() is None and time.time() < deadline, "the training step never took the gpu slot"
            time.sleep(0.2)
        doomed.send_signal(signal.SIGKILL)
        doomed.wait()
        (dead,) = instance.get_runs()
        assert dead.status == dg.DagsterRunStatus.STARTED  # what a crash leaves behind

        quick = write_settings(corpus={"path": str(jaguar_beir), "format": "beir"})
        proc = run([EMBTUNE, "run"], tmp_path, {**env, "EMBTUNE_CONFIG": str(quick)}, timeout=300)
        assert f"run {dead.run_id} had died without ending" in proc.stderr
        assert "success" in proc.stdout or "FAILED" in proc.stdout  # it ran to its end (the gate may refuse)
        assert instance.get_run_by_id(dead.run_id).status == dg.DagsterRunStatus.FAILURE
        assert instance.event_log_storage.get_concurrency_info("gpu").active_slot_count == 0


def test_a_run_waiting_on_the_gpu_pool_stops_promptly_on_sigterm(jaguar_beir, write_settings, tmp_path, monkeypatch):
    """Another run holds the `gpu` slot; ours waits for it. SIGTERM stops it within seconds (`pytest -s` prints
    how many), the run is marked failed and its place in the pool's queue is given up, so nothing waits on it."""
    import signal
    import time

    import dagster as dg

    env = _env(tmp_path, write_settings(corpus={"path": str(jaguar_beir), "format": "beir"}))
    monkeypatch.setenv("DAGSTER_HOME", env["DAGSTER_HOME"])
    with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        instance.event_log_storage.claim_concurrency_slot("gpu", "another-run", "finetuned_model")
        waiting = subprocess.Popen([EMBTUNE, "run"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True)
        deadline = time.time() + 300

        def ours():
            return [s for s in instance.event_log_storage.get_concurrency_info("gpu").pending_steps
                    if s.run_id != "another-run"]

        while not ours():
            assert waiting.poll() is None and time.time() < deadline, "the run never reached the gpu pool"
            time.sleep(0.5)
        run_id = ours()[0].run_id
        time.sleep(3)  # settled in its wait
        start = time.time()
        waiting.send_signal(signal.SIGTERM)
        waiting.wait(timeout=60)
        print(f"\nSIGTERM to exit: {time.time() - start:.1f} s (exit code {waiting.returncode})")
        assert time.time() - start < 20 and waiting.returncode != 0
        assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.FAILURE
        assert not ours()  # its place in the pool's queue is given up


def test_embtune_ui_serves_both_uis_on_a_fresh_home_and_stops_both_on_ctrl_c(tmp_path, processes, monkeypatch):
    """A DAGSTER_HOME with nothing in it gets its files (no missing-file warnings); the Dagster UI with a daemon
    and the MLflow UI answer on 127.0.0.1, the experiment opens as model training, and Ctrl-C (SIGINT to the
    command) stops every process they started."""
    import signal
    import urllib.request

    import psutil

    from embtune_pipeline_tests.servers import free_port, port_open, wait_until

    settings = tmp_path / "settings.yaml"
    settings.write_text(json.dumps({"data_dir": str(tmp_path / "embtune-data"), "corpus": {
        "path": str(write_jsonl(tmp_path / "docs.jsonl", jaguar_docs())), "format": "jsonl"}}))
    from embtune_pipeline.lib.registry.tracking import Tracker
    from embtune_pipeline.settings import load_settings

    s = load_settings(settings)
    Tracker(s.mlflow_tracking_uri, s.mlflow.experiment, s.layout.mlflow_artifacts)  # as the first run makes it
    home = tmp_path / "fresh_home"
    env = {**os.environ, "DAGSTER_HOME": str(home), "EMBTUNE_CONFIG": str(settings)}
    env.pop("EMBTUNE_WORKSPACE", None)
    registered = run([EMBTUNE, "snapshot"], tmp_path, env, timeout=300)  # else the sensor would re-tune at once
    assert registered.returncode == 0, registered.stderr
    assert "no dagster.yaml: wrote the local one" in registered.stderr
    assert "no workspace.yaml: wrote the local one" in registered.stderr
    assert "No dagster instance configuration file" not in registered.stderr + registered.stdout
    dagster_port, mlflow_port = free_port(), free_port()
    proc = processes.start("ui", [EMBTUNE, "ui", "--dagster-port", str(dagster_port), "--mlflow-port",
                                  str(mlflow_port)], env, tmp_path)
    log = processes.log("ui")
    wait_until(lambda: "Ctrl-C stops them" in log.read_text(), 300, "embtune ui", log=log)
    out = log.read_text()
    assert f"Dagster UI:  http://127.0.0.1:{dagster_port}" in out and f"MLflow UI:   http://127.0.0.1:{mlflow_port}" in out
    assert "No dagster instance configuration file" not in out  # Dagster's own warning of a missing dagster.yaml
    assert "RUN_START" not in out  # the sensor found the snapshot registered: nothing to re-tune
    assert urllib.request.urlopen(f"http://127.0.0.1:{dagster_port}/server_info").status == 200
    assert urllib.request.urlopen(f"http://127.0.0.1:{mlflow_port}/health").status == 200

    import dagster as dg

    from embtune_pipeline.runner import daemon_serves_queue

    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.DagsterInstance.get() as instance:  # the daemon of `dagster dev` serves this home's queue
        wait_until(lambda: daemon_serves_queue(instance), 120, "the daemon's heartbeat", log=log)
    import re

    found = re.search(r"experiment: +(http\S+)", out)
    assert found, out
    experiment = found.group(1)
    from playwright.sync_api import expect, sync_playwright

    from embtune_pipeline_tests.test_ui import chromium

    with sync_playwright() as p:  # the experiment opens as model training (its runs), not as GenAI traces
        browser = p.chromium.launch(executable_path=chromium(), args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(experiment)
            expect(page.get_by_role("tab", name="Runs").or_(page.get_by_text("Runs", exact=True)).first).to_be_visible(
                timeout=60_000)
            expect(page.get_by_text("Sessions", exact=True)).to_have_count(0)
            expect(page.get_by_text("Detect Issues")).to_have_count(0)
        finally:
            browser.close()
    children = psutil.Process(proc.pid).children(recursive=True)
    started = [c.pid for c in children]
    assert len(started) >= 3  # dagster dev (webserver, daemon, code server) and mlflow
    assert not [c for c in children if "huey" in " ".join(c.cmdline())]  # no GenAI job runner for MLflow
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 0
    assert not port_open(dagster_port) and not port_open(mlflow_port)
    assert not [pid for pid in started if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"]


def test_embtune_snapshots_lists_each_with_its_count_and_what_changed(tmp_path):
    docs = jaguar_docs()
    corpus = write_jsonl(tmp_path / "docs.jsonl", docs)
    settings = tmp_path / "settings.yaml"
    settings.write_text(json.dumps({"data_dir": str(tmp_path / "data"), "corpus": {"path": str(corpus),
                                                                                  "format": "jsonl"}}))
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "home"), "EMBTUNE_CONFIG": str(settings)}
    assert run([EMBTUNE, "snapshot"], tmp_path, env, timeout=300).returncode == 0
    write_jsonl(corpus, [*docs[1:], {**docs[0], "text": docs[0]["text"] + " Edited."},
                         {"id": "new-doc", "title": "New", "text": "A new Jaguar document."}])
    assert run([EMBTUNE, "snapshot"], tmp_path, env, timeout=300).returncode == 0
    listed = run([EMBTUNE, "snapshots"], tmp_path, env, timeout=300)
    assert listed.returncode == 0, listed.stderr
    first, second = listed.stdout.splitlines()[1:3]
    assert f" {len(docs)} " in first and first.endswith("(the first)")
    assert f" {len(docs) + 1} " in second and second.endswith("+1 added, -0 removed, 1 edited")


def test_after_a_run_an_index_is_built_searched_and_listed_from_the_cli(jaguar_beir, write_settings, tmp_path):
    """The README's serving steps: `embtune run`, then `embtune index build demo --version 1` (every vector
    already in the store from eval_report: none encoded), `embtune index search`, `embtune index list`."""
    learns = {"learning_rate": 1e-3, "epochs": 4, "batch_size": 8}
    settings = write_settings(corpus={"path": str(jaguar_beir), "format": "beir"},
                              run={**tiny_run_defaults(), "train": learns}, indexes=[{"name": "demo"}])
    env = _env(tmp_path, settings)
    proc = run([EMBTUNE, "run"], tmp_path, env)
    assert proc.returncode == 0, proc.stderr[-3000:]

    proc = run([EMBTUNE, "index", "build", "demo", "--version", "1"], tmp_path, env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "0 chunks encoded" in proc.stdout and "full build" in proc.stdout
    table = proc.stdout.split("serving: demo -> ", 1)[1].split()[0]
    assert table.startswith("demo__v1__") and "nDCG@10 through the index" in proc.stdout

    proc = run([EMBTUNE, "index", "search", "demo", "how do I factory reset my Jaguar X1"], tmp_path, env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert lines[0] == f"demo: {table} (v1)" and len(lines) == 6  # the table, then 5 hits
    doc_id, score, *snippet = lines[1].split()
    assert doc_id.startswith(("jaguar", "ocelot", "lynx", "puma", "cougar", "panther", "leopard", "cheetah"))
    assert -1 <= float(score) <= 1 and snippet

    proc = run([EMBTUNE, "index", "list"], tmp_path, env)
    assert f"demo: {table}  v1  (manual; " in proc.stdout
    proc = run([EMBTUNE, "index", "rollback", "demo"], tmp_path, env)
    assert proc.returncode != 0 and "index demo has no earlier table still kept" in proc.stderr  # one line
