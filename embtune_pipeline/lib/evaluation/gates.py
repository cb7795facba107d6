"""What the eval-set, tuning and promotion checks decide: passed or not, how severe, in words.

A trial (settings `gates.trial: true`, as the bundled demo sets) chooses its limits on purpose: a small corpus
and, with no real queries, a synthetic eval set. Those outcomes are by design, so the checks that flag them pass
with a note saying what was chosen and what it means, instead of rendering as failed. Nothing else changes: a
model is never promotable on a synthetic eval set (it is registered as challenger, never champion), a model
that is not better than its base still fails the promotion gate as an error and is not registered, and a real
eval set, an LLM judge, or a base or baseline already at the target is flagged as in any run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from embtune_pipeline.lib.evaluation.report import eval_kind, verdict

TRIAL_KEY = "gates.trial"


@dataclass(frozen=True)
class CheckOutcome:
    """One check's result: `note` says why a check that would flag its outcome passes (a trial's choice)."""

    passed: bool
    severity: Literal["warn", "error"]
    description: str
    note: str = ""


def _trial_note(what: str) -> str:
    return f"by design in a trial ({TRIAL_KEY} is true): {what}"


def eval_set_outcome(info: dict, trial: bool = False) -> CheckOutcome:
    """Is the eval set real queries judged by people? `info` is report.eval_set_info's."""
    if info["synthetic"]:
        if trial:
            note = _trial_note("no real queries, so held-out synthetic queries measure the model; they flatter a "
                               "tuned model, which is never promotable on them (registered as challenger)")
            return CheckOutcome(True, "warn", f"{eval_kind(info)}; {note}", note)
        return CheckOutcome(False, "warn", "synthetic eval set: held-out generated queries flatter a tuned model, "
                            "which is never promotable on them; configure eval_set with real queries")
    if "llm_judge" in info:
        return CheckOutcome(False, "warn", f"{eval_kind(info)}: a promotion on it rests on the LLM "
                            f"{info['llm_judge']}'s judgments; check them against people's (`embtune label`, then "
                            "the agreement)")
    return CheckOutcome(True, "warn", eval_kind(info))


def tuning_outcome(documents: int, synthetic: bool, base_ndcg: float, baselines: dict[str, float],
                   min_documents: int, baseline_target: float, trial: bool = False) -> CheckOutcome:
    """Is fine-tuning worth it here? Each reason against it with its numbers; a trial's small corpus and
    synthetic eval set are notes, not reasons."""
    chosen, reasons = [], []
    if documents < min_documents:
        (chosen if trial else reasons).append(f"corpus has {documents} documents, under {min_documents}: a tuned "
                                              "model may not generalize beyond it")
    if synthetic:
        (chosen if trial else reasons).append("no real eval set: a gain on synthetic queries proves little")
    if base_ndcg >= baseline_target:
        reasons.append(f"base nDCG@10 {base_ndcg:.4f} already meets the target {baseline_target}")
    reasons += [f"baseline {name} already reaches nDCG@10 {score:.4f}, at or above the target {baseline_target}: "
                "ship it rather than tune" for name, score in baselines.items() if score >= baseline_target]
    note = _trial_note("; ".join(chosen)) if chosen else ""
    if reasons:
        return CheckOutcome(False, "warn", "; ".join(reasons + ([note] if note else [])), note)
    if note:
        return CheckOutcome(True, "warn", note, note)
    return CheckOutcome(True, "warn", "worth it: a large enough corpus, real queries, a baseline under target")


def promotion_outcome(report: dict, trial: bool = False) -> CheckOutcome:
    """The promotion gate: passes for a promotable model; better on synthetic queries only is a warning (a
    challenger), or a pass with a note in a trial that chose its synthetic eval set; not better is an error,
    which blocks the registration, in a trial too."""
    said = verdict(report)
    if report["promotable"]:
        return CheckOutcome(True, "warn", said)
    if not report["comparison"]["better"]:
        return CheckOutcome(False, "error", said)
    if trial and report["eval_set"]["synthetic"]:
        note = _trial_note("the eval set is synthetic, so the model cannot be champion; it is registered as "
                           "challenger. Give real labelled queries in `eval_set` for a promotion")
        return CheckOutcome(True, "warn", f"{said}; {note}", note)
    return CheckOutcome(False, "warn", said)
