import logging

import pandas as pd
import pytest

from embtune_pipeline.lib.data.snapshots import SnapshotStore, change_between, changed_fraction, snapshot_key


def docs(texts: dict) -> pd.DataFrame:
    return pd.DataFrame({"doc_id": list(texts), "title": "", "text": list(texts.values()), "provenance": "f.jsonl"})


def test_the_key_names_content_not_order_and_the_fraction_counts_edits_additions_and_removals():
    a = docs({"1": "alpha", "2": "beta", "3": "gamma", "4": "delta"})
    assert snapshot_key(a) == snapshot_key(a.iloc[::-1])
    edited = docs({"1": "alpha", "2": "beta!", "3": "gamma", "4": "delta"})
    assert snapshot_key(edited) != snapshot_key(a)
    assert changed_fraction(a, edited) == 0.25
    assert changed_fraction(a, docs({"1": "alpha", "2": "beta", "3": "gamma", "4": "delta", "5": "new"})) == 0.2
    assert changed_fraction(a, docs({"1": "alpha", "2": "beta"})) == 0.5
    assert changed_fraction(a, a) == 0.0


def test_a_registered_snapshot_is_frozen_and_reloadable(tmp_path):
    store = SnapshotStore(lambda key: tmp_path / "snapshots" / f"{key}.parquet")
    first = store.register(docs({"1": "alpha"}), quarantined=2, source="corpus.jsonl")
    assert first.new and store.exists(first.key)
    assert store.load(first.key)["text"].tolist() == ["alpha"]
    assert store.info(first.key)["quarantined_rows"] == 2
    assert not store.register(docs({"1": "alpha"})).new
    with pytest.raises(FileNotFoundError, match="corpus snapshot nope is not registered"):
        store.load("nope")


def test_a_damaged_snapshot_file_is_written_again_not_trusted(tmp_path, caplog):
    """A truncated snapshot was reported "already registered" and the corpus step then failed every run."""
    store = SnapshotStore(lambda key: tmp_path / "snapshots" / f"{key}.parquet")
    corpus = docs({str(i): f"text {i}" for i in range(200)})
    key = store.register(corpus).key
    path = tmp_path / "snapshots" / f"{key}.parquet"
    path.write_bytes(path.read_bytes()[:-200])  # a copy cut short
    with pytest.raises(ValueError, match=rf"corpus snapshot {key} is damaged \(unreadable: .*\): register the"):
        store.load(key)
    with caplog.at_level(logging.WARNING):
        again = store.register(corpus)
    assert not again.new and again.repaired
    assert f"corpus snapshot {key}: the stored copy {path} is damaged" in caplog.text
    assert store.load(key)["text"].tolist() == corpus["text"].tolist()
    other = docs({"1": "something else"})
    other.to_parquet(path, index=False)  # readable, but not the documents of that key
    with pytest.raises(ValueError, match="do not hash to its key"):
        store.load(key)
    assert store.register(corpus).repaired and len(store.load(key)) == 200


def test_the_change_between_two_snapshots_and_every_registered_one_oldest_first(tmp_path):
    def docs(texts: dict) -> pd.DataFrame:
        return pd.DataFrame({"doc_id": list(texts), "title": "", "text": list(texts.values()), "provenance": "t"})

    a = docs({"d1": "one", "d2": "two", "d3": "three"})
    b = docs({"d1": "one", "d2": "two, edited", "d4": "four", "d5": "five"})
    change = change_between(a, b)
    assert (change.added, change.removed, change.edited) == (2, 1, 1)
    assert str(change) == "+2 added, -1 removed, 1 edited"

    store = SnapshotStore(lambda key: tmp_path / "snapshots" / f"{key}.parquet")
    assert store.registered() == []
    first, second = store.register(a), store.register(b)
    (tmp_path / "snapshots" / "junk.json").write_text("{not json")  # not a snapshot's record: left out
    listed = store.registered()
    assert [i["key"] for i in listed] == [first.key, second.key] and [i["documents"] for i in listed] == [3, 4]
