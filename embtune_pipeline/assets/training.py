"""finetuned_model."""


import json
import shutil
from functools import partial

import dagster as dg
import pandas as pd

from embtune_pipeline.assets._common import (
    effective,
    optional_config,
    png_markdown,
    records_table,
    reporter,
    rounded,
)
from embtune_pipeline.lib.evaluation.report import loss_curve_png
from embtune_pipeline.lib.training.callbacks import VALIDATION_METRIC
from embtune_pipeline.lib.training.data import has_real_pairs, is_distilled, text_columns, training_columns
from embtune_pipeline.lib.training.record import (
    NOT_TRAINING,
    model_name,
    model_record,
    read_model_record,
    training_key,
    write_model_record,
)
from embtune_pipeline.lib.training.interpolation import saved_validation
from embtune_pipeline.lib.training.train import TrainSpec, contrastive_name, this_machines_precision, train_model
from embtune_pipeline.lib.training.validation import split_validation
from embtune_pipeline.partitions import RETUNE_PARTITIONS, keys_of
from embtune_pipeline.resources.embeddings import EmbeddingCache
from embtune_pipeline.resources.io_managers import STORED_BESIDE_MODEL
from embtune_pipeline.resources.mlflow import MlflowResource
from embtune_pipeline.resources.settings import SettingsResource
from embtune_pipeline.resources.teacher import TeacherModel
from embtune_pipeline.settings import TrainKnobs, settings_digest

TrainConfig = optional_config(TrainKnobs, "TrainConfig")
LOSS_CHART = "chart: training loss and validation nDCG@10"


@dg.asset(group_name="training", kinds={"sentence_transformers", "pytorch", "mlflow"}, partitions_def=RETUNE_PARTITIONS,
          pool="gpu", metadata={STORED_BESIDE_MODEL: True})
def finetuned_model(context: dg.AssetExecutionContext, config: TrainConfig, settings: SettingsResource,
                    mlflow: MlflowResource, teacher: TeacherModel, embeddings: EmbeddingCache,
                    hard_negatives: pd.DataFrame, base_corpus_embeddings: dict) -> dg.Output[dict]:
    """The base model fine-tuned on (query, positive, hard negatives) with MNRL or GIST, plus distillation from
    the teacher's scores when a teacher labelled the rows (Matryoshka and LoRA optional); saved as a
    sentence-transformers directory, logged to MLflow with its flavor (a registered version loads with one call).
    Checkpoints let a failed run resume; a finished model with the same inputs is reused, not retrained."""
    s = settings.get()
    knobs = effective(s.run.train, config)
    emb, (base_key, snapshot) = base_corpus_embeddings, keys_of(context)
    columns = training_columns(hard_negatives)
    # the source column decides which queries validate, so it names the run too
    key = training_key(hard_negatives[[*columns, "source"]], {**knobs.model_dump(exclude=NOT_TRAINING),
                       "precision": this_machines_precision(knobs.precision)}, emb["key"], emb["max_seq_length"])
    name = model_name(base_key, key)
    out_dir, checkpoints = s.layout.model(name), s.layout.checkpoints(name)
    if (record := read_model_record(out_dir)) is not None:
        context.log.info(f"model {name} already trained from these inputs; reusing {out_dir}")
        return dg.Output(record, metadata={"reused": True, **_links(record)})
    split = split_validation(hard_negatives, knobs.validation_fraction, knobs.validation_max_queries,
                             knobs.validation_min_queries, knobs.validation_corpus_size, knobs.seed)
    if split.validation is None:
        context.log.warning(f"no validation split ({split.reason}): the last checkpoint is kept, unselected")
    fit_rows = teacher.training_rows(embeddings, split.train_rows[[*columns, "source"]], knobs.distill_loss)
    tags = _tags(context, emb, snapshot, key, hard_negatives)
    result, curve, mlflow_run = _train_tracked(context, s, mlflow.tracker(), knobs, emb, fit_rows, split, name, tags,
                                               teacher.guide_path())
    record = model_record(name, out_dir, emb, snapshot, knobs.model_dump(), key, mlflow_run, fit_rows, result)
    write_model_record(out_dir, record)
    if not knobs.keep_checkpoints:  # the model is saved and recorded: a rerun reuses it, not the checkpoints
        shutil.rmtree(checkpoints, ignore_errors=True)
    return dg.Output(record, metadata=_metadata(result, split.reason, curve, knobs.epochs, record))


def _train_tracked(context: dg.AssetExecutionContext, s, tracker, knobs, emb: dict, fit_rows: pd.DataFrame, split,
                   name: str, tags: dict, guide_path):
    """Train inside the model's MLflow run (opened first, so loss and validation curves are live); returns the
    TrainResult, the loss chart and the run's ids. A local bi-encoder teacher is GIST's guide."""
    spec = TrainSpec(emb["model_path"], emb["max_seq_length"], **knobs.model_dump(include=TrainSpec.knob_names()),
                     guide_path=guide_path)
    out_dir = s.layout.model(name)
    with tracker.training_run(s.layout.checkpoints(name), name, _params(s, knobs, emb, fit_rows, split),
                              tags) as run_id:
        context.log.info(f"training {name}: {len(fit_rows)} pairs; live loss and validation curves in MLflow: "
                         f"{tracker.run_url(run_id)}")
        result = train_model(spec, fit_rows, out_dir, s.layout.checkpoints(name), split.validation,
                             reporter(context, s), partial(tracker.log_metrics, run_id))
        saved = saved_validation(result.validation)
        if saved is not None:  # the run's last validation score is the saved model's, not the last checkpoint's
            tracker.log_metrics(run_id, result.steps, {VALIDATION_METRIC: saved.score})
        curve = loss_curve_png(result.loss_history, _validation_points(result.validation),
                               s.layout.reports(context.partition_key) / f"loss_{name}.png", saved)
        logged = tracker.finish_training(run_id, out_dir, {
            "pairs_per_epoch": result.epoch_pairs, "interpolation_alpha": result.validation.get("alpha", 1.0),
            **{f"used_{k}": v for k, v in result.used.items()}}, {}, files=(curve,))
    return result, curve, {"mlflow_run_id": logged.run_id, "mlflow_model_uri": logged.model_uri,
                           "mlflow_run_url": tracker.run_url(logged.run_id)}


def _params(s, knobs, emb: dict, fit_rows: pd.DataFrame, split) -> dict:
    """The training's MLflow params, known before it trains."""
    return {**knobs.model_dump(), "loss": contrastive_name(knobs.loss, has_real_pairs(fit_rows)),  # not "auto"
            "loss_setting": knobs.loss, "base_model": emb["base_model"], "max_seq_length": emb["max_seq_length"],
            "training_pairs": len(fit_rows), "negatives_per_pair": len(text_columns(fit_rows)) - 2,
            "teacher": s.teacher.name if s.teacher else "none", "distilled": is_distilled(fit_rows),
            "validation_queries": len(split.validation or []), "generator": s.generator.model,
            "settings_digest": settings_digest(s)}


def _tags(context: dg.AssetExecutionContext, emb: dict, snapshot: str, key: str, rows: pd.DataFrame) -> dict:
    return {"dagster_run_id": context.run_id, "base_model": emb["base_model"], "snapshot": snapshot,
            "training_key": key, "pairs_by_source": json.dumps(rows["source"].value_counts().to_dict())}


def _metadata(result, validation_reason: str, curve, epochs: float, record: dict) -> dict:
    return {
        **_validation_metadata(result.validation, validation_reason),
        LOSS_CHART: png_markdown(curve, "training loss and validation nDCG@10 by step"),
        "final_loss": rounded(result.loss_history[-1][1] if result.loss_history else float("nan")),
        "steps": result.steps,
        "stopped_by_step_budget": result.used.get("max_steps", -1) > 0,
        "loss": result.used.get("loss", ""),
        "training_pairs": record["training_pairs"],
        "pairs_per_epoch": result.epoch_pairs,
        "train_seconds": round(result.train_seconds, 1),
        **({"peak_rss_mb": result.peak_rss_mb} if result.peak_rss_mb is not None else {}),
        "pairs_per_second": round(result.epoch_pairs * epochs / max(result.train_seconds, 1e-9), 2),
        "resumed_from_checkpoint": result.resumed_from or "",
        "incomplete_checkpoints_set_aside": ", ".join(result.set_aside),
        **_links(record),
    }


def _links(record: dict) -> dict:
    return {"model_dir": dg.MetadataValue.path(record["model_dir"]),
            "mlflow_run": dg.MetadataValue.url(record["mlflow_run_url"])}


def _validation_points(chosen: dict) -> list[tuple[int, float]]:
    """(step, validation nDCG@10), the base's at step 0, for the loss chart."""
    if not chosen:
        return []
    return [(0, chosen["base_score"]), *chosen["scores"]]


def _validation_metadata(chosen: dict, reason: str) -> dict:
    """What the validation split chose, for the UI: the base's score, each checkpoint's, each ratio's."""
    if not chosen:
        return {"validation": reason}
    best = chosen["best_step"]
    rows = [{"step": "0 (base)", "validation nDCG@10": rounded(chosen["base_score"]), "kept": ""}]
    rows += [{"step": str(step), "validation nDCG@10": rounded(score),
              "kept": "best checkpoint" if step == best else ""} for step, score in chosen["scores"]]
    rows += [{"step": f"weights {float(alpha):g} tuned + {1 - float(alpha):g} base (WiSE-FT)",
              "validation nDCG@10": rounded(score),
              "kept": "saved" if float(alpha) == chosen["alpha"] else ""}
             for alpha, score in chosen["alpha_scores"].items()]
    return {
        "validation_scores": records_table(rows),
        "validation_base_ndcg@10": rounded(chosen["base_score"]),
        "validation_best_ndcg@10": rounded(max(chosen["alpha_scores"].values())),
        "validation_queries": chosen["queries"],
        "validation_source": chosen["source"],
        "validation_best_step": best if best is not None else -1,
        "interpolation_alpha": chosen["alpha"],
    }
