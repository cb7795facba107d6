"""Hard negatives mined with the base model, with false-negative protection."""

from __future__ import annotations

from collections import Counter
from typing import Callable, Optional

import numpy as np
import pandas as pd

from embtune_pipeline.lib.data.chunking import chunk_doc_ids, chunk_texts
from embtune_pipeline.lib.evaluation.retrieval import CorpusIndex
from embtune_pipeline.lib.queries.pairs import is_real
from embtune_pipeline.lib.training.data import TEACHER_SCORES, text_columns


def mine_hard_negatives(
    query_vecs: np.ndarray,
    positive_scores: np.ndarray,
    corpus: CorpusIndex,
    chunk_docs: list[list[str]],
    known_positives: list[set[str]],
    rank_start: int,
    rank_end: int,
    relative_margin: float,
    per_query: int,
) -> tuple[list[list[int]], dict[str, int]]:
    """Per pair, up to `per_query` corpus rows to use as negatives, hardest first.

    Candidates come from ranks [rank_start, rank_end) of the base model's ranking: the very top is skipped
    because it holds unlabelled positives more often than true negatives. A candidate is dropped when it belongs
    to a known positive document of that query, or when it scores within `relative_margin` of the positive
    (score > (1 - margin) * positive score): too close to call a negative.
    """
    stats: Counter = Counter()
    if per_query == 0 or len(query_vecs) == 0:
        return [[] for _ in range(len(query_vecs))], dict(stats)
    scores, rows = corpus.top_k(query_vecs, rank_end)
    out = []
    for i in range(len(query_vecs)):
        ceiling = (1.0 - relative_margin) * float(positive_scores[i])
        picked = []
        for score, row in zip(scores[i][rank_start:], rows[i][rank_start:]):
            if row < 0:
                continue
            if known_positives[i].intersection(chunk_docs[row]):
                stats["skipped_known_positive"] += 1
                continue
            if score > ceiling:
                stats["skipped_within_margin"] += 1
                continue
            picked.append(int(row))
            if len(picked) == per_query:
                break
        if not picked:
            stats["pairs_without_negative"] += 1
        out.append(picked)
    stats["negatives"] = sum(len(p) for p in out)
    return out, dict(stats)


def round_trip_kept(query_vecs: np.ndarray, corpus: CorpusIndex, chunk_docs: list[list[str]],
                    known_positives: list[set[str]], k: int) -> np.ndarray:
    """Round-trip filter: True where one of the query's positive documents is in the base model's top k. A
    generated query its own passage does not answer, as the base model sees it, is more often noise than signal."""
    if k <= 0 or len(query_vecs) == 0:
        return np.ones(len(query_vecs), dtype=bool)
    _, rows = corpus.top_k(query_vecs, k)
    return np.array([any(r >= 0 and positives.intersection(chunk_docs[r]) for r in row)
                     for row, positives in zip(rows, known_positives)], dtype=bool)


def fill_random(negatives: list[list[int]], known_positives: list[set[str]], chunk_docs: list[list[str]],
                per_query: int, seed: int) -> tuple[int, int]:
    """Top up pairs short of negatives with random chunks (never a known positive), so every training row has
    the same shape; returns (negatives added, pairs that got one). A random negative is an easy one: many of
    them mean the rank window found too few candidates."""
    rng = np.random.default_rng(seed)
    added = pairs = 0
    n = len(chunk_docs)
    for picked, positives in zip(negatives, known_positives):
        tries, before = 0, len(picked)
        while len(picked) < per_query and tries < 50 and n > 1:
            tries += 1
            row = int(rng.integers(0, n))
            if row in picked or positives.intersection(chunk_docs[row]):
                continue
            picked.append(row)
            added += 1
        pairs += len(picked) > before
    return added, pairs


def training_rows(pairs: pd.DataFrame, negatives: list[list[int]], positive_scores: np.ndarray,
                  chunk_texts: list[str], chunk_ids: list[str], per_query: int) -> pd.DataFrame:
    """The trainer's rows: anchor, positive, negative_1..n (texts), then what each row came from (the mined
    chunk ids, the positive's document, source, provenance, the base model's positive score). A pair short of
    `per_query` negatives is dropped: every row has the same shape."""
    complete = np.array([len(n) >= per_query for n in negatives], dtype=bool)
    kept = pairs[complete]
    picked = [n for n, ok in zip(negatives, complete) if ok]
    rows = pd.DataFrame({"anchor": kept["query"].values, "positive": kept["positive"].values})
    for j in range(per_query):
        rows[f"negative_{j + 1}"] = [chunk_texts[n[j]] for n in picked]
    rows["mined_chunk_ids"] = [[str(chunk_ids[i]) for i in n] for n in picked]
    rows["positive_doc_id"] = kept["positive_doc_id"].values
    rows["source"] = kept["source"].values
    rows["provenance"] = kept["provenance"].values
    rows["positive_score"] = positive_scores[complete]
    return rows


TeacherScores = Callable[[list[str], list[str]], np.ndarray]  # (queries, passages) -> a score per pair


def mine_training_rows(pairs: pd.DataFrame, query_vecs: np.ndarray, positive_vecs: np.ndarray,
                       corpus_index: CorpusIndex, chunks: pd.DataFrame, *, rank_start: int, rank_end: int,
                       relative_margin: float, per_query: int, round_trip_k: int,
                       seed: int, teacher: Optional[TeacherScores] = None) -> tuple[pd.DataFrame, dict]:
    """From (query, positive) pairs and the base model's vectors to the trainer's rows: generated queries that
    fail the round trip are dropped (real ones always train), negatives are mined from the rank window, pairs
    short of negatives are topped up at random, and pairs still short are dropped. `corpus_index` searches the
    chunks' base-model vectors, row i being chunks' row i. With a `teacher`, it is the judge instead of the base
    (see teacher_judged_rows). Returns the rows and the counts of each decision and the share of pairs with a
    random negative (for the asset's metadata)."""
    if teacher is not None:
        return teacher_judged_rows(pairs, query_vecs, positive_vecs, corpus_index, chunks, teacher,
                                   rank_start=rank_start, rank_end=rank_end, per_query=per_query,
                                   round_trip_k=round_trip_k, seed=seed)
    docs = chunk_doc_ids(chunks)
    known_per_pair = _known_positives(pairs)
    keep = round_trip_kept(query_vecs, corpus_index, docs, known_per_pair, round_trip_k) | is_real(pairs).to_numpy()
    pairs = pairs[keep].reset_index(drop=True)
    query_vecs, positive_vecs = query_vecs[keep], positive_vecs[keep]
    known_per_pair = [k for k, ok in zip(known_per_pair, keep) if ok]
    positive_scores = np.einsum("ij,ij->i", query_vecs, positive_vecs)
    negatives, stats = mine_hard_negatives(query_vecs, positive_scores, corpus_index, docs, known_per_pair,
                                           rank_start, rank_end, relative_margin, per_query)
    return _finish(pairs, negatives, positive_scores, chunks, docs, known_per_pair, per_query, seed, stats, keep)


def _known_positives(pairs: pd.DataFrame) -> list[set[str]]:
    """Per pair, every document some pair of the same query points at."""
    known = pairs.groupby("query")["positive_doc_id"].agg(lambda d: {x for x in d if isinstance(x, str)})
    return [known[q] for q in pairs["query"]]


def _finish(pairs, negatives, positive_scores, chunks, docs, known_per_pair, per_query, seed, stats,
            keep) -> tuple[pd.DataFrame, dict]:
    """Random negatives where mining found too few, the rows, and the counts."""
    stats["random_fill"], stats["pairs_with_random_negative"] = fill_random(negatives, known_per_pair, docs,
                                                                            per_query, seed)
    rows = training_rows(pairs, negatives, positive_scores, chunk_texts(chunks), chunks["chunk_id"].tolist(),
                         per_query)
    stats.update({"rejected_round_trip": int((~keep).sum()), "mined_pairs": len(pairs),
                  "dropped_without_negative": len(pairs) - len(rows)})
    counts = {k: int(v) for k, v in stats.items()}
    return rows, {**counts, "random_negative_share": counts["pairs_with_random_negative"] / max(len(pairs), 1)}


def teacher_judged_rows(pairs: pd.DataFrame, query_vecs: np.ndarray, positive_vecs: np.ndarray,
                        corpus_index: CorpusIndex, chunks: pd.DataFrame, teacher: TeacherScores, *, rank_start: int,
                        rank_end: int, per_query: int, round_trip_k: int, seed: int) -> tuple[pd.DataFrame, dict]:
    """mine_training_rows with a teacher as the judge. The base still proposes candidates (its top `rank_end`,
    searched once); the teacher scores each pair's positive and every candidate, and:
    - round trip: a generated query is dropped when `round_trip_k` or more candidates outside its own documents
      outscore its source, in the teacher's eyes;
    - false negatives: a candidate the teacher scores at or above the positive is not a negative (it replaces
      the base's relative margin);
    - labels: each row gets `teacher_scores`, the teacher's [positive, negative_1..n], for a distillation loss;
    - the label-free check (stats["teacher_check"]): over those candidates, does the teacher rank the synthetic
      queries' sources better than the base does?"""
    from embtune_pipeline.lib.training.teacher import teacher_check

    docs, texts = chunk_doc_ids(chunks), chunk_texts(chunks)
    known_per_pair = _known_positives(pairs)
    depth = max(rank_end, round_trip_k)
    base_scores, rows = corpus_index.top_k(query_vecs, depth) if len(pairs) else (np.zeros((0, depth)),
                                                                                   np.zeros((0, depth), int))
    base_positive = np.einsum("ij,ij->i", query_vecs, positive_vecs)
    queries = pairs["query"].tolist()
    flat = [(i, j) for i in range(len(pairs)) for j in range(depth) if rows[i][j] >= 0]
    judged = teacher([*queries, *(queries[i] for i, _ in flat)],
                     [*pairs["positive"], *(texts[rows[i][j]] for i, j in flat)])
    teacher_positive = judged[:len(pairs)]
    teacher_candidates = np.full((len(pairs), depth), -np.inf, dtype=np.float32)
    for (i, j), score in zip(flat, judged[len(pairs):]):
        teacher_candidates[i, j] = score
    own = np.array([[r >= 0 and bool(known_per_pair[i].intersection(docs[r])) for r in rows[i]]
                    for i in range(len(pairs))], dtype=bool).reshape(len(pairs), depth)
    outside = np.where(own, -np.inf, teacher_candidates)  # the query's own documents are not competitors
    real = is_real(pairs).to_numpy()
    keep = real | ((outside > teacher_positive[:, None]).sum(axis=1) < round_trip_k if round_trip_k else True)
    synthetic = ~real
    check = teacher_check(base_positive[synthetic], np.where(own | (rows < 0), -np.inf, base_scores)[synthetic],
                          teacher_positive[synthetic], outside[synthetic])
    stats: Counter = Counter()
    negatives = []
    for i in np.flatnonzero(keep):
        picked = []
        for j in range(rank_start, rank_end):
            if rows[i][j] < 0:
                continue
            if own[i][j]:
                stats["skipped_known_positive"] += 1
            elif teacher_candidates[i][j] >= teacher_positive[i]:
                stats["skipped_teacher_above_positive"] += 1
            else:
                picked.append(int(rows[i][j]))
                if len(picked) == per_query:
                    break
        stats["pairs_without_negative"] += not picked
        negatives.append(picked)
    stats["negatives"] = sum(len(n) for n in negatives)
    kept = pairs[keep].reset_index(drop=True)
    out, counts = _finish(kept, negatives, base_positive[keep], chunks, docs,
                          [k for k, ok in zip(known_per_pair, keep) if ok], per_query, seed, stats, np.asarray(keep))
    out[TEACHER_SCORES] = _row_scores(out, teacher)
    return out, {**counts, "teacher_check": check}


def _row_scores(rows: pd.DataFrame, teacher: TeacherScores) -> list[list[float]]:
    """The teacher's [positive, negative_1..n] scores of each row (mostly cached: the teacher scored the
    candidates already; random negatives are scored now)."""
    columns = text_columns(rows)[1:]  # positive, negative_1..n
    anchors = rows["anchor"].tolist()
    scores = teacher([q for _ in columns for q in anchors], [t for c in columns for t in rows[c]])
    return scores.reshape(len(columns), len(rows)).T.astype(float).tolist()


def random_negative_warning(stats: dict, rank_start: int, rank_end: int) -> str | None:
    """What an operator should hear when pairs got random (easy) negatives, and what to change; None if none."""
    random_pairs = stats["pairs_with_random_negative"]
    if not random_pairs:
        return None
    judged_by_teacher = "teacher_check" in stats
    which = ("the teacher scores below the positive" if judged_by_teacher else "outside the margin")
    fix = ("widen the window: the teacher keeps false negatives out" if judged_by_teacher
           else "widen the window or lower mining.relative_margin to mine more")
    return (f"{random_pairs} of {stats['mined_pairs']} pairs ({stats['random_negative_share']:.0%}) got a random "
            f"negative: the rank window {rank_start}-{rank_end} held too few candidates {which}; random "
            f"negatives are easy ones ({fix})")
