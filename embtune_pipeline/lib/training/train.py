"""Contrastive fine-tuning with the sentence-transformers trainer: MNRL with hard negatives, optional Matryoshka
and LoRA, resumable checkpoints. Runs on CPU, one GPU, or several under torchrun/accelerate.

The concerns live beside it: data.py (rows to datasets, balancing), losses.py, lora.py, interpolation.py
(WiSE-FT), callbacks.py (progress and live metrics), checkpoints.py (the newest complete checkpoint to resume
from), record.py (the record beside a saved model), distributed.py (several processes under torchrun)."""

from __future__ import annotations

import contextlib
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import pandas as pd

from embtune_pipeline.lib.memory import peak_rss_mb, reset_peak
from embtune_pipeline.lib.models import load_model
from embtune_pipeline.lib.progress import SILENT, Reporter
from embtune_pipeline.lib.training.callbacks import VALIDATION_METRIC, progress_callback
from embtune_pipeline.lib.training.checkpoints import forgetting_a_lost_best, resume_point
from embtune_pipeline.lib.training.data import (
    TEACHER_SCORES,
    TEACHER_VECTORS,
    has_real_pairs,
    is_distilled,
    training_data,
)
from embtune_pipeline.lib.training.interpolation import choose_interpolation
from embtune_pipeline.lib.training.lora import add_lora, merge_lora
from embtune_pipeline.lib.training.losses import BATCH_KL, Distillation, training_loss
from embtune_pipeline.lib.training.validation import ValidationScorer, ValidationSet

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    model_dir: Path
    steps: int
    loss_history: list[tuple[int, float]] = field(default_factory=list)
    resumed_from: Optional[str] = None
    set_aside: list[str] = field(default_factory=list)  # incomplete checkpoints moved out of the resume's way
    train_seconds: float = 0.0
    validation: dict = field(default_factory=dict)  # what the validation split chose, with its scores
    epoch_pairs: int = 0  # pairs in one epoch: fewer than the training pairs when sources are balanced
    used: dict = field(default_factory=dict)  # knobs as the training applied them (batch_size, save_steps)
    peak_rss_mb: Optional[float] = None  # the training process's peak resident memory (rank 0's, distributed)


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
    loss: str = "mnrl"  # or gist, or auto (see contrastive_name)
    mini_batch_size: int = 0
    balance_sources: bool = True
    precision: str = "fp32"  # or bf16, fp16, auto (see mixed_precision)
    processes: int = 1  # > 1: data-parallel under torchrun, batch_size split across them (the global batch)
    corpus_only_max_pairs: int = 0  # without real pairs, a step budget: training stops after this many; 0: none
    distill_loss: str = "batch_kl"  # with rows a teacher judged (see losses.Distillation)
    distill_weight: float = 1.0
    distill_temperature: float = 0.05
    guide_path: Optional[Path] = None  # GIST's guide: a local bi-encoder teacher; default the base

    @classmethod
    def knob_names(cls) -> set[str]:
        return {f for f in cls.__dataclass_fields__ if f not in ("base_model_path", "max_seq_length", "guide_path")}

    def distillation(self, pairs: pd.DataFrame) -> tuple[Optional[Distillation], Optional[str]]:
        """The distillation loss these rows take, and its label column: when a teacher judged them and its share
        is above 0. batch_kl needs the teacher's vectors (a bi-encoder's); without them it falls back to kl over
        each row's teacher scores (a cross-encoder's)."""
        if not is_distilled(pairs) or self.distill_weight == 0:
            return None, None
        loss = self.distill_loss
        if loss == BATCH_KL and TEACHER_VECTORS not in pairs.columns:
            loss = "kl"
        label = TEACHER_VECTORS if loss == BATCH_KL else TEACHER_SCORES
        return Distillation(loss, self.distill_weight, self.distill_temperature), label


def train_model(
    spec: TrainSpec,
    pairs: pd.DataFrame,
    output_dir: Path,
    checkpoint_dir: Path,
    validation: Optional[ValidationSet] = None,
    reporter: Reporter = SILENT,
    on_metrics: Optional[Callable[[int, dict], None]] = None,
) -> TrainResult:
    """Train in this process, or with spec.processes > 1 in that many under torchrun (lib.training.distributed:
    NCCL on GPUs, gloo on CPU), which gives back the same TrainResult. See train_in_this_process."""
    if spec.processes > 1:
        from embtune_pipeline.lib.training.distributed import train_distributed

        return train_distributed(spec, pairs, output_dir, checkpoint_dir, validation, reporter, on_metrics)
    return train_in_this_process(spec, pairs, output_dir, checkpoint_dir, validation, reporter, on_metrics)


def train_in_this_process(
    spec: TrainSpec,
    pairs: pd.DataFrame,
    output_dir: Path,
    checkpoint_dir: Path,
    validation: Optional[ValidationSet] = None,
    reporter: Reporter = SILENT,
    on_metrics: Optional[Callable[[int, dict], None]] = None,
) -> Optional[TrainResult]:
    """The whole training, or one rank of it under torchrun (the trainer joins the process group from the
    environment torchrun sets: RANK, WORLD_SIZE). Rank 0 alone measures the base, chooses, saves the model and
    returns the result; the other ranks return None.

    With a validation set, the model is scored every 1/evaluations_per_epoch epoch and the best checkpoint is
    kept; then each WiSE-FT ratio in interpolation_alphas is scored and the best one saved. A "source" column in
    pairs lets balance_sources apply (see training_data). `reporter` hears progress lines while it trains;
    `on_metrics(step, {name: value})` each training loss and validation score as it is measured (step 0: the
    base's validation score)."""
    import time

    import torch
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer.training_args import BatchSamplers, MultiDatasetBatchSamplers
    from transformers.trainer_callback import PrinterCallback

    memory_measured = reset_peak()  # TrainResult.peak_rss_mb: this process's peak while it trains
    world = int(os.environ.get("WORLD_SIZE", "1"))
    main_rank = int(os.environ.get("RANK", "0")) == 0
    model = load_model(spec.base_model_path, max_seq_length=spec.max_seq_length)
    scorer = ValidationScorer(validation) if validation is not None else None
    precision = this_machines_precision(spec.precision)
    if scorer is not None and main_rank:  # before LoRA layers are added: the base weights under their own names
        base_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        with scoring_outside_trainer(precision, world, torch.cuda.is_available()):
            base_score = scorer.score(model)
        if on_metrics is not None:
            on_metrics(0, {VALIDATION_METRIC: base_score})
    if spec.lora:
        add_lora(model, spec.lora_rank)
    distillation, label = spec.distillation(pairs)
    # in-batch negatives from every rank's batch: the loss sees the global batch, as in one process
    loss = training_loss(model, contrastive_name(spec.loss, has_real_pairs(pairs)), spec.mini_batch_size,
                         spec.guide_path or spec.base_model_path, spec.max_seq_length, spec.matryoshka_dims,
                         gather_across_devices=world > 1, distillation=distillation)

    # a batch is never larger than the data, and splits evenly across the ranks (see _data_parallel)
    batch_size = max(1, max(2, min(spec.batch_size, len(pairs))) // world) * world
    # balanced only when real queries are plentiful enough to validate on: then they can carry an epoch
    balance = spec.balance_sources and validation is not None and validation.source == "real"
    dataset, epoch_batches, epoch_pairs = training_data(pairs, batch_size, balance, label)
    budget = 0 if has_real_pairs(pairs) else spec.corpus_only_max_pairs
    max_steps = step_budget(budget, batch_size, epoch_batches, spec.epochs)
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    selection: dict = {}
    save_steps = spec.save_steps
    if scorer is not None:  # each validation is a checkpoint: see validation_steps
        paced_by = min(epoch_batches, max_steps) if max_steps > 0 else epoch_batches  # a budget shorter than an epoch
        save_steps = eval_steps = validation_steps(paced_by, spec.evaluations_per_epoch, spec.save_steps)
        selection = dict(eval_strategy="steps", eval_steps=eval_steps, load_best_model_at_end=True,
                         metric_for_best_model=scorer.trainer_metric, greater_is_better=True)
    args = SentenceTransformerTrainingArguments(
        output_dir=str(checkpoint_dir),
        num_train_epochs=spec.epochs,
        max_steps=max_steps,  # > 0: the step budget, before the epochs are done
        per_device_train_batch_size=batch_size,  # the global batch: with several ranks, split across them
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
        **{**_data_parallel(world, torch.cuda.is_available()), **_precision_args(precision, torch.cuda.is_available())},
    )
    watcher = progress_callback(reporter, scorer.trainer_metric if scorer else None, on_metrics)
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=dataset, loss=loss,
                                         evaluator=scorer.evaluator() if scorer else None,
                                         callbacks=[watcher, forgetting_a_lost_best()])
    trainer.remove_callback(PrinterCallback)  # raw log dicts on stdout: the watcher's lines say it readably
    resume = resume_point(checkpoint_dir, set_aside=main_rank)  # rank 0 writes the checkpoints, and tidies them
    last = resume.checkpoint
    for aside in resume.set_aside:
        if reporter.say is not None:
            reporter.say(f"incomplete checkpoint set aside as {aside}")
    if last:
        log.info("resuming from checkpoint %s", last)
    start = time.time()
    trainer.train(resume_from_checkpoint=last)
    seconds = time.time() - start
    if not main_rank:
        return None
    if spec.lora:
        merge_lora(model)
    chosen = {}
    if scorer is not None:
        known = {0.0: base_score}  # scores already measured need no second encoding of the validation corpus
        if trainer.state.best_metric is not None:
            known[1.0] = float(trainer.state.best_metric)  # the best checkpoint, loaded at the end
        with scoring_outside_trainer(precision, world, torch.cuda.is_available()):
            chosen = choose_interpolation(model, base_state, scorer, spec.interpolation_alphas, known)
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
                       resumed_from=last, set_aside=list(resume.set_aside), train_seconds=seconds,
                       validation=chosen, epoch_pairs=epoch_pairs,
                       used={"batch_size": batch_size, "save_steps": save_steps, "processes": world,
                             "max_steps": max_steps, "loss": type(loss).__name__, "precision": precision},
                       peak_rss_mb=peak_rss_mb() if memory_measured else None)


def _data_parallel(world: int, cuda: bool) -> dict:
    """The trainer's arguments for `world` ranks: NCCL on GPUs; on CPU gloo, which transformers only takes with
    use_cpu (otherwise each rank trains alone on all the data). The batch sampler draws the batches one process
    would, and each is split across the ranks (split_batches), so the gathered loss sees that same batch: drawn
    whole, its no-duplicates rule and its single source (training_data) hold across ranks. Without it each rank
    took whole batches in turn, so with balanced sources one rank got every real batch and the other every
    synthetic one, mixed in each step. The last short batch is dropped so no rank waits on a piece it lacks."""
    if world <= 1:
        return {}
    return {"ddp_backend": "nccl" if cuda else "gloo", "use_cpu": not cuda, "dataloader_drop_last": True,
            "accelerator_config": {"split_batches": True}}


def scoring_outside_trainer(precision: str, world: int, cuda: bool):
    """How rank 0 scores the base and the WiSE-FT ratios, outside the trainer: in the precision the trainer's own
    validations run in (its autocast), so every score that picks a step or a ratio is measured alike; and on a CPU
    shared by several ranks with every core, since the other ranks wait meanwhile (inside the trainer,
    sentence-transformers shares the encoding among them instead)."""
    import torch

    stack = contextlib.ExitStack()
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    if dtype is not None:
        stack.enter_context(torch.autocast("cuda" if cuda else "cpu", dtype=dtype))
    if world > 1 and not cuda:
        stack.callback(torch.set_num_threads, torch.get_num_threads())
        torch.set_num_threads(os.cpu_count() or 1)
    return stack


def _precision_args(precision: str, cuda: bool) -> dict:
    """The trainer's arguments for `precision`; transformers takes bf16 on a CPU only with use_cpu."""
    return {"bf16": precision == "bf16", "fp16": precision == "fp16",
            **({"use_cpu": True} if precision == "bf16" and not cuda else {})}


def mixed_precision(precision: str, cuda: bool) -> str:
    """The precision the trainer computes in: `precision`, or for auto bf16 where the hardware computes in it (a
    GPU that supports it, a CPU with AVX512-BF16 or AMX), fp16 on an older GPU, fp32 on a CPU without it. On
    SciFact's defaults bf16 and fp32 trainings of the same seed scored alike, and on such a CPU bf16 trained them
    in two thirds of fp32's time (benchmarks/RESULTS.md)."""
    if precision != "auto":
        return precision
    if cuda:
        import torch

        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "bf16" if cpu_has_bf16() else "fp32"


def cpu_has_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether this CPU computes in bfloat16 natively (AVX512-BF16 or AMX), from the flags Linux lists."""
    try:
        words = set(cpuinfo.read_text().split())
    except OSError:
        return False
    return bool(words & {"avx512_bf16", "amx_bf16"})


def this_machines_precision(precision: str) -> str:
    """mixed_precision on this machine: what names a training (its key), so bf16 and fp32 runs never share one."""
    import torch

    return mixed_precision(precision, torch.cuda.is_available())


def contrastive_name(loss: str, has_real_pairs: bool) -> str:
    """The contrastive loss `loss` names; auto is gist for corpus-only training (on SciFact's synthetic pairs
    alone MNRL lost 0.019 nDCG@10 to the base and GIST levelled it: benchmarks/RESULTS.md), mnrl with real pairs
    (where MNRL is what was measured to gain)."""
    if loss != "auto":
        return loss
    return "mnrl" if has_real_pairs else "gist"


def step_budget(max_pairs: int, batch_size: int, epoch_batches: int, epochs: float) -> int:
    """The trainer's max_steps: the steps that hold max_pairs pairs, when fewer than the epochs take; -1 (the
    epochs decide) otherwise, or with no budget (0)."""
    if max_pairs <= 0:
        return -1
    steps = max(1, math.ceil(max_pairs / batch_size))
    return steps if steps < math.ceil(epoch_batches * epochs) else -1


def validation_steps(epoch_batches: int, evaluations_per_epoch: int, save_steps: int) -> int:
    """Steps between validations when a validation split picks the checkpoint. Each validation is a checkpoint
    (the best can only be one saved when it was scored), so validating at least every `save_steps` keeps the
    promise that a crash loses at most `save_steps` steps."""
    return max(1, min(math.ceil(epoch_batches / evaluations_per_epoch), save_steps))
