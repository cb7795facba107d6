"""The teacher's scores: cached like every paid call, priced before any, refused above the budget."""

from types import SimpleNamespace

import numpy as np
import pytest

from embtune_pipeline.lib.costs import BudgetExceeded
from embtune_pipeline.lib.embeddings import EmbeddingStore
from embtune_pipeline.lib.queries.cache import AnswerCache
from embtune_pipeline.lib.training.teacher import (
    BudgetedTeacher,
    build_teacher,
    reciprocal_ranks,
    teacher_check,
    teacher_warning,
)
from embtune_pipeline.settings import TeacherSettings

QUERIES = [f"how long does the Jaguar X{i} battery last" for i in range(5)]
PASSAGES = [f"The Jaguar X{i} battery lasts {i + 2} hours on one charge." for i in range(5)]


def _teacher(spec, tmp_path):
    from embtune_pipeline.lib.models import model_fingerprint

    return build_teacher(spec, lambda key: EmbeddingStore(tmp_path / "emb" / key),
                         lambda path: EmbeddingStore(tmp_path / "emb" / "local" / model_fingerprint(path)),
                         lambda: AnswerCache(tmp_path / "scores.sqlite"), model_fingerprint, 64, 16)


def test_a_local_bi_encoder_scores_by_cosine_and_encodes_each_text_once(tiny_teacher, tmp_path):
    from sentence_transformers import SentenceTransformer

    spec = TeacherSettings(model=str(tiny_teacher))
    teacher = BudgetedTeacher(_teacher(spec, tmp_path), spec.budget_usd)
    scores = teacher(QUERIES, PASSAGES)
    model = SentenceTransformer(str(tiny_teacher), device="cpu")
    q, p = model.encode(QUERIES, normalize_embeddings=True), model.encode(PASSAGES, normalize_embeddings=True)
    assert np.allclose(scores, (q * p).sum(axis=1), atol=1e-5)
    assert teacher.cost["teacher_encoded"] == 10 and teacher.cost["teacher_estimated_usd"] == 0
    again = BudgetedTeacher(_teacher(spec, tmp_path), spec.budget_usd)
    assert np.allclose(again(QUERIES[::-1], PASSAGES[::-1]), scores[::-1])
    assert again.cost["teacher_encoded"] == 0  # every vector from the cache: the model was never loaded
    assert again.teacher.query_encoder._model is None


def _api_teacher(server, **kw):
    return TeacherSettings(model="openai/tiny-teacher", params={"api_base": server.api_base},
                           max_retry_seconds=20, **kw)


def test_a_bi_encoder_teachers_row_vectors_are_the_in_batch_label(tiny_teacher, tiny_cross_encoder, tmp_path):
    spec = TeacherSettings(model=str(tiny_teacher))
    teacher = BudgetedTeacher(_teacher(spec, tmp_path), spec.budget_usd)
    scores = teacher(QUERIES, PASSAGES)
    rows = teacher.row_vectors(QUERIES, [PASSAGES, PASSAGES[::-1]])
    assert rows.shape == (5, 3 * 32) and teacher.cost["teacher_encoded"] == 10  # all cached by the scoring
    assert np.allclose((rows[:, :32] * rows[:, 32:64]).sum(axis=1), scores, atol=1e-5)
    ce = TeacherSettings(model=str(tiny_cross_encoder))
    assert BudgetedTeacher(_teacher(ce, tmp_path), ce.budget_usd).row_vectors(QUERIES, [PASSAGES]) is None


def test_an_api_teacher_is_priced_first_and_sends_each_text_once(openai_server, tiny_embed, tmp_path):
    server = openai_server(embed=tiny_embed)
    spec = _api_teacher(server, usd_per_million_tokens=0.02, batch_size=4)
    teacher = BudgetedTeacher(_teacher(spec, tmp_path), spec.budget_usd)
    scores = teacher(QUERIES, PASSAGES)
    assert server.embedded_texts == 10 and teacher.cost["teacher_tokens_sent"] > 0
    assert 0 < teacher.cost["teacher_estimated_usd"] < 1e-5
    expected = (tiny_embed(QUERIES) * tiny_embed(PASSAGES)).sum(axis=1)
    assert np.allclose(scores, expected, atol=1e-5)
    rerun = BudgetedTeacher(_teacher(spec, tmp_path), spec.budget_usd)
    assert np.allclose(rerun(QUERIES, PASSAGES), scores) and server.embedded_texts == 10
    assert rerun.cost["teacher_estimated_usd"] == 0


def test_an_api_teacher_above_its_budget_or_without_a_price_calls_nothing(openai_server, tiny_embed, tmp_path):
    server = openai_server(embed=tiny_embed)
    dear = _api_teacher(server, usd_per_million_tokens=1000.0, budget_usd=0.0001)
    with pytest.raises(BudgetExceeded, match=r"teacher.budget_usd \(\$0.0001\); nothing was called"):
        BudgetedTeacher(_teacher(dear, tmp_path), dear.budget_usd)(QUERIES, PASSAGES)
    unknown = _api_teacher(server)
    with pytest.raises(BudgetExceeded, match="has no price"):
        BudgetedTeacher(_teacher(unknown, tmp_path), unknown.budget_usd)(QUERIES, PASSAGES)
    assert server.embedding_requests == 0


def test_the_budget_holds_over_a_run_not_per_call(openai_server, tiny_embed, tmp_path):
    server = openai_server(embed=tiny_embed)
    spec = _api_teacher(server, usd_per_million_tokens=1000.0)
    probe = BudgetedTeacher(_teacher(spec, tmp_path / "probe"), 1.0)
    probe(QUERIES[:2], PASSAGES[:2])
    one_call = probe.cost["teacher_estimated_usd"]
    run = BudgetedTeacher(_teacher(spec, tmp_path / "run"), one_call * 1.5)
    run(QUERIES[:2], PASSAGES[:2])  # within the budget alone
    sent = server.embedded_texts
    with pytest.raises(BudgetExceeded, match="spent before"):
        run(QUERIES[2:4], PASSAGES[2:4])  # as dear again: the two calls together pass it
    assert server.embedded_texts == sent


def test_a_cross_encoder_teacher_is_recognised_and_its_scores_cached(tiny_cross_encoder, tmp_path):
    spec = TeacherSettings(model=str(tiny_cross_encoder))
    assert spec.is_cross_encoder
    teacher = BudgetedTeacher(_teacher(spec, tmp_path), spec.budget_usd)
    scores = teacher(QUERIES, PASSAGES)
    assert teacher.cost["teacher_kind"] == "cross-encoder" and teacher.cost["teacher_encoded"] == 5
    assert scores.shape == (5,) and ((0 < scores) & (scores < 1)).all()  # sigmoid scores
    again = BudgetedTeacher(_teacher(spec, tmp_path), spec.budget_usd)
    assert np.allclose(again(QUERIES, PASSAGES), scores) and again.cost["teacher_encoded"] == 0
    assert again.teacher._model is None


def test_a_remote_cross_encoder_is_refused():
    spec = SimpleNamespace(model="openai/rerank", is_cross_encoder=True, is_local=False)
    with pytest.raises(ValueError, match="must be a local directory"):
        build_teacher(spec, None, None, None, None, 64, 16)


def test_the_label_free_check_compares_the_ranks_of_the_sources():
    candidates = np.array([[0.9, 0.5, -np.inf], [0.3, 0.2, 0.1]])
    assert reciprocal_ranks(np.array([0.8, 0.05]), candidates, k=3).tolist() == [0.5, 0.0]  # rank 2; rank 4 > k
    weaker = teacher_check(np.array([0.95, 0.4]), candidates, np.array([0.8, 0.05]), candidates)
    assert weaker == {"queries": 2, "base_mrr": 1.0, "teacher_mrr": 0.375, "lead_ci": [-0.75, -0.5],
                      "teacher_is_stronger": False, "teacher_is_weaker": True}
    assert "ranks the synthetic queries' sources worse than the base (MRR@10 0.375 vs 1.0 on 2 queries, 95% " \
           "interval of its lead -0.75 to -0.5)" in teacher_warning(weaker)
    stronger = teacher_check(np.array([0.8, 0.05]), candidates, np.array([0.95, 0.4]), candidates)
    assert stronger["teacher_is_stronger"] and teacher_warning(stronger) is None
    # a tie is no warning: the teacher ranks one source lower, the other higher
    tie = teacher_check(np.array([0.95, 0.25]), candidates, np.array([0.8, 0.4]), candidates)
    assert tie["teacher_mrr"] == tie["base_mrr"] and tie["lead_ci"] == [-0.5, 0.5]
    assert not tie["teacher_is_stronger"] and not tie["teacher_is_weaker"] and teacher_warning(tie) is None
