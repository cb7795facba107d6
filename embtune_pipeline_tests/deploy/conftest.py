"""A throwaway PostgreSQL cluster for the deployment tests (Docker Hub is out of reach here: the deployment's
programs run as processes)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from embtune_pipeline_tests.servers import PG_USER, Postgres, free_port, postgres_bin


@pytest.fixture(scope="module")
def postgres():
    """A fresh cluster (initdb + pg_ctl) listening on 127.0.0.1 only, with the `dagster` and `mlflow` databases
    the deployment expects; stopped and deleted afterwards. PostgreSQL refuses to run as root, so as root the
    server runs as the `postgres` user that Debian's package creates."""
    root = Path(tempfile.mkdtemp(prefix="embtune-pg-"))
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_user:
        shutil.chown(root, "postgres")
    data, port = root / "data", free_port()
    subprocess.run([*as_user, postgres_bin("initdb"), "-D", str(data), "-U", PG_USER, "--auth=trust", "-E", "UTF8"],
                   check=True, capture_output=True)
    subprocess.run([*as_user, postgres_bin("pg_ctl"), "-D", str(data), "-l", str(root / "server.log"), "-w",
                    "-o", f"-h 127.0.0.1 -p {port} -k ''", "start"], check=True, capture_output=True)
    try:
        server = Postgres(port)
        for db in ("dagster", "mlflow"):
            subprocess.run([postgres_bin("createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", PG_USER, db],
                           check=True, capture_output=True)
        yield server
    finally:
        subprocess.run([*as_user, postgres_bin("pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
