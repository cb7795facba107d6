"""The record beside a trained model: what produced it, so a rerun with the same inputs reuses it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from embtune_pipeline.lib.storage import write_atomically

MODEL_RECORD = "embtune.json"  # beside a saved model: what produced it, so a rerun with the same inputs reuses it
NOT_TRAINING = {"keep_checkpoints"}  # knobs that change no weight: outside the training key
RECORD_POINTER = "model_record"  # a stored value {RECORD_POINTER: path} stands for the record at that path


def training_key(pairs: pd.DataFrame, knobs: dict, base_fingerprint: str, max_seq_length: int) -> str:
    """Names a training run by its inputs: the same inputs resume the same checkpoints."""
    h = hashlib.sha256()
    lists = [c for c in pairs.columns if len(pairs) and isinstance(pairs[c].iloc[0], (list, tuple, np.ndarray))]
    hashable = pairs.assign(**{c: pairs[c].map(lambda v: json.dumps([round(float(x), 6) for x in v]))
                               for c in lists})  # e.g. the teacher's scores: a list per row
    h.update(pd.util.hash_pandas_object(hashable, index=False).values.tobytes())
    h.update(json.dumps([knobs, base_fingerprint, max_seq_length], sort_keys=True).encode())
    return h.hexdigest()[:12]


def model_name(base_key: str, training_key: str) -> str:
    """A trained model's name, and its folder's: the base it came from and the key of its inputs."""
    return f"{base_key}-{training_key}"


def read_model_record(model_dir: Path) -> Optional[dict]:
    """The record of a model already trained into model_dir, or None when there is none (not trained, or
    interrupted before it was recorded)."""
    record = Path(model_dir) / MODEL_RECORD
    return json.loads(record.read_text()) if record.exists() else None


def write_model_record(model_dir: Path, record: dict) -> None:
    """Written last, once the model is saved and logged: its presence means the model is complete."""
    text = json.dumps(record, indent=2)
    write_atomically(Path(model_dir) / MODEL_RECORD, lambda tmp: tmp.write_text(text))


def model_record(name: str, model_dir: Path, base: dict, snapshot: str, knobs: dict, training_key: str,
                 mlflow_run: dict, fit_rows: pd.DataFrame, result) -> dict:
    """What the record says of a trained model: where it is, what it came from (base, snapshot, knobs, pairs by
    source), where MLflow holds it, and what the validation split chose. `base`: the base_corpus_embeddings
    value; `mlflow_run`: mlflow_run_id, mlflow_model_uri, mlflow_run_url; `result`: the TrainResult."""
    return {"name": name, "model_dir": str(model_dir), "base_model": base["base_model"], "snapshot": snapshot,
            "base_model_path": base["model_path"], "max_seq_length": base["max_seq_length"],
            "matryoshka_dims": knobs["matryoshka_dims"], "lora": knobs["lora"], "training_key": training_key,
            **mlflow_run, "training_pairs": len(fit_rows), "pairs_per_epoch": result.epoch_pairs,
            "steps": result.steps, "validation": result.validation,
            "training_pairs_by_source": fit_rows["source"].value_counts().to_dict()}


def record_pointer(record: dict) -> dict:
    """What an asset store keeps for a model's record: where it is, so the record is stored once (beside the
    model, where a rerun finds it to reuse the model)."""
    path = Path(record["model_dir"]) / MODEL_RECORD
    if not path.exists():
        raise ValueError(f"{path} does not exist: write_model_record the record before it is stored")
    return {RECORD_POINTER: str(path)}


def resolve_record_pointer(value):
    """A stored value, with a record pointer replaced by the record it points at."""
    if not (isinstance(value, dict) and set(value) == {RECORD_POINTER}):
        return value
    path = Path(value[RECORD_POINTER])
    if not path.exists():
        raise FileNotFoundError(f"the model record {path} is gone (was the model directory deleted?); "
                                "re-materialize finetuned_model")
    return json.loads(path.read_text())
