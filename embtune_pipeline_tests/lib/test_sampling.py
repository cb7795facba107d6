import pandas as pd

from embtune_pipeline.lib.sampling import stable_fraction, stable_sample


def test_stable_sample_keeps_unchanged_rows_when_others_change():
    df = pd.DataFrame({"chunk_hash": [f"h{i}" for i in range(1000)]})
    a = set(stable_sample(df, 100, seed=1)["chunk_hash"])
    grown = pd.concat([df, pd.DataFrame({"chunk_hash": [f"new{i}" for i in range(10)]})])
    b = set(stable_sample(grown, 100, seed=1)["chunk_hash"])
    assert len(a) == 100 and len(a & b) >= 90
    assert set(stable_sample(df, 100, seed=2)["chunk_hash"]) != a


def test_stable_fraction_is_about_right():
    mask = stable_fraction(pd.Series([str(i) for i in range(5000)]), 0.2, seed=0)
    assert 0.17 < mask.mean() < 0.23
