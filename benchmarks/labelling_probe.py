"""What another web page can do to `embtune label` (Reliability II, fault 4): starts the checkout's own
`embtune label` on a two-candidate pool, sends the probe's requests and prints each answer's status and what
was saved. Run it from a checkout's root (its code is what is measured):

    .venv/bin/python benchmarks/labelling_probe.py
"""

from __future__ import annotations

import http.client
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from embtune_pipeline.lib.evaluation.judgments import POOL_COLUMNS, JudgmentStore

PORT = 8799


def request(method: str, path: str, body: str | bytes | None = None, **headers) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=60)
    try:
        conn.request(method, path, body=body, headers={k.replace("_", "-"): v for k, v in headers.items()})
        return conn.getresponse().status
    finally:
        conn.close()


def main() -> int:
    tmp = Path(tempfile.mkdtemp())
    sqlite = tmp / "data" / "eval_sets" / "probe" / "judgments.sqlite"
    sqlite.parent.mkdir(parents=True)
    store = JudgmentStore(sqlite)
    store.add_pool(pd.DataFrame([["q1", "q", "d1", "t", "x", 1, "bm25"], ["q1", "q", "d2", "t", "x", 2, "bm25"]],
                                columns=POOL_COLUMNS))
    store.close()
    (tmp / "docs.jsonl").write_text(json.dumps({"id": "d1", "text": "x"}) + "\n")
    (tmp / "settings.yaml").write_text(f"data_dir: {tmp / 'data'}\ncorpus: {{path: {tmp / 'docs.jsonl'}, "
                                       "format: jsonl}\n")
    server = subprocess.Popen([sys.executable, "-m", "embtune_pipeline.cli", "label", "--name", "probe", "--judge",
                               "probe", "--port", str(PORT)], env={**os.environ, "EMBTUNE_CONFIG": str(
                                   tmp / "settings.yaml")}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        printed = ""
        for _ in range(120):
            printed += server.stdout.readline()
            if "http://127.0.0.1" in printed:
                break
        time.sleep(3)
        token = (re.search(r"token=([\w-]+)", printed) or [None, ""])[1]
        write = {"Content-Type": "application/json"}
        grade = json.dumps({"query_id": "q1", "doc_id": "d1", "grade": 3})
        rows = {
            "cross-origin text/plain POST of a grade": request(
                "POST", "/api/judgments", grade, Content_Type="text/plain", Origin="http://attacker.example"),
            "the same with the token": request(
                "POST", "/api/judgments", grade, Content_Type="text/plain", Origin="http://attacker.example",
                X_Embtune_Token=token),
            "GET /api/queries, Host rebind.attacker.example": request(
                "GET", "/api/queries", Host=f"rebind.attacker.example:{PORT}", X_Embtune_Token=token),
            "grade 2.9 (with the token)": request("POST", "/api/judgments", json.dumps(
                {"query_id": "q1", "doc_id": "d2", "grade": 2.9}), **write, X_Embtune_Token=token),
            "grade Infinity (with the token)": request("POST", "/api/judgments",
                                                       '{"query_id": "q1", "doc_id": "d2", "grade": Infinity}',
                                                       **write, X_Embtune_Token=token),
            "malformed JSON (with the token)": request("POST", "/api/judgments", "{", **write, X_Embtune_Token=token),
        }
    finally:
        server.terminate()
        server.wait(timeout=30)
    store = JudgmentStore(sqlite)
    saved = store.judgments()[["doc_id", "grade"]].values.tolist()
    store.close()
    print(f"token in the printed URL: {'yes' if token else 'no'}")
    for what, status in rows.items():
        print(f"{status}  {what}")
    print(f"saved: {saved}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
