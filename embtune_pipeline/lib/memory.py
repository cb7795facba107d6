"""Peak resident memory of this process, per stage: Linux keeps the high-water mark (VmHWM) and lets a process
reset it (writing 5 to /proc/self/clear_refs), so each step of a run, and each stage of a benchmark, reports
its own peak rather than the largest so far. Elsewhere the figures are absent (None), never made up."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

STATUS = Path("/proc/self/status")
CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_kib(field: str) -> int | None:
    try:
        for line in STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def process_peak_rss_mb() -> float:
    """The process's peak resident memory since it started, whatever was reset since (getrusage), in MiB."""
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # KiB on Linux


def peak_rss_mb() -> float | None:
    """Peak resident memory since the process started or since the last reset_peak(), in MiB."""
    kib = _status_kib("VmHWM")
    return None if kib is None else round(kib / 1024, 1)


def reset_peak() -> bool:
    """Start a new high-water mark at the current RSS; False where the system does not allow it."""
    try:
        CLEAR_REFS.write_text("5")
        return True
    except OSError:
        return False


@contextmanager
def peak_during(out: dict, key: str = "peak_rss_mb"):
    """out[key] = the peak RSS while the block ran (absent where it cannot be measured). Steps run one at a
    time in a process (Dagster's executors never interleave steps in one), so a reset is the block's own."""
    measurable = reset_peak()
    try:
        yield out
    finally:
        peak = peak_rss_mb()
        if measurable and peak is not None:
            out[key] = peak
