"""The baselines (settings `baselines:`) as a Dagster resource: the embedding APIs and local models a team would
ship instead of tuning. A deployment that reaches its provider otherwise swaps this resource."""

from __future__ import annotations

import dagster as dg

from embtune_pipeline.resources.embeddings import EmbeddingCache
from embtune_pipeline.resources.settings import SettingsResource


class BaselineModels(dg.ConfigurableResource):
    settings: SettingsResource

    def encode(self, embeddings: EmbeddingCache, chunks, queries: list[str], reporter=None):
        """lib.evaluation.baselines.encode_baselines as the settings configure it: (name, vectors, cost) each."""
        from embtune_pipeline.lib.evaluation.baselines import encode_baselines

        return self._call(encode_baselines, embeddings, chunks, queries, reporter)

    def measure(self, embeddings: EmbeddingCache, chunks, eval_set, reporter=None):
        """lib.evaluation.baselines.measure_baselines as the settings configure it: (per-query metrics with a
        `baseline` column, what each cost)."""
        from embtune_pipeline.lib.evaluation.baselines import measure_baselines

        return self._call(measure_baselines, embeddings, chunks, eval_set, reporter)

    def _call(self, fn, embeddings: EmbeddingCache, chunks, queries, reporter):
        """`fn` with the settings' baselines, budget and encoding knobs, each model's vectors in the embedding
        cache (an API's under its model and params, a local model's under its fingerprint)."""
        from embtune_pipeline.lib.progress import SILENT

        s = self.settings.get()
        embed = s.run.embed
        return fn(s.baselines, embeddings.store, lambda path: embeddings.for_model(path, embed.max_seq_length),
                  chunks, queries, s.baselines_budget_usd, embed.max_seq_length, embed.batch_size,
                  reporter or SILENT, embed.backend)
