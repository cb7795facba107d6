"""Baselines through a real local OpenAI-compatible server, reached by litellm as a hosted provider is."""

import pandas as pd
import pytest

from embtune_pipeline.lib.costs import BudgetExceeded
from embtune_pipeline.lib.embeddings import EmbeddingStore
from embtune_pipeline.lib.evaluation.baselines import measure_baselines
from embtune_pipeline.lib.evaluation.measure import measure
from embtune_pipeline.lib.models import model_fingerprint
from embtune_pipeline.settings.schema import BaselineSettings
from embtune_pipeline_tests.conftest import jaguar_docs


@pytest.fixture
def jaguar(tmp_path):
    docs = jaguar_docs()[:20]
    chunks = pd.DataFrame({"chunk_id": [d["id"] for d in docs], "doc_id": [d["id"] for d in docs],
                           "alias_doc_ids": [[] for _ in docs], "title": [d["title"] for d in docs],
                           "text": [d["text"] for d in docs]})
    from embtune_pipeline.lib.data.chunking import chunk_texts, text_hash

    chunks["chunk_hash"] = [text_hash(t) for t in chunk_texts(chunks)]
    eval_set = pd.DataFrame({"query_id": [f"q{i}" for i in range(10)],
                             "query": [f"{d['title']} question" for d in docs[:10]],
                             "doc_id": [d["id"] for d in docs[:10]], "score": 1, "eval_source": "t",
                             "synthetic": False})
    return chunks, eval_set


def _run(baselines, tmp_path, chunks, eval_set, budget=1.0):
    stores = tmp_path / "stores"
    return measure_baselines(baselines, lambda key: EmbeddingStore(stores / key),
                             lambda path: EmbeddingStore(stores / model_fingerprint(path)), chunks, eval_set,
                             budget, max_seq_length=64, batch_size=8)


def test_an_api_baseline_scores_as_its_model_does_and_a_rerun_sends_nothing(openai_server, tiny_embed, tiny_model,
                                                                          tmp_path, jaguar):
    chunks, eval_set = jaguar
    server = openai_server(embed=tiny_embed)  # the API serves the tiny model: its scores must be the model's
    api = BaselineSettings(model="openai/tiny-embedder", label="tiny-api", params={"api_base": server.api_base},
                           batch_size=8, usd_per_million_tokens=0)
    local = BaselineSettings(model=str(tiny_model), label="tiny-local")
    per_query, costs = _run([api, local], tmp_path, chunks, eval_set)
    expected = measure(tiny_model, 64, EmbeddingStore(tmp_path / "direct"), chunks, eval_set).per_query
    for name in ("tiny-api", "tiny-local"):
        got = per_query[per_query["baseline"] == name].reset_index(drop=True)
        assert got["ndcg@10"].tolist() == pytest.approx(expected["ndcg@10"].tolist(), abs=1e-6)
    assert server.embedded_texts == 30 and server.embedding_requests == 3 + 2  # 20 chunks and 10 queries, by 8
    assert costs[0] | {"estimated_usd": 0} == {"baseline": "tiny-api", "model": "openai/tiny-embedder", "kind": "api",
                                               "texts_encoded": 30, "cache_hits": 0, "batches": 5,
                                               "tokens_sent": costs[0]["tokens_sent"], "estimated_usd": 0}
    _, again = _run([api, local], tmp_path, chunks, eval_set)
    assert server.embedded_texts == 30 and again[0]["texts_encoded"] == 0 and again[1]["texts_encoded"] == 0


def test_queries_go_with_their_own_params_and_are_cached_apart(openai_server, tiny_embed, tmp_path, jaguar):
    chunks, eval_set = jaguar
    server = openai_server(embed=tiny_embed)
    api = BaselineSettings(model="openai/tiny-embedder", params={"api_base": server.api_base},
                           query_params={"user": "query-side"}, usd_per_million_tokens=0)
    _run([api], tmp_path, chunks, eval_set)
    assert len(list((tmp_path / "stores").iterdir())) == 2  # documents and queries: two stores


def test_a_paid_baseline_above_the_budget_is_refused_before_any_call(openai_server, tiny_embed, tmp_path, jaguar):
    chunks, eval_set = jaguar
    server = openai_server(embed=tiny_embed)
    priced = BaselineSettings(model="openai/text-embedding-3-small", params={"api_base": server.api_base})
    with pytest.raises(BudgetExceeded, match=r"embedding 30 texts for the baselines \(\d+ tokens\) would cost "
                                             r"about \$0\.0000\d+, above baselines_budget_usd"):
        _run([priced], tmp_path, chunks, eval_set, budget=1e-9)
    unpriced = BaselineSettings(model="openai/tiny-embedder", params={"api_base": server.api_base})
    with pytest.raises(BudgetExceeded, match="'openai/tiny-embedder' has no price"):
        _run([unpriced], tmp_path, chunks, eval_set)
    assert server.embedding_requests == 0
    per_query, _ = _run([priced], tmp_path, chunks, eval_set, budget=0.01)  # within budget: measured
    assert len(per_query) == 10


def test_keys_in_baseline_params_are_refused():
    with pytest.raises(ValueError, match=r"baselines.params \['api_key'\] look like secrets"):
        BaselineSettings(model="openai/x", params={"api_key": "sk-1"})
