"""The query generator resource."""

from embtune_pipeline.resources.corpus import CorpusSource
from embtune_pipeline.resources.llm import QueryGenerator
from embtune_pipeline_tests.resources.corpus_settings import corpus_settings


def test_the_query_generator_runs_the_configured_model(write_settings, tmp_path):
    settings = corpus_settings(write_settings, tmp_path)
    generator = QueryGenerator(settings=settings)
    assert generator.model == "ict" and generator.prompt_template.name == "queries.txt"
    source = CorpusSource(settings=settings)
    chunks, _ = source.chunk(source.read_current()[0], settings.get().base_model_ref(settings.get().base_model_keys[0]))
    queries, stats = generator.generate(chunks, 2, [])
    assert len(queries) == 2 * len(chunks) and set(queries["chunk_id"]) == set(chunks["chunk_id"])
    assert stats.chunks == len(chunks)
