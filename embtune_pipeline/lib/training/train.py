"""Contrastive fine-tuning with the sentence-transformers trainer: MNRL with hard negatives, optional Matryoshka
and LoRA, resumable checkpoints. Runs on CPU, one GPU, or several under torchrun/accelerate."""

from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import pandas as pd

from embtune_pipeline.lib.models import load_model
from embtune_pipeline.lib.progress import SILENT, Reporter, duration
from embtune_pipeline.lib.queries.pairs import is_real
from embtune_pipeline.lib.storage import write_atomically
from embtune_pipeline.lib.training.validation import ValidationScorer, ValidationSet

log = logging.getLogger(__name__)

LOSS_METRIC, VALIDATION_METRIC = "train_loss", "validation_ndcg@10"  # what on_metrics hears, by these names
MODEL_RECORD = "embtune.json"  # beside a saved model: what produced it, so a rerun with the same inputs reuses it
NOT_TRAINING = {"keep_checkpoints"}  # knobs that change no weight: outside the training key


def training_columns(rows: pd.DataFrame) -> list[str]:
    """The columns the trainer reads, in the order its losses take them: anchor, positive, negative_1..n."""
    return ["anchor", "positive", *(c for c in rows.columns if c.startswith("negative_"))]


def read_model_record(model_dir: Path) -> Optional[dict]:
    """The record of a model already trained into model_dir, or None when there is none (not trained, or
    interrupted before it was recorded)."""
    record = Path(model_dir) / MODEL_RECORD
    return json.loads(record.read_text()) if record.exists() else None


def write_model_record(model_dir: Path, record: dict) -> None:
    """Written last, once the model is saved and logged: its presence means the model is complete."""
    text = json.dumps(record, indent=2)
    write_atomically(Path(model_dir) / MODEL_RECORD, lambda tmp: tmp.write_text(text))


@dataclass
class TrainResult:
    model_dir: Path
    steps: int
    loss_history: list[tuple[int, float]] = field(default_factory=list)
    resumed_from: Optional[str] = None
    train_seconds: float = 0.0
    validation: dict = field(default_factory=dict)  # what the validation split chose, with its scores
    epoch_pairs: int = 0  # pairs in one epoch: fewer than the training pairs when sources are balanced
    used: dict = field(default_factory=dict)  # knobs as the training applied them (batch_size, save_steps)


def training_key(pairs: pd.DataFrame, knobs: dict, base_fingerprint: str, max_seq_length: int) -> str:
    """Names a training run by its inputs: the same inputs resume the same checkpoints."""
    h = hashlib.sha256()
    h.update(pd.util.hash_pandas_object(pairs, index=False).values.tobytes())
    h.update(json.dumps([knobs, base_fingerprint, max_seq_length], sort_keys=True).encode())
    return h.hexdigest()[:12]


def to_dataset(pairs: pd.DataFrame):
    """anchor, positive, negative_1..n columns, as the trainer's losses expect."""
    from datasets import Dataset

    return Dataset.from_pandas(pairs[training_columns(pairs)].reset_index(drop=True), preserve_index=False)


def training_data(pairs: pd.DataFrame, batch_size: int, balance_sources: bool):
    """The trainer's dataset, the batches and the pairs in one epoch. Balanced, when there are both real and
    (more) synthetic pairs: a dataset per source, batches taken from each in turn until the real ones run out,
    so an epoch holds as many synthetic pairs as real ones, a fresh draw each epoch, and real queries are not
    drowned. A batch never mixes sources: a generated query is not an in-batch negative for a user's."""
    from datasets import DatasetDict

    def batches(n: int) -> int:
        return max(1, -(-n // batch_size))

    if balance_sources and "source" in pairs.columns:
        real = is_real(pairs)
        n_real = int(real.sum())
        if 0 < n_real < len(pairs) - n_real:
            data = DatasetDict({"real": to_dataset(pairs[real]), "synthetic": to_dataset(pairs[~real])})
            return data, 2 * batches(n_real), 2 * n_real
    return to_dataset(pairs), batches(len(pairs)), len(pairs)


def add_lora(model, rank: int) -> None:
    """LoRA layers injected into the transformer in place (peft's own API); only they are trained."""
    from peft import LoraConfig, inject_adapter_in_model

    hf = model.transformers_model
    inject_adapter_in_model(LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.1,
                                       target_modules=_lora_targets(hf)), hf)
    for name, param in hf.named_parameters():
        param.requires_grad = "lora_" in name


def _lora_targets(hf) -> list[str]:
    """peft's default attention projections for the architecture, else every Linear's leaf name."""
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as defaults

    known = defaults.get(getattr(hf.config, "model_type", ""), None)
    if known:
        return list(known)
    import torch

    return sorted({n.rsplit(".", 1)[-1] for n, m in hf.named_modules() if isinstance(m, torch.nn.Linear)})


def merge_lora(model) -> None:
    """Fold LoRA weights into the base weights so the saved model is a plain sentence-transformers directory."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    hf = model.transformers_model
    for name, module in list(hf.named_modules()):
        if isinstance(module, BaseTunerLayer):
            module.merge()
            parent_name, _, child = name.rpartition(".")
            parent = hf.get_submodule(parent_name) if parent_name else hf
            setattr(parent, child, module.get_base_layer())
    for attr in ("peft_config", "_hf_peft_config_loaded"):
        if hasattr(hf, attr):
            try:
                delattr(hf, attr)
            except AttributeError:
                setattr(hf, attr, False)


def contrastive_loss(model, name: str, mini_batch_size: int, guide_path, max_seq_length: int):
    """MultipleNegativesRankingLoss, or GISTEmbedLoss with the base model as guide (an in-batch candidate the
    base scores above the positive is treated as a likely positive, not a negative). mini_batch_size > 0 takes
    the cached (GradCache) variant: a large batch of negatives in the memory of a small one."""
    from sentence_transformers.sentence_transformer import losses

    if name == "gist":
        guide = load_model(guide_path, max_seq_length=max_seq_length)
        if mini_batch_size:
            return losses.CachedGISTEmbedLoss(model, guide, mini_batch_size=mini_batch_size)
        return losses.GISTEmbedLoss(model, guide)
    if name != "mnrl":
        raise ValueError(f"unknown loss {name!r}: 'mnrl' or 'gist'")
    if mini_batch_size:
        return losses.CachedMultipleNegativesRankingLoss(model, mini_batch_size=mini_batch_size)
    return losses.MultipleNegativesRankingLoss(model)


@dataclass(frozen=True)
class TrainSpec:
    """What a training is asked to do: the base model and every knob that decides the weights (the run
    settings' `train` knobs go in by name). What it actually used comes back in TrainResult.used."""

    base_model_path: Path
    max_seq_length: int
    epochs: float = 1.0
    batch_size: int = 32
    learning_rate: float = 3e-5
    warmup_ratio: float = 0.1
    matryoshka_dims: tuple[int, ...] = ()
    lora: bool = False
    lora_rank: int = 16
    save_steps: int = 200
    seed: int = 0
    evaluations_per_epoch: int = 2
    interpolation_alphas: tuple[float, ...] = (1.0,)
    loss: str = "mnrl"
    mini_batch_size: int = 0
    balance_sources: bool = True

    @classmethod
    def knob_names(cls) -> set[str]:
        return {f for f in cls.__dataclass_fields__ if f not in ("base_model_path", "max_seq_length")}


def train_model(
    spec: TrainSpec,
    pairs: pd.DataFrame,
    output_dir: Path,
    checkpoint_dir: Path,
    validation: Optional[ValidationSet] = None,
    reporter: Reporter = SILENT,
    on_metrics: Optional[Callable[[int, dict], None]] = None,
) -> TrainResult:
    """With a validation set, the model is scored every 1/evaluations_per_epoch epoch and the best checkpoint
    is kept; then each WiSE-FT ratio in interpolation_alphas is scored and the best one saved. A "source" column
    in pairs lets balance_sources apply (see training_data). `reporter` hears progress lines while it trains;
    `on_metrics(step, {name: value})` each training loss and validation score as it is measured (step 0: the
    base's validation score)."""
    import time

    import torch
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer import losses
    from sentence_transformers.sentence_transformer.training_args import BatchSamplers, MultiDatasetBatchSamplers
    from transformers.trainer_callback import PrinterCallback
    from transformers.trainer_utils import get_last_checkpoint

    model = load_model(spec.base_model_path, max_seq_length=spec.max_seq_length)
    scorer = ValidationScorer(validation) if validation is not None else None
    if scorer is not None:  # before LoRA layers are added: the base weights under their own names
        base_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        base_score = scorer.score(model)
        if on_metrics is not None:
            on_metrics(0, {VALIDATION_METRIC: base_score})
    if spec.lora:
        add_lora(model, spec.lora_rank)
    loss = contrastive_loss(model, spec.loss, spec.mini_batch_size, spec.base_model_path, spec.max_seq_length)
    if spec.matryoshka_dims:
        full = model.get_sentence_embedding_dimension()
        dims = sorted({d for d in spec.matryoshka_dims if 0 < d <= full} | {full}, reverse=True)
        loss = losses.MatryoshkaLoss(model, loss, matryoshka_dims=dims)

    batch_size = max(2, min(spec.batch_size, len(pairs)))  # a batch is never larger than the data
    # balanced only when real queries are plentiful enough to validate on: then they can carry an epoch
    balance = spec.balance_sources and validation is not None and validation.source == "real"
    dataset, epoch_batches, epoch_pairs = training_data(pairs, batch_size, balance)
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    selection: dict = {}
    save_steps = spec.save_steps
    if scorer is not None:  # each validation is a checkpoint: see validation_steps
        save_steps = eval_steps = validation_steps(epoch_batches, spec.evaluations_per_epoch, spec.save_steps)
        selection = dict(eval_strategy="steps", eval_steps=eval_steps, load_best_model_at_end=True,
                         metric_for_best_model=scorer.trainer_metric, greater_is_better=True)
    args = SentenceTransformerTrainingArguments(
        output_dir=str(checkpoint_dir),
        num_train_epochs=spec.epochs,
        per_device_train_batch_size=batch_size,
        learning_rate=spec.learning_rate,
        warmup_steps=float(spec.warmup_ratio),  # a float in [0, 1) is a ratio of the steps (transformers 5)
        batch_sampler=BatchSamplers.NO_DUPLICATES,  # a duplicate in the batch would be a false in-batch negative
        multi_dataset_batch_sampler=MultiDatasetBatchSamplers.ROUND_ROBIN,  # only used when balanced
        save_strategy="steps",
        save_steps=save_steps,
        save_total_limit=2,
        logging_steps=max(1, min(10, epoch_batches // 20 or 1)),
        report_to="none",
        seed=spec.seed,
        disable_tqdm=True,
        dataloader_pin_memory=torch.cuda.is_available(),
        **selection,
    )
    watcher = progress_callback(reporter, scorer.trainer_metric if scorer else None, on_metrics)
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=dataset, loss=loss,
                                         evaluator=scorer.evaluator() if scorer else None, callbacks=[watcher])
    trainer.remove_callback(PrinterCallback)  # raw log dicts on stdout: the watcher's lines say it readably
    last = get_last_checkpoint(str(checkpoint_dir))
    if last:
        log.info("resuming from checkpoint %s", last)
    start = time.time()
    trainer.train(resume_from_checkpoint=last)
    seconds = time.time() - start
    if spec.lora:
        merge_lora(model)
    chosen = {}
    if scorer is not None:
        known = {0.0: base_score}  # scores already measured need no second encoding of the validation corpus
        if trainer.state.best_metric is not None:
            known[1.0] = float(trainer.state.best_metric)  # the best checkpoint, loaded at the end
        chosen = _choose_interpolation(model, base_state, scorer, spec.interpolation_alphas, known)
        scores = [(int(e["step"]), float(e[scorer.trainer_metric]))
                  for e in trainer.state.log_history if scorer.trainer_metric in e]
        best = trainer.state.best_model_checkpoint
        chosen.update({"queries": len(validation), "corpus": len(validation.corpus_texts),
                       "source": validation.source, "base_score": base_score, "scores": scores,
                       "best_step": int(best.rsplit("-", 1)[-1]) if best else None})
    output_dir.mkdir(parents=True, exist_ok=True)
    model.save(str(output_dir))
    history = [(int(e["step"]), float(e["loss"])) for e in trainer.state.log_history if "loss" in e]
    return TrainResult(model_dir=output_dir, steps=int(trainer.state.global_step), loss_history=history,
                       resumed_from=last, train_seconds=seconds, validation=chosen, epoch_pairs=epoch_pairs,
                       used={"batch_size": batch_size, "save_steps": save_steps})


def progress_callback(reporter: Reporter, validation_key: Optional[str],
                      on_metrics: Optional[Callable[[int, dict], None]] = None):
    """A trainer callback: every `reporter.every` seconds (and at the end) a line with step N of M, epoch, the
    latest loss and validation score, elapsed time and ETA; each logged loss and validation score to on_metrics."""
    import time

    from transformers import TrainerCallback

    class TrainingProgress(TrainerCallback):
        def __init__(self):
            self.start = self.last = time.monotonic()
            self.first_step = 0
            self.loss = self.score = None
            self.metrics_failed = False

        def on_train_begin(self, args, state, control, **kwargs):
            self.start = self.last = time.monotonic()
            self.first_step = state.global_step  # > 0 when resumed: the rate counts this run's steps only

        def on_log(self, args, state, control, logs=None, **kwargs):
            logs = logs or {}
            measured = {}
            if "loss" in logs:
                self.loss = measured[LOSS_METRIC] = float(logs["loss"])
            if validation_key and validation_key in logs:
                self.score = measured[VALIDATION_METRIC] = float(logs[validation_key])
            if measured and on_metrics is not None:
                try:
                    on_metrics(int(state.global_step), measured)
                except Exception as e:  # noqa: BLE001 - a tracking server down for a minute must not end a training
                    if not self.metrics_failed:
                        log.warning("live metrics not recorded (%s: %s); training goes on", type(e).__name__, e)
                    self.metrics_failed = True

        def on_step_end(self, args, state, control, **kwargs):
            now = time.monotonic()
            if now - self.last >= reporter.every and state.global_step < state.max_steps:
                self.last = now
                self.say(state, now)

        def on_train_end(self, args, state, control, **kwargs):
            self.say(state, time.monotonic())  # after the last step's loss and validation were logged

        def say(self, state, now: float) -> None:
            if reporter.say is None:
                return
            done, total = state.global_step, state.max_steps
            elapsed = now - self.start
            rate = (done - self.first_step) / elapsed if elapsed > 0 else 0.0
            parts = [f"training step {done}/{total} ({done / max(total, 1):.0%})", f"epoch {state.epoch or 0:.2f}"]
            if self.loss is not None:
                parts.append(f"loss {self.loss:.4f}")
            if self.score is not None:
                parts.append(f"validation nDCG@10 {self.score:.4f}")
            parts.append(f"elapsed {duration(elapsed)}")
            if done < total and rate > 0:
                parts.append(f"ETA {duration((total - done) / rate)}")
            reporter.say(", ".join(parts))

    return TrainingProgress()


def validation_steps(epoch_batches: int, evaluations_per_epoch: int, save_steps: int) -> int:
    """Steps between validations when a validation split picks the checkpoint. Each validation is a checkpoint
    (the best can only be one saved when it was scored), so validating at least every `save_steps` keeps the
    promise that a crash loses at most `save_steps` steps."""
    return max(1, min(math.ceil(epoch_batches / evaluations_per_epoch), save_steps))


def _choose_interpolation(model, base_state: dict, scorer: ValidationScorer, alphas, known: dict) -> dict:
    """Score each ratio between base and tuned weights on the validation set (taking `known` scores as they
    are); leave the model at the best (ties go to the ratio nearer the tuned model)."""
    tuned_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    scores = {}
    for alpha in sorted(set(alphas) | {1.0}, reverse=True):
        if alpha in known:
            scores[alpha] = known[alpha]
            continue
        model.load_state_dict(mix_weights(base_state, tuned_state, alpha))
        scores[alpha] = scorer.score(model)
    best = max(scores, key=lambda a: (scores[a], a))
    model.load_state_dict(mix_weights(base_state, tuned_state, best))
    return {"alpha": best, "alpha_scores": {str(a): s for a, s in scores.items()}}


def mix_weights(base_state: dict, tuned_state: dict, alpha: float) -> dict:
    """WiSE-FT: (1 - alpha) * base + alpha * tuned, parameter by parameter (alpha 1 is the tuned model)."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], not {alpha}")
    mixed = {}
    for name, value in tuned_state.items():
        if name not in base_state or base_state[name].shape != value.shape:
            raise ValueError(f"the base and tuned models differ in {name}: not the same architecture")
        mixed[name] = (1 - alpha) * base_state[name] + alpha * value if value.is_floating_point() else value
    return mixed


def interpolate_weights(base_dir: Path, tuned_dir: Path, alpha: float, output_dir: Path) -> Path:
    """WiSE-FT: weights (1 - alpha) * base + alpha * tuned, saved as a sentence-transformers directory. Keeps
    part of what the base knew; alpha 1 is the tuned model, 0 the base."""
    base, tuned = load_model(base_dir), load_model(tuned_dir)
    tuned.load_state_dict(mix_weights(base.state_dict(), tuned.state_dict(), alpha))
    output_dir.mkdir(parents=True, exist_ok=True)
    tuned.save(str(output_dir))
    return output_dir
