"""The asset checks, called directly on small inputs: what each says, and how severe."""

import pandas as pd
import pytest

from embtune_pipeline.checks import (
    ERROR,
    WARN,
    champion_holds_lead,
    eval_set_is_real,
    indexes_use_champion,
    promotion_gate,
    tuning_is_worth_it,
)
from embtune_pipeline.resources.settings import SettingsResource


def _report(ci_low: float, synthetic: bool) -> dict:
    better = ci_low > 0
    return {"comparison": {"delta": ci_low + 0.02, "ci_low": ci_low, "ci_high": ci_low + 0.04, "queries": 40,
                           "better": better},
            "eval_set": {"synthetic": synthetic}, "promotable": better and not synthetic}


@pytest.fixture
def settings_of(write_settings, tmp_path):
    def make(**overrides) -> SettingsResource:
        return SettingsResource(config_path=str(write_settings(corpus={"path": str(tmp_path), "format": "jsonl"},
                                                               **overrides)))

    return make


@pytest.mark.parametrize("ci_low,synthetic,trial,passed,severity,says", [
    (0.01, False, False, True, WARN, "promotable: beats its base"),
    (0.01, True, False, False, WARN, "registered as challenger"),  # a warning: registered_model still runs
    (0.01, True, True, True, WARN, "by design in a trial"),  # the demo chose its synthetic eval set: a note
    (-0.01, False, False, False, ERROR, "not registered"),  # an error: the blocking check stops registered_model
    (-0.01, True, True, False, ERROR, "not registered"),  # a trial's worse model still fails, and blocks
])
def test_the_promotion_gate_passes_only_a_promotable_model(settings_of, ci_low, synthetic, trial, passed, severity,
                                                           says):
    result = promotion_gate(settings_of(gates={"trial": trial}), _report(ci_low, synthetic))
    assert result.passed is passed and result.severity == severity and says in result.description
    assert result.metadata["promotable"].value is (ci_low > 0 and not synthetic)
    assert ("note" in result.metadata) is (trial and passed)


def test_a_synthetic_eval_set_is_flagged_with_its_reason(settings_of):
    settings = settings_of()
    evals = pd.DataFrame({"query_id": ["s0", "s1"], "synthetic": True, "eval_source": "held-out synthetic queries"})
    result = eval_set_is_real(settings, evals)
    assert result.passed is False and "synthetic eval set" in result.description
    chosen = eval_set_is_real(settings_of(gates={"trial": True}), evals)  # the demo's choice: passed, with a note
    assert chosen.passed is True and chosen.metadata["note"].value.startswith("by design in a trial")
    judged = pd.DataFrame({"query_id": ["q0", "q1"], "synthetic": False, "eval_source": "log.jsonl",
                           "judge": ["llm:openai/gpt-4o-mini", "human:ann"], "agreement_kappa": 0.61,
                           "agreement_pairs": 20})
    result = eval_set_is_real(settings, judged)  # promotable, with a warning that names the judge
    assert result.passed is False and result.severity == WARN
    assert result.description.startswith("real queries judged by the LLM openai/gpt-4o-mini (1 of them; the rest by "
                                          "people), 2 queries from log.jsonl; people vs the LLM: Cohen's kappa 0.610 "
                                          "on 20 pairs both judged: a promotion on it rests on the LLM")
    assert eval_set_is_real(settings, judged.assign(judge="human")).passed is True


def test_tuning_is_worth_it_gives_each_reason_with_its_numbers(write_settings, tmp_path):
    settings = SettingsResource(config_path=str(write_settings(corpus={"path": str(tmp_path), "format": "jsonl"},
                                                               gates={"min_documents": 3, "baseline_target": 0.8})))
    corpus = pd.DataFrame({"doc_id": ["a", "b"]})
    real = pd.DataFrame({"synthetic": [False]})
    shipped = pd.DataFrame({"baseline": ["api-a", "api-a", "api-b", "api-b"], "ndcg@10": [0.9, 0.8, 0.5, 0.6]})
    result = tuning_is_worth_it(settings, pd.DataFrame({"ndcg@10": [0.9, 0.8]}), corpus, real, shipped)
    assert result.passed is False
    assert result.description == ("corpus has 2 documents, under 3: a tuned model may not generalize beyond it; "
                                  "base nDCG@10 0.8500 already meets the target 0.8; baseline api-a already reaches "
                                  "nDCG@10 0.8500, at or above the target 0.8: ship it rather than tune")
    assert result.metadata["baseline api-b ndcg@10"].value == 0.55
    none = pd.DataFrame(columns=["query_id", "baseline", "ndcg@10"])
    fine = tuning_is_worth_it(settings, pd.DataFrame({"ndcg@10": [0.5]}), pd.DataFrame({"doc_id": list("abc")}), real,
                              none)
    assert fine.passed is True
    assert tuning_is_worth_it(settings, pd.DataFrame({"ndcg@10": [0.5]}), pd.DataFrame({"doc_id": list("abc")}),
                              real, shipped[shipped["baseline"] == "api-a"]).passed is False  # only the API meets it
    trial = SettingsResource(config_path=str(write_settings(corpus={"path": str(tmp_path), "format": "jsonl"},
                                                            gates={"min_documents": 3, "trial": True})))
    small = tuning_is_worth_it(trial, pd.DataFrame({"ndcg@10": [0.5]}), corpus, pd.DataFrame({"synthetic": [True]}),
                               none)  # the demo: small and synthetic on purpose
    assert small.passed is True and small.metadata["note"].value == small.description
    assert "corpus has 2 documents, under 3" in small.description and "no real eval set" in small.description


def test_the_champion_check_and_the_index_check_say_why(write_settings, tmp_path):
    settings = SettingsResource(config_path=str(write_settings(corpus={"path": str(tmp_path), "format": "jsonl"},
                                                               monitoring={"min_lead": 0.02, "max_drop": 0.05})))
    history = pd.DataFrame({"champion_version": ["3", "3"], "champion_ndcg@10": [0.80, 0.70],
                            "base_ndcg@10": [0.70, 0.69], "lead": [0.10, 0.01], "lead_ci_low": [0.05, -0.01],
                            "lead_ci_high": [0.15, 0.03]})
    result = champion_holds_lead(settings, history)
    assert result.passed is False and result.severity == ERROR
    assert "nDCG@10 fell 0.1000" in result.description and "below min_lead 0.02" in result.description
    bindings = pd.DataFrame({"index": ["docs", "faq"], "version": ["1", "2"], "stale": [True, False],
                             "champion_version": ["2", "2"]})
    stale = indexes_use_champion(bindings)
    assert stale.passed is False and stale.description.endswith(
        "docs (on v1): roll to v2 with `embtune index build docs --version 2`")
    auto = indexes_use_champion(bindings.assign(rollout=["auto", "manual"]))
    assert auto.severity == WARN and auto.description.endswith(
        "docs (on v1): rolling out v2 (vector_index_rollout_sensor builds it)")
