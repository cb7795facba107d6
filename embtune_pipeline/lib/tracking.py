"""MLflow experiment tracking for training runs and their evaluations (no Dagster here)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from embtune_pipeline.lib.registry import tag_key
from embtune_pipeline.lib.secrets import safe_params


class Tracker:
    def __init__(self, tracking_uri: str, experiment: str, artifact_root: Optional[Path] = None,
                 ui_url: Optional[str] = None):
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        import mlflow

        self.mlflow = mlflow
        self.tracking_uri = tracking_uri
        self.ui_url = (ui_url or "").rstrip("/")
        mlflow.set_tracking_uri(tracking_uri)
        exp = mlflow.get_experiment_by_name(experiment)
        if exp is None:
            location = Path(artifact_root).resolve().as_uri() if artifact_root else None
            self.experiment_id = mlflow.create_experiment(experiment, artifact_location=location)
        else:
            self.experiment_id = exp.experiment_id

    def run_url(self, run_id: str) -> str:
        base = self.ui_url or "(start `mlflow ui`)"
        return f"{base}/#/experiments/{self.experiment_id}/runs/{run_id}"

    def log_training(self, run_name: str, params: dict, loss_history: list[tuple[int, float]], model_dir: Path,
                     tags: dict, files: tuple[Path, ...] = ()) -> str:
        with self.mlflow.start_run(experiment_id=self.experiment_id, run_name=run_name) as run:
            self.mlflow.set_tags({k: str(v) for k, v in tags.items()})
            self.mlflow.log_params(safe_params(params))
            for step, loss in loss_history:
                self.mlflow.log_metric("train_loss", loss, step=step)
            self.mlflow.log_artifacts(str(model_dir), artifact_path="model")
            for f in files:
                self.mlflow.log_artifact(str(f))
            return run.info.run_id

    def log_evaluation(self, run_id: str, metrics: dict[str, float], files: list[Path]) -> None:
        with self.mlflow.start_run(run_id=run_id):
            self.mlflow.log_metrics({tag_key(k): v for k, v in metrics.items()})
            for f in files:
                self.mlflow.log_artifact(str(f), artifact_path="eval")
