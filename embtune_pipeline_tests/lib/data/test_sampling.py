import pandas as pd

from embtune_pipeline.lib.data.sampling import stable_fraction, stable_sample


def test_stable_sample_keeps_unchanged_rows_when_others_change():
    df = pd.DataFrame({"chunk_hash": [f"h{i}" for i in range(1000)]})
    a = set(stable_sample(df, 100, seed=1)["chunk_hash"])
    grown = pd.concat([df, pd.DataFrame({"chunk_hash": [f"new{i}" for i in range(10)]})])
    b = set(stable_sample(grown, 100, seed=1)["chunk_hash"])
    assert len(a) == 100 and len(a & b) >= 90
    assert set(stable_sample(df, 100, seed=2)["chunk_hash"]) != a


def test_stable_fraction_is_about_right():
    mask = stable_fraction(pd.Series([str(i) for i in range(5000)]), 0.2, seed=0, salt="eval")
    assert 0.17 < mask.mean() < 0.23


def test_the_eval_holdout_of_a_sample_is_a_fraction_of_it_not_its_first_rows():
    """stable_sample keeps the lowest hashes; a holdout drawn with the same hash would hold out the sample's
    head: 599 chunks and a 200-chunk sample gave 63% held out, an 80-chunk sample all of it."""
    from embtune_pipeline.lib.queries.pairs import synthetic_eval

    chunks = pd.DataFrame({"chunk_hash": [f"h{i}" for i in range(599)], "chunk_id": [f"c{i}" for i in range(599)],
                           "doc_id": [f"d{i}" for i in range(599)]})
    for n in (200, 80):
        sample = stable_sample(chunks, n, seed=0)
        queries = pd.DataFrame({"chunk_hash": sample["chunk_hash"], "chunk_id": sample["chunk_id"],
                                "query": [f"question about {c}" for c in sample["chunk_id"]]})
        held = synthetic_eval(queries, chunks, 0.2, 1000, seed=0)
        print(f"\n{n}-chunk sample of 599: {len(held)} held out")
        assert 0.08 * n < len(held) < 0.32 * n, (n, len(held))
    salts = [stable_fraction(chunks["chunk_hash"], 0.2, 0, salt) for salt in ("eval", "validation")]
    assert (salts[0] & salts[1]).mean() < 0.1  # independent draws: about 0.2 x 0.2
