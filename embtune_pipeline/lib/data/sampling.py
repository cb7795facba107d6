"""Seeded, stable sampling: a chunk's place in the sample depends only on its content and the seed."""

from __future__ import annotations

import hashlib

import pandas as pd


def _rank_key(seed: int, key: str) -> str:
    return hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()


def stable_sample(df: pd.DataFrame, n: int, seed: int, key_column: str = "chunk_hash",
                  shuffle: bool = False) -> pd.DataFrame:
    """The n rows with the smallest seeded hash of `key_column` (in that order when `shuffle`).

    Unlike a random draw, an unchanged chunk stays in (or out of) the sample when others are added or removed,
    so a new corpus snapshot reuses the generated queries of the old one.
    """
    if n >= len(df) and not shuffle:
        return df.reset_index(drop=True)
    keys = df[key_column].map(lambda k: _rank_key(seed, k))
    return df.loc[keys.sort_values(kind="stable").index[:n]].reset_index(drop=True)


def stable_fraction(keys: pd.Series, fraction: float, seed: int, salt: str) -> pd.Series:
    """A boolean mask holding out about `fraction` of the keys, decided per key (the same key, the same side).
    The salt names the purpose (eval, validation): each draw is independent of the others and of
    `stable_sample`'s order, so a held-out fraction of a sample is that fraction, not the sample's first rows."""
    return keys.map(lambda k: int(_rank_key(seed, f"{salt}:{k}")[:8], 16) / 0xFFFFFFFF < fraction)
