"""The embedding cache resource."""

from embtune_pipeline.resources.embeddings import EmbeddingCache
from embtune_pipeline_tests.resources.corpus_settings import corpus_settings


def test_the_embedding_cache_keys_a_model_by_its_weights_under_data_dir(write_settings, tmp_path, tiny_model):
    settings = corpus_settings(write_settings, tmp_path)
    cache = EmbeddingCache(settings=settings)
    store = cache.for_model(tiny_model, 64)
    assert store.root.parent == settings.get().layout.embeddings("x").parent and store.root.name.endswith("-L64")
    assert cache.for_model(tiny_model, 32).root != store.root
    assert cache.store("some-key").root == settings.get().layout.embeddings("some-key")
