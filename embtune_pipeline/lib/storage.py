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


def set_aside(path: Path, companions: tuple[str, ...] = ()) -> Path:
    """Rename a damaged file to <name>.corrupt-<UTC time> beside it, its bytes kept for whoever wants to look,
    so the pipeline can start that file afresh; `companions` (suffixes such as SQLite's "-wal") go with it,
    named after the moved file. Returns where it went."""
    path = Path(path)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target, n = path.with_name(f"{path.name}.corrupt-{stamp}"), 1
    while any(Path(f"{target}{c}").exists() for c in ("", *companions)):  # set aside twice in one second
        target, n = path.with_name(f"{path.name}.corrupt-{stamp}-{n}"), n + 1
    path.replace(target)
    for companion in companions:
        if Path(f"{path}{companion}").exists():
            Path(f"{path}{companion}").replace(f"{target}{companion}")
    return target


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def utc_now_precise() -> str:
    """utc_now to the microsecond, for what is ordered by time and may happen twice in a second (two builds
    of an index): 2026-12-07T18:21:35.123456Z, which sorts after the same second's utc_now."""
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e6):06d}Z"
