"""Asset values on disk under data_dir/assets: tables as Parquet (readable by any tool), records as JSON."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pandas as pd

from embtune_pipeline.lib.storage import write_atomically
from embtune_pipeline.lib.training.record import record_pointer
from embtune_pipeline.resources.settings import SettingsResource

STORED_BESIDE_MODEL = "stored beside the model"  # an asset's definition metadata: its value is a model record
# the key of Dagster's filesystem IO manager (under Layout.step_outputs) for what one op of a graph asset hands the
# next: pickles on the shared data volume, so steps in separate processes or pods read each other's
STEP_OUTPUTS = "step_io_manager"


class TableIOManager(dg.ConfigurableIOManager):
    """Writes each value once; a model record (an asset marked STORED_BESIDE_MODEL) is already stored beside its
    model, so only where it is goes here."""

    settings: SettingsResource

    def _path(self, asset_key: dg.AssetKey, partition: str | None, suffix: str) -> Path:
        return self.settings.get().layout.asset("__".join(asset_key.path), partition, suffix)

    def handle_output(self, context: dg.OutputContext, obj) -> None:
        if obj is None:
            return
        partition = context.partition_key if context.has_partition_key else None
        table = isinstance(obj, pd.DataFrame)
        path = self._path(context.asset_key, partition, ".parquet" if table else ".json")
        if table:
            write_atomically(path, lambda tmp: obj.to_parquet(tmp, index=False))
        else:
            if context.definition_metadata.get(STORED_BESIDE_MODEL):
                obj = record_pointer(obj)
            write_atomically(path, lambda tmp: tmp.write_text(json.dumps(obj, indent=2, default=str)))
        context.add_output_metadata({"path": dg.MetadataValue.path(str(path))})

    def load_input(self, context: dg.InputContext):
        partition = context.asset_partition_key if context.has_asset_partitions else None
        layout = self.settings.get().layout
        value = layout.read_asset("__".join(context.asset_key.path), partition)
        if value is None:
            raise FileNotFoundError(f"no stored value for {context.asset_key.to_user_string()} under "
                                    f"{layout.root}; materialize it first")
        return value
