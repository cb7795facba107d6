"""Data-parallel training in several processes under torchrun (torch.distributed.run), launched from the training
step: NCCL when the GPUs are there (one process per GPU), gloo on CPU. The step's process stays the one that owns
the MLflow run and the Dagster log: rank 0 writes its progress lines and metrics to an events file that the step
reads as they come, and its TrainResult to a file; the checkpoints are the trainer's (written by rank 0, read by
every rank when a rerun resumes: the newest complete one, lib.training.checkpoints, which rank 0 alone tidies), so a
failed launch resumes like a training in one process.

    python -m embtune_pipeline.lib.training.distributed LAUNCH_DIR    (what each rank runs; torchrun starts it)
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Optional

import pandas as pd

from embtune_pipeline.lib.progress import SILENT, Reporter
from embtune_pipeline.lib.storage import write_atomically

LAUNCH = "launch"  # under the checkpoint directory: the job the ranks read, the events and result rank 0 writes
JOB, EVENTS, RESULT, LOG = "job.pkl", "events.jsonl", "result.pkl", "torchrun.log"


def torchrun_command(processes: int, launch_dir: Path) -> list[str]:
    """torchrun on this machine (--standalone: its own rendezvous on a free local port) with `processes` ranks."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}",
            "-m", "embtune_pipeline.lib.training.distributed", str(launch_dir)]


def train_distributed(spec, pairs: pd.DataFrame, output_dir: Path, checkpoint_dir: Path, validation=None,
                      reporter: Reporter = SILENT, on_metrics: Optional[Callable[[int, dict], None]] = None):
    """spec.processes ranks of lib.training.train.train_in_this_process; returns rank 0's TrainResult. Progress
    lines and metrics reach `reporter` and `on_metrics` here while the ranks train. A failed launch raises with
    the tail of torchrun's log (kept in the launch directory)."""
    launch = Path(checkpoint_dir) / LAUNCH
    launch.mkdir(parents=True, exist_ok=True)
    for name in (EVENTS, RESULT):
        (launch / name).unlink(missing_ok=True)
    job = {"spec": spec, "pairs": pairs, "output_dir": Path(output_dir), "checkpoint_dir": Path(checkpoint_dir),
           "validation": validation, "every": reporter.every}
    (launch / JOB).write_bytes(pickle.dumps(job))
    env = dict(os.environ)
    if "OMP_NUM_THREADS" not in env:  # the machine's cores shared among the ranks (torchrun would say 1 each)
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // spec.processes))
    with (launch / LOG).open("w") as log:
        proc = subprocess.Popen(torchrun_command(spec.processes, launch), stdout=log, stderr=subprocess.STDOUT,
                                env=env)
        relay = _Relay(launch / EVENTS, reporter, on_metrics)
        try:
            while proc.poll() is None:
                relay.read()
                time.sleep(0.5)
        finally:
            if proc.poll() is None:  # the step was interrupted: the ranks stop with it
                proc.terminate()
                proc.wait(timeout=60)
    relay.read()
    if proc.returncode != 0 or not (launch / RESULT).exists():
        tail = "\n".join((launch / LOG).read_text(errors="replace").splitlines()[-30:])
        raise RuntimeError(f"distributed training ({spec.processes} processes) exited with {proc.returncode}; "
                           f"log {launch / LOG} ends:\n{tail}")
    return pickle.loads((launch / RESULT).read_bytes())


class _Relay:
    """Rank 0's events, as they are appended: {"say": line} or {"step": n, "metrics": {...}}."""

    def __init__(self, path: Path, reporter: Reporter, on_metrics):
        self.path, self.reporter, self.on_metrics, self.offset = path, reporter, on_metrics, 0

    def read(self) -> None:
        if not self.path.exists():
            return
        with self.path.open() as f:
            f.seek(self.offset)
            for line in f:
                if not line.endswith("\n"):
                    break  # half written: read again next time
                self.offset += len(line.encode())
                event = json.loads(line)
                if "say" in event and self.reporter.say is not None:
                    self.reporter.say(event["say"])
                elif "metrics" in event and self.on_metrics is not None:
                    self.on_metrics(event["step"], event["metrics"])


def _rank_main(launch: Path) -> None:
    """One rank: the training in this process, joined to the others by the trainer; rank 0 writes what it says
    and its result."""
    from embtune_pipeline.lib.training.train import train_in_this_process

    job = pickle.loads((launch / JOB).read_bytes())
    main_rank = int(os.environ.get("RANK", "0")) == 0
    reporter, on_metrics = SILENT, None
    if main_rank:
        events = (launch / EVENTS).open("a", buffering=1)

        def write(event: dict) -> None:
            events.write(json.dumps(event) + "\n")

        reporter = Reporter(lambda line: write({"say": line}), job["every"])
        on_metrics = lambda step, metrics: write({"step": step, "metrics": metrics})  # noqa: E731
    result = train_in_this_process(job["spec"], job["pairs"], job["output_dir"], job["checkpoint_dir"],
                                   job["validation"], reporter, on_metrics)
    if result is not None:
        write_atomically(launch / RESULT, lambda tmp: tmp.write_bytes(pickle.dumps(result)))


if __name__ == "__main__":
    from torch.distributed.elastic.multiprocessing.errors import record

    record(_rank_main)(Path(sys.argv[1]))  # a rank's traceback goes into torchrun's failure summary
