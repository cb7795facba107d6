"""Asset values on disk under data_dir/assets: tables as Parquet (readable by any tool), records as JSON."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pandas as pd

from embtune_pipeline.resources.settings import SettingsResource


class TableIOManager(dg.ConfigurableIOManager):
    settings: SettingsResource

    def _path(self, context, suffix: str) -> Path:
        name = "__".join(context.asset_key.path)
        partition = context.partition_key if context.has_partition_key else None
        return self.settings.get().layout.asset(name, partition, suffix)

    def handle_output(self, context: dg.OutputContext, obj) -> None:
        if obj is None:
            return
        if isinstance(obj, pd.DataFrame):
            path = self._path(context, ".parquet")
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".parquet.part")
            obj.to_parquet(tmp, index=False)
            tmp.replace(path)  # a failed write never leaves a half file where the last good one was
        else:
            path = self._path(context, ".json")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(obj, indent=2, default=str))
        context.add_output_metadata({"path": dg.MetadataValue.path(str(path))})

    def load_input(self, context: dg.InputContext):
        upstream = context.upstream_output
        for suffix in (".parquet", ".json"):
            path = self._path(upstream, suffix)
            if path.exists():
                return pd.read_parquet(path) if suffix == ".parquet" else json.loads(path.read_text())
        raise FileNotFoundError(f"no stored value for {upstream.asset_key.to_user_string()} under "
                                f"{self.settings.get().layout.root}; materialize it first")
