"""Small rules for what the pipeline writes to disk: files replaced whole, timestamps in one format."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from typing import Callable


def write_atomically(path: Path, write: Callable[[Path], None]) -> Path:
    """`write` fills a temporary file beside `path` (a name of its own, so two writers never share one), which
    is flushed to disk and then renamed over `path`: a reader sees the old file or the new one, never a half
    file, and a crash mid-write leaves the last good one in place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.part")
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def open_sqlite(path: Path, schema: str):
    """A SQLite file several threads of one process share (guard it with a lock) and several processes can
    read while one writes (WAL), with `schema` (CREATE ... IF NOT EXISTS statements) applied."""
    import sqlite3

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, check_same_thread=False, timeout=60)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.executescript(schema)
    conn.commit()
    return conn


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
