from embtune_pipeline.lib.training.data import training_data
from embtune_pipeline_tests.lib.training.rows import mixed


def test_balanced_data_takes_as_many_synthetic_batches_as_real_ones():
    data, batches, pairs = training_data(mixed(40, 200), batch_size=8, balance_sources=True)
    assert set(data) == {"real", "synthetic"} and len(data["real"]) == 40 and len(data["synthetic"]) == 200
    assert (batches, pairs) == (10, 80)
    assert "source" not in data["real"].column_names  # the loss sees text columns only
    # unbalanced, or more real pairs than synthetic: one dataset, every pair in every epoch
    assert training_data(mixed(40, 200), 8, balance_sources=False)[1:] == (30, 240)
    whole, batches, pairs = training_data(mixed(200, 40), 8, balance_sources=True)
    assert len(whole) == 240 and (batches, pairs) == (30, 240)
