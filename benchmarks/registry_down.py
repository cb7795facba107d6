"""How long a registry command takes to say that MLflow cannot be reached, and what it says.

    .venv/bin/python benchmarks/registry_down.py [--runs 5] [--command champion]

Runs the real CLI (`embtune COMMAND`) as a process, with MLflow's own HTTP settings (no
MLFLOW_HTTP_REQUEST_* in the environment), against two tracking servers that are not there: a 127.0.0.1 port
where nothing listens (connection refused) and a socket that accepts connections and never answers. Prints one
JSON line per case: exit codes, seconds (min, median, max over the runs, Python's start-up included) and the
message. The demo settings are used, with DAGSTER_HOME in a throwaway folder.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed(command: str, uri: str, home: str) -> tuple[int, float, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_HTTP_REQUEST")}
    env.update(EMBTUNE_MLFLOW_TRACKING_URI=uri, DAGSTER_HOME=home, LITELLM_LOCAL_MODEL_COST_MAP="True",
               HF_HUB_OFFLINE="1")
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "embtune_pipeline.cli", *command.split()], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=900)
    return proc.returncode, time.monotonic() - started, (proc.stderr.strip() or proc.stdout.strip())[-300:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--command", default="champion")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home, closing(socket.socket()) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)  # the kernel completes the handshakes; nobody ever reads or answers
        cases = {"refused": f"http://127.0.0.1:{free_port()}",
                 "never_answers": f"http://127.0.0.1:{silent.getsockname()[1]}"}
        for case, uri in cases.items():
            runs = [timed(args.command, uri, home) for _ in range(args.runs)]
            seconds = [s for _, s, _ in runs]
            print(json.dumps({"command": f"embtune {args.command}", "case": case,
                              "exit_codes": sorted({rc for rc, _, _ in runs}),
                              "seconds": {"min": round(min(seconds), 2), "median": round(statistics.median(seconds), 2),
                                          "max": round(max(seconds), 2)},
                              "message": runs[-1][2]}), flush=True)


if __name__ == "__main__":
    main()
