"""What the trainer reads: training rows as datasets, one per source when sources are balanced.

Data contract: rows with `anchor`, `positive`, `negative_1..n` (text), optionally `source` (where the pair
came from: synthetic, click_logs, qa_pairs) and `teacher_scores` (a teacher's [positive, negative_1..n] scores:
the distillation loss's label)."""

from __future__ import annotations

import pandas as pd

from embtune_pipeline.lib.queries.pairs import is_real

TEACHER_SCORES = "teacher_scores"


def text_columns(rows: pd.DataFrame) -> list[str]:
    """The texts the losses take, in their order: anchor, positive, negative_1..n."""
    return ["anchor", "positive", *(c for c in rows.columns if c.startswith("negative_"))]


def training_columns(rows: pd.DataFrame) -> list[str]:
    """The columns the trainer reads: the texts, then the teacher's scores when a teacher judged the rows."""
    return [*text_columns(rows), *([TEACHER_SCORES] if is_distilled(rows) else [])]


def is_distilled(rows: pd.DataFrame) -> bool:
    return TEACHER_SCORES in rows.columns


def has_real_pairs(rows: pd.DataFrame) -> bool:
    """Whether any row comes from real queries (click logs, Q&A): then the training is not corpus-only."""
    return "source" in rows.columns and bool(is_real(rows).any())


def to_dataset(pairs: pd.DataFrame):
    """The text columns as the trainer's losses expect, the teacher's scores as their `label`."""
    from datasets import Dataset

    frame = pairs[training_columns(pairs)].reset_index(drop=True)
    if is_distilled(frame):
        frame[TEACHER_SCORES] = [[float(x) for x in v] for v in frame[TEACHER_SCORES]]
    return Dataset.from_pandas(frame.rename(columns={TEACHER_SCORES: "label"}), preserve_index=False)


def training_data(pairs: pd.DataFrame, batch_size: int, balance_sources: bool):
    """The trainer's dataset, the batches and the pairs in one epoch. Balanced, when there are both real and
    (more) synthetic pairs: a dataset per source, batches taken from each in turn until the real ones run out,
    so an epoch holds as many synthetic pairs as real ones, a fresh draw each epoch, and real queries are not
    drowned. A batch never mixes sources: a generated query is not an in-batch negative for a user's."""
    from datasets import DatasetDict

    def batches(n: int) -> int:
        return max(1, -(-n // batch_size))

    if balance_sources and "source" in pairs.columns:
        real = is_real(pairs)
        n_real = int(real.sum())
        if 0 < n_real < len(pairs) - n_real:
            data = DatasetDict({"real": to_dataset(pairs[real]), "synthetic": to_dataset(pairs[~real])})
            return data, 2 * batches(n_real), 2 * n_real
    return to_dataset(pairs), batches(len(pairs)), len(pairs)


def within_pair_budget(pairs: pd.DataFrame, max_pairs: int, seed: int) -> pd.DataFrame:
    """The pairs a corpus-only training with a budget of `max_pairs` can see: a stable sample of that many, so
    no step encodes, mines or scores a pair the trainer would never reach. With any real pair (or max_pairs 0)
    there is no budget: every pair is kept."""
    if max_pairs <= 0 or len(pairs) <= max_pairs or has_real_pairs(pairs):
        return pairs
    return pairs.sample(n=max_pairs, random_state=seed).sort_index()
