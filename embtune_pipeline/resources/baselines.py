"""The baselines (settings `baselines:`) as a Dagster resource: the embedding APIs and local models a team would
ship instead of tuning. A deployment that reaches its provider otherwise swaps this resource."""

from __future__ import annotations

import dagster as dg

from embtune_pipeline.resources.embeddings import EmbeddingCache
from embtune_pipeline.resources.settings import SettingsResource


class BaselineModels(dg.ConfigurableResource):
    settings: SettingsResource

    @property
    def names(self) -> list[str]:
        return [b.name for b in self.settings.get().baselines]

    def encode(self, embeddings: EmbeddingCache, chunks, queries: list[str], reporter=None):
        """lib.evaluation.baselines.encode_baselines as the settings configure it: (name, vectors, cost) each."""
        from embtune_pipeline.lib.evaluation.baselines import encode_baselines
        from embtune_pipeline.lib.progress import SILENT

        s = self.settings.get()
        embed = s.run.embed
        return encode_baselines(
            s.baselines, embeddings.store, lambda path: embeddings.for_model(path, embed.max_seq_length), chunks,
            queries, s.baselines_budget_usd, embed.max_seq_length, embed.batch_size, reporter or SILENT)

    def measure(self, embeddings: EmbeddingCache, chunks, eval_set, reporter=None):
        """lib.evaluation.baselines.measure_baselines as the settings configure it, each model's vectors in the
        embedding cache: (per-query metrics with a `baseline` column, what each cost)."""
        from embtune_pipeline.lib.evaluation.baselines import measure_baselines
        from embtune_pipeline.lib.progress import SILENT

        s = self.settings.get()
        embed = s.run.embed
        return measure_baselines(
            s.baselines, embeddings.store, lambda path: embeddings.for_model(path, embed.max_seq_length), chunks,
            eval_set, s.baselines_budget_usd, embed.max_seq_length, embed.batch_size, reporter or SILENT)
