import numpy as np
import pytest

from embtune_pipeline.lib.costs import BudgetExceeded, check_budget, count_tokens, estimate_usd
from embtune_pipeline.lib.data.chunking import text_hash
from embtune_pipeline.lib.embeddings import EmbeddingStore
from embtune_pipeline.lib.hosted_embeddings import HostedEmbedder, hosted_key

TEXTS = [f"Jaguar X{i} battery lasts {i} hours" for i in range(7)]


def _embedder(server, **kw):
    return HostedEmbedder("openai/tiny-embedder", {"api_base": server.api_base}, max_retry_seconds=20, **kw)


def test_vectors_come_through_litellm_in_order_and_in_batches(openai_server, tiny_embed):
    server = openai_server(embed=tiny_embed)
    vectors = _embedder(server).encode(TEXTS, batch_size=3)
    assert server.embedding_requests == 3 and server.embedded_texts == 7  # 3 + 3 + 1
    expected = tiny_embed(TEXTS)
    assert np.allclose((vectors * expected).sum(axis=1), 1.0, atol=1e-5)  # same texts, same order
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_the_store_sends_each_text_once_per_model(openai_server, tiny_embed, tmp_path):
    server = openai_server(embed=tiny_embed)
    store = EmbeddingStore(tmp_path / hosted_key("openai/tiny-embedder", {"api_base": server.api_base}))
    hashes = [text_hash(t) for t in TEXTS]
    first, sent = store.encode(_embedder(server), hashes, TEXTS, batch_size=4)
    again, sent_again = EmbeddingStore(store.root).encode(_embedder(server), hashes + hashes[:2], TEXTS + TEXTS[:2])
    assert (sent, sent_again) == (7, 0) and server.embedded_texts == 7
    assert np.allclose(first, again[:7])


def test_rate_limits_and_server_errors_are_retried(openai_server, tiny_embed):
    server = openai_server(embed=tiny_embed, embedding_errors=[429, 503])
    assert _embedder(server).encode(TEXTS[:2]).shape == (2, 32)
    assert server.embedding_requests == 3


def test_a_refused_request_fails_naming_the_model_without_the_key(openai_server, tiny_embed):
    server = openai_server(embed=tiny_embed, embedding_errors=[401])
    with pytest.raises(RuntimeError, match="tiny-embedder") as e:
        _embedder(server).encode(TEXTS[:1])
    assert "sk-embtune-test-key" not in str(e.value) and server.embedding_requests == 1  # not retried


def test_store_keys_differ_by_params_and_hold_no_secret():
    a = hosted_key("openai/text-embedding-3-small", {"api_base": "http://127.0.0.1:1/v1"})
    assert a != hosted_key("openai/text-embedding-3-small", {"api_base": "http://127.0.0.1:2/v1"})
    assert a == hosted_key("openai/text-embedding-3-small", {"api_base": "http://127.0.0.1:1/v1", "api_key": "x"})
    assert a.startswith("api-openai-text-embedding-3-small-")


def test_cost_is_estimated_from_litellm_prices_and_refused_above_budget():
    tokens = count_tokens("openai/text-embedding-3-small", TEXTS)
    assert 7 * 5 < tokens < 7 * 20
    usd = estimate_usd("openai/text-embedding-3-small", tokens)
    assert usd == pytest.approx(tokens * 2e-8)  # $0.02 per million tokens in litellm's map
    check_budget("baselines", "openai/text-embedding-3-small", usd, 1.0, "baselines_budget_usd")
    with pytest.raises(BudgetExceeded, match=r"above baselines_budget_usd \(\$1e-07\); nothing was called"):
        check_budget("baselines", "openai/text-embedding-3-small", usd, 1e-7, "baselines_budget_usd")


def test_an_unknown_price_is_refused_unless_the_settings_give_one():
    assert estimate_usd("openai/my-own-server-model", 1000) is None
    with pytest.raises(BudgetExceeded, match="usd_per_million_tokens"):
        check_budget("baselines", "openai/my-own-server-model", None, 1.0, "baselines_budget_usd")
    assert estimate_usd("openai/my-own-server-model", 1000, usd_per_million_tokens=0) == 0
    assert estimate_usd("embtune-local/smollm2", 10**6, 10**6) == 0


def test_a_missing_key_fails_at_once_instead_of_being_retried(openai_server, tiny_embed, monkeypatch):
    server = openai_server(embed=tiny_embed)
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(RuntimeError, match="Missing credentials"):
        HostedEmbedder("openai/tiny-embedder", {"api_base": server.api_base}, max_retry_seconds=120).encode(TEXTS)
    assert server.embedding_requests == 0


def test_a_key_echoed_across_the_cut_of_a_long_error_is_never_shown_in_part(openai_server, tiny_embed, monkeypatch):
    from embtune_pipeline_tests.servers import message_offset

    key = "sk-test-SECRET123456"
    monkeypatch.setenv("OPENAI_API_KEY", key)
    before_cut = 484 - message_offset("embedding")  # 16 of the key's 20 characters before character 500
    server = openai_server(embed=tiny_embed, embedding_errors=[(401, "x" * before_cut + f"{key} is not valid")])
    with pytest.raises(RuntimeError, match="tiny-embedder") as e:
        _embedder(server).encode(TEXTS[:1])
    assert "SECRET" not in str(e.value)  # "sk-test-SECRET12" used to be shown
