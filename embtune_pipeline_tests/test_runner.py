"""The runner's decisions, fast: whether a queued run would start, whether a run's process is gone, which
workspace a submitted run names."""

import os
import socket
from pathlib import Path

import dagster as dg
import psutil
import pytest

from embtune_pipeline.runner import (
    daemon_serves_queue,
    find_workspace,
    process_gone,
    queue_is_served,
    record_run_process,
    release_dead_runs,
    this_process,
)


def test_a_queued_run_starts_only_when_a_daemon_beat_lately():
    assert queue_is_served(last_heartbeat=1000.0, now=1030.0)
    assert not queue_is_served(last_heartbeat=1000.0, now=1000.0 + 121)
    assert not queue_is_served(last_heartbeat=None, now=1000.0)
    assert not daemon_serves_queue(dg.DagsterInstance.ephemeral())  # nothing queues there


def test_a_process_is_gone_when_its_pid_is_free_or_reused_but_never_judged_across_hosts():
    host = socket.gethostname()
    assert not process_gone(this_process(), host)
    pid = os.getpid()
    started = f"{psutil.Process(pid).create_time():.0f}"
    assert process_gone(f"{host}:{pid}:{int(started) - 100}", host)  # the pid now belongs to another process
    free_pid = max(psutil.pids()) + 10_000
    assert process_gone(f"{host}:{free_pid}:1", host)
    assert not process_gone(f"another-host:{free_pid}:1", host)
    assert not process_gone("garbage", host)


def test_release_dead_runs_fails_only_runs_whose_process_is_gone():
    instance = dg.DagsterInstance.ephemeral()
    host = socket.gethostname()
    dead = instance.create_run_for_job(dg.GraphDefinition("g").to_job(), status=dg.DagsterRunStatus.STARTED,
                                       tags={"embtune/process": f"{host}:{max(psutil.pids()) + 10_000}:1"})
    alive = instance.create_run_for_job(dg.GraphDefinition("h").to_job(), status=dg.DagsterRunStatus.STARTED,
                                        tags={"embtune/process": this_process()})
    assert release_dead_runs(instance) == [dead.run_id]
    assert instance.get_run_by_id(dead.run_id).status == dg.DagsterRunStatus.FAILURE
    assert instance.get_run_by_id(alive.run_id).status == dg.DagsterRunStatus.STARTED


def test_only_a_run_s_own_process_tags_the_run_never_a_step_pod(monkeypatch):
    instance = dg.DagsterInstance.ephemeral()
    run = instance.create_run_for_job(dg.GraphDefinition("g").to_job(), status=dg.DagsterRunStatus.STARTED)
    monkeypatch.setenv("DAGSTER_RUN_STEP_KEY", "finetuned_model")  # as dagster-k8s sets it in a step's pod
    record_run_process(instance, run.run_id)
    assert "embtune/process" not in instance.get_run_by_id(run.run_id).tags  # the pod ends before the run
    monkeypatch.delenv("DAGSTER_RUN_STEP_KEY")
    record_run_process(instance, run.run_id)
    assert instance.get_run_by_id(run.run_id).tags["embtune/process"] == this_process()


def test_the_workspace_is_the_one_named_else_dagster_home_s(tmp_path, monkeypatch):
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "workspace.yaml").write_text("load_from: []\n")
    (tmp_path / "mine.yaml").write_text("load_from: []\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("EMBTUNE_WORKSPACE", raising=False)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    assert find_workspace() == tmp_path / "home" / "workspace.yaml"
    assert find_workspace("mine.yaml") == tmp_path / "mine.yaml"
    monkeypatch.setenv("EMBTUNE_WORKSPACE", str(tmp_path / "mine.yaml"))
    assert find_workspace() == tmp_path / "mine.yaml"
    with pytest.raises(FileNotFoundError, match="--workspace"):
        find_workspace("missing.yaml")


def test_a_fresh_dagster_home_gets_the_local_instance_and_a_workspace_but_nothing_is_overwritten(tmp_path,
                                                                                                monkeypatch):
    import yaml

    from embtune_pipeline.runner import LOCAL_INSTANCE, prepare_home

    repo = Path(__file__).resolve().parents[1]
    assert yaml.safe_load((repo / "dagster.yaml").read_text()) == LOCAL_INSTANCE  # the README's instance
    monkeypatch.chdir(tmp_path)  # no workspace.yaml here
    monkeypatch.delenv("EMBTUNE_WORKSPACE", raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    assert prepare_home(home) == [home / "dagster.yaml", home / "workspace.yaml"]
    assert yaml.safe_load((home / "dagster.yaml").read_text()) == LOCAL_INSTANCE
    assert find_workspace() == home / "workspace.yaml"
    assert prepare_home(home) == []  # written once
    (home / "dagster.yaml").write_text("telemetry: {enabled: true}\n")  # the user's own: kept
    assert prepare_home(home) == [] and "enabled: true" in (home / "dagster.yaml").read_text()

    other = tmp_path / "other"
    other.mkdir()
    (tmp_path / "workspace.yaml").write_text("load_from: []\n")  # one in the current folder: no second one
    assert prepare_home(other) == [other / "dagster.yaml"]
    monkeypatch.setenv("EMBTUNE_WORKSPACE", str(tmp_path / "missing.yaml"))  # one the user named: not made up
    third = tmp_path / "third"
    third.mkdir()
    assert prepare_home(third) == [third / "dagster.yaml"]


def test_the_outcome_of_a_run_is_read_back_from_the_event_log():
    """What `embtune run` summarizes: each asset's metadata, checks failed as warnings, failed steps."""
    from embtune_pipeline.runner import run_outcome

    @dg.asset
    def measured() -> dg.Output[int]:
        return dg.Output(1, metadata={"verdict": "promotable", "score": 0.5})

    @dg.asset_check(asset=measured)
    def soft() -> dg.AssetCheckResult:
        return dg.AssetCheckResult(passed=False, severity=dg.AssetCheckSeverity.WARN, description="small corpus")

    @dg.asset_check(asset=measured)
    def chosen() -> dg.AssetCheckResult:  # passed by design (a trial's choice): its note is told, not a warning
        return dg.AssetCheckResult(passed=True, description="synthetic, on purpose", metadata={"note": "on purpose"})

    @dg.asset(deps=[measured])
    def broken() -> None:
        raise ValueError("the eval set is empty")

    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize([measured, broken, soft, chosen], instance=instance, raise_on_error=False)
        outcome = run_outcome(instance, result.run_id)
    assert outcome.notes == {"chosen": "on purpose"}
    from embtune_pipeline.cli import summary_lines

    assert "  note:        chosen: on purpose" in summary_lines(outcome)
    assert outcome.status == "failure" and outcome.seconds >= 0
    assert list(outcome.materialized) == ["measured"]
    measured_metadata = outcome.materialized["measured"]
    assert measured_metadata["verdict"] == "promotable" and measured_metadata["score"] == 0.5
    assert outcome.warnings == {"soft": "small corpus"}
    assert list(outcome.failures) == ["broken"] and "the eval set is empty" in outcome.failures["broken"]
