"""A content-addressed answer cache on disk (SQLite): a rerun never pays for the same LLM call twice."""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path
from typing import Optional

from embtune_pipeline.lib.storage import open_sqlite


def cache_key(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


class AnswerCache:
    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._conn = open_sqlite(self.path, "CREATE TABLE IF NOT EXISTS answers (key TEXT PRIMARY KEY, model TEXT,"
                                            " answer TEXT, created TEXT DEFAULT CURRENT_TIMESTAMP);")

    def get(self, key: str) -> Optional[str]:
        with self._lock:
            row = self._conn.execute("SELECT answer FROM answers WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def put(self, key: str, model: str, answer: str) -> None:
        with self._lock:
            self._conn.execute("INSERT OR REPLACE INTO answers (key, model, answer) VALUES (?, ?, ?)",
                               (key, model, answer))
            self._conn.commit()

    def get_many(self, keys: list[str]) -> dict[str, str]:
        """The cached answers among `keys`, by key (asked 500 at a time: SQLite's parameter limit)."""
        out: dict[str, str] = {}
        distinct = list(dict.fromkeys(keys))
        with self._lock:
            for start in range(0, len(distinct), 500):
                part = distinct[start:start + 500]
                marks = ",".join("?" * len(part))
                out.update(self._conn.execute(f"SELECT key, answer FROM answers WHERE key IN ({marks})", part))
        return out

    def put_many(self, answers: dict[str, str], model: str) -> None:
        """Many answers in one transaction."""
        with self._lock:
            self._conn.executemany("INSERT OR REPLACE INTO answers (key, model, answer) VALUES (?, ?, ?)",
                                   [(k, model, a) for k, a in answers.items()])
            self._conn.commit()

    def __len__(self) -> int:
        with self._lock:
            return self._conn.execute("SELECT COUNT(*) FROM answers").fetchone()[0]

    def close(self) -> None:
        self._conn.close()
