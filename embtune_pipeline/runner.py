"""How a re-tune runs: register the current corpus and the settings' base models as partitions, then run the
`retune` job for each (base model, snapshot), either submitted to the instance's run queue when a daemon serves
it, or executed here in-process. Either way it is a real `retune` run: listed under the job in the UI,
re-executable there, counted by the run queue's limits. `embtune run`, the benchmarks and the tests share this;
the sensor requests the same job on its own schedule."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import dagster as dg

from embtune_pipeline.lib.data.snapshots import Snapshot
from embtune_pipeline.partitions import BASE_MODELS, RETUNE_PARTITIONS, SNAPSHOTS, add_missing, retune_key
from embtune_pipeline.resources.corpus import CorpusSource
from embtune_pipeline.resources.settings import SettingsResource
from embtune_pipeline.settings import Settings

RETUNE_JOB = "retune"
REPOSITORY = "__repository__"  # the name Dagster gives the one repository of a Definitions
QUEUE_DAEMON = "QUEUED_RUN_COORDINATOR"  # the daemon thread that dequeues and launches queued runs
HEARTBEAT_TOLERANCE_SECONDS = 120  # it beats every 30 s: two minutes of silence means no daemon is serving
WORKSPACE_ENV = "EMBTUNE_WORKSPACE"
INSTANCE_LOCK = ".embtune-instance.lock"
PROCESS_TAG = "embtune/process"  # host:pid:start time of the process that executes a run's steps
LIVE_STATUSES = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]
STEP_POD_ENV = "DAGSTER_RUN_STEP_KEY"  # set by dagster-k8s's k8s_job_executor in each step's pod
# What a DAGSTER_HOME without a dagster.yaml gets (the repository's dagster.yaml is the same instance): SQLite
# storage under it, one run at a time, the `gpu` pool one step at a time.
LOCAL_INSTANCE = {"storage": {"sqlite": {"base_dir": {"env": "DAGSTER_HOME"}}},
                  "concurrency": {"runs": {"max_concurrent_runs": 1}, "pools": {"default_limit": 1}},
                  "telemetry": {"enabled": False}}
# What it gets when no workspace file is found: embtune's code location, from the installed package.
LOCAL_WORKSPACE = {"load_from": [{"python_module": {"module_name": "embtune_pipeline.definitions"}}]}


def this_process() -> str:
    import psutil

    me = psutil.Process()
    return f"{socket.gethostname()}:{me.pid}:{me.create_time():.0f}"


def process_gone(tag: str, host: str) -> bool:
    """True when `tag` names a process on `host` that no longer runs; a pid the system gave to another process
    since (another start time) counts as gone. A process on another host is never judged from here."""
    import psutil

    try:
        tag_host, pid, started = tag.rsplit(":", 2)
        pid = int(pid)
    except ValueError:
        return False
    if tag_host != host:
        return False
    try:
        return f"{psutil.Process(pid).create_time():.0f}" != started
    except psutil.NoSuchProcess:
        return True


def record_run_process(instance: dg.DagsterInstance, run_id: str) -> None:
    """Tag the run with the process executing it, so a crash can be told from a long step. Only the run's own
    process records itself: a step process of the multiprocess executor, or a step pod of the k8s executor
    (DAGSTER_RUN_STEP_KEY set), ends after its step while the run goes on, so such runs carry no tag and are
    left to Dagster's run monitoring."""
    import multiprocessing

    if multiprocessing.parent_process() is not None or os.environ.get(STEP_POD_ENV):
        return
    tag = this_process()
    run = instance.get_run_by_id(run_id)
    if run is not None and run.tags.get(PROCESS_TAG) != tag:
        instance.add_run_tags(run_id, {PROCESS_TAG: tag})


def release_dead_runs(instance: dg.DagsterInstance) -> list[str]:
    """Fail every started run whose process on this host is gone (kill -9, OOM, a crash) and free the
    concurrency slots it held: otherwise it stays STARTED and holds the `gpu` pool's only slot, and every later
    run waits on it forever. Returns the released run ids."""
    host, released = socket.gethostname(), []
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=LIVE_STATUSES)):
        tag = run.tags.get(PROCESS_TAG)
        if tag and process_gone(tag, host):
            instance.report_run_failed(run, f"the process that ran it ({tag}) is gone (killed or crashed): "
                                            "marked failed and its concurrency slots freed")
            instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
            released.append(run.run_id)
    return released


def open_instance() -> dg.DagsterInstance:
    """The instance in $DAGSTER_HOME, its storage created (or migrated) by one process at a time: two commands
    on a fresh home would otherwise both create it (SQLite then holds two alembic heads, and every later
    command fails)."""
    from filelock import FileLock

    home = Path(os.environ["DAGSTER_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    with FileLock(str(home / INSTANCE_LOCK), timeout=300):
        for written in prepare_home(home):
            print(f"embtune: {home} had no {written.name}: wrote the local one ({written})", file=sys.stderr)
        instance = dg.DagsterInstance.get()
        instance.get_runs(limit=1)  # run storage
        instance.get_dynamic_partitions(SNAPSHOTS.name)  # event log storage
        instance.all_instigator_state()  # schedule storage
    for run_id in release_dead_runs(instance):
        print(f"embtune: run {run_id} had died without ending (its process is gone): marked failed, its "
              "concurrency slots freed", file=sys.stderr)
    return instance


def register_snapshot(instance: dg.DagsterInstance, s: Settings, source: CorpusSource | None = None) -> Snapshot:
    """Freeze the corpus as it is now and make it, and every base model in settings, a partition. `source`:
    the code location's corpus_source resource (the CLI passes it); by default one built from `s`."""
    source = source or CorpusSource(settings=SettingsResource.of(s))
    snapshot = source.register_current()
    add_missing(instance, SNAPSHOTS, [snapshot.key])
    add_missing(instance, BASE_MODELS, s.base_model_keys)
    return snapshot


def queue_is_served(last_heartbeat: Optional[float], now: float,
                    tolerance: float = HEARTBEAT_TOLERANCE_SECONDS) -> bool:
    """A run put in the queue will start only if a daemon dequeues it: one has beaten its heart lately."""
    return last_heartbeat is not None and now - last_heartbeat <= tolerance


def daemon_serves_queue(instance: dg.DagsterInstance) -> bool:
    """True when this instance queues runs (QueuedRunCoordinator) and a live daemon dequeues them."""
    if instance.is_ephemeral or not isinstance(instance.run_coordinator, dg.QueuedRunCoordinator):
        return False
    beat = instance.get_daemon_heartbeats().get(QUEUE_DAEMON)
    return queue_is_served(beat.timestamp if beat else None, time.time())


def prepare_home(home: Path) -> list[Path]:
    """Give a fresh DAGSTER_HOME the local instance's dagster.yaml, and a workspace.yaml when none is found, so
    Dagster does not warn of a missing dagster.yaml and runs can be re-executed from the UI. Returns what it
    wrote; a file already there is never touched."""
    import yaml

    from embtune_pipeline.lib.storage import write_atomically

    written = []
    if not (home / "dagster.yaml").exists():
        text = "# written by embtune: the local instance\n" + yaml.safe_dump(LOCAL_INSTANCE, sort_keys=False)
        write_atomically(home / "dagster.yaml", lambda tmp: tmp.write_text(text))
        written.append(home / "dagster.yaml")
    try:
        find_workspace()
    except FileNotFoundError:
        if not os.environ.get(WORKSPACE_ENV):  # one the user named is theirs to make
            text = "# written by embtune: its code location\n" + yaml.safe_dump(LOCAL_WORKSPACE, sort_keys=False)
            write_atomically(home / "workspace.yaml", lambda tmp: tmp.write_text(text))
            written.append(home / "workspace.yaml")
    return written


def find_workspace(explicit: Optional[str] = None) -> Path:
    """The workspace file the daemon and webserver load, so a submitted run names the same code location:
    --workspace, else $EMBTUNE_WORKSPACE, else workspace.yaml in $DAGSTER_HOME, else in the current folder."""
    named = explicit or os.environ.get(WORKSPACE_ENV)
    candidates = [Path(named)] if named else [Path(os.environ.get("DAGSTER_HOME", ".")) / "workspace.yaml",
                                              Path("workspace.yaml")]
    for c in candidates:
        if c.is_file():
            return c.resolve()
    raise FileNotFoundError(f"no workspace file found (tried {', '.join(map(str, candidates))}): pass "
                            f"--workspace or set {WORKSPACE_ENV} to the workspace.yaml the daemon loads")


def submit_retune(workspace: Path, base_model: str, snapshot: str) -> str:
    """Put a `retune` run for (base model, snapshot) in the instance's queue, through Dagster's own CLI
    (`dagster job launch`); returns its run id. The daemon launches it when a slot is free."""
    run_id = str(uuid.uuid4())
    tags = dict(RETUNE_PARTITIONS.get_tags_for_partition_key(retune_key(base_model, snapshot)))
    cmd = [sys.executable, "-m", "dagster", "job", "launch", "-w", str(workspace), "-j", RETUNE_JOB,
           "--tags", json.dumps(tags), "--run-id", run_id]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"could not submit the {RETUNE_JOB} run ({' '.join(cmd[2:6])}):\n"
                           f"{(proc.stderr or proc.stdout)[-2000:]}")
    return run_id


def wait_for_run(instance: dg.DagsterInstance, run_id: str, poll_seconds: float = 2.0,
                 on_status: Callable[[dg.DagsterRunStatus], None] = lambda status: None) -> dg.DagsterRunStatus:
    """Follow a run until it ends; `on_status` hears each status change (queued, starting, started...)."""
    last = None
    while True:
        run = instance.get_run_by_id(run_id)
        if run is None:
            raise ValueError(f"run {run_id} is not in the instance")
        if run.status != last:
            on_status(run.status)
            last = run.status
        if run.is_finished:
            return run.status
        time.sleep(poll_seconds)


def retune_origin(workspace: Path):
    """The `retune` job as the workspace's code location names it. A run that carries it can be re-executed
    from the UI; Dagster's `execute_in_process` records none (the UI then refuses with a CheckError)."""
    from dagster._core.remote_origin import RemoteJobOrigin, RemoteRepositoryOrigin
    from dagster._core.workspace.load import location_origins_from_yaml_paths

    locations = location_origins_from_yaml_paths([str(workspace)])
    if len(locations) != 1:
        raise ValueError(f"{workspace}: expected one code location (embtune's), found {len(locations)}")
    return RemoteJobOrigin(RemoteRepositoryOrigin(locations[0], REPOSITORY), RETUNE_JOB)


def execute_retune(defs: dg.Definitions, instance: dg.DagsterInstance, base_model: str, snapshot: str,
                   selection=None, run_config=None, raise_on_error: bool = True,
                   workspace: Optional[Path] = None, log_level: str = "DEBUG") -> dg.ExecutionResult:
    """The `retune` job (or a sub-selection of its assets) executed here, in this process and with the
    in-process executor (torch loads once), as a run of `instance`. With `workspace`, the run names the code
    location the webserver loads, so the UI can re-execute it. `log_level` is what the console shows (the
    event log keeps everything): INFO shows the steps' own lines (progress, warnings) without Dagster's events."""
    from dagster._core.definitions.job_base import InMemoryJob
    from dagster._core.execution.api import execute_run

    job = defs.resolve_job_def(RETUNE_JOB).with_executor_def(dg.in_process_executor)
    keys = None
    if selection is not None:
        keys = frozenset(dg.AssetSelection.from_coercible(selection).resolve(defs.resolve_asset_graph()))
    run_config = {"loggers": {"console": {"config": {"log_level": log_level}}}, **(run_config or {})}
    run = instance.create_run_for_job(
        job_def=job, run_config=run_config, asset_selection=keys,
        tags=dict(RETUNE_PARTITIONS.get_tags_for_partition_key(retune_key(base_model, snapshot))),
        remote_job_origin=retune_origin(workspace) if workspace else None)
    return execute_run(InMemoryJob(job), run, instance, raise_on_error=raise_on_error)


@dataclass(frozen=True)
class RunOutcome:
    """What a finished run left, as the terminal tells it: status, time, each asset's metadata, failures."""

    run_id: str
    status: str
    seconds: float
    materialized: dict[str, dict]  # asset -> {metadata key: value}
    failures: dict[str, str]  # failed step, or check failed as an error -> its error or description
    warnings: dict[str, str]  # check failed as a warning -> its description
    notes: dict[str, str] = field(default_factory=dict)  # check passed by design (a trial's choice) -> its note


def run_outcome(instance: dg.DagsterInstance, run_id: str) -> RunOutcome:
    """Read from the event log, so it is the same for a run executed here and one the daemon launched."""
    from dagster import DagsterEventType

    run = instance.get_run_by_id(run_id)
    stats = instance.get_run_stats(run_id)
    materialized, failures, warnings, notes = {}, {}, {}, {}
    for record in instance.all_logs(run_id, of_type={DagsterEventType.ASSET_MATERIALIZATION,
                                                     DagsterEventType.STEP_FAILURE,
                                                     DagsterEventType.ASSET_CHECK_EVALUATION}):
        event = record.dagster_event
        data = event.event_specific_data
        if event.event_type == DagsterEventType.ASSET_MATERIALIZATION:
            m = data.materialization
            materialized[m.asset_key.to_user_string()] = {k: v.value for k, v in m.metadata.items()}
        elif event.event_type == DagsterEventType.STEP_FAILURE:
            failures[event.step_key] = _root_cause(data.error)
        elif not data.passed:
            found = warnings if data.severity == dg.AssetCheckSeverity.WARN else failures
            found[data.check_name] = data.description or "failed"
        elif "note" in (data.metadata or {}):
            notes[data.check_name] = str(data.metadata["note"].value)
    seconds = (stats.end_time or time.time()) - (stats.start_time or time.time())
    return RunOutcome(run_id, run.status.value.lower(), seconds, materialized, failures, warnings, notes)


def _root_cause(error) -> str:
    """The error that started it (Dagster wraps a step's exception in its own): what an operator needs to read."""
    if error is None:
        return "failed"
    while error.cause is not None:
        error = error.cause
    return error.message.strip()
