"""Split a job's output stream into log lines and metric lines, as it arrives.

The job's stdout and stderr arrive interleaved on one pipe, in chunks. Lines starting with
``@@topdown-metric `` followed by a JSON object are metrics (see ``workers/harness``): they are
taken out of the log. The log keeps its first ``log_bytes``; the rest is counted and dropped,
so a job printing in a loop costs the worker a bounded amount of memory. A short tail of the
output is kept apart from the cap, to quote the traceback of a job that crashed late.
"""

from __future__ import annotations

import json
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

METRIC_PREFIX = "@@topdown-metric "  # the harness's METRIC_PREFIX
MAX_LINE_BYTES = 64 * 1024
MAX_METRICS = 10_000
TAIL_LINES = 60
TAIL_LINE_CHARS = 2_000

_PREFIX = METRIC_PREFIX.encode()


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


class LogCollector:
    def __init__(
        self,
        *,
        log_bytes: int,
        on_log: Callable[[str], None] | None = None,
        on_metric: Callable[[dict[str, Any]], None] | None = None,
        max_metrics: int = MAX_METRICS,
    ) -> None:
        self.log_bytes = log_bytes
        self.on_log = on_log
        self.on_metric = on_metric
        self.max_metrics = max_metrics
        self.metrics: list[dict[str, Any]] = []
        self.metrics_dropped = 0
        self.dropped_bytes = 0
        self.callback_errors = 0
        self._kept: list[str] = []
        self._kept_bytes = 0
        self._full = log_bytes == 0
        self._pending = b""
        self._tail: deque[str] = deque(maxlen=TAIL_LINES)

    @property
    def log(self) -> str:
        return "".join(self._kept)

    def tail(self) -> list[str]:
        return list(self._tail)

    def feed(self, data: bytes) -> None:
        if not data:
            return
        lines = (self._pending + data).split(b"\n")
        self._pending = lines.pop()
        for line in lines:
            self._line(line)
        while len(self._pending) > MAX_LINE_BYTES:  # a line that never ends: cut it in pieces
            piece, self._pending = self._pending[:MAX_LINE_BYTES], self._pending[MAX_LINE_BYTES:]
            self._line(piece)

    def finish(self) -> None:
        if self._pending:
            pending, self._pending = self._pending, b""
            self._line(pending)

    def _line(self, raw: bytes) -> None:
        if raw.startswith(_PREFIX) and self._metric(raw[len(_PREFIX) :]):
            return
        # No NUL characters: PostgreSQL text cannot hold them.
        text = raw.decode("utf-8", "replace").rstrip("\r").replace("\x00", "\ufffd")
        self._tail.append(text[:TAIL_LINE_CHARS])
        if not self._full:
            size = len(text.encode("utf-8")) + 1
            if self._kept_bytes + size <= self.log_bytes:
                self._kept.append(text + "\n")
                self._kept_bytes += size
                self._call(self.on_log, text)
                return
            self._full = True  # keep a prefix of the log: nothing after the first line dropped
        self.dropped_bytes += len(raw) + 1

    def _metric(self, payload: bytes) -> bool:
        """Take a metric line: a JSON object of strict JSON (no NaN, no NUL: it gets stored)."""
        if b"\\u0000" in payload:
            return False
        try:
            metric = json.loads(payload, parse_constant=_refuse_constant)
        except ValueError:
            return False
        if not isinstance(metric, dict):
            return False
        if len(self.metrics) >= self.max_metrics:
            self.metrics_dropped += 1
            return True
        self.metrics.append(metric)
        self._call(self.on_metric, metric)
        return True

    def _call(self, callback: Callable[[Any], None] | None, value: Any) -> None:
        if callback is None:
            return
        try:
            callback(value)
        except Exception:
            # A failing consumer (say, the database is briefly away) must not kill the job's
            # bookkeeping: the final result still carries everything.
            self.callback_errors += 1
            if self.callback_errors == 1:
                logger.exception("a job log callback failed; later failures are counted only")
