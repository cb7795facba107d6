"""MLflow experiment tracking for training runs and their evaluations (no Dagster here).

The tuned model is logged with MLflow's `sentence_transformers` flavor (MLmodel, signature, input example,
pinned pip requirements), so a registered version loads the way MLflow users load models:
`mlflow.sentence_transformers.load_model("models:/embtune@champion")` or `mlflow.pyfunc.load_model(...)`."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import Optional

from embtune_pipeline.lib.registry.versions import tag_key
from embtune_pipeline.lib.secrets import safe_params

SERVING_PACKAGES = ("sentence-transformers", "transformers", "torch")
SERVING_ARTIFACTS = "serving"  # the run's folder of the ONNX and int8 exports (lib.encoders.serving_exports)
INPUT_EXAMPLE = ["how do I reset my device?"]  # the signature is inferred from it: one string in, a vector out
# the tag the MLflow UI reads to open an experiment as model training (runs, metrics), not as GenAI traces
EXPERIMENT_KIND_TAG, MODEL_DEVELOPMENT = "mlflow.experimentKind", "custom_model_development"
# MLflow 3's UI shows an experiment as GenAI (traces) or model training from the URL's workflowType, else from
# the browser's last choice (GenAI at first), whatever the experiment's tag says: every link embtune gives has it.
MODEL_TRAINING_VIEW = "?workflowType=machine_learning"
RUN_FILE = "mlflow_run_id"  # beside a training's checkpoints: the MLflow run a resumed training goes on in


def is_remote(tracking_uri: str) -> bool:
    """A tracking server keeps artifacts in its own store (`mlflow server --artifacts-destination`); a store
    opened directly (sqlite, a database URI, a folder) needs embtune to say where artifacts go."""
    return tracking_uri.split(":", 1)[0].lower() in ("http", "https", "databricks")


def experiment_url(ui_url: Optional[str], experiment_id: str, page: str = "") -> str:
    """The experiment's page (or a page under it, such as `/runs/<id>`) in the MLflow UI, as model training."""
    base = (ui_url or "").rstrip("/") or "(start `embtune ui`)"
    return f"{base}/#/experiments/{experiment_id}{page}{MODEL_TRAINING_VIEW}"


def artifact_location(tracking_uri: str, local_root: Optional[Path]) -> Optional[str]:
    """Where a new experiment keeps its artifacts: the server's artifact store (None) for a tracking server,
    else local_root beside the local store."""
    if is_remote(tracking_uri) or local_root is None:
        return None
    return Path(local_root).resolve().as_uri()


def serving_requirements() -> list[str]:
    """The packages a serving team needs to load the model, pinned to the versions that trained it."""
    return [f"{p}=={installed_version(p)}" for p in SERVING_PACKAGES]


@dataclass(frozen=True)
class LoggedTraining:
    run_id: str
    model_uri: str  # models:/m-... : what the registry versions point at


class Tracker:
    def __init__(self, tracking_uri: str, experiment: str, artifact_root: Optional[Path] = None,
                 ui_url: Optional[str] = None):
        import mlflow

        self.mlflow = mlflow
        self.tracking_uri = tracking_uri
        self.ui_url = (ui_url or "").rstrip("/")
        mlflow.set_tracking_uri(tracking_uri)
        self.client = mlflow.MlflowClient(tracking_uri)
        exp = mlflow.get_experiment_by_name(experiment)
        if exp is None:
            self.experiment_id = mlflow.create_experiment(
                experiment, artifact_location=artifact_location(tracking_uri, artifact_root),
                tags={EXPERIMENT_KIND_TAG: MODEL_DEVELOPMENT})
        else:
            self.experiment_id = exp.experiment_id
            if EXPERIMENT_KIND_TAG not in exp.tags:  # made by an older embtune
                self.client.set_experiment_tag(self.experiment_id, EXPERIMENT_KIND_TAG, MODEL_DEVELOPMENT)

    def run_url(self, run_id: str) -> str:
        return experiment_url(self.ui_url, self.experiment_id, f"/runs/{run_id}")

    def start_training(self, run_name: str, params: dict, tags: dict, resume_run_id: Optional[str] = None) -> str:
        """Open the training's MLflow run before it trains, so its loss and validation curves are live; a resumed
        training (resume_run_id from its checkpoints) goes on in the run it started, if that run still exists."""
        if resume_run_id and self._exists(resume_run_id):
            self.client.update_run(resume_run_id, status="RUNNING")
            self.client.log_batch(resume_run_id, tags=self._tags(tags))  # e.g. the Dagster run that resumed it
            return resume_run_id
        run = self.client.create_run(self.experiment_id, run_name=run_name,
                                     tags={k: str(v) for k, v in tags.items()})
        self.client.log_batch(run.info.run_id, params=[
            self.mlflow.entities.Param(k, str(v)) for k, v in safe_params(params).items()])
        return run.info.run_id

    @contextmanager
    def training_run(self, checkpoint_dir: Path, run_name: str, params: dict, tags: dict):
        """The training's MLflow run, for the duration of the training: its id is kept beside the checkpoints so
        a rerun that resumes them goes on in the same run; an error marks it failed."""
        run_file = Path(checkpoint_dir) / RUN_FILE
        run_id = self.start_training(run_name, params, tags, run_file.read_text().strip() if run_file.exists()
                                     else None)
        run_file.parent.mkdir(parents=True, exist_ok=True)
        run_file.write_text(run_id)
        try:
            yield run_id
        except BaseException:
            self.fail(run_id)
            raise

    def _tags(self, tags: dict) -> list:
        return [self.mlflow.entities.RunTag(k, str(v)) for k, v in tags.items()]

    def log_metrics(self, run_id: str, step: int, metrics: dict[str, float]) -> None:
        for key, value in metrics.items():
            self.client.log_metric(run_id, tag_key(key), value, step=step)

    def finish_training(self, run_id: str, model_dir: Path, params: dict, tags: dict,
                        files: tuple[Path, ...] = ()) -> LoggedTraining:
        """Log the trained model (sentence_transformers flavor), what was only known at the end, and close."""
        import mlflow.sentence_transformers
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(str(model_dir), device="cpu")
        logged = self.client.get_run(run_id).data.params  # an earlier attempt may have logged some already
        with self.mlflow.start_run(run_id=run_id):
            self.mlflow.set_tags({k: str(v) for k, v in tags.items()})
            self.mlflow.log_params({k: v for k, v in safe_params(params).items() if k not in logged})
            info = mlflow.sentence_transformers.log_model(
                model, name="model", input_example=INPUT_EXAMPLE, pip_requirements=serving_requirements())
            for f in files:
                self.mlflow.log_artifact(str(f))
        return LoggedTraining(run_id, info.model_uri)

    def fail(self, run_id: str) -> None:
        self.client.set_terminated(run_id, status="FAILED")

    def _exists(self, run_id: str) -> bool:
        try:
            info = self.client.get_run(run_id).info
        except self.mlflow.exceptions.MlflowException:
            return False
        return info.experiment_id == self.experiment_id and info.lifecycle_stage == "active"

    def log_evaluation(self, run_id: str, metrics: dict[str, float], report: dict, files: list[Path],
                       serving_dir: Optional[str] = None) -> None:
        """The evaluation into the training's run: metrics, the report document as eval/eval_report.json, the
        files for people (chart, table), and the serving exports under serving/ (the ONNX and int8 models with
        their tokenizer), so the registered version's run holds every form of the model."""
        with self.mlflow.start_run(run_id=run_id):
            self.mlflow.log_metrics({tag_key(k): v for k, v in metrics.items()})
            self.mlflow.log_dict(report, "eval/eval_report.json")
            for f in files:
                self.mlflow.log_artifact(str(f), artifact_path="eval")
            if serving_dir:
                self.mlflow.log_artifacts(serving_dir, artifact_path=SERVING_ARTIFACTS)
