"""What operators see, checked in a real browser: Debian's Chromium, driven by Playwright, on the Dagster UI that
dagster-webserver serves over an instance where `embtune run` just finished a tiny re-tune. Screenshots of each
page go to $EMBTUNE_SCREENSHOTS (default: test-results/screenshots in the repository)."""

import json
import os
import re
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from embtune_pipeline_tests.conftest import tiny_run_defaults
from embtune_pipeline_tests.servers import free_port, wait_until

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SCREENSHOTS = Path(os.environ.get("EMBTUNE_SCREENSHOTS", REPO / "test-results" / "screenshots"))


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.fail("Chromium is not installed: .ci/run installs Debian's chromium package")
    return found


@pytest.fixture
def finished_run(jaguar_beir, write_settings, tmp_path):
    """`embtune run` on the tiny Jaguar corpus, executed in-process into a fresh DAGSTER_HOME: the model learns
    (it beats its base on the real test queries) and a validation split picks its checkpoint."""
    run = {**tiny_run_defaults(), "train": {**tiny_run_defaults()["train"], "learning_rate": 1e-3, "epochs": 4,
                                            "validation_fraction": 0.3, "validation_min_queries": 10}}
    settings = write_settings(corpus={"path": str(jaguar_beir), "format": "beir"}, run=run, progress_seconds=0)
    return embtune_run(settings, tmp_path)


def embtune_run(settings: Path, tmp_path: Path) -> dict:
    """`embtune run` executed in-process into a fresh DAGSTER_HOME, as the README runs it."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    shutil.copy(REPO / "workspace.yaml", home / "workspace.yaml")
    env = {**os.environ, "DAGSTER_HOME": str(home), "EMBTUNE_CONFIG": str(settings)}
    proc = subprocess.run([str(BIN / "embtune"), "run"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=900)
    print(proc.stdout[-3000:])
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_id = re.search(r"^run ([0-9a-f-]{36}): success", proc.stdout, re.M).group(1)
    return {"env": env, "run_id": run_id, "stdout": proc.stdout, "stderr": proc.stderr, "data": tmp_path / "data"}


@pytest.fixture
def quick_start_run(tiny_model, tmp_path):
    """The quick start (`embtune run` on the bundled demo settings), shrunk to the tiny model and a few stdlib
    modules: the demo's own choices (python-docs corpus, no real queries, gates.trial) on a corpus this small."""
    import yaml

    from embtune_pipeline.settings import DEMO_CONFIG

    settings = yaml.safe_load(DEMO_CONFIG.read_text())
    settings.pop("base_models")
    tiny = tiny_run_defaults()  # enough synthetic eval queries (about 80) that the tuned model's gain shows
    run = {**tiny, "sample": {"sample_size": 200}, "eval_split": settings["run"]["eval_split"],
           "train": {**tiny["train"], "learning_rate": 1e-3, "epochs": 4}}
    modules = ["json", "csv", "pathlib", "re", "datetime", "collections", "itertools", "functools"]
    settings.update(data_dir=str(tmp_path / "data"), base_models=[str(tiny_model)], run=run, progress_seconds=0,
                    corpus={**settings["corpus"], "modules": modules, "chunk_tokens": 60, "chunk_overlap": 8})
    path = tmp_path / "settings.yaml"
    path.write_text(yaml.safe_dump(settings))
    return embtune_run(path, tmp_path)


def serve(run: dict, processes) -> str:
    port = free_port()
    processes.start("webserver", [str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(port),
                                  "-w", str(REPO / "workspace.yaml")], run["env"], REPO)
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: urllib.request.urlopen(f"{url}/server_info").status == 200, 180, "dagster-webserver",
               log=processes.log("webserver"))
    return url


@pytest.fixture
def webserver(finished_run, processes):
    return serve(finished_run, processes)


def browser_tab():
    from contextlib import contextmanager

    from playwright.sync_api import sync_playwright

    @contextmanager
    def tab():
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium(), args=["--no-sandbox", "--disable-gpu"])
            try:
                page = browser.new_page(viewport={"width": 1920, "height": 1200})  # an analyst's desktop
                page.set_default_timeout(60_000)
                page.add_locator_handler(page.get_by_text("Join the Dagster community"),
                                         lambda: page.get_by_role("button", name="Skip").click())
                yield page
            finally:
                browser.close()

    return tab()


@pytest.fixture
def page(webserver):
    with browser_tab() as tab:
        yield tab


def shot(page, name: str) -> Path:
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path


def metadata_row(page, key: str):
    """The row of the asset page's metadata table whose key is `key`."""
    return page.locator("tr").filter(has=page.locator("td", has_text=key)).first


def opens_an_image(page, row) -> tuple[int, int]:
    """One click on the row's [Show Markdown]: the dialog's image, loaded, as (width, height) in pixels."""
    row.get_by_text("Show Markdown").click()
    image = page.get_by_role("dialog").locator("img")
    image.wait_for()
    page.wait_for_timeout(1000)  # the dialog fades in: let the screenshot see it whole
    return image.evaluate("img => [img.naturalWidth, img.naturalHeight]")


def test_the_terminal_and_the_dagster_ui_say_what_the_run_did(finished_run, webserver, page):
    # the terminal: progress lines while it ran, no Dagster DEBUG events, and a summary that answers
    out, err = finished_run["stdout"], finished_run["stderr"]
    (SCREENSHOTS / "embtune_run.txt").write_text(out)
    assert re.search(r"finetuned_model - training step \d+/\d+ \(\d+%\), epoch [\d.]+, loss [\d.]+", err)
    assert "encoding the corpus with the base model, shard 1 of 1: 50/50 texts (100%)" in err
    assert " - DEBUG - " not in err and "STEP_START" not in err + out
    assert "Token indices sequence length" not in err
    report = json.loads(next((finished_run["data"] / "assets" / "eval_report").glob("*/*.json")).read_text())
    summary = out[out.index(f"run {finished_run['run_id']}"):]
    assert f"nDCG@10:     base {report['base']['ndcg@10']:.4f} -> tuned {report['finetuned']['ndcg@10']:.4f}" in summary
    assert "verdict:     promotable: beats its base on real queries" in summary
    assert "registry:    embtune v1, alias champion" in summary and "MLflow run:  http://127.0.0.1:5000/#/" in summary
    report_file = re.search(r"report: +(\S+)", summary).group(1)
    assert json.loads(Path(report_file).read_text())["promotable"] is True
    assert re.search(r"warning: +tuning_is_worth_it: corpus has 50 documents, under 10000", summary)

    # the eval report: the comparison reads without a click, its chart after one
    page.goto(f"{webserver}/assets/eval_report")
    comparison = metadata_row(page, "comparison")
    comparison.wait_for()
    for model, side in (("base", "base"), ("tuned", "finetuned")):
        row = comparison.locator("tr").filter(has_text="ndcg@10").filter(has_text=model).first
        assert row.is_visible() and str(round(report[side]["ndcg@10"], 4)) in row.inner_text()
        assert re.search(r"\d\.\d{4}–\d\.\d{4}", row.inner_text())  # its 95% interval
    sidebar = page.get_by_role("button", name="Definition").bounding_box()["x"]
    for shown in (comparison.locator("table").first, metadata_row(page, "verdict").locator("td").last):
        box = shown.bounding_box()  # neither runs under the side panel, cut off
        assert box["x"] + box["width"] < sidebar, shown
    assert "promotable: beats its base on real queries" in metadata_row(page, "verdict").inner_text()
    tuned_ndcg = metadata_row(page, "tuned_ndcg@10").inner_text().split()[-1]  # a float: the Plots tab charts it
    assert float(tuned_ndcg) == round(report["finetuned"]["ndcg@10"], 4)
    shot(page, "eval_report")
    width, height = opens_an_image(page, metadata_row(page, "chart: base vs tuned"))
    assert width > 300 and height > 200
    shot(page, "eval_report_chart")

    # the tuned model: validation scores inline, its loss curve one click away
    page.goto(f"{webserver}/assets/finetuned_model")
    scores = metadata_row(page, "validation_scores")
    scores.wait_for()
    assert scores.locator("tr", has_text="0 (base)").is_visible()
    assert scores.locator("tr", has_text="best checkpoint").is_visible()
    shot(page, "finetuned_model")
    width, height = opens_an_image(page, metadata_row(page, "chart: training loss and validation nDCG@10"))
    assert width > 300 and height > 200
    shot(page, "finetuned_model_loss_curve")

    # a failed check says why on its page
    page.goto(f"{webserver}/assets/base_model_eval?view=checks")
    page.get_by_text("corpus has 50 documents, under 10000: a tuned model may not generalize").wait_for()
    shot(page, "failed_check")

    # the run is listed under the retune job
    page.goto(f"{webserver}/locations/embtune_pipeline.definitions/jobs/retune/runs")
    page.get_by_text(finished_run["run_id"][:8]).first.wait_for()
    shot(page, "retune_runs")


CHECKED_ASSETS = {"eval_set": ["eval_set_is_real"], "base_model_eval": ["tuning_is_worth_it"],
                  "eval_report": ["promotion_gate"]}


def test_after_the_quick_start_no_check_renders_as_failed(quick_start_run, processes):
    """The demo chooses a synthetic eval set and a small corpus on purpose (gates.trial): its checks pass, each
    with a note saying so, and none renders as Failed (Dagster draws a failed WARN check as Failed too)."""
    out = quick_start_run["stdout"]
    summary = out[out.index(f"run {quick_start_run['run_id']}"):]
    assert "warning:" not in summary and "FAILED" not in summary, summary
    for check in ("eval_set_is_real", "tuning_is_worth_it", "promotion_gate"):
        assert re.search(rf"note: +{check}: by design in a trial \(gates.trial is true\)", summary), summary
    assert "alias challenger" in summary  # still never champion on synthetic queries
    webserver = serve(quick_start_run, processes)
    with browser_tab() as page:
        for asset, checks in CHECKED_ASSETS.items():
            page.goto(f"{webserver}/assets/{asset}?view=checks")
            for check in checks:
                page.get_by_text(check).first.wait_for()
            page.get_by_text(re.compile(r"^(Passed|All \d+ partitions? passed)$")).first.wait_for()
            page.wait_for_timeout(1000)  # every check's status has loaded, not just the first
            shot(page, f"quick_start_checks_{asset}")
            body = page.locator("body").inner_text()
            assert not re.search(r"\bFailed\b|partitions? failed", body), (asset, body[:3000])
        # a passed check says why it passed, on its own page
        page.goto(f"{webserver}/assets/eval_set?view=checks")
        page.get_by_text("eval_set_is_real").first.click()
        page.get_by_text("by design in a trial").first.wait_for()
        shot(page, "quick_start_check_note")
