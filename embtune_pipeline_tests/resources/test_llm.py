"""The query generator resource."""

from embtune_pipeline.resources.corpus import CorpusSource
from embtune_pipeline.resources.llm import QueryGenerator
from embtune_pipeline_tests.resources.corpus_settings import corpus_settings


def _chunks(settings):
    """The settings' corpus, chunked for its first base model."""
    source = CorpusSource(settings=settings)
    chunks, _ = source.chunk(source.read_current()[0], settings.get().base_model_ref(settings.get().base_model_keys[0]))
    return chunks


def test_the_query_generator_runs_the_configured_model(write_settings, tmp_path):
    settings = corpus_settings(write_settings, tmp_path)
    generator = QueryGenerator(settings=settings)
    assert generator.model == "ict" and generator.prompt_template.name == "queries.txt"
    chunks = _chunks(settings)
    queries, stats = generator.generate(chunks, 2, [])
    assert len(queries) == 2 * len(chunks) and set(queries["chunk_id"]) == set(chunks["chunk_id"])
    assert stats.chunks == len(chunks)


def test_the_query_generator_cuts_ict_queries_as_the_settings_say(write_settings, tmp_path):
    settings = corpus_settings(write_settings, tmp_path, run={"generate": {"ict_max_words": 4}})
    chunks = _chunks(settings)
    generator = QueryGenerator(settings=settings)
    cut, _ = generator.generate(chunks, 2, [])
    assert cut["query"].str.split().str.len().max() == 4
    longer, _ = generator.generate(chunks, 2, [], ict_max_words=30)  # a run's override of the settings
    assert longer["query"].str.split().str.len().max() > 4
    assert longer["positive"].tolist() == cut["positive"].tolist()


def test_the_words_queries_may_be_made_of_are_the_corpus_and_its_tokenizers(write_settings, tmp_path):
    settings = corpus_settings(write_settings, tmp_path)
    chunks = _chunks(settings)
    words = QueryGenerator(settings=settings).vocabulary(chunks, settings.get().base_model_keys[0])
    assert {"jaguar", "abroad"} <= words  # a word of the corpus, and one only the tokenizer knows
    assert "frobnicate" not in words
