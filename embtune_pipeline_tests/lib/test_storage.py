import multiprocessing
from pathlib import Path

from embtune_pipeline.lib.storage import write_atomically


def _write_many(path: str, marker: str, times: int) -> None:
    for _ in range(times):
        write_atomically(Path(path), lambda tmp: tmp.write_text(marker * 200_000))


def test_concurrent_writers_never_leave_a_broken_or_half_file(tmp_path):
    """Two processes write the same file 50 times each while this one reads it: every read is one writer's
    whole text, and no temporary file is left behind."""
    target = tmp_path / "asset.json"
    write_atomically(target, lambda tmp: tmp.write_text("a" * 200_000))
    ctx = multiprocessing.get_context("spawn")
    writers = [ctx.Process(target=_write_many, args=(str(target), m, 50)) for m in "bc"]
    for w in writers:
        w.start()
    reads = []
    while any(w.is_alive() for w in writers):
        reads.append(target.read_text())
    for w in writers:
        w.join()
        assert w.exitcode == 0
    assert reads and all(len(r) == 200_000 and len(set(r)) == 1 for r in reads)
    assert [p.name for p in tmp_path.iterdir()] == ["asset.json"]


def test_a_failed_write_keeps_the_last_good_file(tmp_path):
    target = tmp_path / "report.json"
    write_atomically(target, lambda tmp: tmp.write_text("good"))

    def broken(tmp):
        tmp.write_text("half")
        raise OSError("disk full")

    try:
        write_atomically(target, broken)
    except OSError:
        pass
    assert target.read_text() == "good" and [p.name for p in tmp_path.iterdir()] == ["report.json"]
