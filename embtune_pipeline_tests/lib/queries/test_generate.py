import time

import pandas as pd
import pytest

from embtune_pipeline.lib.queries.cache import AnswerCache
from embtune_pipeline.lib.queries.generate import generate_queries, ict_pairs, parse_questions, render_prompt
from embtune_pipeline_tests.conftest import MARKUP, write_markup_docs


@pytest.mark.parametrize("answer, expected", [
    ("Here are 3 questions:\n1. How do I reset the Jaguar?\n2) What does amber mean?\n3. How long is the warranty?",
     ["How do I reset the Jaguar?", "What does amber mean?", "How long is the warranty?"]),
    ("Sure! Below are the queries:\n- jaguar reset steps\n* jaguar amber light\n\n• Jaguar warranty length",
     ["jaguar reset steps", "jaguar amber light", "Jaguar warranty length"]),
    ('Q1: "How do I pair a phone?"\nQuestion 2: How many phones can pair?\n', ["How do I pair a phone?",
                                                                             "How many phones can pair?"]),
    ("1. How do I reset?\n2. how do I reset\n3.\n4. ", ["How do I reset?"]),  # duplicates and empties dropped
    ("", []),
])
def test_parse_questions_tolerates_messy_output(answer, expected):
    assert parse_questions(answer, n=5) == expected


def test_parse_questions_stops_at_n():
    assert len(parse_questions("a b?\nc d?\ne f?", n=2)) == 2


def test_render_prompt_shows_style_examples():
    p = render_prompt("Write $n.$examples\n$passage", "PASSAGE", 3, ["jaguar wont turn on"])
    assert p.startswith("Write 3.") and "- jaguar wont turn on" in p and p.endswith("PASSAGE")
    assert "Real queries" not in render_prompt("$examples$passage", "P", 1, [])


def test_ict_takes_a_sentence_out_of_the_positive():
    text = "The Jaguar resets in ten seconds. Its light blinks amber. Updates arrive monthly over the air."
    pairs = ict_pairs("Jaguar", text, n=2, seed_key="h")
    assert len(pairs) == 2
    for query, positive in pairs:
        assert query in text and query not in positive and positive.startswith("Jaguar\n")
    assert ict_pairs("T", "Only one sentence here.", 2, "h") == []


def test_ict_cuts_long_sentences_to_max_words_and_keeps_the_positives():
    text = ("The Jaguar X2 battery holds its charge for eleven hours of continuous use in cold weather. "
            "Its charger draws at most forty watts from any port that supports the current standard. "
            "Firmware updates arrive monthly over the air and restart the unit at night.")
    long_pairs = ict_pairs("Jaguar", text, n=3, seed_key="h")
    short_pairs = ict_pairs("Jaguar", text, n=3, seed_key="h", max_words=5)
    assert [p for _, p in short_pairs] == [p for _, p in long_pairs]  # the same sentences taken out
    for (short, positive), (full, _) in zip(short_pairs, long_pairs):
        words = short.split()
        assert len(words) == 5 and len(full.split()) > 5
        assert short in full and short not in positive  # a run of the taken-out sentence's words, in order


def _markup_chunks(tmp_path):
    from embtune_pipeline.lib.data.chunking import chunk_documents
    from embtune_pipeline.lib.data.ingest import read_documents
    from embtune_pipeline.lib.models import load_tokenizer

    docs, _ = read_documents(write_markup_docs(tmp_path / "docs"), "dir")
    return chunk_documents(docs, load_tokenizer("all-MiniLM-L6-v2"), 64, 8)[0]


def test_queries_from_a_markdown_and_html_folder_carry_no_markup(tmp_path):
    """What query generation reads (a chunk's title and text) and what it makes (queries, positives) hold the
    documents' words, never their markup: a `## heading` is no training query."""
    chunks = _markup_chunks(tmp_path)
    queries, _ = generate_queries(chunks, 3, "ict")
    assert len(queries) >= len(chunks)
    for text in list(queries["query"]) + list(queries["positive"]):
        assert not [m for m in MARKUP if m in text], text
    prompts = []

    def llm(model, messages, **params):  # the LLM generator's input: the prompt it is sent
        prompts.append(messages[0]["content"])
        return {"choices": [{"message": {"content": "1. how long does the jaguar warranty last?"}}]}

    generate_queries(chunks, 1, "openai/gpt-x", cache=AnswerCache(tmp_path / "llm.sqlite"), template="$passage",
                     complete=llm)
    assert len(prompts) == len(chunks) and any("Resetting the device" in p for p in prompts)
    for prompt in prompts:
        assert not [m for m in MARKUP if m in prompt], prompt


def _chunks(n):
    return pd.DataFrame({"chunk_id": [f"c{i}" for i in range(n)], "chunk_hash": [f"h{i}" for i in range(n)],
                         "title": "", "text": [f"Jaguar passage number {i}." for i in range(n)]})


class FakeLLM:
    def __init__(self, fail_on=()):
        self.calls = 0
        self.fail_on = set(fail_on)

    def __call__(self, model, messages, **params):
        self.calls += 1
        prompt = messages[0]["content"]
        for bad in self.fail_on:
            if bad in prompt:
                raise ConnectionError("provider down")
        number = prompt.split("passage number ")[1].split(".")[0]
        return {"choices": [{"message": {"content": f"1. what is jaguar passage {number}?\n2. jaguar {number} info"}}]}


def test_llm_answers_are_cached_so_a_rerun_pays_nothing(tmp_path):
    cache = AnswerCache(tmp_path / "llm.sqlite")
    llm = FakeLLM()
    df, stats = generate_queries(_chunks(5), 2, "openai/gpt-x", cache=cache, template="$passage", complete=llm)
    assert llm.calls == 5 and stats.cache_hits == 0 and len(df) == 10
    assert set(df["provenance"]) == {f"openai/gpt-x:h{i}" for i in range(5)}
    df2, stats2 = generate_queries(_chunks(6), 2, "openai/gpt-x", cache=cache, template="$passage", complete=llm)
    assert llm.calls == 6 and stats2.cache_hits == 5 and len(df2) == 12
    # another model, prompt or parameter is another answer
    generate_queries(_chunks(1), 2, "ollama/llama3", cache=cache, template="$passage", complete=llm)
    generate_queries(_chunks(1), 2, "ollama/llama3", cache=cache, template="Q: $passage", complete=llm)
    generate_queries(_chunks(1), 2, "ollama/llama3", cache=cache, template="Q: $passage", complete=llm,
                     params={"temperature": 0.9})
    assert llm.calls == 9


def test_failures_are_retried_on_rerun_and_too_many_fail_the_step(tmp_path):
    cache = AnswerCache(tmp_path / "llm.sqlite")
    flaky = FakeLLM(fail_on={"number 3."})
    df, stats = generate_queries(_chunks(20), 2, "m", cache=cache, template="$passage", complete=flaky,
                                 max_retry_seconds=0)
    assert stats.failures == 1 and len(df) == 38
    assert "ConnectionError" in stats.errors[0]
    down = FakeLLM(fail_on={"passage"})
    with pytest.raises(RuntimeError, match="failed"):
        generate_queries(_chunks(22), 2, "m", cache=cache, template="$passage", complete=down, max_retry_seconds=0)
    assert down.calls == 3  # only the two new chunks and the one that failed before


# ------------------------------------------------ a hosted LLM, through litellm, at a local OpenAI-compatible server

KEY = "sk-test-0123456789abcdef"
GOOD = "1. how do I reset the Jaguar X1\n2. how long does the Jaguar battery last"


@pytest.fixture
def llm_server(monkeypatch):
    from embtune_pipeline.lib.llm_calls import litellm_completion
    from embtune_pipeline_tests.servers import FakeOpenAI

    litellm_completion()  # litellm imports in seconds: not part of any timing below
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    servers = []

    def start(*replies):  # scripted replies, or one function of the prompt
        if len(replies) == 1 and callable(replies[0]):
            servers.append(FakeOpenAI(replies[0]))
        else:
            servers.append(FakeOpenAI([r + ({}, 0.0)[len(r) - 2:] for r in replies]))  # headers, delay: optional
        return servers[-1]

    yield start
    for s in servers:
        s.close()


def _hosted(server, tmp_path, chunks=1, **kw):
    cache = AnswerCache(tmp_path / "llm.sqlite")
    try:
        return generate_queries(_chunks(chunks), 2, "openai/fake-model", cache=cache, template="$passage",
                                params={"api_base": server.api_base}, **kw)
    finally:
        cache.close()


def test_a_stalled_provider_times_out_instead_of_being_waited_out(llm_server, tmp_path):
    server = llm_server((200, GOOD, {}, 15.0))  # answers only after 15 s (a 90 s stall used to be waited out)
    start = time.time()
    with pytest.raises(RuntimeError, match="Timeout"):
        _hosted(server, tmp_path, request_timeout=1, max_retry_seconds=0)
    assert time.time() - start < 8


def test_rate_limits_are_retried_after_the_wait_the_provider_asks(llm_server, tmp_path):
    server = llm_server((429, "slow down", {"Retry-After": "1"}), (429, "slow down", {"Retry-After": "1"}),
                        (200, GOOD))
    start = time.time()
    df, stats = _hosted(server, tmp_path, max_retry_seconds=30)
    assert len(df) == 2 and stats.failures == 0 and server.requests == 3
    assert time.time() - start >= 2  # both waits honoured (a constant 429 used to fail within 1.5 s)


def test_an_empty_answer_is_not_cached_and_is_asked_again(llm_server, tmp_path):
    server = llm_server((200, ""), (200, GOOD))
    df, stats = _hosted(server, tmp_path)
    assert df.empty and stats.unparseable == 1
    df, stats = _hosted(server, tmp_path)
    assert len(df) == 2 and stats.cache_hits == 0 and server.requests == 2


def test_a_garbage_answer_never_becomes_a_training_query(llm_server, tmp_path):
    from embtune_pipeline.lib.queries.filters import filter_queries

    server = llm_server((200, "1. asdf qwer zxcv ### ??? ;;; 0xDEADBEEF\n2. how do I reset the Jaguar X1"))
    df, _ = _hosted(server, tmp_path)
    kept, rejects = filter_queries(df)
    assert kept["query"].tolist() == ["how do I reset the Jaguar X1"] and rejects["implausible"] == 1


def test_an_error_that_echoes_the_key_is_stored_and_shown_without_it(llm_server, tmp_path, capfd):
    server = llm_server((401, f"Incorrect API key provided: {KEY}"))
    with pytest.raises(RuntimeError) as e:
        _hosted(server, tmp_path, max_retry_seconds=0)
    assert "[redacted]" in str(e.value) and KEY not in str(e.value)
    out, err = capfd.readouterr()
    assert KEY not in out + err


JUNK = ["1. frobnicate wibble vexil blorp\n2. zorbly quuxen snarfle gloop",
        "1. I'm sorry, but as an AI language model I can't write queries for this passage.\n"
        "2. I apologize, but I cannot help with that request.",
        "1. vexil quornish blorptastic wubbery\n2. snarfle zibbet plonkish frobule",
        "1. As an AI, I am unable to generate search queries.\n2. Sorry, I can't assist with creating these."]


def test_gibberish_and_refusals_never_train_and_are_asked_again_once_the_provider_is_fixed(llm_server, tmp_path):
    from embtune_pipeline.lib.queries.filters import filter_queries

    junk = llm_server(lambda prompt: (200, JUNK[int(prompt.split("number ")[1].split(".")[0])], {}, 0.0))
    df, _ = _hosted(junk, tmp_path, chunks=4)
    kept, rejects = filter_queries(df)
    assert len(df) == 8 and kept.empty  # 8 of 8 used to be kept
    assert rejects["unrelated"] == 4 and rejects["refusal"] == 4
    fixed = llm_server((200, GOOD))
    df, stats = _hosted(fixed, tmp_path, chunks=4)
    assert fixed.requests == 4 and stats.cache_hits == 0  # the junk was not cached as an answer
    assert len(filter_queries(df)[0]) == 2  # the same two good questions for every chunk, duplicates dropped


def test_a_provider_failing_every_call_stops_the_step_after_a_few_calls(llm_server, tmp_path):
    asked = set()

    def down(prompt):
        asked.add(prompt)
        return 503, "upstream connect error: no healthy upstream", {"Retry-After": "0.1"}, 0.0

    server = llm_server(down)
    start = time.time()
    with pytest.raises(RuntimeError) as e:
        _hosted(server, tmp_path, chunks=40, max_retry_seconds=1)
    print(f"prompts asked of a dead provider: {len(asked)} of 40, {server.requests} requests, "
          f"{time.time() - start:.1f} s")
    assert len(asked) <= 10 + 4  # the first ten calls, and those already in flight (40 of 40 used to be asked)
    message = str(e.value)
    assert "'openai/fake-model'" in message and server.api_base in message
    assert "no healthy upstream" in message.split("last error")[1]


def test_a_key_echoed_across_the_cut_of_a_long_error_is_never_stored_in_part(llm_server, tmp_path, monkeypatch,
                                                                              capfd):
    from embtune_pipeline_tests.servers import message_offset

    key = "sk-test-SECRET123456"
    monkeypatch.setenv("OPENAI_API_KEY", key)
    before_cut = 284 - message_offset("chat")  # 16 of the key's 20 characters before character 300
    server = llm_server((401, "x" * before_cut + f"{key} is not a valid key " + "y" * 200))
    _, stats = _hosted(server, tmp_path, max_retry_seconds=0, max_failures=1.0)
    with pytest.raises(RuntimeError) as e:
        _hosted(server, tmp_path, max_retry_seconds=0)
    out, err = capfd.readouterr()
    stored = "\n".join([*stats.errors, str(e.value), out, err])
    assert stats.errors and "SECRET" not in stored  # "sk-test-SECRET12" used to be stored and shown
