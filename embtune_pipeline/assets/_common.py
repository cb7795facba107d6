"""Glue shared by the assets: run config over settings defaults, and metadata that analysts read in the UI."""

from __future__ import annotations

import math
import time
from contextlib import contextmanager
from typing import Optional, TypeVar

import dagster as dg
import pandas as pd
from pydantic import BaseModel, Field, create_model

from embtune_pipeline.lib.memory import peak_during
from embtune_pipeline.lib.progress import Reporter

K = TypeVar("K", bound=BaseModel)


def optional_config(knobs: type[BaseModel], name: str) -> type[dg.Config]:
    """A Dagster Config with the knobs' fields, each optional: unset means the settings file's value, so the
    defaults live in one place (settings/schema.py) and a run can still override any of them from the launchpad."""
    fields = {
        n: (Optional[f.annotation], Field(None, description=f"{f.description or n} (unset: settings file)"))
        for n, f in knobs.model_fields.items()
    }
    return create_model(name, __base__=dg.Config, **fields)


def effective(defaults: K, config: Optional[dg.Config]) -> K:
    overrides = config.model_dump(exclude_none=True) if config is not None else {}
    return defaults.model_validate({**defaults.model_dump(), **overrides})


def table_metadata(df: pd.DataFrame, preview_rows: int = 5, max_chars: int = 120) -> dict:
    preview = df.head(preview_rows).copy()
    for col in preview.columns:
        preview[col] = preview[col].map(lambda v: (str(v)[:max_chars] + "…") if len(str(v)) > max_chars else v)
    return {
        "rows": dg.MetadataValue.int(len(df)),
        "dagster/column_schema": dg.TableSchema(
            columns=[dg.TableColumn(name=str(c), type=str(t)) for c, t in df.dtypes.items()]),
        "preview": dg.MetadataValue.md(preview.to_markdown(index=False) if len(preview) else "(empty)"),
    }


def rounded(value: float, places: int = 4) -> float:
    """Numbers as analysts read them: 0.7579, not 0.7579373580558711; a small number that is not zero keeps
    its first digit (2e-05, not 0.0: an interval's bound just above zero must not read as zero)."""
    value = float(value)
    near = round(value, places)
    return float(f"{value:.1g}") if near == 0 and value != 0 and math.isfinite(value) else near


def records_table(rows: list[dict]) -> dg.MetadataValue:
    """Rows of a few columns as table metadata, which the asset page shows inline (Markdown needs a click)."""
    columns = list(rows[0]) if rows else []
    kinds = {bool: "bool", int: "int", float: "float"}

    def kind(column: str) -> str:  # from the first row that has a value there
        value = next((r[column] for r in rows if r.get(column) is not None), None)
        return kinds.get(type(value), "string")

    schema = dg.TableSchema(columns=[dg.TableColumn(c, kind(c)) for c in columns])
    return dg.MetadataValue.table([dg.TableRecord(r) for r in rows], schema=schema)


def cache_metadata(distinct_texts: int, encoded: int) -> dict:
    """Embedding cache hits and misses of one step: misses are the texts it had to encode."""
    return {"embedding_cache_hits": distinct_texts - encoded, "embedding_cache_misses": encoded}


def reporter(context: dg.AssetExecutionContext, s) -> Reporter:
    """Progress lines to the run's event log (the UI shows them as the step runs), every progress_seconds."""
    return Reporter(context.log.info, s.progress_seconds)


@contextmanager
def timed(metadata: dict, key: str = "seconds"):
    """The block's wall time, and its process's peak resident memory (peak_rss_mb, where Linux reports it): both
    charted across materializations in the asset's Plots tab."""
    start = time.time()
    with peak_during(metadata):
        yield
    metadata[key] = dg.MetadataValue.float(round(time.time() - start, 2))


def png_markdown(path, alt: str) -> dg.MetadataValue:
    """A PNG shown inline in the Dagster UI (Markdown metadata with a data URI)."""
    import base64
    from pathlib import Path

    data = base64.b64encode(Path(path).read_bytes()).decode()
    return dg.MetadataValue.md(f"![{alt}](data:image/png;base64,{data})")
