"""What the trainer reads: training rows as datasets, one per source when sources are balanced.

Data contract: rows with `anchor`, `positive`, `negative_1..n` (text) and optionally `source` (where the pair
came from: synthetic, click_logs, qa_pairs)."""

from __future__ import annotations

import pandas as pd

from embtune_pipeline.lib.queries.pairs import is_real


def training_columns(rows: pd.DataFrame) -> list[str]:
    """The columns the trainer reads, in the order its losses take them: anchor, positive, negative_1..n."""
    return ["anchor", "positive", *(c for c in rows.columns if c.startswith("negative_"))]


def to_dataset(pairs: pd.DataFrame):
    """anchor, positive, negative_1..n columns, as the trainer's losses expect."""
    from datasets import Dataset

    return Dataset.from_pandas(pairs[training_columns(pairs)].reset_index(drop=True), preserve_index=False)


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
