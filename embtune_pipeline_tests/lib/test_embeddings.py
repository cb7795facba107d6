import numpy as np
import pytest

from embtune_pipeline.lib.embeddings import BATCHES_PER_SHARD, EmbeddingStore, encoding_shards
from embtune_pipeline.lib.progress import Reporter


class CountingModel:
    def __init__(self):
        self.encoded = []

    def encode(self, texts, **kwargs):
        self.encoded += texts
        return np.array([[len(t), 1.0] for t in texts], dtype=np.float32)


def test_each_hash_is_encoded_once(tmp_path):
    store = EmbeddingStore(tmp_path / "emb")
    model = CountingModel()
    v1, n1 = store.encode(model, ["h1", "h2"], ["a", "bb"])
    v2, n2 = store.encode(model, ["h2", "h3", "h1"], ["bb", "ccc", "a"])
    assert (n1, n2) == (2, 1) and model.encoded == ["a", "bb", "ccc"]
    assert np.allclose(v2[:, 0], [2, 3, 1])
    assert np.allclose(store.get(["h3", "h1"])[:, 0], [3, 1])
    with pytest.raises(KeyError, match="missing"):
        store.get(["h9"])


def test_an_interrupted_shard_is_ignored(tmp_path):
    store = EmbeddingStore(tmp_path)
    store.encode(CountingModel(), ["h1"], ["a"])
    (tmp_path / "shard-zzz.json").write_text('["h2"]')  # vectors never written
    model = CountingModel()
    store.encode(model, ["h2"], ["bb"])
    assert model.encoded == ["bb"]


def test_a_long_encoding_reports_progress_and_keeps_the_blocks_it_finished(tmp_path):
    """Blocks of batch_size x BATCHES_PER_SHARD texts, each its own shard: a crash in block 3 loses only block 3."""

    class FailingModel(CountingModel):
        def encode(self, texts, **kwargs):
            if len(self.encoded) >= 2 * BATCHES_PER_SHARD:
                raise RuntimeError("out of memory")
            return super().encode(texts, **kwargs)

    n = 3 * BATCHES_PER_SHARD  # batch_size 1: three blocks
    hashes, texts = [f"h{i}" for i in range(n)], ["x" * (i + 1) for i in range(n)]
    lines = []
    with pytest.raises(RuntimeError, match="out of memory"):
        EmbeddingStore(tmp_path).encode(FailingModel(), hashes, texts, batch_size=1,
                                        reporter=Reporter(lines.append, every=0), what="encoding the corpus")
    assert lines[0].startswith(f"encoding the corpus: {BATCHES_PER_SHARD}/{n} texts (33%)") and "ETA" in lines[0]
    model = CountingModel()
    vectors, encoded = EmbeddingStore(tmp_path).encode(model, hashes, texts, batch_size=1)
    assert encoded == BATCHES_PER_SHARD and model.encoded == texts[2 * BATCHES_PER_SHARD:]
    assert np.allclose(vectors[:, 0], [len(t) for t in texts])


def test_stored_vectors_are_read_memory_mapped_and_gathered_across_shards(tmp_path):
    """A large cache is not loaded into RAM: shards stay on disk, and only the rows asked for are read."""
    writer = EmbeddingStore(tmp_path)
    for i in range(3):  # three encodings: three shards
        writer.encode(CountingModel(), [f"h{i}a", f"h{i}b"], ["x" * (10 * i + 1), "x" * (10 * i + 2)])
    reader = EmbeddingStore(tmp_path)
    order = ["h2b", "h0a", "h1b", "h2a", "h0a"]
    assert np.allclose(reader.get(order)[:, 0], [22, 1, 12, 21, 1])
    _, shards = reader._load()
    assert len(shards) == 3 and all(isinstance(s, np.memmap) for s in shards)
    vectors, encoded = reader.encode(CountingModel(), ["h1a", "new"], ["x" * 11, "x" * 5])
    assert encoded == 1 and np.allclose(vectors[:, 0], [11, 5])
    # filling encodes what is missing and keeps no vector in RAM: what it wrote is read back from disk
    assert writer.fill(CountingModel(), ["h0a", "more", "more"], ["x", "x" * 7, "x" * 7]) == 1
    assert all(isinstance(s, np.memmap) for s in writer._load()[1]) and writer.dim == 2
    assert np.allclose(writer.get(["more"])[:, 0], [7]) and EmbeddingStore(tmp_path / "none").dim == 0
    fresh = EmbeddingStore(tmp_path)
    assert fresh.dim == 2 and fresh._loaded is None  # the dimension without reading every shard's hash list


class _RandomUnit:
    rng = np.random.default_rng(0)

    def encode(self, texts, **kwargs):
        v = self.rng.standard_normal((len(texts), 16)).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_an_approximate_corpus_index_is_built_once_and_read_back(tmp_path):
    hashes = [f"h{i}" for i in range(300)]
    store = EmbeddingStore(tmp_path)
    store.fill(_RandomUnit(), hashes, hashes, batch_size=64)
    index, reused = store.corpus_index(hashes, approximate=True)
    assert (index.kind, reused, len(index)) == ("hnsw", False, 300)
    again, reused = EmbeddingStore(tmp_path).corpus_index(hashes, approximate=True)
    assert (again.kind, reused) == ("hnsw", True)
    assert again.top_k(store.get(hashes[:5]), 1)[1][:, 0].tolist() == [0, 1, 2, 3, 4]
    exact, reused = store.corpus_index(hashes[:50], approximate=False)
    assert (exact.kind, reused) == ("exact", False)
    assert len(list((tmp_path / "indexes").iterdir())) == 1  # an exact scan is never written


def test_encoding_shards_hold_each_missing_hash_once_in_order(tmp_path):
    store = EmbeddingStore(tmp_path)
    store.fill(CountingModel(), ["h2"], ["bb"])
    hashes = ["h1", "h2", "h3", "h1", "h4", "h5", "h6"]  # h2 stored, h1 twice (two chunks with the same text)
    assert encoding_shards(store, hashes, 2) == [["h1", "h3"], ["h4", "h5"], ["h6"]]
    assert encoding_shards(store, ["h2"], 2) == [[]]  # nothing to encode: one empty shard, so the merge still runs


def _damaged_store(tmp_path, damage):
    """A store of two shards, the second one damaged by `damage(json file, npy file)`."""
    store = EmbeddingStore(tmp_path)
    store.encode(CountingModel(), ["h1"], ["a"])
    store.encode(CountingModel(), ["h2", "h3"], ["bb", "ccc"])
    [second] = [m for m in tmp_path.glob("shard-*.json") if "h2" in m.read_text()]
    bytes_before = {}
    damage(second, second.with_suffix(".npy"))
    for f in (second, second.with_suffix(".npy")):
        bytes_before[f] = f.read_bytes()
    return second, bytes_before


@pytest.mark.parametrize("damage", [
    lambda meta, vectors: meta.write_text('["h2", "h'),  # a hash list cut short
    lambda meta, vectors: vectors.write_bytes(vectors.read_bytes()[:-5]),  # vectors cut mid-row
    lambda meta, vectors: vectors.write_bytes(b"\x00garbage" * 40),
    lambda meta, vectors: meta.write_text('["h2"]'),  # one hash for two vectors
], ids=["hash list cut", "vectors cut", "vectors garbled", "hashes and vectors disagree"])
def test_a_damaged_shard_is_set_aside_and_only_its_vectors_are_encoded_again(tmp_path, caplog, damage):
    import logging

    second, bytes_before = _damaged_store(tmp_path, damage)
    model = CountingModel()
    with caplog.at_level(logging.WARNING):
        vectors, encoded = EmbeddingStore(tmp_path).encode(model, ["h1", "h2", "h3"], ["a", "bb", "ccc"])
    assert encoded == 2 and model.encoded == ["bb", "ccc"] and np.allclose(vectors[:, 0], [1, 2, 3])
    for f, content in bytes_before.items():
        moved = list(tmp_path.glob(f"{f.name}.corrupt-*"))
        assert len(moved) == 1 and moved[0].read_bytes() == content and not f.exists()
        assert str(f) in caplog.text and str(moved[0]) in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert EmbeddingStore(tmp_path).dim == 2 and not EmbeddingStore(tmp_path).missing(["h1", "h2", "h3"])
    assert not caplog.text


def test_a_damaged_search_index_is_set_aside_and_built_again(tmp_path, caplog):
    import logging

    hashes = [f"h{i}" for i in range(300)]
    store = EmbeddingStore(tmp_path)
    store.fill(_RandomUnit(), hashes, hashes, batch_size=64)
    store.corpus_index(hashes, approximate=True)
    [path] = (tmp_path / "indexes").iterdir()
    path.write_bytes(path.read_bytes()[:1000])  # cut short
    with caplog.at_level(logging.WARNING):
        index, reused = EmbeddingStore(tmp_path).corpus_index(hashes, approximate=True)
    assert (index.kind, reused, len(index)) == ("hnsw", False, 300)
    [moved] = (tmp_path / "indexes").glob(f"{path.name}.corrupt-*")
    assert len(moved.read_bytes()) == 1000 and str(path) in caplog.text and str(moved) in caplog.text
    again, reused = EmbeddingStore(tmp_path).corpus_index(hashes, approximate=True)
    assert reused and len(again) == 300
