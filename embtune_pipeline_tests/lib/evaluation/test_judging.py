import pandas as pd
import pytest

from embtune_pipeline.lib.costs import BudgetExceeded
from embtune_pipeline.lib.evaluation.judging import judge_candidates, parse_grade, render_judge_prompt
from embtune_pipeline.lib.queries.cache import AnswerCache


@pytest.mark.parametrize("answer, grade", [("2", 2), ("Grade: 3.", 3), ("**1**", 1), (" 0\n", 0),
                                           ("I would say 2 out of 3", 2), ("5", None), ("2.5", None), ("", None),
                                           ("relevant", None)])
def test_parse_grade(answer, grade):
    assert parse_grade(answer) == grade


def test_the_prompt_is_a_template_with_the_query_and_the_passage_cut_to_size():
    prompt = render_judge_prompt("Q=$query P=$passage", "reset jaguar", "Jaguar", "x" * 500, 100)
    assert prompt.startswith("Q=reset jaguar P=Jaguar\n") and len(prompt) == len("Q=reset jaguar P=") + 100


POOL = pd.DataFrame({"query_id": ["q1", "q1", "q2"], "query": ["reset jaguar", "reset jaguar", "battery"],
                     "doc_id": ["reset", "battery", "battery"], "title": ["", "", ""],
                     "text": ["how to reset the jaguar", "battery hours", "battery hours"]})


class Judge:
    """A judge LLM stand-in for the call function (the litellm path is tested against a real server)."""

    def __init__(self, answer=None):
        self.calls, self.answer = 0, answer

    def __call__(self, model, messages, **params):
        self.calls += 1
        prompt = messages[0]["content"]
        text = self.answer if self.answer is not None else ("3" if "reset" in prompt.split("Passage:")[1]
                                                            or "Query: battery" in prompt else "0")
        return {"choices": [{"message": {"content": text}}]}


def test_each_candidate_gets_a_grade_with_the_judge_named_and_a_rerun_asks_nothing(tmp_path):
    cache, judge = AnswerCache(tmp_path / "llm.sqlite"), Judge()
    grades, stats = judge_candidates(POOL, "openai/judge", cache, complete=judge, usd_per_million_tokens=0)
    assert grades.to_dict("records") == [
        {"query_id": "q1", "doc_id": "reset", "judge": "llm:openai/judge", "grade": 3},
        {"query_id": "q1", "doc_id": "battery", "judge": "llm:openai/judge", "grade": 0},
        {"query_id": "q2", "doc_id": "battery", "judge": "llm:openai/judge", "grade": 3}]
    assert judge.calls == 3 and stats.llm_calls == 3
    again, stats = judge_candidates(POOL, "openai/judge", cache, complete=judge, usd_per_million_tokens=0)
    assert judge.calls == 3 and stats.cache_hits == 3 and again.equals(grades)


def test_an_answer_without_a_grade_leaves_the_candidate_unjudged_and_is_asked_again(tmp_path):
    cache = AnswerCache(tmp_path / "llm.sqlite")
    grades, stats = judge_candidates(POOL, "openai/judge", cache, complete=Judge("maybe"), usd_per_million_tokens=0)
    assert grades.empty and stats.unparseable == 3 and len(cache) == 0


def test_judging_above_the_budget_is_refused_before_any_call(tmp_path):
    cache, judge = AnswerCache(tmp_path / "llm.sqlite"), Judge()
    with pytest.raises(BudgetExceeded, match=r"judging 3 candidates with 'openai/gpt-4o' \(\d+ prompt tokens\) would "
                                             r"cost about \$0\.0\d+, above eval_set_builder.budget_usd"):
        judge_candidates(POOL, "openai/gpt-4o", cache, complete=judge, budget_usd=1e-6)
    assert judge.calls == 0
    judge_candidates(POOL, "openai/gpt-4o", cache, complete=judge, budget_usd=0.01)
    assert judge.calls == 3
