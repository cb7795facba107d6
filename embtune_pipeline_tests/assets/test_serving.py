"""vector_index through the code location's real job, on a real local MLflow registry, real LanceDB and the
tiny models: vectors reused from eval_report's store, a failing check, rollback with the champion, the rollout
sensor's decision, and serving.open_index encoding with the version that built the table."""

import json

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from embtune_pipeline.definitions import build_definitions
from embtune_pipeline.lib.registry.versions import read_bindings
from embtune_pipeline.lib.serving.build import rollback_index
from embtune_pipeline.lib.serving.tables import VectorIndexError
from embtune_pipeline.resources.corpus import CorpusSource
from embtune_pipeline.resources.embeddings import EmbeddingCache
from embtune_pipeline.resources.mlflow import MlflowResource
from embtune_pipeline.resources.settings import SettingsResource
from embtune_pipeline.resources.vector_store import LanceDBStore
from embtune_pipeline.settings import base_model_key
from embtune_pipeline_tests.conftest import jaguar_docs, write_jsonl

PHRASING = {"reset": "how do I factory reset my {p}", "firmware": "{p} firmware update schedule",
            "battery": "how long does the {p} battery last", "pairing": "pair a phone with {p}",
            "warranty": "is water damage covered for {p}"}


class Served:
    """Two registered versions (the tiny model, then the tiny teacher) evaluated on a snapshot of the Jaguar
    corpus, as the retune job leaves them: eval_set and eval_report stored, the tuned vectors in the store."""

    def __init__(self, write_settings, tmp_path, tiny_model, tiny_teacher, rollout="auto"):
        corpus = write_jsonl(tmp_path / "docs.jsonl", jaguar_docs())
        self.path = write_settings(corpus={"path": str(corpus), "format": "jsonl"},
                                   indexes=[{"name": "docs", "rollout": rollout}])
        self.settings = SettingsResource(config_path=str(self.path))
        self.s = self.settings.get()
        self.source = CorpusSource(settings=self.settings)
        self.snapshot = self.source.register_current().key
        self.mlflow = MlflowResource(settings=self.settings)
        self.registry = self.mlflow.registry()
        self.store = LanceDBStore(settings=self.settings)
        self.base_key = base_model_key(str(tiny_model))
        self.partition = f"{self.base_key}|{self.snapshot}"
        docs = jaguar_docs()
        eval_set = pd.DataFrame([{"query_id": f"q{i}", "query": PHRASING[d["title"].split(": ")[1]].format(
            p=d["title"].split(": ")[0]), "doc_id": d["id"], "score": 1, "synthetic": False, "eval_source": "test"}
            for i, d in enumerate(docs) if i % 3 == 0])
        layout = self.s.layout
        layout.asset("eval_set", self.partition).parent.mkdir(parents=True, exist_ok=True)
        eval_set.to_parquet(layout.asset("eval_set", self.partition), index=False)
        self.chunks, _ = self.source.chunk(self.source.snapshots().load(self.snapshot), str(tiny_model))
        embeddings = EmbeddingCache(settings=self.settings)
        self.ndcg, self.model_dirs = {}, {"1": str(tiny_model), "2": str(tiny_teacher)}
        for version, model_dir in (("1", tiny_model), ("2", tiny_teacher)):
            run_id = self.mlflow.tracker().start_training(f"m{version}", {}, {})
            registered = self.registry.register(run_id, f"runs:/{run_id}/model", {
                "model_dir": str(model_dir), "base_model": str(tiny_model), "base_model_key": self.base_key,
                "snapshot": self.snapshot, "max_seq_length": 64, "promotable": True})
            assert registered.version == version
            measured = embeddings.measure(str(model_dir), 64, self.chunks, eval_set, 16)  # as eval_report does
            self.ndcg[version] = float(measured.per_query["ndcg@10"].mean())
        self.write_report("1")
        self.registry.promote("1")
        self.defs = build_definitions(str(self.path))
        self.instance = dg.DagsterInstance.ephemeral()

    def write_report(self, version: str, ndcg: float | None = None) -> None:
        """The eval_report of the partition (both versions share it here: the last written is the one read)."""
        path = self.s.layout.asset("eval_report", self.partition, ".json")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"model_dir": self.model_dirs[version],  # whose report it is
                                    "finetuned": {"ndcg@10": self.ndcg[version] if ndcg is None else ndcg}}))

    def build(self, version: str | None = None, raise_on_error: bool = True):
        config = {"version": version} if version else {}
        return self.defs.resolve_job_def("build_vector_index").execute_in_process(
            partition_key="docs", run_config={"ops": {"vector_index": {"config": config}}}, instance=self.instance,
            raise_on_error=raise_on_error)


@pytest.fixture
def served(write_settings, tmp_path, tiny_model, tiny_teacher):
    return Served(write_settings, tmp_path, tiny_model, tiny_teacher)


def metadata(result) -> dict:
    mats = result.asset_materializations_for_node("vector_index")
    return {k: v.value for k, v in mats[-1].metadata.items()}


def test_a_build_of_the_champion_reuses_eval_reports_vectors_and_switches_after_its_check(served):
    result = served.build()
    meta = metadata(result)
    table = f"docs__v1__{served.snapshot}"
    assert (meta["table"], meta["model_version"], meta["rows"]) == (table, "1", len(served.chunks))
    assert meta["encoded"] == 0 and meta["reused"] == len(served.chunks)  # eval_report's vectors, every one
    assert abs(meta["ndcg@10_delta"]) <= 0.005 and meta["ndcg@10_reference_from"] == "v1's eval_report"
    assert meta["build"] == "full" and meta["build_seconds"] >= 0
    assert [r.data["table"] for r in meta["pointer_history"].records] == [table]
    assert served.store.pointer("docs").table == table
    assert read_bindings(served.s.layout.index_bindings)["docs"]["version"] == "1"

    bindings = served.defs.resolve_job_def("refresh_index_bindings").execute_in_process(instance=served.instance)
    check = bindings.get_asset_check_evaluations()[0]
    assert check.passed and check.description == "every index uses the champion"


def test_a_version_is_never_checked_against_another_versions_report(served):
    served.write_report("2", ndcg=served.ndcg["2"] + 0.1)  # the partition's report is v2's (trained later)
    meta = metadata(served.build("1"))  # v1 is measured on its own: the exact scan, not v2's figure
    assert meta["ndcg@10_reference_from"].endswith("is another version's, not v1's)")
    assert abs(meta["ndcg@10_delta"]) <= 0.005 and served.store.pointer("docs").version == "1"


def test_a_failing_check_fails_the_step_and_keeps_the_old_pointer(served):
    served.build()
    served.write_report("2", ndcg=served.ndcg["2"] + 0.1)  # the evaluation says otherwise: never switch
    failed = served.build("2", raise_on_error=False)
    assert not failed.success
    error = next(e for e in failed.all_events if e.is_step_failure).step_failure_data.error
    while error.cause is not None:
        error = error.cause
    assert f"table docs__v2__{served.snapshot} failed its check (nDCG@10 through the index" in error.message
    assert f"the pointer stays at docs__v1__{served.snapshot}" in error.message
    assert served.store.pointer("docs").version == "1"
    assert {m.table for m in served.store.tables("docs")} == {f"docs__v1__{served.snapshot}",
                                                               f"docs__v2__{served.snapshot}"}  # none deleted
    assert read_bindings(served.s.layout.index_bindings)["docs"]["version"] == "1"


def test_open_index_encodes_with_the_bound_version_after_the_champion_moved(served, tiny_model):
    from sentence_transformers import SentenceTransformer

    from embtune_pipeline.serving import open_index

    served.build()
    served.registry.promote("2")  # the champion moves; the index still serves v1's table
    index = open_index("docs", str(served.path))
    assert (index.version, index.table) == ("1", f"docs__v1__{served.snapshot}")
    query = "how long does the Lynx Sensor battery last"
    hits = index.search([query], k=5)[0]
    v1 = SentenceTransformer(str(tiny_model), device="cpu").encode([query], normalize_embeddings=True)
    expected = served.store.search("docs", index.table, v1, 5)[0]
    assert [h.chunk_id for h in hits] == [h.chunk_id for h in expected] and len(hits) == 5
    assert hits[0].score == pytest.approx(expected[0].score, abs=1e-4)
    assert all(isinstance(h.text, str) and h.doc_id for h in hits)

    decision = served.defs.get_sensor_def("vector_index_rollout_sensor")
    with dg.build_sensor_context(instance=served.instance, definitions=served.defs,
                                 resources={"settings": served.settings, "mlflow": served.mlflow,
                                            "vector_store": served.store}) as context:
        requests = list(decision(context).run_requests)
    assert [(r.partition_key, r.run_config["ops"]["vector_index"]["config"]["version"]) for r in requests] == \
        [("docs", "2")]  # an auto index follows the champion


def test_rollback_moves_the_index_back_to_its_kept_table(served):
    served.build()
    served.registry.promote("2")
    served.write_report("2")
    served.build()  # the champion, v2
    assert served.store.pointer("docs").version == "2"
    before, after = rollback_index(served.store, "docs")
    assert (before.version, after.version, after.table) == ("2", "1", f"docs__v1__{served.snapshot}")
    assert [m.reason for m in after.history] == ["build", "build", "rollback"]
    index_hits = served.store.search_current("docs", np.ones((1, 32), np.float32), 3)
    assert index_hits[0].table == after.table and len(index_hits[1][0]) == 3


def test_embtune_rollback_moves_the_champion_and_every_auto_index_back(served, capsys):
    from embtune_pipeline.cli import main

    served.build()
    served.registry.promote("2")
    served.write_report("2")
    served.build()
    assert main(["--config", str(served.path), "rollback"]) == 0
    out = capsys.readouterr().out
    assert "champion: embtune v1 (rolled back from v2)" in out
    assert f"index docs: docs__v1__{served.snapshot} (v1; was docs__v2__{served.snapshot})" in out
    assert served.store.pointer("docs").version == "1" and served.registry.champion().version == "1"
    assert read_bindings(served.s.layout.index_bindings)["docs"]["version"] == "1"
    assert main(["--config", str(served.path), "index", "list"]) == 0
    listed = capsys.readouterr().out
    assert f"docs: docs__v1__{served.snapshot}  v1  (auto; serves the champion)" in listed


def test_open_index_refuses_a_model_that_does_not_reproduce_the_tables_vectors(served, tiny_teacher):
    from embtune_pipeline.serving import open_index

    served.build()
    served.registry.client.set_model_version_tag("embtune", "1", "model_dir", str(tiny_teacher))  # swapped
    with pytest.raises(VectorIndexError, match=r"index docs: v1's model at .* does not reproduce the vectors of table "
                       r"docs__v1__.* queries would be encoded by another model than the documents"):
        open_index("docs", str(served.path))


def test_a_stale_manual_index_is_named_with_the_version_to_roll_to(write_settings, tmp_path, tiny_model,
                                                                   tiny_teacher):
    served = Served(write_settings, tmp_path, tiny_model, tiny_teacher, rollout="manual")
    served.build()
    served.registry.promote("2")
    result = served.defs.resolve_job_def("refresh_index_bindings").execute_in_process(instance=served.instance)
    check = result.get_asset_check_evaluations()[0]
    assert not check.passed and check.metadata["stale"].value == {"docs": "1"}
    assert check.description.endswith("docs (on v1): roll to v2 with `embtune index build docs --version 2`")
    rows = {k: v.value for k, v in result.asset_materializations_for_node("index_bindings")[-1].metadata.items()}
    assert rows["stale_indexes"] == 1 and rows["champion_version"] == "2"
    with dg.build_sensor_context(instance=served.instance, definitions=served.defs,
                                 resources={"settings": served.settings, "mlflow": served.mlflow,
                                            "vector_store": served.store}) as context:
        skipped = served.defs.get_sensor_def("vector_index_rollout_sensor")(context)
    assert skipped.skip_message == "no index has rollout: auto"  # a manual index waits for a person
