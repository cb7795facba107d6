"""The LanceDB store and the blue/green build on it, for real (LanceDB embedded in a temporary folder), with
synthetic chunks and vectors: the switch, a failed check, rollback's tables, incremental builds, readers during
a switch and two builds at once."""

import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from embtune_pipeline.lib.data.chunking import chunk_doc_ids, text_hash
from embtune_pipeline.lib.evaluation.evaluate import evaluate_vectors
from embtune_pipeline.lib.registry.versions import bind_index, read_bindings
from embtune_pipeline.lib.serving.build import BuildRequest, build_index
from embtune_pipeline.lib.serving.plan import FULL, INCREMENTAL, READY
from embtune_pipeline.lib.serving.tables import VectorIndexError
from embtune_pipeline.resources.settings import SettingsResource
from embtune_pipeline.resources.vector_store import LanceDBStore

DIM = 8


def corpus(n: int, edited: tuple[int, ...] = (), dropped: tuple[int, ...] = (), added: int = 0) -> pd.DataFrame:
    ids = [i for i in range(n) if i not in dropped] + list(range(n, n + added))
    texts = [f"note {i}" + (" revised" if i in edited else "") for i in ids]
    return pd.DataFrame({"chunk_id": [f"d{i}#0" for i in ids], "doc_id": [f"d{i}" for i in ids],
                         "alias_doc_ids": [[] for _ in ids], "chunk_hash": [text_hash(t) for t in texts],
                         "title": "", "text": texts})


class Model:
    """A stand-in encoder: a fixed random unit vector per text, another set per version (seed)."""

    def __init__(self, seed: int):
        self.seed, self.calls = seed, []

    def vector(self, text: str) -> np.ndarray:
        rng = np.random.default_rng([self.seed, int(text_hash(text)[:8], 16)])
        v = rng.standard_normal(DIM).astype(np.float32)
        return v / np.linalg.norm(v)

    def encode(self, rows: pd.DataFrame):
        self.calls.append(len(rows))
        return np.stack([self.vector(t) for t in rows["text"]]) if len(rows) else np.zeros((0, DIM)), len(rows)


def request(model: Model, chunks: pd.DataFrame, version: str, snapshot: str, reference_shift: float = 0.0,
            **knobs) -> BuildRequest:
    """A build of index `docs` whose eval queries are near a few chunks, with the reference nDCG@10 the
    evaluation measures on the same vectors (plus `reference_shift`, to make the check fail)."""
    picked = chunks.iloc[::3]
    rng = np.random.default_rng(7)
    queries = np.stack([model.vector(t) + 0.3 * rng.standard_normal(DIM) for t in picked["text"]]).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    gains = [{d: 1} for d in picked["doc_id"]]
    vectors = np.stack([model.vector(t) for t in chunks["text"]])
    reference = evaluate_vectors(queries, vectors, chunk_doc_ids(chunks), [str(i) for i in range(len(gains))],
                                 gains)["ndcg@10"].mean()
    return BuildRequest("docs", "embtune", version, f"fp-{model.seed}", snapshot, chunks, DIM, queries, gains,
                        float(reference) + reference_shift, "the version's eval_report", **knobs)


@pytest.fixture
def store(write_settings, tmp_path):
    path = write_settings(corpus={"path": str(tmp_path), "format": "jsonl"}, indexes=[{"name": "docs"}])
    return LanceDBStore(settings=SettingsResource(config_path=str(path)))


def binder(store):
    path = store.settings.get().layout.index_bindings
    return path, lambda pointer: bind_index(path, pointer.index, pointer.model, pointer.version)


def test_blue_green_a_new_version_gets_a_new_table_and_the_pointer_moves_after_its_check(store):
    bindings, bind = binder(store)
    v1, v2 = Model(1), Model(2)
    first = build_index(store, request(v1, corpus(30), "1", "s1"), v1.encode, bind)
    assert first.plan.mode == FULL and first.encoded == 30 and first.reused == 0
    assert first.check.passed and abs(first.check.delta) <= 0.005 and first.check.rows == 30
    assert store.pointer("docs").table == "docs__v1__s1" and read_bindings(bindings)["docs"]["version"] == "1"

    second = build_index(store, request(v2, corpus(30), "2", "s1"), v2.encode, bind)
    pointer = store.pointer("docs")
    assert (pointer.table, pointer.version, second.previous_table) == ("docs__v2__s1", "2", "docs__v1__s1")
    assert [m.table for m in pointer.history] == ["docs__v1__s1", "docs__v2__s1"]
    assert {m.table for m in store.tables("docs")} == {"docs__v1__s1", "docs__v2__s1"}  # the old one kept
    assert read_bindings(bindings)["docs"]["version"] == "2"
    hit = store.search("docs", pointer.table, v2.vector("note 4")[None], 3)[0][0]
    assert (hit.chunk_id, hit.doc_id, hit.text) == ("d4#0", "d4", "note 4") and hit.score == pytest.approx(1, abs=1e-5)

    again = build_index(store, request(v2, corpus(30), "2", "s1"), v2.encode, bind)  # a rerun: nothing encoded
    assert again.plan.mode == READY and again.encoded == 0 and v2.calls == [30]
    assert store.pointer("docs") == pointer  # checked again, not moved: the history says nothing new


def test_a_failing_check_keeps_the_old_pointer_and_deletes_nothing(store):
    bindings, bind = binder(store)
    v1, v2 = Model(1), Model(2)
    build_index(store, request(v1, corpus(30), "1", "s1"), v1.encode, bind)
    with pytest.raises(VectorIndexError, match=r"table docs__v2__s1 failed its check \(nDCG@10 through the index "
                       r"[0-9.]+ differs from [0-9.]+ \(the version's eval_report\) by 0\.2000, more than 0\.005\): "
                       r"the pointer stays at docs__v1__s1"):
        build_index(store, request(v2, corpus(30), "2", "s1", reference_shift=0.2), v2.encode, bind)
    assert store.pointer("docs").table == "docs__v1__s1" and read_bindings(bindings)["docs"]["version"] == "1"
    assert {m.table for m in store.tables("docs")} == {"docs__v1__s1", "docs__v2__s1"}
    assert len(store.search("docs", "docs__v1__s1", v1.vector("note 1")[None], 5)[0]) == 5  # still served


def test_an_incremental_build_rewrites_only_the_changed_rows(store):
    model = Model(1)
    build_index(store, request(model, corpus(40), "1", "s1"), model.encode)
    changed = corpus(40, edited=(3, 5), dropped=(7,), added=1)
    result = build_index(store, request(model, changed, "1", "s2"), model.encode)
    assert result.plan.mode == INCREMENTAL and result.plan.base == "docs__v1__s1"
    assert model.calls == [40, 3] and (result.encoded, result.reused) == (3, 37)  # d3, d5 edited, d40 new
    assert sorted(result.plan.delete_ids) == ["d3#0", "d5#0", "d7#0"] and result.check.passed
    root = store.settings.get().index_uri("docs")
    own = list((Path(root) / "docs__v1__s2.lance" / "data").iterdir())
    assert len(own) == 1  # one new data file (the 3 rows); the clone reads the other 37 from its base's files
    rows = store.table_rows("docs", "docs__v1__s2").set_index("chunk_id")["chunk_hash"]
    assert len(rows) == 40 and "d7#0" not in rows and rows["d3#0"] == text_hash("note 3 revised")
    assert store.table_rows("docs", "docs__v1__s1").shape[0] == 40  # the old table is untouched
    hit = store.search("docs", "docs__v1__s2", model.vector("note 3 revised")[None], 1)[0][0]
    assert hit.text == "note 3 revised"


def test_keep_bounds_the_old_tables_but_never_drops_a_clones_base(store):
    model, other = Model(1), Model(2)
    build_index(store, request(model, corpus(30), "1", "s1", keep=0), model.encode)
    build_index(store, request(model, corpus(30, edited=(1,)), "1", "s2", keep=0), model.encode)  # a clone of s1
    assert {m.table for m in store.tables("docs")} == {"docs__v1__s1", "docs__v1__s2"}  # s1: s2's base
    result = build_index(store, request(other, corpus(30), "2", "s2", keep=0), other.encode)
    assert result.dropped == []  # s2 was served until now: readers may still be on it, and it needs s1
    result = build_index(store, request(model, corpus(30), "1", "s1", keep=0), model.encode)  # a rollback build
    assert sorted(result.dropped) == ["docs__v1__s2"]  # s1 is served again; v2 was just replaced
    assert {m.table for m in store.tables("docs")} == {"docs__v1__s1", "docs__v2__s2"}


def test_an_ann_index_above_the_threshold_reports_its_overlap_with_exact_search(store):
    model = Model(1)
    result = build_index(store, request(model, corpus(300), "1", "s1", ann_above_rows=100), model.encode)
    assert result.meta.ann and result.check.passed
    assert 0.5 <= result.check.ann_top10_overlap <= 1.0


def test_a_reader_during_a_switch_always_gets_a_full_result_from_one_table(store):
    v1, v2 = Model(1), Model(2)
    build_index(store, request(v1, corpus(60), "1", "s1"), v1.encode)
    query = v1.vector("note 9")[None]
    seen, errors, stop = [], [], threading.Event()

    def read():
        while not stop.is_set():
            try:
                pointer, hits = store.search_current("docs", query, 10)
                seen.append((pointer.table, tuple(h.chunk_id for h in hits[0])))
            except Exception as e:  # noqa: BLE001 - any error fails the test below
                errors.append(e)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        build_index(store, request(v2, corpus(60), "2", "s1"), v2.encode)
        build_index(store, request(v1, corpus(60, edited=(2,)), "1", "s2"), v1.encode)
    finally:
        stop.set()
        reader.join()
    assert not errors, errors[:3]
    expected = {t: tuple(h.chunk_id for h in store.search("docs", t, query, 10)[0])
                for t in ("docs__v1__s1", "docs__v2__s1", "docs__v1__s2")}
    assert {t for t, _ in seen} <= set(expected) and len(seen) > 3
    assert all(ids == expected[t] and len(ids) == 10 for t, ids in seen)  # whole, and one table's


def test_two_builds_of_one_index_at_once_leave_one_consistent_pointer(store):
    bindings, bind = binder(store)
    models = {"1": Model(1), "2": Model(2)}
    errors = []

    def build(version):
        try:
            build_index(store, request(models[version], corpus(40), version, "s1"), models[version].encode, bind)
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=build, args=(v,)) for v in models]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    pointer = store.pointer("docs")
    assert sorted(m.version for m in pointer.history) == ["1", "2"]  # one after the other, never interleaved
    assert pointer.table == pointer.history[-1].table
    meta = {m.table: m for m in store.tables("docs")}[pointer.table]
    assert (meta.version, meta.fingerprint, meta.rows) == (pointer.version, pointer.fingerprint, 40)
    assert read_bindings(bindings)["docs"]["version"] == pointer.version


def test_a_build_killed_midway_is_built_again_and_an_unreachable_store_is_one_line(store, write_settings, tmp_path):
    from embtune_pipeline.resources.vector_store import INCOMPLETE

    model = Model(1)
    build_index(store, request(model, corpus(30), "1", "s1"), model.encode)
    db = store._db("docs")  # a clone whose build died before its deletes, adds and record
    db.clone_table("docs__v1__s2", db.open_table("docs__v1__s1").uri)
    assert {m.table: m.rows for m in store.tables("docs")}["docs__v1__s2"] == INCOMPLETE
    result = build_index(store, request(model, corpus(30, edited=(2,)), "1", "s2"), model.encode)
    assert result.check.passed and result.encoded == 1 and store.pointer("docs").table == "docs__v1__s2"

    bad = LanceDBStore(settings=SettingsResource(config_path=str(write_settings(
        corpus={"path": str(tmp_path), "format": "jsonl"}, indexes=[{"name": "docs", "uri": "nosuch://x/y"}]))))
    with pytest.raises(VectorIndexError, match=r"index docs: cannot open the vector store at nosuch://x/y"):
        bad.tables("docs")


def test_indexes_sharing_a_uri_never_see_each_others_tables(write_settings, tmp_path):
    from dataclasses import replace

    shared = str(tmp_path / "shared")
    path = write_settings(corpus={"path": str(tmp_path), "format": "jsonl"},
                          indexes=[{"name": "docs", "uri": shared, "keep": 1}, {"name": "faq", "uri": shared}])
    store = LanceDBStore(settings=SettingsResource(config_path=str(path)))
    _, bind = binder(store)
    v1 = Model(1)
    build_index(store, replace(request(v1, corpus(10), "1", "s1"), index="faq"), v1.encode, bind)
    assert [m.table for m in store.tables("faq")] == ["faq__v1__s1"] and store.tables("docs") == []
    for version in ("1", "2", "3", "4"):  # docs' keep drops its own old tables, never another index's
        model = Model(int(version))
        build_index(store, request(model, corpus(10), version, "s1"), model.encode, bind)
    assert [m.table for m in store.tables("faq")] == ["faq__v1__s1"] and store.pointer("faq").table == "faq__v1__s1"
    assert store.pointer("docs").table == "docs__v4__s1" and "docs__v1__s1" not in {m.table for m in store.tables("docs")}
