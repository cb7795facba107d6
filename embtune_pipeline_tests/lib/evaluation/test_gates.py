import pytest

from embtune_pipeline.lib.evaluation.gates import eval_set_outcome, promotion_outcome, tuning_outcome

SYNTHETIC = {"source": "held-out synthetic queries", "synthetic": True, "queries": 40}
REAL = {"source": "labelled.csv", "synthetic": False, "queries": 40}


def _report(ci_low: float, synthetic: bool) -> dict:
    better = ci_low > 0
    return {"comparison": {"delta": ci_low + 0.02, "ci_low": ci_low, "ci_high": ci_low + 0.04, "queries": 40,
                           "better": better},
            "eval_set": {"synthetic": synthetic}, "promotable": better and not synthetic}


def test_a_synthetic_eval_set_fails_unless_a_trial_chose_it_and_then_says_so():
    flagged = eval_set_outcome(SYNTHETIC)
    assert (flagged.passed, flagged.severity, flagged.note) == (False, "warn", "")
    chosen = eval_set_outcome(SYNTHETIC, trial=True)
    assert chosen.passed is True and chosen.note.startswith("by design in a trial (gates.trial is true)")
    assert "never promotable" in chosen.note and chosen.note in chosen.description
    llm = eval_set_outcome({**REAL, "llm_judge": "openai/judge", "llm_judged_queries": 40}, trial=True)
    assert llm.passed is False and not llm.note  # a trial does not excuse what it did not choose
    assert eval_set_outcome(REAL, trial=True) == eval_set_outcome(REAL)


def test_a_trial_notes_its_small_corpus_and_synthetic_eval_set_but_not_a_base_at_target():
    args = dict(documents=791, synthetic=True, base_ndcg=0.71, baselines={}, min_documents=10000,
                baseline_target=0.9)
    flagged = tuning_outcome(**args)
    assert flagged.passed is False and flagged.description == (
        "corpus has 791 documents, under 10000: a tuned model may not generalize beyond it; no real eval set: a gain "
        "on synthetic queries proves little")
    chosen = tuning_outcome(**args, trial=True)
    assert chosen.passed is True and chosen.description == chosen.note == (
        "by design in a trial (gates.trial is true): corpus has 791 documents, under 10000: a tuned model may not "
        "generalize beyond it; no real eval set: a gain on synthetic queries proves little")
    at_target = tuning_outcome(**{**args, "baselines": {"api": 0.95}}, trial=True)
    assert at_target.passed is False and "baseline api already reaches nDCG@10 0.9500" in at_target.description
    assert at_target.description.endswith(chosen.note)
    fine = tuning_outcome(**{**args, "documents": 20000, "synthetic": False}, trial=True)
    assert fine.passed is True and not fine.note and fine.description.startswith("worth it")


@pytest.mark.parametrize("ci_low, synthetic, trial, passed, severity, noted", [
    (0.01, False, False, True, "warn", False),  # promotable
    (0.01, True, False, False, "warn", False),  # better on synthetic only: a challenger, flagged
    (0.01, True, True, True, "warn", True),  # ... which a trial chose: passes, saying so
    (-0.01, True, True, False, "error", False),  # not better: an error that blocks, in a trial too
    (-0.01, False, True, False, "error", False),  # a real eval set and not better: a real failure
    (-0.01, False, False, False, "error", False),
])
def test_the_promotion_gate_passes_a_trials_challenger_with_a_note_and_never_a_worse_model(
        ci_low, synthetic, trial, passed, severity, noted):
    outcome = promotion_outcome(_report(ci_low, synthetic), trial)
    assert (outcome.passed, outcome.severity, bool(outcome.note)) == (passed, severity, noted)
    assert outcome.description.startswith("promotable" if passed and not noted else "not promotable")
    if noted:
        assert "registered as challenger" in outcome.note and outcome.note in outcome.description
