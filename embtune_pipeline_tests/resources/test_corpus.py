"""The corpus source resource."""

import json

import pytest

from embtune_pipeline.resources.corpus import CorpusSource
from embtune_pipeline_tests.resources.corpus_settings import corpus_settings


def test_the_corpus_source_reads_quarantines_freezes_and_chunks(write_settings, tmp_path, tiny_model):
    settings = corpus_settings(write_settings, tmp_path, broken_row=True, bad_rows="quarantine")
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
    source = CorpusSource(settings=corpus_settings(write_settings, tmp_path, broken_row=True, bad_rows="error"))
    with pytest.raises(ValueError, match=r"docs\.jsonl, line 7: missing field 'text'"):
        source.read_current()
