"""Splitting a job's output into log lines and metrics as chunks arrive."""

from __future__ import annotations

from workers.harness import topdown_task
from workers.joblog import MAX_LINE_BYTES, METRIC_PREFIX, LogCollector


def test_the_metric_prefix_is_the_harness_prefix():
    assert METRIC_PREFIX == topdown_task.METRIC_PREFIX


def test_lines_split_across_chunks_are_joined_and_metrics_taken_out():
    lines: list[str] = []
    metrics: list[dict] = []
    collector = LogCollector(log_bytes=1000, on_log=lines.append, on_metric=metrics.append)

    collector.feed(b"epoch 1 sta")
    collector.feed(b'rted\n@@topdown-metric {"loss": 0.5')
    collector.feed(b"}\nno newline at the end")
    collector.finish()

    assert lines == ["epoch 1 started", "no newline at the end"]
    assert metrics == [{"loss": 0.5}] and collector.metrics == metrics
    assert collector.log == "epoch 1 started\nno newline at the end\n"


def test_a_malformed_metric_line_stays_in_the_log():
    collector = LogCollector(log_bytes=1000)

    collector.feed(b"@@topdown-metric not json\n@@topdown-metric [1, 2]\n")
    collector.feed(b'@@topdown-metric {"loss": NaN}\n')

    assert collector.metrics == []
    assert collector.log.splitlines() == [
        "@@topdown-metric not json",
        "@@topdown-metric [1, 2]",
        '@@topdown-metric {"loss": NaN}',
    ]


def test_nul_characters_never_reach_the_stored_log():
    collector = LogCollector(log_bytes=1000)

    collector.feed(b'a\x00b\n@@topdown-metric {"name": "\\u0000"}\n')

    assert "\x00" not in collector.log and collector.metrics == []


def test_the_log_keeps_its_beginning_and_counts_what_it_drops():
    collector = LogCollector(log_bytes=25)

    collector.feed(b"0123456789\n0123456789\n0123456789\nshort\n")

    assert collector.log == "0123456789\n0123456789\n"
    assert collector.dropped_bytes == 11 + 6
    assert collector.tail()[-1] == "short"  # the tail is kept apart from the cap


def test_a_line_that_never_ends_is_cut_into_pieces():
    collector = LogCollector(log_bytes=10 * MAX_LINE_BYTES)

    collector.feed(b"x" * (3 * MAX_LINE_BYTES + 1))
    collector.finish()

    assert [len(line) for line in collector.log.splitlines()] == [MAX_LINE_BYTES] * 3 + [1]


def test_metrics_past_the_cap_are_counted_not_kept():
    collector = LogCollector(log_bytes=100, max_metrics=2)

    collector.feed(b"".join(b'@@topdown-metric {"step": %d}\n' % i for i in range(5)))

    assert [m["step"] for m in collector.metrics] == [0, 1]
    assert collector.metrics_dropped == 3


def test_a_failing_callback_does_not_stop_the_collection():
    def broken(line: str) -> None:
        raise RuntimeError("database away")

    collector = LogCollector(log_bytes=100, on_log=broken)

    collector.feed(b"one\ntwo\n")

    assert collector.log == "one\ntwo\n" and collector.callback_errors == 2
