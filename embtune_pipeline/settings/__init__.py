"""The settings file: one validated YAML document, the only place defaults live (schema.py); read by
loader.py; the paths under data_dir are layout.py's rules.

Path from ``EMBTUNE_CONFIG``; without it the bundled demo (``embtune_pipeline/demo/settings.yaml``).
Relative paths in a settings file resolve against that file's directory, except ``data_dir``'s default,
which is ``./embtune-data`` under the current directory. The environment overrides the file where a deployment
needs it: ``EMBTUNE_DATA_DIR`` overrides ``data_dir``, ``EMBTUNE_MLFLOW_TRACKING_URI`` ``mlflow.tracking_uri``.
"""

from embtune_pipeline.settings.layout import Layout
from embtune_pipeline.settings.loader import DEMO_CONFIG, load_settings, settings_digest
from embtune_pipeline.settings.schema import (
    CONFIG_ENV,
    DATA_DIR_ENV,
    DEFAULT_BASE_MODEL,
    TRACKING_URI_ENV,
    BaselineSettings,
    CorpusSettings,
    EmbedKnobs,
    EvalKnobs,
    EvalSetBuilderSettings,
    EvalSplitKnobs,
    GateSettings,
    GenerateKnobs,
    GeneratorSettings,
    IndexSettings,
    KubernetesSettings,
    MiningKnobs,
    MlflowSettings,
    MonitoringSettings,
    PairsSettings,
    RegistrySettings,
    RetuneSettings,
    RunDefaults,
    SampleKnobs,
    Settings,
    SettingsError,
    TeacherSettings,
    TrainKnobs,
    base_model_key,
)

__all__ = [
    "CONFIG_ENV",
    "BaselineSettings",
    "CorpusSettings",
    "EvalSetBuilderSettings",
    "DATA_DIR_ENV",
    "DEFAULT_BASE_MODEL",
    "DEMO_CONFIG",
    "EmbedKnobs",
    "EvalKnobs",
    "EvalSplitKnobs",
    "GateSettings",
    "KubernetesSettings",
    "GenerateKnobs",
    "GeneratorSettings",
    "IndexSettings",
    "Layout",
    "MiningKnobs",
    "MlflowSettings",
    "MonitoringSettings",
    "PairsSettings",
    "RegistrySettings",
    "RetuneSettings",
    "RunDefaults",
    "SampleKnobs",
    "Settings",
    "SettingsError",
    "TRACKING_URI_ENV",
    "TeacherSettings",
    "TrainKnobs",
    "base_model_key",
    "load_settings",
    "settings_digest",
]
