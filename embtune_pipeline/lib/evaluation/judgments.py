"""Relevance judgments of pooled candidates, by people or by an LLM, each with its provenance: kept in one
SQLite file per eval set as they are made (a labeller or a judge that stops resumes where it stopped), and
exported as an eval-set file that settings `eval_set` reads."""

from __future__ import annotations

import json
import numbers
import threading
from pathlib import Path

import pandas as pd

from embtune_pipeline.lib.data.ingest import HUMAN, JUDGE_FIELD
from embtune_pipeline.lib.storage import open_sqlite, write_atomically

GRADES = {0: "not relevant", 1: "somewhat relevant", 2: "relevant", 3: "highly relevant"}  # >= 1 counts relevant
LLM_PREFIX = "llm:"
POOL_COLUMNS = ["query_id", "query", "doc_id", "title", "text", "pool_rank", "sources"]


def is_grade(value) -> bool:
    """An integer on the scale (2.9, True, "2" and 4 are not: a float or a bool is never silently cut)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and int(value) in GRADES


def llm_judge(model: str) -> str:
    """The provenance of an LLM's judgment."""
    return f"{LLM_PREFIX}{model}"


def is_llm(judge: str) -> bool:
    return str(judge).startswith(LLM_PREFIX)


def llm_model(judge: str) -> str:
    """The model of an LLM's judgment (llm_judge's inverse)."""
    return str(judge).removeprefix(LLM_PREFIX)


def is_human(judge: str) -> bool:
    return str(judge) == HUMAN or str(judge).startswith(f"{HUMAN}:")


class JudgmentStore:
    """The pool (each query's candidates) and every judgment of it, in one SQLite file."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._conn = open_sqlite(self.path, (
            "CREATE TABLE IF NOT EXISTS pool (query_id TEXT, query TEXT, doc_id TEXT, title TEXT, text TEXT,"
            " pool_rank INTEGER, sources TEXT, PRIMARY KEY (query_id, doc_id));"
            "CREATE TABLE IF NOT EXISTS judgments (query_id TEXT, doc_id TEXT, judge TEXT, grade INTEGER,"
            " judged_at TEXT DEFAULT CURRENT_TIMESTAMP, PRIMARY KEY (query_id, doc_id, judge));"))

    def add_pool(self, pool: pd.DataFrame) -> int:
        """Add candidates (POOL_COLUMNS); ones already pooled are kept as they were. Returns how many were new."""
        rows = [tuple(r) for r in pool[POOL_COLUMNS].itertuples(index=False)]
        with self._lock:
            before = self._conn.total_changes
            self._conn.executemany("INSERT OR IGNORE INTO pool VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
            self._conn.commit()
            return self._conn.total_changes - before

    def pool(self) -> pd.DataFrame:
        with self._lock:
            return pd.read_sql_query("SELECT * FROM pool ORDER BY rowid", self._conn)

    def record(self, query_id: str, doc_id: str, judge: str, grade: int) -> None:
        """Save one judgment now (a later one by the same judge replaces it)."""
        if not is_grade(grade):
            raise ValueError(f"grade {grade!r} is not one of {sorted(GRADES)} ({GRADES})")
        with self._lock:
            pooled = self._conn.execute("SELECT 1 FROM pool WHERE query_id = ? AND doc_id = ?",
                                        (query_id, doc_id)).fetchone()
            if not pooled:
                raise KeyError(f"({query_id!r}, {doc_id!r}) is not a pooled candidate in {self.path}")
            self._conn.execute("INSERT OR REPLACE INTO judgments (query_id, doc_id, judge, grade) VALUES (?, ?, ?, ?)",
                               (query_id, doc_id, judge, int(grade)))
            self._conn.commit()

    def record_many(self, rows: list[tuple[str, str, str, int]]) -> None:
        with self._lock:
            self._conn.executemany("INSERT OR REPLACE INTO judgments (query_id, doc_id, judge, grade) "
                                   "VALUES (?, ?, ?, ?)", rows)
            self._conn.commit()

    def judgments(self) -> pd.DataFrame:
        with self._lock:
            return pd.read_sql_query("SELECT * FROM judgments ORDER BY rowid", self._conn)

    def queries(self, judge: str) -> list[dict]:
        """Each pooled query in pool order, with how many of its candidates `judge` has judged."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT p.query_id, p.query, COUNT(*), COUNT(j.grade), MIN(p.rowid) AS first FROM pool p "
                "LEFT JOIN judgments j ON j.query_id = p.query_id AND j.doc_id = p.doc_id AND j.judge = ? "
                "GROUP BY p.query_id ORDER BY first", (judge,)).fetchall()
        return [{"query_id": q, "query": text, "candidates": n, "judged": done} for q, text, n, done, _ in rows]

    def candidates(self, query_id: str, judge: str) -> list[dict]:
        """One query's candidates in pool order, each with `judge`'s grade (None while unjudged)."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT p.doc_id, p.title, p.text, p.sources, j.grade FROM pool p LEFT JOIN judgments j "
                "ON j.query_id = p.query_id AND j.doc_id = p.doc_id AND j.judge = ? WHERE p.query_id = ? "
                "ORDER BY p.pool_rank, p.rowid", (judge, query_id)).fetchall()
        return [{"doc_id": d, "title": t, "text": x, "sources": s, "grade": g} for d, t, x, s, g in rows]

    def export(self, path: Path) -> dict:
        """Every judgment as an eval-set file (JSON lines: query, doc_id, score, judge, judged_at), replaced
        whole; settings `eval_set: {path: ..., score_column: score}` reads it. Returns counts."""
        pool, judged = self.pool(), self.judgments()
        rows = judged.merge(pool[["query_id", "query", "doc_id"]], on=["query_id", "doc_id"])
        lines = [json.dumps({"query_id": r.query_id, "query": r.query, "doc_id": r.doc_id, "score": int(r.grade),
                             JUDGE_FIELD: r.judge, "judged_at": r.judged_at}, ensure_ascii=False)
                 for r in rows.itertuples(index=False)]
        write_atomically(Path(path), lambda tmp: tmp.write_text("".join(line + "\n" for line in lines)))
        return {"judgments": len(rows), "queries": int(rows["query_id"].nunique()),
                "judges": sorted(rows["judge"].unique().tolist())}

    def close(self) -> None:
        self._conn.close()


def choose_judgments(rows: pd.DataFrame) -> pd.DataFrame:
    """One judge per query: people where any person judged it, else the LLM (the first such judge by name):
    the rows that score the query."""
    if rows.empty or "judge" not in rows:
        return rows
    judges = rows.groupby("query_id")["judge"].agg(lambda js: sorted(set(js), key=lambda j: (not is_human(j), j))[0])
    return rows[rows["judge"] == rows["query_id"].map(judges)]


def agreement(rows: pd.DataFrame) -> dict | None:
    """Cohen's kappa between people and the LLM on the (query, document) pairs both judged, on relevance
    (grade >= 1, the cut every metric here uses), with the pairs counted and the raw share agreeing; None when
    no pair was judged by both."""
    if rows.empty or "judge" not in rows:
        return None
    human = rows[rows["judge"].map(is_human)].groupby(["query_id", "doc_id"])["score"].max()
    llm = rows[rows["judge"].map(is_llm)].groupby(["query_id", "doc_id"])["score"].max()
    both = pd.concat([human.rename("human"), llm.rename("llm")], axis=1, join="inner")
    if both.empty:
        return None
    return binary_agreement((both["human"] > 0).to_numpy(), (both["llm"] > 0).to_numpy())


def binary_agreement(a, b) -> dict:
    """Cohen's kappa of two relevance labellings of the same pairs (NaN when either labels everything alike,
    where kappa is undefined), the pairs, and the share on which they agree."""
    import numpy as np
    from sklearn.metrics import cohen_kappa_score

    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    defined = len(set(a)) > 1 or len(set(b)) > 1
    kappa = float(cohen_kappa_score(a, b)) if defined else float("nan")
    return {"kappa": kappa, "pairs": int(len(a)), "agree": float((a == b).mean()) if len(a) else float("nan"),
            "relevant_first": int(a.sum()), "relevant_second": int(b.sum())}
