"""Eval sets from real queries, through the real CLI: a query log pooled and judged by an LLM behind a local
OpenAI-compatible server, and judged by a person in the labelling page, in a real browser (Debian's Chromium,
driven by Playwright)."""

import json
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import yaml

from embtune_pipeline.lib.data.ingest import PairsSource
from embtune_pipeline.lib.evaluation.report import eval_set_info
from embtune_pipeline.lib.queries.pairs import judged_eval_set
from embtune_pipeline_tests.conftest import PRODUCTS, jaguar_docs, write_jsonl
from embtune_pipeline_tests.servers import free_port, wait_until
from embtune_pipeline_tests.test_ui import SCREENSHOTS, chromium

pytestmark = pytest.mark.slow

EMBTUNE = str(Path(sys.executable).with_name("embtune"))
LOG = ["how do I factory reset my Jaguar X1", "", "Jaguar X2 battery life", "pair a phone with Ocelot Hub",
       "how do I factory reset my Jaguar X1", "is water damage covered for Lynx Sensor"]


def canned_grade(prompt: str):
    """The judge's answer: 3 when the passage is about the query's product and topic, 1 for the product only."""
    query = re.search(r"Query: (.*)", prompt).group(1)
    passage = prompt.split("Passage:", 1)[1].split("Answer with", 1)[0]
    product = next((p for p in PRODUCTS if p in query), None)
    topic = next((t for t in ("reset", "battery", "pair", "warranty") if t in query or t in query.replace(
        "water damage", "warranty")), None)
    grade = 0 if not product or product not in passage else 3 if topic and topic in passage else 1
    return 200, str(grade), {}, 0.0


@pytest.fixture
def log_setup(tmp_path, tiny_model):
    def write(**builder):
        corpus = write_jsonl(tmp_path / "docs.jsonl", jaguar_docs())
        settings = {"data_dir": str(tmp_path / "data"), "base_model": str(tiny_model),
                    "corpus": {"path": str(corpus), "format": "jsonl", "chunk_tokens": 60, "chunk_overlap": 8},
                    "run": {"embed": {"max_seq_length": 64, "batch_size": 16}},
                    "eval_set_builder": {"pool_size": 4, **builder.pop("eval_set_builder", {})}, **builder}
        path = tmp_path / "settings.yaml"
        path.write_text(yaml.safe_dump(settings))
        (tmp_path / "searches.txt").write_text("\n".join(LOG) + "\n")
        return {**os.environ, "EMBTUNE_CONFIG": str(path)}

    return write


def embtune(args, env, cwd, timeout=600) -> subprocess.CompletedProcess:
    proc = subprocess.run([EMBTUNE, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    print(proc.stdout[-3000:], proc.stderr[-3000:])
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_a_query_log_is_pooled_and_judged_by_an_llm_and_a_rerun_pays_nothing(log_setup, tmp_path, openai_server,
                                                                            tiny_embed):
    server = openai_server(replies=canned_grade, embed=tiny_embed)
    env = log_setup(eval_set_builder={"judge": "openai/relevance-judge", "params": {"api_base": server.api_base},
                                      "usd_per_million_tokens": 0, "queries": "searches.txt"},
                    baselines=[{"model": "openai/tiny-embedder", "params": {"api_base": server.api_base},
                                "usd_per_million_tokens": 0}])
    out = embtune(["eval-set", "build", "--queries", "searches.txt"], env, tmp_path).stdout
    assert "eval set 'searches': 4 queries in searches.txt" in out  # the blank line and the repeat: once
    assert "from base, baseline openai/tiny-embedder, bm25" in out
    assert server.requests == 16 and "judged by openai/relevance-judge: 16 candidates (16 LLM calls" in out
    exported = tmp_path / "data" / "eval_sets" / "searches" / "eval_set.jsonl"
    rows = [json.loads(line) for line in exported.read_text().splitlines()]
    assert len(rows) == 16 and {r["judge"] for r in rows} == {"llm:openai/relevance-judge"}
    best = {(r["query"], r["doc_id"]): r["score"] for r in rows}
    assert best[("how do I factory reset my Jaguar X1", "jaguar-x1-reset")] == 3  # the right document was pooled

    sent = (server.requests, server.embedded_texts)
    again = embtune(["eval-set", "build"], env, tmp_path).stdout  # the log the settings name
    assert (server.requests, server.embedded_texts) == sent and "(0 LLM calls, 16 cached" in again
    from embtune_pipeline.lib.evaluation.judgments import JudgmentStore

    store = JudgmentStore(exported.parent / "judgments.sqlite")  # a person judges two of the LLM's candidates
    (q, d1), (_, d2) = store.pool()[["query_id", "doc_id"]].values[:2].tolist()
    store.record(q, d1, "human:ann", 3)
    store.record(q, d2, "human:ann", 0)
    store.close()
    out = embtune(["eval-set", "export"], env, tmp_path).stdout
    assert "exported 18 judgments of 4 queries by ['human:ann', 'llm:openai/relevance-judge']" in out
    assert re.search(r"people vs LLM: Cohen's kappa (-?[\d.]+|nan) on 2 pairs both judged", out)

    built = _materialize_query_log_eval_set(Path(env["EMBTUNE_CONFIG"]))  # the asset builds the same eval set
    assert (built["judged"], built["llm_calls"], built["cache_hits"], built["judgments"]) == (16, 0, 16, 18)
    assert (server.requests, server.embedded_texts) == sent

    docs = pytest.importorskip("pandas").DataFrame({"doc_id": [d["id"] for d in jaguar_docs()],
                                                    "alias_doc_ids": [[] for _ in jaguar_docs()]})
    evals, _ = judged_eval_set(PairsSource(exported, "jsonl", score_column="score"), docs, "error",
                               tmp_path / "q.jsonl", 100, 0)
    info = eval_set_info(evals)
    assert info["llm_judge"] == "openai/relevance-judge" and info["queries"] == 4
    assert info["llm_judged_queries"] == 3 and info["agreement"]["pairs"] == 2  # people's judgments win their query


def _materialize_query_log_eval_set(settings: Path) -> dict:
    import dagster as dg

    from embtune_pipeline.definitions import ASSET_MODULES, build_definitions
    from embtune_pipeline.partitions import retune_key
    from embtune_pipeline.runner import register_snapshot
    from embtune_pipeline.settings import load_settings

    s = load_settings(settings)
    instance = dg.DagsterInstance.ephemeral()
    snapshot = register_snapshot(instance, s)
    result = dg.materialize(dg.load_assets_from_modules(ASSET_MODULES), instance=instance,
                            selection=["corpus", "base_corpus_embeddings", "query_log_eval_set"],
                            resources=build_definitions(str(settings)).resources,
                            partition_key=retune_key(s.base_model_keys[0], snapshot.key))
    assert result.success
    return {k: v.value for k, v in result.asset_materializations_for_node("query_log_eval_set")[-1].metadata.items()}


def start_label(processes, args: list[str], env: dict, cwd: Path) -> str:
    """Start `embtune label` and return the URL it prints (with its session token) once the page answers."""
    port = free_port()
    processes.start("label", [EMBTUNE, "label", *args, "--port", str(port)], env, cwd)
    log = processes.log("label")

    def printed_url():
        found = re.search(r"http://127\.0\.0\.1:\d+/\?token=[\w-]+", log.read_text())
        return found and urllib.request.urlopen(found.group(0)).status == 200 and found.group(0)

    return wait_until(printed_url, 120, "embtune label", log=log)


def test_a_person_judges_in_the_labelling_page_and_nothing_is_lost_on_reload(log_setup, tmp_path, processes):
    env = log_setup()  # judge: human, the default: no LLM is called
    out = embtune(["eval-set", "build", "--queries", "searches.txt"], env, tmp_path).stdout
    assert "left for people to judge: embtune label --name searches" in out
    url = start_label(processes, ["--judge", "tester"], env, tmp_path)

    from playwright.sync_api import expect, sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(30_000)
            page.goto(url)
            expect(page.locator("#position")).to_contain_text("query 1 of 4 · 0 of 4 judged")
            query = page.locator("#query").inner_text()
            cards = page.locator(".candidate")
            first_three = [cards.nth(i).get_attribute("data-doc-id") for i in range(3)]
            cards.nth(0).locator("button[data-grade='3']").click()  # by click
            expect(page.locator("#status")).to_contain_text(f"saved: {first_three[0]} = 3")
            page.keyboard.press("2")  # by keyboard: the next unjudged candidate is selected after each grade
            expect(page.locator("#status")).to_contain_text(f"saved: {first_three[1]} = 2")
            page.keyboard.press("0")
            expect(page.locator("#status")).to_contain_text(f"saved: {first_three[2]} = 0")
            page.screenshot(path=str(SCREENSHOTS / "labelling.png"), full_page=True)

            page.reload()  # the grades were saved as given: the page comes back with them
            expect(page.locator("#position")).to_contain_text("query 1 of 4 · 3 of 4 judged")
            assert page.locator("#query").inner_text() == query
            for i, grade in enumerate(("3", "2", "0")):
                expect(cards.nth(i).locator("button.chosen")).to_have_attribute("data-grade", grade)
            page.get_by_role("button", name="Export eval set").click()
            expect(page.locator("#status")).to_contain_text("exported 3 judgments of 1 queries to ")
        finally:
            browser.close()

    exported = tmp_path / "data" / "eval_sets" / "searches" / "eval_set.jsonl"
    docs = pytest.importorskip("pandas").DataFrame({"doc_id": [d["id"] for d in jaguar_docs()],
                                                    "alias_doc_ids": [[] for _ in jaguar_docs()]})
    evals, _ = judged_eval_set(PairsSource(exported, "jsonl", score_column="score"), docs, "error",
                               tmp_path / "q.jsonl", 100, 0)
    assert evals[["query", "doc_id", "score", "judge"]].values.tolist() == [
        [query, first_three[0], 3, "human:tester"], [query, first_three[1], 2, "human:tester"]]
    assert "llm_judge" not in eval_set_info(evals)


ATTACKER = """<!doctype html><html><body>
<form id="form" method="POST" action="{target}/api/judgments" enctype="text/plain">
  <input name='{{"query_id": "q1", "doc_id": "d1", "grade": 3, "pad": "' value='"}}'></form>
<script>
const body = JSON.stringify({{query_id: "q1", doc_id: "d1", grade: 3}});
Promise.allSettled([
  fetch("{target}/api/judgments", {{method: "POST", mode: "no-cors", headers: {{"Content-Type": "text/plain"}}, body}}),
  fetch("{target}/api/judgments", {{method: "POST", headers: {{"Content-Type": "application/json"}}, body}}),
  fetch("{target}/api/export", {{method: "POST", mode: "no-cors"}}),
]).then(() => {{ document.title = "sent"; document.getElementById("form").submit(); }});
</script></body></html>"""


def _request(port: int, method: str, path: str, body: bytes | None = None, **headers) -> tuple[int, bytes]:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=body, headers={k.replace("_", "-"): v for k, v in headers.items()})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_the_labelling_page_takes_no_writes_from_other_sites_and_refuses_bad_input(log_setup, tmp_path, processes):
    """Fault 4 of Reliability II: before, a text/plain POST from any origin saved a grade, any Host was served, the
    judge name ran as script, 50 MB bodies were echoed, 2.9 was stored as 2, true as 1, Infinity was a 500."""
    import http.server
    import threading
    from functools import partial
    from urllib.parse import urlsplit

    import pandas as pd

    from embtune_pipeline.lib.evaluation.judgments import POOL_COLUMNS, JudgmentStore

    env = log_setup()
    sqlite = tmp_path / "data" / "eval_sets" / "probe" / "judgments.sqlite"
    sqlite.parent.mkdir(parents=True)
    store = JudgmentStore(sqlite)
    store.add_pool(pd.DataFrame([["q1", "reset <b>Jaguar</b>", "d1", "<img src=x onerror=alert(1)>", "text one", 1, "base"],
                                 ["q1", "reset <b>Jaguar</b>", "d2", "second", "text two", 2, "bm25"]],
                                columns=POOL_COLUMNS))
    store.close()
    judge = "</script><script>document.body.innerHTML='owned'</script>"
    url = start_label(processes, ["--name", "probe", "--judge", judge], env, tmp_path)
    port, token = urlsplit(url).port, urlsplit(url).query.removeprefix("token=")
    good = {"Host": f"127.0.0.1:{port}", "X-Embtune-Token": token, "Content-Type": "application/json"}
    grade = json.dumps({"query_id": "q1", "doc_id": "d1", "grade": 3}).encode()

    def saved() -> int:
        reader = JudgmentStore(sqlite)
        try:
            return len(reader.judgments())
        finally:
            reader.close()

    assert _request(port, "GET", "/")[0] == 403  # no token
    assert _request(port, "GET", "/api/queries")[0] == 403
    assert _request(port, "GET", "/api/queries", X_Embtune_Token="wrong")[0] == 403
    assert _request(port, "GET", "/?token=" + token, Host=f"rebind.attacker.example:{port}")[0] == 403
    assert _request(port, "GET", "/api/queries", **{**good, "Host": f"localhost:{port}"})[0] == 200
    assert _request(port, "POST", "/api/judgments", grade, **{**good, "Origin": "http://attacker.example"})[0] == 403
    assert _request(port, "POST", "/api/judgments", grade, **{**good, "Content-Type": "text/plain"})[0] == 415
    status, answer = _request(port, "POST", "/api/judgments", b"{" + b" " * (50 * 2**20) + b"}", **good)
    assert status == 413 and len(answer) < 500  # refused from its length, not read, not echoed
    for bad in (b'{"query_id": "q1", "doc_id": "d1", "grade": 2.9}', b'{"query_id": "q1", "doc_id": "d1", '
                b'"grade": true}', b'{"query_id": "q1", "doc_id": "d1", "grade": Infinity}', b"{", b"[]", b"\xff",
                b'{"query_id": "q1", "doc_id": "nope", "grade": 1}', b'{"query_id": "q1", "grade": 1}'):
        status, answer = _request(port, "POST", "/api/judgments", bad, **good)
        assert status == 400 and "error" in json.loads(answer), (bad, status, answer)
    assert _request(port, "POST", "/api/export", b"", **{**good, "Content-Type": "text/plain"})[0] == 415
    assert saved() == 0 and not (sqlite.parent / "eval_set.jsonl").exists()

    site = tmp_path / "attacker"  # another site the person has open, in a real browser
    site.mkdir()
    (site / "index.html").write_text(ATTACKER.format(target=f"http://127.0.0.1:{port}"))
    attacker = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), partial(
        http.server.SimpleHTTPRequestHandler, directory=str(site)))
    threading.Thread(target=attacker.serve_forever, daemon=True).start()
    from playwright.sync_api import expect, sync_playwright

    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium(), args=["--no-sandbox", "--disable-gpu"])
            try:
                page = browser.new_page()
                page.set_default_timeout(30_000)
                page.goto(f"http://127.0.0.1:{attacker.server_address[1]}/index.html")
                page.wait_for_url(f"http://127.0.0.1:{port}/api/judgments")  # the form was posted, and refused
                assert "are not accepted" in page.content()  # its Origin is another site
                assert saved() == 0 and not (sqlite.parent / "eval_set.jsonl").exists()  # cross-origin writes: 0

                dialogs = []
                page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
                page.goto(url)  # the person's own page, with the token: the judge name is text, not script
                expect(page.locator("#position")).to_contain_text("query 1 of 1 · 0 of 2 judged")
                expect(page.locator("#judge")).to_have_text("judging as human:" + judge)
                expect(page.locator("#query")).to_have_text("reset <b>Jaguar</b>")
                expect(page.locator(".candidate h2").first).to_contain_text("<img src=x onerror=alert(1)>")
                page.locator(".candidate").nth(0).locator("button[data-grade='3']").click()
                expect(page.locator("#status")).to_contain_text("saved: d1 = 3")
                assert saved() == 1 and dialogs == []
            finally:
                browser.close()
    finally:
        attacker.shutdown()
        attacker.server_close()
