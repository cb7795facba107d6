"""Graded relevance judgments (0-3, as lib.evaluation.judgments.GRADES) of pooled candidates by an LLM through
litellm: the prompt is a template the team can edit; every answer is cached; the cost is estimated before the
first call and refused above the budget."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Optional

import pandas as pd

from embtune_pipeline.lib.costs import check_budget, count_tokens, estimate_usd
from embtune_pipeline.lib.data.chunking import embedding_text
from embtune_pipeline.lib.evaluation.judgments import GRADES, llm_judge
from embtune_pipeline.lib.llm_calls import CallStats, CompleteFn, ask_all
from embtune_pipeline.lib.progress import SILENT, Reporter
from embtune_pipeline.lib.queries.cache import AnswerCache, cache_key
from embtune_pipeline.lib.queries.local_llm import litellm_model_name, local_choice_params
from embtune_pipeline.lib.secrets import safe_params

DEFAULT_JUDGE_PROMPT = Path(__file__).parent / "prompts" / "judge.txt"
ANSWER_TOKENS = 4  # one digit is asked for; a little room for a stray space or full stop
_GRADE = re.compile(r"(?<![\d.])([0-3])(?!\d|\.\d)")


def render_judge_prompt(template: str, query: str, title: str, text: str, max_passage_chars: int) -> str:
    """Fill $query and $passage (title and text, cut at max_passage_chars)."""
    return Template(template).safe_substitute(query=query, passage=embedding_text(title, text)[:max_passage_chars])


def parse_grade(answer: str) -> Optional[int]:
    """The grade in a judge's answer: the first standalone digit 0-3 ("2", "Grade: 3.", "**1**"); None when
    there is none (such an answer is not cached, and the candidate stays unjudged)."""
    m = _GRADE.search(answer or "")
    return int(m.group(1)) if m else None


@dataclass
class JudgingStats(CallStats):
    candidates: int = 0
    unparseable: int = 0
    estimated_usd: float = 0.0
    prompt_tokens: int = 0


def judge_candidates(pool: pd.DataFrame, model: str, cache: AnswerCache, template: Optional[str] = None,
                     params: Optional[dict] = None, budget_usd: float = 1.0, usd_per_million_tokens=None,
                     max_passage_chars: int = 2000, complete: Optional[CompleteFn] = None, concurrency: int = 4,
                     request_timeout: float = 60.0, max_retry_seconds: float = 300.0, max_failures: float = 0.1,
                     reporter: Reporter = SILENT, budget_setting: str = "eval_set_builder.budget_usd"
                     ) -> tuple[pd.DataFrame, JudgingStats]:
    """A grade per pooled candidate (query_id, doc_id, judge, grade), judge = "llm:<model>". Answers not cached
    yet are priced first (their prompts' tokens, and ANSWER_TOKENS out each) and refused above `budget_usd`."""
    template = template or DEFAULT_JUDGE_PROMPT.read_text()
    params = {"max_tokens": ANSWER_TOKENS, "temperature": 0, **local_choice_params(model, [str(g) for g in GRADES]),
              **(params or {})}
    answer_params = safe_params(params)
    jobs = {}
    for c in pool.itertuples(index=False):
        prompt = render_judge_prompt(template, c.query, c.title, c.text, max_passage_chars)
        key = cache_key("judge", model, prompt, answer_params)
        jobs.setdefault(key, (prompt, []))[1].append((c.query_id, c.doc_id))
    stats = JudgingStats(candidates=len(pool))
    unpaid = [prompt for key, (prompt, _) in jobs.items() if cache.get(key) is None]
    stats.prompt_tokens = count_tokens(litellm_model_name(model), unpaid) if unpaid else 0
    usd = estimate_usd(litellm_model_name(model), stats.prompt_tokens, ANSWER_TOKENS * len(unpaid),
                       usd_per_million_tokens) if unpaid else 0.0
    check_budget(f"judging {len(unpaid)} candidates with {model!r} ({stats.prompt_tokens} prompt tokens)", model, usd,
                 budget_usd, budget_setting)
    stats.estimated_usd = usd
    answers, _ = ask_all({key: prompt for key, (prompt, _) in jobs.items()}, model, litellm_model_name(model), cache,
                         params, complete, concurrency, request_timeout, max_retry_seconds, max_failures,
                         keep=lambda _key, text: parse_grade(text) is not None, reporter=reporter, stats=stats)
    rows = []
    for key, (_, targets) in jobs.items():
        grade = parse_grade(answers.get(key, ""))
        if grade is None:
            stats.unparseable += key in answers
            continue
        rows += [(q, d, llm_judge(model), grade) for q, d in targets]
    return pd.DataFrame(rows, columns=["query_id", "doc_id", "judge", "grade"]), stats
