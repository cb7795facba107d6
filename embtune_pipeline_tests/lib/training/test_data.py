import numpy as np
import pytest

from embtune_pipeline.lib.training.data import training_data
from embtune_pipeline_tests.lib.training.rows import mixed, pairs


def test_balanced_data_takes_as_many_synthetic_batches_as_real_ones():
    data, batches, pairs = training_data(mixed(40, 200), batch_size=8, balance_sources=True)
    assert set(data) == {"real", "synthetic"} and len(data["real"]) == 40 and len(data["synthetic"]) == 200
    assert (batches, pairs) == (10, 80)
    assert "source" not in data["real"].column_names  # the loss sees text columns only
    # unbalanced, or more real pairs than synthetic: one dataset, every pair in every epoch
    assert training_data(mixed(40, 200), 8, balance_sources=False)[1:] == (30, 240)
    whole, batches, pairs = training_data(mixed(200, 40), 8, balance_sources=True)
    assert len(whole) == 240 and (batches, pairs) == (30, 240)


def test_a_pair_budget_holds_for_corpus_only_training_alone():
    from embtune_pipeline.lib.training.data import within_pair_budget

    synthetic = mixed(0, 10)
    kept = within_pair_budget(synthetic, 7, seed=0)
    assert len(kept) == 7 and kept.equals(within_pair_budget(synthetic, 7, seed=0))  # the same pairs on a rerun
    assert within_pair_budget(synthetic, 0, seed=0) is synthetic and within_pair_budget(synthetic, 50, 0) is synthetic
    with_real = mixed(3, 10)
    assert within_pair_budget(with_real, 7, seed=0) is with_real  # real pairs: the epochs and validation decide


def test_balanced_training_mines_only_the_synthetic_pairs_its_epochs_draw():
    from embtune_pipeline.lib.training.data import reachable_pairs

    rows = mixed(40, 500)
    kept, skipped = reachable_pairs(rows, balanced=True, batch_size=8, epochs=2, corpus_only_max_pairs=100, seed=0)
    real = kept["source"] != "synthetic"
    assert real.sum() == 40 and (~real).sum() == 2 * 40  # two epochs of a synthetic batch per real batch
    assert skipped == {"beyond_balanced_epochs": 500 - 80}
    assert kept.equals(reachable_pairs(rows, balanced=True, batch_size=8, epochs=2, corpus_only_max_pairs=100,
                                       seed=0)[0])  # the same pairs on a rerun
    # a part epoch counts whole; 41 real pairs take 6 batches
    assert len(reachable_pairs(mixed(41, 500), balanced=True, batch_size=8, epochs=1.5, corpus_only_max_pairs=0,
                               seed=0)[0]) == 41 + 2 * 6 * 8
    # unbalanced, every pair trains every epoch; corpus-only, the step budget decides
    every, skipped = reachable_pairs(rows, balanced=False, batch_size=8, epochs=2, corpus_only_max_pairs=100, seed=0)
    assert every is rows and skipped == {}
    alone, skipped = reachable_pairs(mixed(0, 500), balanced=True, batch_size=8, epochs=2, corpus_only_max_pairs=100,
                                     seed=0)
    assert len(alone) == 100 and skipped == {"corpus_only_step_budget": 400}


def test_the_teachers_scores_are_the_losses_label():
    from embtune_pipeline.lib.training.data import to_dataset, training_columns

    rows = pairs(2).assign(teacher_scores=[np.array([0.9, 0.1]), np.array([0.7, 0.2])], source="synthetic")
    assert training_columns(rows) == ["anchor", "positive", "negative_1", "teacher_scores"]
    data = to_dataset(rows)
    assert data.column_names == ["anchor", "positive", "negative_1", "label"]
    assert data["label"] == [pytest.approx([0.9, 0.1]), pytest.approx([0.7, 0.2])]
