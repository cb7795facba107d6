"""The settings file as a Dagster resource: every asset reads the same validated settings."""

from __future__ import annotations

from typing import Optional

import dagster as dg
from pydantic import PrivateAttr

from embtune_pipeline.settings import Settings, load_settings


class SettingsResource(dg.ConfigurableResource):
    """config_path: a settings YAML; empty means $EMBTUNE_CONFIG, else the bundled demo."""

    config_path: Optional[str] = None
    _settings: Optional[Settings] = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        """In a run: record which process executes it, and release runs whose process died, before this step
        can wait on a concurrency pool one of them holds."""
        if context.instance is not None and context.run_id:
            from embtune_pipeline.runner import record_run_process, release_dead_runs

            release_dead_runs(context.instance)
            record_run_process(context.instance, context.run_id)

    @classmethod
    def of(cls, settings: Settings) -> "SettingsResource":
        """A resource over settings already loaded (the CLI and the benchmarks hold them): not read again."""
        resource = cls()
        resource._settings = settings
        return resource

    def get(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config_path)
        return self._settings
