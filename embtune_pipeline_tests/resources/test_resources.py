"""The outside-system resources, built from a settings file as definitions.py builds them."""

import json

import pytest

from embtune_pipeline.resources.corpus import CorpusSource
from embtune_pipeline.resources.embeddings import EmbeddingCache
from embtune_pipeline.resources.llm import QueryGenerator
from embtune_pipeline.resources.mlflow import MlflowResource
from embtune_pipeline.resources.settings import SettingsResource
from embtune_pipeline_tests.conftest import jaguar_docs, write_jsonl


def _settings(write_settings, tmp_path, broken_row=False, **corpus) -> SettingsResource:
    rows = [{"id": d["id"], "title": d["title"], "text": d["text"]} for d in jaguar_docs()[:6]]
    path = write_jsonl(tmp_path / "docs.jsonl", rows + ([{"id": "broken", "title": "t"}] if broken_row else []))
    return SettingsResource(config_path=str(write_settings(corpus={"path": str(path), "format": "jsonl", **corpus})))


def test_the_corpus_source_reads_quarantines_freezes_and_chunks(write_settings, tmp_path, tiny_model):
    settings = _settings(write_settings, tmp_path, broken_row=True, bad_rows="quarantine")
    source = CorpusSource(settings=settings)
    docs, quarantined = source.read_current()
    assert len(docs) == 6 and quarantined == 1
    quarantine = settings.get().layout.quarantine("corpus")
    assert json.loads(quarantine.read_text())["row"] == "line 7"
    snapshot = source.register_current()
    assert snapshot.new and source.snapshots().exists(snapshot.key)
    assert source.snapshots().info(snapshot.key)["source"] == source.name == str(tmp_path / "docs.jsonl")
    assert not source.register_current().new  # the same content is the same snapshot
    chunks, duplicates = source.chunk(docs, str(tiny_model))
    assert set(chunks["doc_id"]) == set(docs["doc_id"]) and duplicates == 0


def test_the_corpus_source_refuses_a_bad_row_when_asked_to(write_settings, tmp_path):
    source = CorpusSource(settings=_settings(write_settings, tmp_path, broken_row=True, bad_rows="error"))
    with pytest.raises(ValueError, match=r"docs\.jsonl, line 7: missing field 'text'"):
        source.read_current()


def test_the_embedding_cache_keys_a_model_by_its_weights_under_data_dir(write_settings, tmp_path, tiny_model):
    settings = _settings(write_settings, tmp_path)
    cache = EmbeddingCache(settings=settings)
    store = cache.for_model(tiny_model, 64)
    assert store.root.parent == settings.get().layout.embeddings("x").parent and store.root.name.endswith("-L64")
    assert cache.for_model(tiny_model, 32).root != store.root
    assert cache.store("some-key").root == settings.get().layout.embeddings("some-key")


def test_the_query_generator_runs_the_configured_model(write_settings, tmp_path):
    settings = _settings(write_settings, tmp_path)
    generator = QueryGenerator(settings=settings)
    assert generator.model == "ict" and generator.prompt_template.name == "queries.txt"
    source = CorpusSource(settings=settings)
    chunks, _ = source.chunk(source.read_current()[0], settings.get().base_model_ref(settings.get().base_model_keys[0]))
    queries, stats = generator.generate(chunks, 2, [])
    assert len(queries) == 2 * len(chunks) and set(queries["chunk_id"]) == set(chunks["chunk_id"])
    assert stats.chunks == len(chunks)


def test_the_mlflow_resource_builds_both_clients_from_the_settings(write_settings, tmp_path):
    settings = _settings(write_settings, tmp_path)
    mlflow = MlflowResource(settings=settings)
    s = settings.get()
    assert mlflow.registry().name == s.registry.model_name
    assert mlflow.tracker().run_url("abc").startswith(s.mlflow.ui_url)
    assert json.dumps(SettingsResource.of(s).get().model_dump(mode="json")) == json.dumps(s.model_dump(mode="json"))
