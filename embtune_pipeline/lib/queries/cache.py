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

    def __len__(self) -> int:
        with self._lock:
            return self._conn.execute("SELECT COUNT(*) FROM answers").fetchone()[0]

    def close(self) -> None:
        self._conn.close()
