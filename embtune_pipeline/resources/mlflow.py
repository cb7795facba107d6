"""MLflow tracking and the Model Registry as a Dagster resource: a deployment points it at its tracking server
by configuration (the settings file's `mlflow:` section, or EMBTUNE_MLFLOW_TRACKING_URI), not by code."""

from __future__ import annotations

import dagster as dg

from embtune_pipeline.resources.settings import SettingsResource


class MlflowResource(dg.ConfigurableResource):
    """Builds the tracker and the registry from the settings: lib.registry.versions.registry_for and
    lib.registry.tracking.tracker_for are the one place either client is constructed, shared with the CLI."""

    settings: SettingsResource

    def tracker(self):
        from embtune_pipeline.lib.registry.tracking import tracker_for

        return tracker_for(self.settings.get())

    def registry(self):
        from embtune_pipeline.lib.registry.versions import registry_for

        return registry_for(self.settings.get())
