"""Progress of long loops (encoding, LLM calls, training), told to whoever watches: the Dagster log in a run, so
the UI's event log shows it, or nobody. At most one line every `every` seconds, and one at the end."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Optional


def duration(seconds: float) -> str:
    """1h 02m, 3m 07s, 42 s: short enough for one log line."""
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs} s"


@dataclass(frozen=True)
class Reporter:
    """Where progress lines go and how often; SILENT tells nobody."""

    say: Optional[Callable[[str], None]] = None
    every: float = 30.0

    def track(self, what: str, total: int, unit: str) -> "Progress":
        return Progress(self, what, total, unit)


SILENT = Reporter()


class Progress:
    """`done of total unit (percent), rate, elapsed, ETA`, for one loop."""

    def __init__(self, reporter: Reporter, what: str, total: int, unit: str, clock=time.monotonic):
        self.reporter, self.what, self.total, self.unit, self.clock = reporter, what, total, unit, clock
        self.done = 0
        self.start = self.last = clock()

    def advance(self, n: int = 1) -> None:
        self.done += n
        now = self.clock()
        finished = self.done >= self.total
        if self.reporter.say is not None and (finished or now - self.last >= self.reporter.every):
            self.last = now
            self.reporter.say(self.line(now))

    def line(self, now: Optional[float] = None) -> str:
        elapsed = (self.clock() if now is None else now) - self.start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        share = f" ({self.done / self.total:.0%})" if self.total else ""
        text = f"{self.what}: {self.done:,}/{self.total:,} {self.unit}{share}, {rate:.1f} {self.unit}/s, " \
               f"elapsed {duration(elapsed)}"
        if self.done < self.total and rate > 0:
            text += f", ETA {duration((self.total - self.done) / rate)}"
        return text
