"""The teacher: a model stronger on the domain than the base, whose relevance scores the base learns from
(distillation, Tamber et al. 2025; GPL, Wang et al. 2022). A bi-encoder (a local sentence-transformers directory
or an embedding API reached through litellm) scores a (query, passage) pair by the cosine of its vectors, cached
in the embedding store by text hash like every model's; a cross-encoder scores each pair, its scores cached by
(teacher, query, passage). What an API would be sent is priced before the first call and refused above the
budget: a rerun sends nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional, Protocol

import numpy as np

from embtune_pipeline.lib.costs import check_budget, count_tokens, estimate_usd
from embtune_pipeline.lib.data.chunking import text_hash
from embtune_pipeline.lib.embeddings import EXPORT_DIR, EmbeddingStore
from embtune_pipeline.lib.hosted_embeddings import EmbeddingModelSpec, HostedEmbedder, hosted_key
from embtune_pipeline.lib.progress import SILENT, Reporter
from embtune_pipeline.lib.queries.cache import AnswerCache, cache_key

BUDGET_SETTING = "teacher.budget_usd"


class TeacherSpec(EmbeddingModelSpec, Protocol):
    """The settings' `teacher:` (settings.TeacherSettings)."""

    budget_usd: float

    @property
    def is_cross_encoder(self) -> bool: ...


class _Lazy:
    """A model loaded on its first encode (`make(texts)`: the texts are the sample an export is checked on): a
    rerun whose vectors are all cached never loads it."""

    def __init__(self, make: Callable[[list[str]], object]):
        self._make, self._model = make, None

    def encode(self, texts, **kwargs):
        if self._model is None:
            self._model = self._make(list(texts))
        return self._model.encode(texts, **kwargs)


class BiEncoderTeacher:
    """Scores by cosine: queries through `query_store`, passages through `passage_store` (the same store for a
    local model; an API's query params, e.g. input_type, make a store of their own)."""

    kind = "bi-encoder"

    def __init__(self, spec: TeacherSpec, query_store: EmbeddingStore, passage_store: EmbeddingStore,
                 query_encoder, passage_encoder, batch_size: int):
        self.spec, self.query_store, self.passage_store = spec, query_store, passage_store
        self.query_encoder, self.passage_encoder, self.batch_size = query_encoder, passage_encoder, batch_size
        self.encoded = 0

    @property
    def name(self) -> str:
        return self.spec.name

    def price(self, queries: list[str], passages: list[str]) -> tuple[int, int, Optional[float]]:
        """(texts to send, their tokens, estimated USD) for the texts not cached yet; 0 USD for a local model."""
        unsent = (self.query_store.unsent([text_hash(t) for t in queries], queries)
                  + self.passage_store.unsent([text_hash(t) for t in passages], passages))
        if self.spec.is_local or not unsent:
            return len(unsent), 0, 0.0
        tokens = count_tokens(self.spec.model, unsent)
        return len(unsent), tokens, estimate_usd(self.spec.model, tokens, 0, self.spec.usd_per_million_tokens)

    def vectors(self, texts: list[str], query: bool, reporter: Reporter = SILENT) -> np.ndarray:
        """The teacher's unit vectors of the texts, as queries or as passages (cached by text)."""
        store, encoder = (self.query_store, self.query_encoder) if query else (self.passage_store,
                                                                               self.passage_encoder)
        vectors, encoded = store.encode(encoder, [text_hash(t) for t in texts], list(texts), self.batch_size,
                                        reporter, f"encoding {'queries' if query else 'passages'} with the teacher")
        self.encoded += encoded
        return vectors

    def score(self, queries: list[str], passages: list[str], reporter: Reporter = SILENT) -> np.ndarray:
        """The cosine of each (queries[i], passages[i])."""
        q, p = self.vectors(queries, True, reporter), self.vectors(passages, False, reporter)
        return np.einsum("ij,ij->i", q, p) if len(q) else np.zeros(0, dtype=np.float32)


class CrossEncoderTeacher:
    """Scores each (query, passage) pair with a local cross-encoder (its sigmoid score in [0, 1]); a pair is
    scored once: the scores are cached by (teacher, query, passage)."""

    kind = "cross-encoder"

    def __init__(self, spec: TeacherSpec, cache: AnswerCache, max_seq_length: int, batch_size: int,
                 fingerprint: str):
        self.spec, self.cache, self.max_seq_length, self.batch_size = spec, cache, max_seq_length, batch_size
        self.fingerprint, self._model, self.encoded = fingerprint, None, 0

    @property
    def name(self) -> str:
        return self.spec.name

    def price(self, queries: list[str], passages: list[str]) -> tuple[int, int, Optional[float]]:
        keys = {self._key(q, p) for q, p in zip(queries, passages)}
        return len(keys - set(self.cache.get_many(list(keys)))), 0, 0.0

    def _key(self, query: str, passage: str) -> str:
        return cache_key("teacher", self.fingerprint, self.max_seq_length, query, passage)

    def score(self, queries: list[str], passages: list[str], reporter: Reporter = SILENT) -> np.ndarray:
        keys = [self._key(q, p) for q, p in zip(queries, passages)]
        known = {k: float(v) for k, v in self.cache.get_many(keys).items()}
        todo = {k: (q, p) for k, q, p in zip(keys, queries, passages) if k not in known}
        if todo:
            progress = reporter.track("scoring pairs with the teacher", len(todo), "pairs")
            items = list(todo.items())
            block = self.batch_size * 32
            for start in range(0, len(items), block):
                part = items[start:start + block]
                scores = self._loaded().predict([pair for _, pair in part], batch_size=self.batch_size,
                                                show_progress_bar=False, convert_to_numpy=True)
                fresh = {k: float(s) for (k, _), s in zip(part, np.asarray(scores).reshape(len(part), -1)[:, 0])}
                self.cache.put_many({k: repr(v) for k, v in fresh.items()}, self.spec.model)
                known.update(fresh)
                progress.advance(len(part))
            self.encoded += len(todo)
        return np.array([known[k] for k in keys], dtype=np.float32)

    def _loaded(self):
        if self._model is None:
            from sentence_transformers import CrossEncoder

            self._model = CrossEncoder(str(self.spec.model), max_length=self.max_seq_length, local_files_only=True)
        return self._model


def build_teacher(spec: TeacherSpec, store_for: Callable[[str], EmbeddingStore],
                  local_store: Callable[[str], EmbeddingStore], score_cache: Callable[[], AnswerCache],
                  fingerprint: Callable[[str], str], max_seq_length: int, batch_size: int, backend: str = "torch"):
    """The teacher the settings describe. `store_for(key)` opens an embedding store by key, `local_store(path)`
    a local model's, `score_cache()` the cross-encoder's score cache, `fingerprint(path)` a local model's hash;
    a local bi-encoder encodes on `backend` (lib.encoders.choose_encoder)."""
    from embtune_pipeline.lib.encoders import choose_encoder

    if spec.is_cross_encoder:
        if not spec.is_local:
            raise ValueError(f"teacher {spec.model!r}: a cross-encoder teacher must be a local directory")
        return CrossEncoderTeacher(spec, score_cache(), max_seq_length, batch_size, fingerprint(spec.model))
    if spec.is_local:
        store = local_store(spec.model)
        model = _Lazy(lambda sample: choose_encoder(Path(spec.model), max_seq_length, backend,
                                                    store.root / EXPORT_DIR, sample).encoder)
        return BiEncoderTeacher(spec, store, store, model, model, batch_size)
    query_params = {**spec.params, **spec.query_params}
    return BiEncoderTeacher(
        spec, store_for(hosted_key(spec.model, query_params)), store_for(hosted_key(spec.model, spec.params)),
        HostedEmbedder(spec.model, query_params, spec.request_timeout_seconds, spec.max_retry_seconds),
        HostedEmbedder(spec.model, spec.params, spec.request_timeout_seconds, spec.max_retry_seconds),
        spec.batch_size)


class BudgetedTeacher:
    """The teacher as a scoring function, (query texts, passage texts) -> a score per pair, that prices what each
    call would send and refuses (calling nothing) when the run's total would pass the budget. `cost` adds up what
    it did: texts or pairs newly encoded, tokens sent, the estimate."""

    def __init__(self, teacher, budget_usd: float, reporter: Reporter = SILENT):
        self.teacher, self.budget_usd, self.reporter = teacher, budget_usd, reporter
        self.cost = {"teacher": teacher.name, "teacher_kind": teacher.kind, "teacher_encoded": 0,
                     "teacher_tokens_sent": 0, "teacher_estimated_usd": 0.0}

    def __call__(self, queries: list[str], passages: list[str]) -> np.ndarray:
        return self._paid(f"scoring {len(queries)} pairs", queries, passages,
                          lambda: self.teacher.score(queries, passages, self.reporter))

    def row_vectors(self, anchors: list[str], passage_columns: list[list[str]]) -> Optional[np.ndarray]:
        """A bi-encoder teacher's vectors of each row's [anchor, passage_1..n], flattened to one row each (the
        in-batch distillation's label); None for a cross-encoder, which has no vectors."""
        if self.teacher.kind != BiEncoderTeacher.kind:
            return None
        passages = [t for column in passage_columns for t in column]

        def encode() -> np.ndarray:
            q = self.teacher.vectors(anchors, True, self.reporter)
            p = self.teacher.vectors(passages, False, self.reporter).reshape(len(passage_columns), len(anchors), -1)
            return np.concatenate([q, *p], axis=1)

        return self._paid(f"vectors of {len(anchors)} rows", anchors, passages, encode)

    def _paid(self, what: str, queries: list[str], passages: list[str], call):
        """`call()` once what it would send is priced within the run's budget, and its cost added up."""
        to_send, tokens, usd = self.teacher.price(queries, passages)
        spent = self.cost["teacher_estimated_usd"]
        check_budget(f"{what} with the teacher ({to_send} texts or pairs not cached, {tokens} tokens; "
                     f"${spent:.6f} spent before)", self.teacher.spec.model,
                     None if usd is None else spent + usd, self.budget_usd, BUDGET_SETTING)
        before = self.teacher.encoded
        out = call()
        self.cost["teacher_encoded"] += self.teacher.encoded - before
        self.cost["teacher_tokens_sent"] += tokens
        self.cost["teacher_estimated_usd"] = round(spent + (usd or 0.0), 6)
        return out


def reciprocal_ranks(positive: np.ndarray, candidates: np.ndarray, k: int = 10) -> np.ndarray:
    """Per query, 1/rank of its positive among its candidates (rank 1 + candidates scored above it), 0 beyond
    rank k. `candidates` is (queries, n), -inf where a slot is not a candidate."""
    ranks = 1 + (candidates > positive[:, None]).sum(axis=1)
    return np.where(ranks <= k, 1.0 / ranks, 0.0)


def teacher_check(base_positive: np.ndarray, base_candidates: np.ndarray, teacher_positive: np.ndarray,
                  teacher_candidates: np.ndarray, k: int = 10) -> dict:
    """The label-free check before training: over the same candidates (the base's top ones, minus the query's
    own documents), does the teacher rank a synthetic query's source above them more often than the base does?
    MRR@k of each, and a paired bootstrap 95% interval on the teacher's lead. The check favours the teacher a
    little (the candidates are the base's hardest), so a teacher whose whole interval lies below zero is clearly
    weaker. It reads synthetic queries only: on SciFact, teachers that trained on real queries alone tied the
    base here and taught a gain, while teachers that also trained on synthetic pairs led here and taught less
    (benchmarks/RESULTS.md)."""
    from embtune_pipeline.lib.evaluation.evaluate import bootstrap_ci

    base_rr = reciprocal_ranks(base_positive, base_candidates, k)
    teacher_rr = reciprocal_ranks(teacher_positive, teacher_candidates, k)
    base = float(base_rr.mean()) if len(base_rr) else float("nan")
    teacher = float(teacher_rr.mean()) if len(base_rr) else base
    low, high = bootstrap_ci(teacher_rr - base_rr)
    return {"queries": int(len(base_positive)), "base_mrr": round(base, 4), "teacher_mrr": round(teacher, 4),
            "lead_ci": [round(low, 4), round(high, 4)], "teacher_is_stronger": bool(teacher > base),
            "teacher_is_weaker": bool(high < 0)}


def teacher_warning(check: dict) -> Optional[str]:
    """What an operator should hear when the teacher is clearly weaker than the base on the synthetic queries (a
    tie is no warning: on SciFact, teachers that tied here taught a gain)."""
    if check["queries"] == 0 or not check["teacher_is_weaker"]:
        return None
    low, high = check["lead_ci"]
    return (f"the teacher ranks the synthetic queries' sources worse than the base (MRR@10 {check['teacher_mrr']} "
            f"vs {check['base_mrr']} on {check['queries']} queries, 95% interval of its lead {low} to {high}): "
            "distilling from a teacher weaker on this corpus cannot help; choose a stronger teacher")
