"""WiSE-FT: weights between the base and the tuned model, which keep part of what the base knew."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from embtune_pipeline.lib.models import load_model
from embtune_pipeline.lib.training.validation import ValidationScorer


def choose_interpolation(model, base_state: dict, scorer: ValidationScorer, alphas, known: dict) -> dict:
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


@dataclass(frozen=True)
class SavedModel:
    """What the validation split kept: the checkpoint's step, the weight mix and its validation nDCG@10."""
    step: int
    alpha: float
    score: float

    @property
    def label(self) -> str:
        mix = "" if self.alpha == 1.0 else f", mixed with the base: {self.alpha:g} tuned"
        return f"saved model (step {self.step}{mix})"


def saved_validation(chosen: dict) -> Optional[SavedModel]:
    """The saved model among a training's validation scores (train_model's `validation`); None without a split."""
    if not chosen or "alpha" not in chosen:
        return None
    scores = dict(chosen["scores"])
    step = chosen["best_step"] if chosen.get("best_step") is not None else max(scores, default=0)
    return SavedModel(int(step), float(chosen["alpha"]), float(chosen["alpha_scores"][str(chosen["alpha"])]))


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
