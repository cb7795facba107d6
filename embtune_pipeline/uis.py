"""`embtune ui`: the Dagster UI with its daemon (`dagster dev`) and the MLflow UI, for this DAGSTER_HOME and the
settings' data dir, on 127.0.0.1; started together, their URLs printed once they answer, stopped together on
Ctrl-C (or when either of them stops)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional
from urllib.parse import urlsplit

HOST = "127.0.0.1"
DAGSTER_PORT = 3000
STOP_SECONDS = 20


@dataclass(frozen=True)
class UiProcess:
    """One UI server: what it is, the URL a person opens, the command, and the path that answers when it is up."""
    name: str
    url: str
    argv: list[str]
    ready_path: str
    env: dict[str, str] = field(default_factory=dict)


def port_of(url: str, default: int) -> int:
    return urlsplit(url).port or default


def dagster_ui(workspace: Path, port: int) -> UiProcess:
    return UiProcess("Dagster UI", f"http://{HOST}:{port}", [
        sys.executable, "-m", "dagster", "dev", "-w", str(workspace), "-h", HOST, "-p", str(port),
        "--log-level", "warning"], "/server_info")


def mlflow_ui(tracking_uri: str, port: int) -> UiProcess:
    """`mlflow ui` over the local store: one worker (its default of several is too many for a small machine),
    and without the job runner of MLflow's GenAI features (seven processes, some 2.7 GB, that embtune never uses)."""
    return UiProcess("MLflow UI", f"http://{HOST}:{port}", [
        sys.executable, "-m", "mlflow", "ui", "--workers", "1", "--backend-store-uri", tracking_uri,
        "--host", HOST, "--port", str(port), "--uvicorn-opts", "--log-level warning --no-access-log"], "/health",
        env={"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"})


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


def _stop(procs: dict[str, subprocess.Popen]) -> None:
    """End every server and whatever it started (its own process group), politely first."""
    for proc in procs.values():
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.time() + STOP_SECONDS
    for proc in procs.values():
        try:
            proc.wait(timeout=max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def serve(uis: list[UiProcess], notes: list[str], ready_seconds: float = 300,
          poll_seconds: float = 1.0) -> int:
    """Start every UI, print their URLs once they answer, wait until Ctrl-C (or SIGTERM, or one of them ends),
    then stop them all. Returns 0 on Ctrl-C, 1 when a UI failed to start or stopped by itself."""
    previous = signal.signal(signal.SIGTERM, _interrupt)
    procs: dict[str, subprocess.Popen] = {}
    failed: Optional[str] = None
    try:
        for ui in uis:
            # Python's warnings of the servers' own dependencies tell a person at the UI nothing
            procs[ui.name] = subprocess.Popen(ui.argv, start_new_session=True,
                                              env={**os.environ, "PYTHONWARNINGS": "ignore", **ui.env})
        waiting, deadline = list(uis), time.time() + ready_seconds
        while waiting and not failed:
            failed = next((name for name, p in procs.items() if p.poll() is not None), None)
            waiting = [ui for ui in waiting if not _answers(ui.url + ui.ready_path)]
            if waiting and time.time() > deadline:
                failed = f"{waiting[0].name} (no answer at {waiting[0].url} after {ready_seconds:.0f} s)"
            elif waiting:
                time.sleep(poll_seconds)
        if not failed:
            for ui in uis:
                print(f"{ui.name + ':':12} {ui.url}", flush=True)
            for note in notes:
                print(note, flush=True)
            print("Ctrl-C stops them.", flush=True)
        while not failed:
            failed = next((name for name, p in procs.items() if p.poll() is not None), None)
            time.sleep(poll_seconds)
    except KeyboardInterrupt:
        print("stopping the UIs", flush=True)
    finally:
        _stop(procs)
        signal.signal(signal.SIGTERM, previous)
    if failed:
        print(f"embtune: {failed} ended; every UI was stopped", file=sys.stderr, flush=True)
        return 1
    return 0
