import pandas as pd

from embtune_pipeline.lib.data.chunking import text_hash
from embtune_pipeline.lib.training.validation import ValidationScorer, split_validation


def _rows(n_real=0, n_synth=0, queries_per_chunk=3):
    real = [{"anchor": f"real question {i}", "positive": f"doc {i}", "negative_1": f"other doc {i}",
             "source": "qa_pairs"} for i in range(n_real)]
    synth = [{"anchor": f"synthetic question {i}.{j}", "positive": f"chunk {i}", "negative_1": f"far chunk {i}",
              "source": "synthetic"} for i in range(n_synth) for j in range(queries_per_chunk)]
    return pd.DataFrame(real + synth)


def test_real_queries_are_held_out_whole_and_never_train():
    rows = _rows(n_real=400, n_synth=100)
    rows = pd.concat([rows, rows.head(50).assign(positive=lambda d: d["positive"] + " (second judgment)")],
                     ignore_index=True)
    split = split_validation(rows, 0.2, 1000, 20, 300, seed=0)
    v = split.validation
    assert v.source == "real" and 50 < len(v) < 130
    assert not set(v.queries) & set(split.train_rows["anchor"])
    assert len(split.train_rows) + sum(len(g) for g in v.gains) == len(rows)
    two = [g for q, g in zip(v.queries, v.gains) if q in set(rows.head(50)["anchor"])]
    assert two and all(len(g) == 2 for g in two)
    ids = set(v.corpus_ids)
    assert len(v.corpus_ids) == len(ids) == 300 and all(set(g) <= ids for g in v.gains)


def test_synthetic_queries_are_held_out_by_chunk_when_real_ones_are_too_few():
    split = split_validation(_rows(n_real=10, n_synth=300), 0.2, 40, 20, 100, seed=0)
    v = split.validation
    assert v.source == "synthetic" and len(v) == 39  # whole chunks of 3 questions, at most 40
    held_chunks = set(pd.DataFrame({"q": v.queries})["q"].str.extract(r"question (\d+)\.")[0])
    trained = set(split.train_rows["anchor"].str.extract(r"question (\d+)\.")[0].dropna())
    assert not held_chunks & trained  # no sibling query of a held-out chunk trains
    assert (split.train_rows["source"] == "qa_pairs").sum() == 10


def test_too_few_queries_means_no_split():
    rows = _rows(n_real=30)
    split = split_validation(rows, 0.1, 100, 20, 100, seed=0)
    assert split.validation is None and "fewer than 20" in split.reason and split.train_rows.equals(rows)


def test_scorer_ranks_the_positive_of_an_exact_match_first(tiny_model):
    from embtune_pipeline.lib.models import load_model

    split = split_validation(_rows(n_real=300), 0.2, 1000, 20, 200, seed=0)
    v = split.validation
    exact = type(v)(queries=[t for t in v.corpus_texts[:30]], gains=[{text_hash(t): 1} for t in v.corpus_texts[:30]],
                    corpus_ids=v.corpus_ids, corpus_texts=v.corpus_texts, source="real")
    assert ValidationScorer(exact).score(load_model(tiny_model)) > 0.99
    assert 0 <= ValidationScorer(v).score(load_model(tiny_model)) < 0.99


def test_held_out_queries_past_the_cap_go_back_to_training():
    for rows, source in ((_rows(n_real=400), "real"), (_rows(n_synth=200), "synthetic")):
        split = split_validation(rows, 0.5, 30, 20, 100, seed=0)
        v = split.validation
        assert v.source == source and 20 <= len(v) <= 30
        assert len(split.train_rows) + len(v) == len(rows)  # nothing held out is lost
        if source == "synthetic":  # whole chunks: every question of a validating chunk validates
            chunks = {q.split()[-1].split(".")[0] for q in v.queries}
            assert len(v) == 3 * len(chunks)
