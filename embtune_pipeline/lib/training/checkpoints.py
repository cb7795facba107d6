"""Which checkpoint a training resumes from: the newest complete one. The trainer (transformers 5) writes each
checkpoint straight into its checkpoint-N folder, file by file with trainer_state.json last, and no longer stages
it in a temporary folder; so a kill or a full disk mid-save leaves a folder a resume fails on, and transformers'
get_last_checkpoint takes the highest number whatever it holds. An incomplete folder is set aside under a name the
trainer neither resumes from nor rotates away (incomplete-checkpoint-N-<time>), never deleted."""

from __future__ import annotations

import json
import logging
import re
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

log = logging.getLogger(__name__)

CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")  # the trainer's folder names (transformers' PREFIX_CHECKPOINT_DIR)
SET_ASIDE = "incomplete-"  # prefix of a folder set aside: outside the trainer's checkpoint-* glob
# what a resume reads besides the model: its step and best checkpoint, and the optimizer and schedule to go on with
RESUME_FILES = ("trainer_state.json", "optimizer.pt", "scheduler.pt", "modules.json")
TORCH_FILES = (".pt", ".pth", ".bin")  # torch.save's zip archives: cut short, they lose their closing directory


@dataclass(frozen=True)
class ResumePoint:
    checkpoint: Optional[str]  # the folder the trainer resumes from; None: from the start
    set_aside: tuple[str, ...] = ()  # the incomplete folders moved out of its way, as they are now named


def resume_point(checkpoint_dir: Path, set_aside: bool = True) -> ResumePoint:
    """The newest complete checkpoint under checkpoint_dir, and (with set_aside) every incomplete one moved aside
    with a warning naming it. Under torchrun rank 0 alone sets aside; the other ranks only choose, and choose
    alike, since a complete folder is never moved."""
    found = sorted(((int(m.group(1)), p) for p in Path(checkpoint_dir).iterdir()
                    if (m := CHECKPOINT.match(p.name)) and p.is_dir()), reverse=True)
    chosen, moved = None, []
    for _, folder in found:
        problem = incomplete(folder)
        if problem is None:
            chosen = chosen or str(folder)
        elif set_aside:
            aside = folder.with_name(f"{SET_ASIDE}{folder.name}-{time.strftime('%Y%m%d-%H%M%S')}")
            try:
                folder.rename(aside)
            except OSError as e:  # another process moved it meanwhile: it is out of the way all the same
                log.warning("incomplete checkpoint %s (%s) not set aside: %s", folder, problem, e)
                continue
            log.warning("checkpoint %s is incomplete (%s): set aside as %s; resuming from the newest complete one",
                        folder, problem, aside)
            moved.append(str(aside))
    return ResumePoint(chosen, tuple(moved))


def incomplete(folder: Path) -> Optional[str]:
    """What makes a checkpoint unfit to resume from (a file it lacks, or one cut short), or None when it is whole:
    the files a resume reads are there, every JSON file parses, every weights file holds the tensors its header
    lists, and every torch file its closing directory."""
    try:
        missing = [name for name in RESUME_FILES if not (folder / name).is_file()]
        if not any(folder.rglob("*.safetensors")) and not any(folder.rglob("pytorch_model*.bin")):
            missing.append("model.safetensors")
        if missing:
            return f"no {', '.join(missing)}"
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            if not _whole(path):
                return f"{path.relative_to(folder)} cut short ({path.stat().st_size:,} bytes)"
    except OSError as e:  # vanished or unreadable while being read: not a checkpoint to resume from
        return f"unreadable: {e}"
    return None


def _whole(path: Path) -> bool:
    """Whether a file the trainer wrote is all there, read as its format allows without loading it."""
    if path.suffix == ".json":
        try:
            json.loads(path.read_bytes())
        except ValueError:
            return False
    elif path.suffix == ".safetensors":
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(path), "np"):  # checks the header against the file's length
                pass
        except (SafetensorError, OSError):
            return False
    elif path.suffix in TORCH_FILES:
        return zipfile.is_zipfile(path)
    return True


def forgetting_a_lost_best():
    """A trainer callback: when the best checkpoint a resumed state names is gone (set aside as incomplete,
    transformers then drops its name), its score is forgotten too. Otherwise the stale score would bar every later
    checkpoint from being the best, and the selection would claim it for the last weights."""
    from transformers import TrainerCallback

    class ForgetLostBest(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            if state.best_model_checkpoint is None and state.best_metric is not None:
                log.warning("the best checkpoint (step %s, score %.4f) is gone; the best is chosen anew",
                            state.best_global_step, state.best_metric)
                state.best_metric = state.best_global_step = None

    return ForgetLostBest()
