"""Contrastive fine-tuning with the sentence-transformers trainer: MNRL with hard negatives, optional Matryoshka
and LoRA, resumable checkpoints. Runs on CPU, one GPU, or several under torchrun/accelerate."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import pandas as pd

from embtune_pipeline.lib.models import load_model

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    model_dir: Path
    steps: int
    loss_history: list[tuple[int, float]] = field(default_factory=list)
    resumed_from: Optional[str] = None
    train_seconds: float = 0.0


def training_key(pairs: pd.DataFrame, knobs: dict, base_fingerprint: str, max_seq_length: int) -> str:
    """Names a training run by its inputs: the same inputs resume the same checkpoints."""
    h = hashlib.sha256()
    h.update(pd.util.hash_pandas_object(pairs, index=False).values.tobytes())
    h.update(json.dumps([knobs, base_fingerprint, max_seq_length], sort_keys=True).encode())
    return h.hexdigest()[:12]


def to_dataset(pairs: pd.DataFrame):
    """anchor, positive, negative_1..n columns, as the trainer's losses expect."""
    from datasets import Dataset

    cols = ["anchor", "positive"] + sorted(c for c in pairs.columns if c.startswith("negative_"))
    return Dataset.from_pandas(pairs[cols].reset_index(drop=True), preserve_index=False)


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


def train_model(
    base_model_path: Path,
    pairs: pd.DataFrame,
    output_dir: Path,
    checkpoint_dir: Path,
    max_seq_length: int,
    epochs: float,
    batch_size: int,
    learning_rate: float,
    warmup_ratio: float,
    matryoshka_dims: list[int],
    lora: bool,
    lora_rank: int,
    save_steps: int,
    seed: int,
) -> TrainResult:
    import time

    import torch

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer import losses
    from sentence_transformers.sentence_transformer.training_args import BatchSamplers
    from transformers.trainer_utils import get_last_checkpoint

    model = load_model(base_model_path, max_seq_length=max_seq_length)
    if lora:
        add_lora(model, lora_rank)
    loss = losses.MultipleNegativesRankingLoss(model)
    if matryoshka_dims:
        full = model.get_sentence_embedding_dimension()
        dims = sorted({d for d in matryoshka_dims if 0 < d <= full} | {full}, reverse=True)
        loss = losses.MatryoshkaLoss(model, loss, matryoshka_dims=dims)

    dataset = to_dataset(pairs)
    batch_size = max(2, min(batch_size, len(dataset)))
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    args = SentenceTransformerTrainingArguments(
        output_dir=str(checkpoint_dir),
        num_train_epochs=epochs,
        per_device_train_batch_size=batch_size,
        learning_rate=learning_rate,
        warmup_ratio=warmup_ratio,
        batch_sampler=BatchSamplers.NO_DUPLICATES,  # a duplicate in the batch would be a false in-batch negative
        save_strategy="steps",
        save_steps=save_steps,
        save_total_limit=2,
        logging_steps=max(1, min(10, len(dataset) // batch_size // 20 or 1)),
        report_to="none",
        seed=seed,
        disable_tqdm=True,
        dataloader_pin_memory=torch.cuda.is_available(),
    )
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=dataset, loss=loss)
    last = get_last_checkpoint(str(checkpoint_dir))
    if last:
        log.info("resuming from checkpoint %s", last)
    start = time.time()
    trainer.train(resume_from_checkpoint=last)
    seconds = time.time() - start
    if lora:
        merge_lora(model)
    output_dir.mkdir(parents=True, exist_ok=True)
    model.save(str(output_dir))
    history = [(int(e["step"]), float(e["loss"])) for e in trainer.state.log_history if "loss" in e]
    return TrainResult(model_dir=output_dir, steps=int(trainer.state.global_step), loss_history=history,
                       resumed_from=last, train_seconds=seconds)


def interpolate_weights(base_dir: Path, tuned_dir: Path, alpha: float, output_dir: Path) -> Path:
    """WiSE-FT: weights (1 - alpha) * base + alpha * tuned, saved as a sentence-transformers directory. Keeps
    part of what the base knew; alpha 1 is the tuned model, 0 the base."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], not {alpha}")
    base, tuned = load_model(base_dir), load_model(tuned_dir)
    base_state = base.state_dict()
    mixed = {}
    for name, value in tuned.state_dict().items():
        if name not in base_state or base_state[name].shape != value.shape:
            raise ValueError(f"{base_dir} and {tuned_dir} differ in {name}: not the same architecture")
        mixed[name] = (1 - alpha) * base_state[name] + alpha * value if value.is_floating_point() else value
    tuned.load_state_dict(mixed)
    output_dir.mkdir(parents=True, exist_ok=True)
    tuned.save(str(output_dir))
    return output_dir
