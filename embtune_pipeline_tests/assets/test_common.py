"""The glue the assets share, without running them: the run-config overlay and the metadata helpers."""

import dagster as dg
import pytest

from embtune_pipeline.assets._common import cache_metadata, effective, optional_config, records_table, rounded
from embtune_pipeline.settings import TrainKnobs

TrainConfig = optional_config(TrainKnobs, "TestTrainConfig")


def test_a_run_config_overrides_only_what_it_sets():
    defaults = TrainKnobs(epochs=3, learning_rate=3e-5, lora=False)
    assert effective(defaults, TrainConfig()) == defaults  # nothing set: the settings file's values
    assert effective(defaults, None) == defaults
    tuned = effective(defaults, TrainConfig(epochs=1, lora=True))
    assert (tuned.epochs, tuned.lora, tuned.learning_rate) == (1, True, 3e-5)


def test_an_override_is_validated_like_the_settings_file():
    with pytest.raises(ValueError, match="interpolation_alphas"):
        effective(TrainKnobs(), TrainConfig(interpolation_alphas=[1.5]))


def test_metadata_helpers_round_type_and_count():
    assert rounded(0.7579373580558711) == 0.7579
    assert rounded(2.3e-05) == 2e-05 and rounded(-4e-06) == -4e-06  # not 0.0: the sign of a bound shows
    assert rounded(0.0) == 0.0 and rounded(0.00004, 2) == 4e-05
    table = records_table([{"model": "base", "mean": None}, {"model": "tuned", "mean": 0.5}])
    assert isinstance(table, dg.TableMetadataValue)
    assert [(c.name, c.type) for c in table.schema.columns] == [("model", "string"), ("mean", "float")]
    assert cache_metadata(10, 3) == {"embedding_cache_hits": 7, "embedding_cache_misses": 3}
