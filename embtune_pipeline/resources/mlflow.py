"""MLflow tracking and the Model Registry as a Dagster resource: a deployment points it at its tracking server
by configuration (the settings file's `mlflow:` section, or EMBTUNE_MLFLOW_TRACKING_URI), not by code."""

from __future__ import annotations

import dagster as dg

from embtune_pipeline.resources.settings import SettingsResource


class MlflowResource(dg.ConfigurableResource):
    """The one place the tracker and the registry client are built from the settings (the CLI builds this
    resource too)."""

    settings: SettingsResource

    def tracker(self):
        from embtune_pipeline.lib.registry.tracking import Tracker

        s = self.settings.get()
        return Tracker(s.mlflow_tracking_uri, s.mlflow.experiment, s.layout.mlflow_artifacts, s.mlflow.ui_url)

    def registry(self, fail_fast: bool = False):
        """fail_fast: for a command someone waits on (the CLI): an unreachable MLflow fails within seconds."""
        from embtune_pipeline.lib.registry.versions import ModelRegistry

        s = self.settings.get()
        return ModelRegistry(s.mlflow_tracking_uri, s.registry.model_name, s.mlflow.ui_url, fail_fast=fail_fast)
