"""A content-addressed answer cache on disk (SQLite): a rerun never pays for the same LLM call twice."""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import threading
from pathlib import Path
from typing import Optional

from embtune_pipeline.lib.storage import open_sqlite, set_aside

log = logging.getLogger(__name__)

SCHEMA = ("CREATE TABLE IF NOT EXISTS answers (key TEXT PRIMARY KEY, model TEXT, answer TEXT,"
          " created TEXT DEFAULT CURRENT_TIMESTAMP);")
SQLITE_FILES = ("-wal", "-shm")  # what SQLite keeps beside a database in WAL mode: part of its content
DAMAGED = {sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB}  # "disk image is malformed", "file is not a database"


def cache_key(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def damage(path: Path) -> Optional[str]:
    """What SQLite finds wrong with the database at `path` (its quick check: every page's structure, about 0.2 s
    for 100,000 answers), None when it is sound or not there yet. A locked or unreadable file is an error, not
    damage."""
    if not Path(path).exists():
        return None
    conn = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True, timeout=60)  # read only: a
    try:  # damaged file is checked as it is, its WAL neither merged into it nor deleted
        found = conn.execute("PRAGMA quick_check(1)").fetchall()
        return None if found == [("ok",)] else str(found[0][0])
    except sqlite3.DatabaseError as e:
        if getattr(e, "sqlite_errorcode", 0) & 0xFF not in DAMAGED:
            raise
        return str(e)
    finally:
        conn.close()


class AnswerCache:
    """Answers by key in one SQLite file. A damaged file (not a database, or failing SQLite's quick check at
    open) is set aside as <name>.corrupt-<time>, bytes kept, with a warning, and the cache starts empty: only
    the cached answers are lost, and they are asked again."""

    def __init__(self, path: Path):
        from filelock import FileLock

        self.path = Path(path)
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(f"{self.path}.lock"):  # one process checks and sets aside at a time: no file moved twice
            problem = damage(self.path)
            if problem:
                moved = set_aside(self.path, SQLITE_FILES)
                log.warning("%s is damaged (%s): moved aside to %s and started empty; the answers it cached will "
                            "be asked again", self.path, problem, moved)
            self._conn = open_sqlite(self.path, SCHEMA)

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
