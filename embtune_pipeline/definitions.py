"""The one Definitions of the embtune code location."""

from __future__ import annotations

import dagster as dg  # noqa: E402

from embtune_pipeline.assets import corpus, evaluation, monitoring, negatives, queries, registry, training  # noqa: E402
from embtune_pipeline.assets.serving import vector_index_asset  # noqa: E402
from embtune_pipeline.automation import JOBS, build_automation  # noqa: E402
from embtune_pipeline.checks import CHECKS  # noqa: E402
from embtune_pipeline.executors import executor_for, unknown_gpu_steps  # noqa: E402
from embtune_pipeline.resources.baselines import BaselineModels  # noqa: E402
from embtune_pipeline.resources.corpus import CorpusSource  # noqa: E402
from embtune_pipeline.resources.embeddings import EmbeddingCache  # noqa: E402
from embtune_pipeline.resources.eval_sets import EvalSetBuilder  # noqa: E402
from embtune_pipeline.resources.io_managers import STEP_OUTPUTS, TableIOManager  # noqa: E402
from embtune_pipeline.resources.llm import QueryGenerator  # noqa: E402
from embtune_pipeline.resources.mlflow import MlflowResource  # noqa: E402
from embtune_pipeline.resources.settings import SettingsResource  # noqa: E402
from embtune_pipeline.resources.teacher import TeacherModel  # noqa: E402
from embtune_pipeline.resources.vector_store import LanceDBStore  # noqa: E402
from embtune_pipeline.settings import load_settings  # noqa: E402

ASSET_MODULES = [corpus, queries, negatives, training, evaluation, registry, monitoring]


def build_definitions(config_path: str | None = None) -> dg.Definitions:
    settings = SettingsResource(config_path=config_path)
    s = load_settings(config_path)
    sensors, schedules = build_automation(s)
    defs = dg.Definitions(
        assets=[*dg.load_assets_from_modules(ASSET_MODULES), vector_index_asset([i.name for i in s.indexes])],
        asset_checks=CHECKS,
        jobs=JOBS,
        sensors=sensors,
        schedules=schedules,
        resources={  # every outside system, configured from the settings file: a deployment swaps one here
            "settings": settings,
            "mlflow": MlflowResource(settings=settings),
            "corpus_source": CorpusSource(settings=settings),
            "embeddings": EmbeddingCache(settings=settings),
            "generator": QueryGenerator(settings=settings),
            "baselines": BaselineModels(settings=settings),
            "teacher": TeacherModel(settings=settings),
            "eval_sets": EvalSetBuilder(settings=settings),
            "vector_store": LanceDBStore(settings=settings),
            "io_manager": TableIOManager(settings=settings),
            STEP_OUTPUTS: dg.FilesystemIOManager(base_dir=str(s.layout.step_outputs)),
        },
        executor=executor_for(s),
    )
    if s.executor == "k8s" and (unknown := unknown_gpu_steps(defs, s.k8s.gpu_steps)):
        raise ValueError(f"k8s.gpu_steps names no step: {unknown} (steps are ops: finetuned_model, "
                         "encode_corpus_shard for the corpus encoding, eval_report, ...)")
    return defs


defs = build_definitions()
