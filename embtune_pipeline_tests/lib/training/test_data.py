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


def test_the_teachers_scores_are_the_losses_label():
    from embtune_pipeline.lib.training.data import to_dataset, training_columns

    rows = pairs(2).assign(teacher_scores=[np.array([0.9, 0.1]), np.array([0.7, 0.2])], source="synthetic")
    assert training_columns(rows) == ["anchor", "positive", "negative_1", "teacher_scores"]
    data = to_dataset(rows)
    assert data.column_names == ["anchor", "positive", "negative_1", "label"]
    assert data["label"] == [pytest.approx([0.9, 0.1]), pytest.approx([0.7, 0.2])]
