"""The one Definitions of the embtune code location."""

from __future__ import annotations

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no price-table download at import
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # weights come from disk only
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import dagster as dg  # noqa: E402

from embtune_pipeline.assets import corpus, evaluation, negatives, queries, training  # noqa: E402
from embtune_pipeline.checks import eval_set_is_real, tuned_beats_base  # noqa: E402
from embtune_pipeline.resources.io_managers import TableIOManager  # noqa: E402
from embtune_pipeline.resources.settings import SettingsResource  # noqa: E402
from embtune_pipeline.settings import load_settings  # noqa: E402

ASSET_MODULES = [corpus, queries, negatives, training, evaluation]


def build_definitions(config_path: str | None = None) -> dg.Definitions:
    settings = SettingsResource(config_path=config_path)
    executor = (dg.in_process_executor if load_settings(config_path).executor == "in_process"
                else dg.multiprocess_executor)
    return dg.Definitions(
        assets=dg.load_assets_from_modules(ASSET_MODULES),
        asset_checks=[eval_set_is_real, tuned_beats_base],
        resources={"settings": settings, "io_manager": TableIOManager(settings=settings)},
        executor=executor,
    )


defs = build_definitions()
