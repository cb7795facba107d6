"""A new corpus snapshot pays only for what changed: LLM calls and embeddings of unchanged chunks are reused."""

import hashlib

import dagster as dg
import litellm
import pytest

from embtune_pipeline_tests.conftest import asset_metadata, run_pipeline, write_jsonl

pytestmark = pytest.mark.slow


class CountingLLM(litellm.CustomLLM):
    """A fake provider: counts the calls that reach it, answers two questions derived from the prompt."""

    calls = 0

    def completion(self, *args, **kwargs):
        CountingLLM.calls += 1
        prompt = kwargs["messages"][-1]["content"]
        tag = hashlib.sha256(prompt.encode()).hexdigest()[:8]
        return litellm.completion(model="gpt-4o-mini", messages=kwargs["messages"],
                                  mock_response=f"1. What does section {tag} say about setup?\n"
                                                f"2. How is option {tag} configured in practice?")


@pytest.fixture
def counting_llm():
    saved = litellm.custom_provider_map
    litellm.custom_provider_map = [*saved, {"provider": "counting", "custom_handler": CountingLLM()}]
    CountingLLM.calls = 0
    yield CountingLLM
    litellm.custom_provider_map = saved


def docs(n: int, edited: set[int] = frozenset()) -> list[dict]:
    return [{"id": f"d{i}", "title": f"Jaguar manual {i}",
             "text": f"Section {i} of the Jaguar manual covers setting {i} and its defaults."
                     + (" Updated for release 3." if i in edited else "")} for i in range(n)]


def test_after_a_one_percent_change_a_retune_makes_at_most_two_percent_of_the_llm_calls(
        counting_llm, write_settings, tmp_path):
    corpus = write_jsonl(tmp_path / "docs.jsonl", docs(200))
    run = {"sample": {"sample_size": 1000}, "generate": {"queries_per_chunk": 2},
           "embed": {"max_seq_length": 64, "batch_size": 16, "shard_chunks": 64}}
    settings = write_settings(corpus={"path": str(corpus), "format": "jsonl"}, run=run,
                              generator={"model": "counting/fake", "concurrency": 2})
    steps = ["corpus", "corpus_sample", "user_pairs", "synthetic_queries", "base_corpus_embeddings"]
    instance = dg.DagsterInstance.ephemeral()
    full = run_pipeline(settings, selection=steps, instance=instance)
    full_calls = counting_llm.calls
    assert full_calls == 200 == asset_metadata(full, "synthetic_queries")["llm_calls"]
    encoded = asset_metadata(full, "base_corpus_embeddings")
    assert encoded["embedding_cache_misses"] == 200 and encoded["shards"] == 4  # 64 + 64 + 64 + 8: a step each
    assert {s for s in full.get_step_success_events() for s in [s.step_key]} >= {
        f"base_corpus_embeddings.encode_corpus_shard[{i}]" for i in range(4)}

    write_jsonl(corpus, docs(200, edited={7, 123}))  # 1% of the documents change
    counting_llm.calls = 0
    retune = run_pipeline(settings, selection=steps, instance=instance)
    meta = asset_metadata(retune, "synthetic_queries")
    assert len(instance.get_dynamic_partitions("corpus_snapshots")) == 2  # a new snapshot partition
    assert counting_llm.calls == meta["llm_calls"] == 2
    assert meta["cache_hits"] == 198
    ratio = counting_llm.calls / full_calls
    print(f"incremental LLM calls after a 1% corpus change: {counting_llm.calls}/{full_calls} = {ratio:.1%}")
    assert ratio <= 0.02
    encoded = asset_metadata(retune, "base_corpus_embeddings")
    assert encoded["embedding_cache_misses"] == 2 and encoded["shards"] == 1
