"""The embedding cache as a Dagster resource: every store the code location opens is opened here, so a
deployment that keeps vectors elsewhere swaps this resource, not the assets."""

from __future__ import annotations

import dagster as dg

from embtune_pipeline.resources.settings import SettingsResource


class EmbeddingCache(dg.ConfigurableResource):
    """Vectors keyed by (model, max_seq_length) and content hash under data_dir/cache/embeddings: a text is
    never encoded twice by the same model."""

    settings: SettingsResource

    def store(self, key: str):
        """The store of one model at one max_seq_length (`key`, from lib.embeddings.embedding_key)."""
        from embtune_pipeline.lib.embeddings import EmbeddingStore

        return EmbeddingStore(self.settings.get().layout.embeddings(key))

    def key_for(self, model_path, max_seq_length: int) -> str:
        """The key of the model in `model_path` at max_seq_length: a hash of its weights, so a model moved or
        renamed keeps its vectors and a retrained one gets new ones."""
        from embtune_pipeline.lib.embeddings import embedding_key
        from embtune_pipeline.lib.models import model_fingerprint

        return embedding_key(model_fingerprint(model_path), max_seq_length)

    def for_model(self, model_path, max_seq_length: int):
        """The store of the model in `model_path`."""
        return self.store(self.key_for(model_path, max_seq_length))

    def measure(self, model_path, max_seq_length: int, chunks, eval_set, batch_size: int, reporter=None,
                model_label: str = "the model", store=None, score: bool = True):
        """lib.evaluation.measure.measure (score=False: encode_eval, the vectors alone) with this model's store,
        or `store` when the caller has it open."""
        from embtune_pipeline.lib.evaluation.measure import encode_eval, measure
        from embtune_pipeline.lib.progress import SILENT

        store = store or self.for_model(model_path, max_seq_length)
        return (measure if score else encode_eval)(model_path, max_seq_length, store, chunks, eval_set, batch_size,
                                                   reporter or SILENT, model_label, self.backend)

    @property
    def backend(self) -> str:
        """What encodes (settings run.embed.backend: lib.encoders.choose_encoder)."""
        return self.settings.get().run.embed.backend
