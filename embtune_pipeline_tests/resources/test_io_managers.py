import json

import dagster as dg
import pandas as pd
import pytest
import yaml

from embtune_pipeline.resources.io_managers import TableIOManager
from embtune_pipeline.resources.settings import SettingsResource


def _manager(tmp_path):
    (tmp_path / "docs").mkdir()
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"data_dir": str(tmp_path / "data"),
                                    "corpus": {"path": "docs", "format": "dir"}}))
    return TableIOManager(settings=SettingsResource(config_path=str(path)))


def test_tables_are_parquet_and_records_json(tmp_path):
    io = _manager(tmp_path)
    df = pd.DataFrame({"a": [1, 2], "tags": [["x"], []]})
    io.handle_output(dg.build_output_context(asset_key=dg.AssetKey("corpus")), df)
    io.handle_output(dg.build_output_context(asset_key=dg.AssetKey("finetuned_model")), {"model_dir": "/m"})
    assert (tmp_path / "data" / "assets" / "corpus.parquet").is_file()
    assert (tmp_path / "data" / "assets" / "finetuned_model.json").is_file()
    back = io.load_input(dg.build_input_context(asset_key=dg.AssetKey("corpus")))
    assert back["a"].tolist() == [1, 2] and list(back["tags"][0]) == ["x"]
    assert io.load_input(dg.build_input_context(asset_key=dg.AssetKey("finetuned_model"))) == {"model_dir": "/m"}


def test_a_value_never_materialized_is_a_clear_error(tmp_path):
    io = _manager(tmp_path)
    with pytest.raises(FileNotFoundError, match="no stored value for eval_set"):
        io.load_input(dg.build_input_context(asset_key=dg.AssetKey("eval_set")))


def test_a_model_record_is_stored_once_beside_its_model(tmp_path):
    from embtune_pipeline.lib.training.record import MODEL_RECORD, write_model_record
    from embtune_pipeline.resources.io_managers import STORED_BESIDE_MODEL

    io = _manager(tmp_path)
    model_dir = tmp_path / "models" / "m"
    record = {"model_dir": str(model_dir), "steps": 3, "validation": {"scores": [(5, 0.5)]}}
    marked = {STORED_BESIDE_MODEL: True}
    with pytest.raises(ValueError, match="does not exist: write_model_record"):  # never a pointer to nothing
        io.handle_output(dg.build_output_context(asset_key=dg.AssetKey("finetuned_model"),
                                                 definition_metadata=marked), record)
    write_model_record(model_dir, record)
    io.handle_output(dg.build_output_context(asset_key=dg.AssetKey("finetuned_model"), definition_metadata=marked),
                     record)
    stored = json.loads((tmp_path / "data" / "assets" / "finetuned_model.json").read_text())
    assert stored == {"model_record": str(model_dir / MODEL_RECORD)}
    loaded = io.load_input(dg.build_input_context(asset_key=dg.AssetKey("finetuned_model")))
    assert loaded == {"model_dir": str(model_dir), "steps": 3, "validation": {"scores": [[5, 0.5]]}}
    (model_dir / MODEL_RECORD).unlink()
    with pytest.raises(FileNotFoundError, match="model directory deleted"):
        io.load_input(dg.build_input_context(asset_key=dg.AssetKey("finetuned_model")))
