import numpy as np
import pytest

from embtune_pipeline.lib.embeddings import EmbeddingStore


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
