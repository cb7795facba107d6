"""The query generator (an LLM reached through litellm, the local SmolLM2, or model-free ICT) as a Dagster
resource: the settings file's `generator:` section. A deployment swaps the model by configuration; the answer
cache under data_dir makes a rerun or a new snapshot pay only for new chunks."""

from __future__ import annotations

import dagster as dg
import pandas as pd

from embtune_pipeline.resources.settings import SettingsResource


class QueryGenerator(dg.ConfigurableResource):
    settings: SettingsResource

    @property
    def model(self) -> str:
        return self.settings.get().generator.model

    @property
    def uses_llm(self) -> bool:
        """False for the model-free generator (ICT), which has no prompt and makes no calls."""
        from embtune_pipeline.lib.queries.generate import ICT

        return self.model != ICT

    @property
    def prompt_template(self):
        from embtune_pipeline.lib.queries.generate import PROMPTS

        g = self.settings.get().generator
        return g.prompt_template or PROMPTS[g.query_style]

    @property
    def query_kind(self) -> str:
        """What the generator writes: claim-like sentences (ICT), or its prompt's questions or claims."""
        from embtune_pipeline.lib.queries.generate import ICT
        from embtune_pipeline.lib.queries.variety import CLAIM, QUESTION

        g = self.settings.get().generator
        return CLAIM if g.model == ICT or g.query_style == "claims" else QUESTION

    def vocabulary(self, chunks: pd.DataFrame, base_model_key: str) -> frozenset[str]:
        """The words the filters let an LLM's queries be made of (lib.queries.filters.query_vocabulary): the
        chunks' and the whole words of the tokenizer the corpus is chunked with for that base model."""
        from embtune_pipeline.lib.data.chunking import chunk_texts
        from embtune_pipeline.lib.models import load_tokenizer
        from embtune_pipeline.lib.queries.filters import query_vocabulary

        s = self.settings.get()
        tokenizer = load_tokenizer(s.corpus.tokenizer_of(s.base_model_ref(base_model_key)))
        return query_vocabulary(chunk_texts(chunks), tokenizer)

    def generate(self, chunks: pd.DataFrame, queries_per_chunk: int, examples: list[str], reporter=None,
                 ict_max_words: int | None = None, vocabulary: frozenset[str] | None = None):
        """lib.queries.generate.generate_queries as the settings configure it (ict_max_words: a run's override of
        run.generate's; vocabulary: the words an answer's queries may be made of); returns (queries, stats)."""
        from embtune_pipeline.lib.progress import SILENT
        from embtune_pipeline.lib.queries.cache import AnswerCache
        from embtune_pipeline.lib.queries.generate import ICT, generate_queries

        s = self.settings.get()
        g = s.generator
        cache = AnswerCache(s.layout.llm_cache) if g.model != ICT else None
        try:
            return generate_queries(
                chunks, queries_per_chunk, g.model, cache=cache, template=self.prompt_template.read_text(),
                examples=examples, params=g.params, concurrency=g.concurrency, max_failures=g.max_failures,
                request_timeout=g.request_timeout_seconds, max_retry_seconds=g.max_retry_seconds,
                reporter=reporter or SILENT,
                ict_max_words=ict_max_words or s.run.generate.ict_max_words, vocabulary=vocabulary)
        finally:
            if cache is not None:
                cache.close()
