"""A validation split carved from the training rows, and the score that picks a checkpoint and a WiSE-FT ratio.

Settings that must differ per corpus (how long to train, how far to move from the base) are chosen here, on
queries taken out of training, never on the eval set: choosing on the eval set would flatter the model that
the eval set then judges.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from embtune_pipeline.lib.data.chunking import text_hash
from embtune_pipeline.lib.data.sampling import stable_fraction, stable_sample
from embtune_pipeline.lib.evaluation.evaluate import evaluate_vectors
from embtune_pipeline.lib.queries.pairs import is_real

METRIC = "ndcg@10"  # what checkpoints and ratios are chosen by (its formula lives in lib.evaluation.evaluate)


@dataclass
class ValidationSet:
    """Held-out queries, each with its positives, ranked against a small corpus: their positives and negatives
    plus distractors drawn from the training rows' texts."""

    queries: list[str]
    gains: list[dict[str, int]]
    corpus_ids: list[str]
    corpus_texts: list[str]
    source: str  # "real" (click logs / Q&A) or "synthetic"

    def __len__(self) -> int:
        return len(self.queries)


@dataclass
class ValidationSplit:
    train_rows: pd.DataFrame
    validation: ValidationSet | None
    reason: str = ""  # why there is no validation set, when there is none


def split_validation(rows: pd.DataFrame, fraction: float, max_queries: int, min_queries: int, corpus_size: int,
                     seed: int) -> ValidationSplit:
    """Hold out whole queries: real ones when there are enough (they are what the model must serve), else the
    synthetic queries of whole chunks (so no sibling query of a held-out chunk trains). Too few: no split."""
    real = is_real(rows)
    choices = [("real", real, rows["anchor"]), ("synthetic", ~real, rows["positive"])]
    for source, pool, group in choices:
        held = pool & _held_out(group, fraction, seed)
        if rows.loc[held, "anchor"].nunique() < min_queries:
            continue
        # at most max_queries queries, whole groups at a time; held groups past that go back to training
        groups = pd.DataFrame({"group": group[held], "anchor": rows.loc[held, "anchor"]})
        per_group = groups.groupby("group")["anchor"].nunique().reset_index()
        ordered = stable_sample(per_group, len(per_group), seed, key_column="group", shuffle=True)
        keep = set(ordered.loc[ordered["anchor"].cumsum() <= max(max_queries, ordered["anchor"].iloc[0]), "group"])
        taken = held & group.isin(keep)
        return ValidationSplit(rows[~taken].reset_index(drop=True),
                               _validation_set(rows[taken], rows[~taken], corpus_size, seed, source))
    return ValidationSplit(rows, None, f"fewer than {min_queries} queries to hold out at fraction {fraction}")


def _held_out(group: pd.Series, fraction: float, seed: int) -> pd.Series:
    return stable_fraction(group, fraction, seed, salt="validation")


def validates_on_real(queries: pd.Series, real: pd.Series, fraction: float, min_queries: int, seed: int) -> bool:
    """Whether split_validation will hold out real queries (enough of them at `fraction`): what balanced training
    needs, known before the rows are mined."""
    return queries[real & _held_out(queries, fraction, seed)].nunique() >= min_queries


def trains_balanced(train, queries: pd.Series, real: pd.Series) -> bool:
    """Whether a training with these train knobs (settings.TrainKnobs) balances its sources: asked to, and real
    queries will validate (train.py balances only then). Known before the rows are generated or mined."""
    return train.balance_sources and validates_on_real(queries, real, train.validation_fraction,
                                                       train.validation_min_queries, train.seed)


def _validation_set(held: pd.DataFrame, train: pd.DataFrame, corpus_size: int, seed: int,
                    source: str) -> ValidationSet:
    negative_cols = [c for c in held.columns if c.startswith("negative_")]
    needed = list(dict.fromkeys([*held["positive"], *(t for c in negative_cols for t in held[c])]))
    taken = set(needed)
    pool = [t for t in dict.fromkeys([*train["positive"], *(t for c in negative_cols for t in train[c])])
            if t not in taken]
    distractors = pd.DataFrame({"text": pool, "key": [text_hash(t) for t in pool]})
    distractors = stable_sample(distractors, max(0, corpus_size - len(needed)), seed, key_column="key")
    texts = needed + distractors["text"].tolist()
    by_query = held.groupby("anchor", sort=True)["positive"].agg(lambda p: {text_hash(t): 1 for t in p})
    return ValidationSet(queries=by_query.index.tolist(), gains=by_query.tolist(),
                         corpus_ids=[text_hash(t) for t in texts], corpus_texts=texts, source=source)


@dataclass
class ValidationScorer:
    """Scores a model on a validation set. Usable as the trainer's evaluator, so the trainer can keep the best
    checkpoint (`load_best_model_at_end`) and its state records every score, across resumes too."""

    validation: ValidationSet
    batch_size: int = 64
    name: str = "validation"

    def score(self, model) -> float:
        v = self.validation
        q = model.encode(v.queries, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True)
        c = model.encode(v.corpus_texts, batch_size=self.batch_size, normalize_embeddings=True,
                         convert_to_numpy=True)
        per_query = evaluate_vectors(np.asarray(q), np.asarray(c), [[i] for i in v.corpus_ids],
                                     [str(i) for i in range(len(v))], v.gains)
        return float(per_query[METRIC].mean())

    def evaluator(self):
        """A sentence-transformers evaluator whose primary metric the trainer selects checkpoints by."""
        from sentence_transformers.sentence_transformer.evaluation import SentenceEvaluator

        scorer = self

        class _Evaluator(SentenceEvaluator):
            def __init__(self):
                super().__init__()
                self.primary_metric = f"{scorer.name}_{METRIC}"

            def __call__(self, model, output_path=None, epoch=-1, steps=-1):
                return {self.primary_metric: scorer.score(model)}

        return _Evaluator()

    @property
    def trainer_metric(self) -> str:
        return f"eval_{self.name}_{METRIC}"
