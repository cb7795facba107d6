"""embtune as a service, with real servers run as processes the way docker/compose.yaml runs them: PostgreSQL,
`mlflow server` on it, the embtune code server, dagster-webserver and dagster-daemon, all against the deployment
docker/dagster.yaml and docker/workspace.yaml. `embtune run --wait` goes through the run queue, the model
loads from the MLflow server, a corpus change makes the sensor queue a re-tune, and a queued run survives a
daemon killed with SIGKILL."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from embtune_pipeline_tests.conftest import tiny_run_defaults, write_jsonl
from embtune_pipeline_tests.servers import free_port, port_open, wait_until

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
COMPOSE = yaml.safe_load((DOCKER / "compose.yaml").read_text())
BIN = Path(sys.executable).parent
LEARNS = {"learning_rate": 1e-3, "epochs": 4, "batch_size": 8}  # the tiny model beats its base: a champion
RUN_TIMEOUT = 600


def local_command(service: str, swap: dict[str, str]) -> list[str]:
    """compose.yaml's command for `service`, with container addresses and paths swapped for local ones: the
    test runs the programs and flags the deployment runs. Every swap must match, so a drift fails here."""
    command = [str(t) for t in COMPOSE["services"][service]["command"]]
    unused = set(swap) - set(command)
    assert not unused, f"compose.yaml's {service} command no longer has {unused}: update the test with it"
    local = [swap.get(t, t) for t in command]
    assert not [t for t in local if "${" in t], f"unswapped compose variable in {local}"
    program = BIN / local[0]
    return [str(program) if program.exists() else local[0], *local[1:]]


def status_of(postgres, run_id: str) -> str | None:
    rows = postgres.query("dagster", "SELECT status FROM runs WHERE run_id = %s", (run_id,))
    return rows[0][0] if rows else None


def wait_for_status(postgres, run_id: str, wanted: set[str], timeout: float, logs) -> str:
    def reached():
        status = status_of(postgres, run_id)
        if status == "FAILURE" and "FAILURE" not in wanted:
            raise AssertionError(f"run {run_id} failed:\n" + _tail(logs, "code-server"))
        return status if status in wanted else None

    try:
        return wait_until(reached, timeout, f"run {run_id} to reach {wanted}", interval=1)
    except AssertionError as e:
        raise AssertionError(f"{e}\nstatus now {status_of(postgres, run_id)}\n{_tail(logs, 'daemon')}") from None


def _tail(logs, name: str) -> str:
    path = logs.log(name)
    return f"--- {name} log ---\n{path.read_text()[-4000:] if path.exists() else '(none)'}"


def embtune(args: list[str], env: dict, cwd: Path, timeout: float = RUN_TIMEOUT) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "embtune"), *args], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def test_embtune_runs_as_a_service(postgres, processes, jaguar_beir, write_settings, tmp_path):
    started = time.time()
    home, compute_logs, artifacts = tmp_path / "dagster_home", tmp_path / "compute_logs", tmp_path / "mlartifacts"
    home.mkdir()
    for name in ("dagster.yaml", "workspace.yaml"):  # the deployment's own files, as the image copies them
        shutil.copy(DOCKER / name, home / name)
    settings = write_settings(corpus={"path": str(jaguar_beir), "format": "beir"},
                              run={**tiny_run_defaults(), "train": LEARNS},
                              retune={"sensor_interval_seconds": 30, "min_changed_fraction": 0.02})
    mlflow_port, code_port, web_port = free_port(), free_port(), free_port()
    mlflow_uri = f"http://127.0.0.1:{mlflow_port}"
    local_env = {  # compose.yaml's x-dagster-env, pointed at the local servers
        "DAGSTER_HOME": str(home),
        "DAGSTER_POSTGRES_HOST": "127.0.0.1",
        "DAGSTER_POSTGRES_PORT": str(postgres.port),
        "DAGSTER_POSTGRES_USER": postgres.user,
        "DAGSTER_POSTGRES_PASSWORD": "",
        "DAGSTER_POSTGRES_DB": "dagster",
        "DAGSTER_COMPUTE_LOGS_DIR": str(compute_logs),
        "EMBTUNE_CODE_SERVER_HOST": "127.0.0.1",
        "EMBTUNE_CODE_SERVER_PORT": str(code_port),
        "EMBTUNE_MLFLOW_TRACKING_URI": mlflow_uri,
    }
    assert set(local_env) == set(COMPOSE["x-dagster-env"]), "compose.yaml's Dagster environment changed"
    env = {**os.environ, **local_env, "EMBTUNE_CONFIG": str(settings), "PYTHONUNBUFFERED": "1"}
    env.pop("MLFLOW_TRACKING_URI", None)

    # --- the servers, each with compose.yaml's command
    mlflow_env = {**env, **{k: str(v) for k, v in COMPOSE["services"]["mlflow"]["environment"].items()
                            if not str(v).startswith("${")}}  # compose's own settings; the S3 ones are unset
    processes.start("mlflow", local_command("mlflow", {
        "postgresql+psycopg2://embtune:${EMBTUNE_POSTGRES_PASSWORD:-embtune}@postgres:5432/mlflow":
            postgres.url("mlflow"),
        "${MLFLOW_ARTIFACTS_DESTINATION:-/mlartifacts}": str(artifacts), "0.0.0.0": "127.0.0.1",
        "5000": str(mlflow_port)}), mlflow_env, tmp_path)
    processes.start("code-server", local_command("embtune-code", {"0.0.0.0": "127.0.0.1", "4000": str(code_port)}),
                    env, tmp_path)
    workspace_swap = {"/opt/dagster/home/workspace.yaml": str(home / "workspace.yaml")}
    processes.start("webserver", local_command("dagster-webserver", {
        **workspace_swap, "0.0.0.0": "127.0.0.1", "3000": str(web_port)}), env, tmp_path)
    wait_until(lambda: urllib.request.urlopen(f"{mlflow_uri}/health").status == 200, 180, "mlflow server",
               log=processes.log("mlflow"))
    wait_until(lambda: port_open(code_port) and subprocess.run(
        [str(BIN / "dagster"), "api", "grpc-health-check", "-p", str(code_port)], capture_output=True).returncode == 0,
        240, "the code server", interval=2, log=processes.log("code-server"))
    wait_until(lambda: urllib.request.urlopen(f"http://127.0.0.1:{web_port}/server_info").status == 200, 180,
               "dagster-webserver", log=processes.log("webserver"))

    # the corpus is registered before the daemon starts, so the sensor's first tick finds it unchanged
    proc = embtune(["snapshot"], env, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    first_snapshot = proc.stdout.split()[1]
    daemon_cmd = local_command("dagster-daemon", workspace_swap)
    processes.start("daemon", daemon_cmd, env, tmp_path)
    wait_until(lambda: postgres.query("dagster", "SELECT 1 FROM daemon_heartbeats WHERE daemon_type = %s",
                                      ("QUEUED_RUN_COORDINATOR",)), 180, "the daemon's heartbeat",
               log=processes.log("daemon"))
    servers_up = time.time() - started

    # --- embtune run --wait: through the queue, to the end
    t0 = time.time()
    proc = embtune(["run", "--wait"], env, tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:] + _tail(processes, "code-server")
    first_run_seconds = time.time() - t0
    print(f"\n$ embtune run --wait\n{proc.stdout}")
    assert "queued" in proc.stdout and "success" in proc.stdout
    run1 = proc.stdout.split("run ", 1)[1].split(":")[0]
    assert postgres.query("dagster", "SELECT pipeline_name, status FROM runs WHERE run_id = %s", (run1,)) == [
        ("retune", "SUCCESS")]
    stored_reports = tmp_path / "data" / "assets" / "eval_report"  # the report, as the IO manager stored it
    report = json.loads(next(stored_reports.glob(f"*/{first_snapshot}.json")).read_text())
    assert report["promotable"] is True

    # the UI sees the same run under the retune job
    query = '{ runsOrError(filter: {pipelineName: "retune"}) { ... on Runs { results { runId status } } } }'
    req = urllib.request.Request(f"http://127.0.0.1:{web_port}/graphql", data=json.dumps({"query": query}).encode(),
                                 headers={"Content-Type": "application/json"})
    ui_runs = json.loads(urllib.request.urlopen(req).read())["data"]["runsOrError"]["results"]
    assert {"runId": run1, "status": "SUCCESS"} in ui_runs

    # --- the champion, from the MLflow server, as a serving team loads it
    import mlflow

    mlflow.set_tracking_uri(mlflow_uri)
    champion = mlflow.sentence_transformers.load_model("models:/embtune@champion")
    vectors = champion.encode(["how do I factory reset my Jaguar X1"])
    assert vectors.shape == (1, 32)
    assert mlflow.pyfunc.load_model("models:/embtune@champion").predict(["reset the Jaguar X1"]).shape == (1, 32)
    experiment = mlflow.get_experiment_by_name("embtune")
    assert experiment.artifact_location.startswith("mlflow-artifacts:")  # the server's store, not a worker's disk
    assert list(artifacts.rglob("MLmodel")) and not (tmp_path / "data" / "mlartifacts").exists()
    print(f"\nchampion from {mlflow_uri}: models:/embtune@champion encodes to {vectors.shape}, "
          f"first values {[round(float(v), 4) for v in vectors[0][:3]]}")

    # --- a corpus change: the sensor queues a re-tune and the daemon runs it
    corpus = jaguar_beir / "corpus.jsonl"
    new_docs = [{"_id": f"jaguar-x3-note-{i}", "title": f"Jaguar X3 note {i}",
                 "text": f"Jaguar X3 release note {i}: the dock now charges two devices at once."} for i in range(8)]
    write_jsonl(corpus, [json.loads(line) for line in corpus.read_text().splitlines()] + new_docs)

    def sensor_run():
        rows = postgres.query("dagster", "SELECT r.run_id FROM runs r JOIN run_tags t ON t.run_id = r.run_id "
                                         "WHERE t.key = 'dagster/sensor_name' AND t.value = 'corpus_change_sensor'")
        return rows[0][0] if rows else None

    run2 = wait_until(sensor_run, 120, "the sensor to queue a re-tune", interval=2, log=processes.log("daemon"))
    assert postgres.query("dagster", "SELECT pipeline_name FROM runs WHERE run_id = %s", (run2,)) == [("retune",)]
    wait_for_status(postgres, run2, {"STARTING", "STARTED", "SUCCESS"}, 300, processes)

    # --- a run queued behind it; the daemon is killed (SIGKILL) while it waits, then restarted
    proc = embtune(["run"], env, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run3 = proc.stdout.split("run ", 1)[1].split(":")[0]
    assert status_of(postgres, run3) == "QUEUED", f"run 2 is {status_of(postgres, run2)}: nothing held the slot"
    processes.kill("daemon", signal.SIGKILL)
    time.sleep(5)
    assert status_of(postgres, run3) == "QUEUED"  # in Postgres, waiting: no daemon dequeues it
    processes.start("daemon", daemon_cmd, env, tmp_path)
    assert wait_for_status(postgres, run2, {"SUCCESS"}, RUN_TIMEOUT, processes) == "SUCCESS"
    assert wait_for_status(postgres, run3, {"SUCCESS"}, RUN_TIMEOUT, processes) == "SUCCESS"
    print(f"servers up in {servers_up:.0f} s; `embtune run --wait` took {first_run_seconds:.0f} s; "
          f"whole test {time.time() - started:.0f} s")
