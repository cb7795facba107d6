"""Small rules for what the pipeline writes to disk: files replaced whole, timestamps in one format."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable


def write_atomically(path: Path, write: Callable[[Path], None]) -> Path:
    """`write` fills a temporary file beside `path`, which then replaces `path`: a failed write never leaves a
    half file where the last good one was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    write(tmp)
    tmp.replace(path)
    return path


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
