from embtune_pipeline.lib.progress import SILENT, Progress, Reporter, duration


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_a_line_at_most_every_interval_and_one_at_the_end():
    lines, clock = [], Clock()
    progress = Progress(Reporter(lines.append, every=30), "encoding", 100, "texts", clock=clock)
    for _ in range(10):
        clock.now += 5
        progress.advance(5)  # 50 texts in 50 s
    assert lines == ["encoding: 30/100 texts (30%), 1.0 texts/s, elapsed 30 s, ETA 1m 10s"]
    clock.now += 10
    progress.advance(50)
    assert lines[-1] == "encoding: 100/100 texts (100%), 1.7 texts/s, elapsed 1m 00s"  # no ETA when done


def test_silent_tells_nobody_and_durations_read_short():
    SILENT.track("x", 2, "calls").advance(2)  # no reporter: nothing to call, nothing raised
    assert [duration(s) for s in (4.4, 187, 3720)] == ["4 s", "3m 07s", "1h 02m"]
