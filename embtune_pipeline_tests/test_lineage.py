"""What an analyst sees: dagster-webserver serves the asset graph, with dependencies, checks and partitions."""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from embtune_pipeline_tests.conftest import jaguar_docs, write_jsonl

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
QUERY = """{ assetNodes { assetKey { path } dependencyKeys { path } groupName kinds
  partitionDefinition { type dimensionTypes { name dynamicPartitionsDefinitionName } }
  assetChecksOrError { ... on AssetChecks { checks { name blocking } } } }
  repositoriesOrError { ... on RepositoryConnection { nodes { jobs { name description } } } } }"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(url: str, query: str) -> dict:
    req = urllib.request.Request(url, data=json.dumps({"query": query}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def test_the_webserver_serves_the_asset_graph_over_graphql(write_settings, tmp_path):
    settings = write_settings(corpus={"path": str(write_jsonl(tmp_path / "docs.jsonl", jaguar_docs())),
                                      "format": "jsonl"})
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    port = free_port()
    webserver = str(Path(sys.executable).with_name("dagster-webserver"))
    proc = subprocess.Popen([webserver, "-h", "127.0.0.1", "-p", str(port), "-w", "workspace.yaml"], cwd=REPO,
                            env={**os.environ, "DAGSTER_HOME": str(home), "EMBTUNE_CONFIG": str(settings)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        url, nodes, deadline = f"http://127.0.0.1:{port}/graphql", None, time.time() + 180
        while time.time() < deadline and nodes is None:
            assert proc.poll() is None, proc.stderr.read()[-3000:]
            try:
                answer = post(url, QUERY)["data"]
                nodes = answer["assetNodes"]
            except (OSError, KeyError, TypeError):
                time.sleep(1)  # the server, or the code location behind it, is still loading
        assert nodes, "the webserver never answered"
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    graph = {"/".join(n["assetKey"]["path"]): n for n in nodes}
    deps = {k: {"/".join(d["path"]) for d in n["dependencyKeys"]} for k, n in graph.items()}
    checks = {k: {c["name"]: c["blocking"] for c in n["assetChecksOrError"].get("checks", [])}
              for k, n in graph.items()}
    assert set(graph) == {"corpus", "corpus_sample", "user_pairs", "synthetic_queries", "eval_set",
                          "training_pairs", "base_corpus_embeddings", "hard_negatives", "finetuned_model",
                          "base_model_eval", "eval_report", "registered_model", "index_bindings", "eval_history",
                          "base_model_upgrade", "baseline_eval", "query_log_eval_set", "vector_index"}
    assert deps["finetuned_model"] == {"hard_negatives", "base_corpus_embeddings"}
    assert deps["baseline_eval"] == {"eval_set", "corpus"}
    assert {"baseline_eval", "base_model_eval", "finetuned_model"} <= deps["eval_report"]
    assert deps["query_log_eval_set"] == {"corpus", "base_corpus_embeddings"}
    assert deps["registered_model"] == {"eval_report", "finetuned_model"}
    assert deps["base_model_upgrade"] == {"eval_report"}
    assert deps["vector_index"] == {"registered_model"}  # registered_model -> vector_index
    assert checks["eval_report"] == {"promotion_gate": True}
    assert checks["index_bindings"] == {"indexes_use_champion": False}
    assert checks["eval_history"] == {"champion_holds_lead": False}
    dims = graph["finetuned_model"]["partitionDefinition"]["dimensionTypes"]
    assert {d["name"]: d["dynamicPartitionsDefinitionName"] for d in dims} == {
        "base_model": "base_models", "snapshot": "corpus_snapshots"}
    assert graph["base_model_upgrade"]["partitionDefinition"]["type"] == "DYNAMIC"
    assert graph["eval_history"]["partitionDefinition"] is None

    groups = {}  # the lineage opens as a few groups that follow the pipeline's stages
    for key, node in graph.items():
        groups.setdefault(node["groupName"], set()).add(key)
    assert set(groups) == {"data", "training", "evaluation", "registry", "serving"}
    assert groups["serving"] == {"vector_index"} and "lancedb" in graph["vector_index"]["kinds"]
    assert groups["training"] == {"base_corpus_embeddings", "hard_negatives", "finetuned_model"}
    assert all(node["kinds"] for node in graph.values()), [k for k, n in graph.items() if not n["kinds"]]
    assert "mlflow" in graph["finetuned_model"]["kinds"] and "litellm" in graph["synthetic_queries"]["kinds"]
    jobs = {j["name"]: j["description"] for repo in answer["repositoriesOrError"]["nodes"] for j in repo["jobs"]}
    assert {"retune", "quarterly_reevaluation", "refresh_index_bindings", "compare_base_models",
            "build_vector_index"} <= set(jobs)
    assert all(jobs[name] for name in jobs if not name.startswith("__")), jobs
