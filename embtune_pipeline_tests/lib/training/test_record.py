from embtune_pipeline.lib.training.record import training_key
from embtune_pipeline_tests.lib.training.rows import pairs


def test_training_key_changes_with_inputs():
    p = pairs()
    k = training_key(p, {"epochs": 1}, "fp", 64)
    assert k == training_key(p.copy(), {"epochs": 1}, "fp", 64)
    others = [training_key(p, {"epochs": 2}, "fp", 64), training_key(p.head(3), {"epochs": 1}, "fp", 64),
              training_key(p, {"epochs": 1}, "other-base", 64), training_key(p, {"epochs": 1}, "fp", 128)]
    assert len({k, *others}) == 5  # each input changes the key, and no two changes give the same one


def test_a_model_is_reused_only_once_its_record_is_written(tmp_path):
    from embtune_pipeline.lib.training.data import training_columns
    from embtune_pipeline.lib.training.record import read_model_record, write_model_record

    assert read_model_record(tmp_path / "model") is None  # not trained, or interrupted before the record
    write_model_record(tmp_path, {"name": "m", "steps": 3})
    assert read_model_record(tmp_path) == {"name": "m", "steps": 3}
    assert training_columns(pairs().assign(source="x", negative_2="n")) == ["anchor", "positive", "negative_1",
                                                                             "negative_2"]
