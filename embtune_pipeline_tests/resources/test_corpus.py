"""The corpus source resource."""

import json
from pathlib import Path

import pytest

from embtune_pipeline.resources.corpus import CorpusSource
from embtune_pipeline_tests.resources.corpus_settings import corpus_settings


def test_the_corpus_source_reads_quarantines_freezes_and_chunks(write_settings, tmp_path, tiny_model):
    settings = corpus_settings(write_settings, tmp_path, broken_row=True, bad_rows="quarantine")
    source = CorpusSource(settings=settings)
    docs, quarantined = source.read_current()
    assert len(docs) == 6 and quarantined == 1
    snapshot = source.register_current()
    assert snapshot.new and source.snapshots().exists(snapshot.key)
    quarantine = source.snapshots().info(snapshot.key)["quarantine_file"]
    assert json.loads(Path(quarantine).read_text())["row"] == "line 7"
    assert source.snapshots().info(snapshot.key)["source"] == source.name == str(tmp_path / "docs.jsonl")
    assert not source.register_current().new  # the same content is the same snapshot
    chunks, duplicates = source.chunk(docs, str(tiny_model))
    assert set(chunks["doc_id"]) == set(docs["doc_id"]) and duplicates == 0


def test_each_snapshot_keeps_its_own_quarantined_rows(write_settings, tmp_path):
    """The quarantine file was rewritten at every corpus read: snapshot A's rows vanished when snapshot B was
    read, while A's metadata still counted them."""
    settings = corpus_settings(write_settings, tmp_path, broken_row=True, bad_rows="quarantine")
    source = CorpusSource(settings=settings)
    first = source.register_current()
    corpus = tmp_path / "docs.jsonl"
    rows = corpus.read_text().splitlines()
    corpus.write_text("\n".join(rows[1:6] + ['{"id": "also broken"}', '{"id": "", "text": "no id"}']) + "\n")
    second = source.register_current()
    assert second.key != first.key and (first.quarantined, second.quarantined) == (1, 2)
    for snapshot in (first, second):
        info = source.snapshots().info(snapshot.key)
        held = Path(info["quarantine_file"]).read_text().splitlines()
        assert len(held) == info["quarantined_rows"] == snapshot.quarantined
    assert info["quarantine_file"] == str(settings.get().layout.quarantine("corpus", second.key))
    first_held = Path(source.snapshots().info(first.key)["quarantine_file"]).read_text()
    assert json.loads(first_held)["row"] == "line 7"


def test_the_corpus_source_refuses_a_bad_row_when_asked_to(write_settings, tmp_path):
    source = CorpusSource(settings=corpus_settings(write_settings, tmp_path, broken_row=True, bad_rows="error"))
    with pytest.raises(ValueError, match=r"docs\.jsonl, line 7: missing field 'text'"):
        source.read_current()
