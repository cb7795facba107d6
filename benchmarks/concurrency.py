"""Two `embtune snapshot` at once on a fresh Dagster home, N times: each trial counts as usable when both
commands succeed, a third one afterwards succeeds, and every SQLite storage holds one alembic head.

    .venv/bin/python benchmarks/concurrency.py --trials 20 --out /tmp/bench/race

Prints one JSON line: trials, usable, and the failures' messages. The corpus is the bundled Jaguar-like
test corpus written to --out; nothing is trained.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EMBTUNE = str(Path(sys.executable).with_name("embtune"))


def alembic_heads(home: Path) -> dict[str, int]:
    """Rows of alembic_version in each SQLite database of the home: 1 is healthy, 2 wedges the instance."""
    heads = {}
    for db in home.rglob("*.db"):
        with sqlite3.connect(db) as conn:
            if conn.execute("SELECT name FROM sqlite_master WHERE name = 'alembic_version'").fetchone():
                heads[str(db.relative_to(home))] = conn.execute("SELECT COUNT(*) FROM alembic_version").fetchone()[0]
    return heads


def race_trial(workdir: Path, settings: Path) -> dict:
    """One trial in `workdir` (made fresh): two snapshots at once, then a third."""
    shutil.rmtree(workdir, ignore_errors=True)
    home = workdir / "dagster_home"
    home.mkdir(parents=True)
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    env = {**os.environ, "DAGSTER_HOME": str(home), "EMBTUNE_CONFIG": str(settings),
           "EMBTUNE_DATA_DIR": str(workdir / "data")}
    procs = [subprocess.Popen([EMBTUNE, "snapshot"], env=env, cwd=workdir, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.wait(timeout=600), *p.communicate()) for p in procs]
    after = subprocess.run([EMBTUNE, "snapshot"], env=env, cwd=workdir, capture_output=True, text=True,
                           timeout=600)
    heads = alembic_heads(home)
    problems = [err.strip().splitlines()[-1] if err.strip() else f"exit {rc}" for rc, _, err in results if rc]
    if after.returncode:
        problems.append(f"the next command failed: {after.stderr.strip().splitlines()[-1:]}")
    if any(n != 1 for n in heads.values()):
        problems.append(f"alembic heads {heads}")
    return {"usable": not problems, "problems": problems, "heads": heads}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    sys.path.insert(0, str(REPO))
    import yaml

    from embtune_pipeline_tests.conftest import jaguar_docs, write_jsonl

    out = args.out.resolve()
    corpus = write_jsonl(out / "docs.jsonl", jaguar_docs())
    settings = out / "settings.yaml"
    settings.write_text(yaml.safe_dump({"corpus": {"path": str(corpus), "format": "jsonl"}}))
    trials = [race_trial(out / f"trial{i}", settings) for i in range(args.trials)]
    print(json.dumps({"trials": len(trials), "usable": sum(t["usable"] for t in trials),
                      "problems": [p for t in trials for p in t["problems"]]}))


if __name__ == "__main__":
    main()
