"""What the trainer reads: training rows as datasets, one per source when sources are balanced.

Data contract: rows with `anchor`, `positive`, `negative_1..n` (text), optionally `source` (where the pair
came from: synthetic, click_logs, qa_pairs) and `teacher_scores` (a teacher's [positive, negative_1..n] scores:
the distillation loss's label)."""

from __future__ import annotations

import math

import pandas as pd

from embtune_pipeline.lib.queries.pairs import is_real

TEACHER_SCORES = "teacher_scores"  # a teacher's scores of [positive, negative_1..n]: kl and margin_mse's label
TEACHER_VECTORS = "teacher_vectors"  # a bi-encoder teacher's vectors of [anchor, positive, negative_1..n],
# flattened: batch_kl's label (added by finetuned_model from the embedding store, not stored with the rows)


def text_columns(rows: pd.DataFrame) -> list[str]:
    """The texts the losses take, in their order: anchor, positive, negative_1..n."""
    return ["anchor", "positive", *(c for c in rows.columns if c.startswith("negative_"))]


def training_columns(rows: pd.DataFrame, label: str | None = None) -> list[str]:
    """The columns the trainer reads: the texts, then the label column (the teacher's scores or vectors) when
    the loss takes one; by default the teacher's scores when a teacher judged the rows."""
    label = label or (TEACHER_SCORES if is_distilled(rows) else None)
    return [*text_columns(rows), *([label] if label else [])]


def is_distilled(rows: pd.DataFrame) -> bool:
    return TEACHER_SCORES in rows.columns


def has_real_pairs(rows: pd.DataFrame) -> bool:
    """Whether any row comes from real queries (click logs, Q&A): then the training is not corpus-only."""
    return "source" in rows.columns and bool(is_real(rows).any())


def to_dataset(pairs: pd.DataFrame, label: str | None = None):
    """The text columns as the trainer's losses expect, the label column (see training_columns) as `label`."""
    from datasets import Dataset

    columns = training_columns(pairs, label)
    frame = pairs[columns].reset_index(drop=True)
    if len(columns) > len(text_columns(pairs)):
        frame[columns[-1]] = [[float(x) for x in v] for v in frame[columns[-1]]]
        frame = frame.rename(columns={columns[-1]: "label"})
    return Dataset.from_pandas(frame, preserve_index=False)


def training_data(pairs: pd.DataFrame, batch_size: int, balance_sources: bool, label: str | None = None):
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
            data = DatasetDict({"real": to_dataset(pairs[real], label), "synthetic": to_dataset(pairs[~real], label)})
            return data, 2 * batches(n_real), 2 * n_real
    return to_dataset(pairs, label), batches(len(pairs)), len(pairs)


def within_pair_budget(pairs: pd.DataFrame, max_pairs: int, seed: int) -> pd.DataFrame:
    """The pairs a corpus-only training with a budget of `max_pairs` can see: a stable sample of that many, so
    no step encodes, mines or scores a pair the trainer would never reach. With any real pair (or max_pairs 0)
    there is no budget: every pair is kept."""
    if max_pairs <= 0 or len(pairs) <= max_pairs or has_real_pairs(pairs):
        return pairs
    return pairs.sample(n=max_pairs, random_state=seed).sort_index()


def balanced_synthetic_draws(real_pairs: int, batch_size: int, epochs: float) -> int:
    """The most synthetic pairs a balanced training draws (see training_data): a batch of them per batch of real
    pairs, each epoch (a part epoch counts whole). The real pairs counted before the validation split holds some
    out, so this bounds what trains from above."""
    return math.ceil(epochs) * -(-real_pairs // batch_size) * batch_size


def reachable_pairs(pairs: pd.DataFrame, *, balanced: bool, batch_size: int, epochs: float, corpus_only_max_pairs: int,
                    seed: int) -> tuple[pd.DataFrame, dict]:
    """The pairs the training can reach, and what was left out and why: corpus-only, the step budget's
    (within_pair_budget); balanced, every real pair and a stable sample of the synthetic pairs the epochs can draw
    (balanced_synthetic_draws). Nothing beyond them is worth encoding, mining or scoring."""
    if not has_real_pairs(pairs):
        kept = within_pair_budget(pairs, corpus_only_max_pairs, seed)
        return kept, {"corpus_only_step_budget": len(pairs) - len(kept)}
    real = is_real(pairs)
    synthetic = pairs[~real]
    draws = balanced_synthetic_draws(int(real.sum()), batch_size, epochs)
    if not balanced or len(synthetic) <= draws:
        return pairs, {}
    kept = pd.concat([pairs[real], synthetic.sample(n=draws, random_state=seed)]).sort_index()
    return kept, {"beyond_balanced_epochs": len(pairs) - len(kept)}
