"""A run while it runs: its log and metrics reach its row as they come, and the browser polls them.

The worker side is ``RunKeeper``, a thread beside the job that holds the run's lease. The job's
callbacks (on the job's thread) only append to memory; every ``FLUSH_SECONDS`` the keeper writes
what is new with one conditional ``UPDATE`` that also renews the lease. The same update notices
when the row is no longer this worker's running run (cancelled, or the lease was lost and the
reaper requeued it): the keeper then sets ``cancel`` and the sandbox kills the job.

The database is the channel (not Redis pub/sub): it is already the source of truth, it works in
the embedded SQLite set-up, and one small update per second per running job is cheap. The
browser side is ``submission_live_status``: what the status endpoint returns, the log from the
offset the page already has, the metric points after the ones it has.
"""

from __future__ import annotations

import contextvars
import json
import logging
import math
import statistics
import threading
import time
from collections.abc import Mapping
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from django.core.cache import cache
from django.db import connection
from django.db.models import Q
from django.utils import timezone

from grader.models import (
    Assignment,
    BaselineRun,
    GradedRun,
    RunStatus,
    Submission,
    WorkerHeartbeat,
    log_cap,
)
from topdown import sql

log = logging.getLogger(__name__)

FLUSH_SECONDS = 0.5
LOG_CHUNK_CHARS = 64 * 1024  # the most log one status response carries
METRICS_CHUNK = 2_000
TYPICAL_DURATION_CACHE_SECONDS = 60
WORKER_FRESH = timedelta(seconds=60)  # as /healthz counts live workers
MAX_METRICS = 10_000


class RunKeeper(threading.Thread):
    """Holds a run's lease and streams its log and metrics to the row while the job runs."""

    def __init__(
        self,
        model: type[GradedRun],
        pk: int,
        worker_id: str,
        *,
        lease: timedelta,
    ) -> None:
        super().__init__(name=f"run-{model.__name__}-{pk}", daemon=True)
        self.model, self.pk, self.worker_id = model, pk, worker_id
        self.lease = lease
        self.cancel = threading.Event()  # set: the job must stop (cancelled, or not ours any more)
        self.lost = False
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._lines: list[str] = []
        self._metrics: list[dict[str, Any]] = []
        self._dirty = False
        # The grading's log context (topdown.logs): this thread's lines name the run too.
        self._context = contextvars.copy_context()

    # Called on the job's thread: append only, never block on the database.
    def on_log(self, line: str) -> None:
        with self._lock:
            self._lines.append(line + "\n")
            self._dirty = True

    def on_metric(self, metric: dict[str, Any]) -> None:
        with self._lock:
            if len(self._metrics) < MAX_METRICS:
                self._metrics.append(metric)
                self._dirty = True

    def run(self) -> None:
        self._context.run(self._keep)

    def _keep(self) -> None:
        renew_every = min(1.0, self.lease.total_seconds() / 3)
        last_write = time.monotonic()
        try:
            while not self._stopping.wait(FLUSH_SECONDS):
                now = time.monotonic()
                if not self._dirty and now - last_write < renew_every:
                    continue
                if not self._write() and self._taken_away():
                    self.lost = True
                    self.cancel.set()
                    log.warning("%s %s is no longer ours to run: stopping it", self.model, self.pk)
                    return
                last_write = now
        except Exception:
            log.exception("keeping %s %s failed", self.model.__name__, self.pk)
        finally:
            connection.close()

    def _taken_away(self) -> bool:
        """Whether the row now says another state or another worker (cancelled, reaped).

        A row this connection cannot see at all (deleted, or not yet committed as in a test's
        transaction) proves nothing: the job goes on, and its result finds no row to save to.
        """
        row = (
            self.model._default_manager.filter(pk=self.pk)
            .values_list("status", "worker_id")
            .first()
        )
        return row is not None and row != (RunStatus.RUNNING, self.worker_id)

    def _write(self) -> bool:
        fields: dict[str, Any] = {"lease_expires_at": timezone.now() + self.lease}
        with self._lock:
            if self._dirty:
                fields["log"] = log_cap("".join(self._lines))
                fields["metrics"] = list(self._metrics)
                self._dirty = False
        updated = self.model._default_manager.filter(
            pk=self.pk, status=RunStatus.RUNNING, worker_id=self.worker_id
        ).update(**fields)
        return bool(updated)

    def stop(self) -> None:
        self._stopping.set()
        self.join(timeout=10)


# The browser's side --------------------------------------------------------------------------


def queue_for(assignment: Assignment) -> str:
    return "gpu" if assignment.needs_gpu else "cpu"


def queue_position(*, needs_gpu: bool, queued_at: datetime) -> int:
    """1 for the next run a worker of this queue takes (runs of both kinds share the queues)."""
    ahead = Q(status=RunStatus.QUEUED, queued_at__lt=queued_at)
    submissions = Submission.objects.filter(ahead, assignment__needs_gpu=needs_gpu).count()
    baselines = BaselineRun.objects.filter(ahead, baseline__assignment__needs_gpu=needs_gpu)
    return submissions + baselines.count() + 1


def typical_duration_s(*, assignment_id: int) -> float | None:
    """Median seconds from start to finish of the assignment's last 20 scored runs (cached)."""
    key = f"grader:typical-duration:{assignment_id}"
    cached = cache.get(key)
    if cached is not None:
        return cached if cached >= 0 else None
    rows = (
        Submission.objects.filter(assignment_id=assignment_id, status=RunStatus.SCORED)
        .exclude(started_at=None)
        .order_by("-finished_at")
        .values_list("started_at", "finished_at")[:20]
    )
    durations = [(end - start).total_seconds() for start, end in rows if end and start]
    value = statistics.median(durations) if durations else -1.0
    cache.set(key, value, TYPICAL_DURATION_CACHE_SECONDS)
    return value if value >= 0 else None


def live_workers(*, queue: str, now: datetime) -> int:
    heartbeats = WorkerHeartbeat.objects.filter(last_seen_at__gte=now - WORKER_FRESH)
    return sum(1 for queues in heartbeats.values_list("queues", flat=True) if queue in queues)


def estimated_wait_s(*, position: int, typical_s: float | None, workers: int) -> float | None:
    """Rounds of work ahead times a typical run; None when there is nothing to go on."""
    if typical_s is None or workers <= 0:
        return None
    return math.ceil(position / workers) * typical_s


LIVE_ROW_COLUMNS = (
    "id",
    "user_id",
    "assignment_id",
    "status",
    "queued_at",
    "started_at",
    "finished_at",
    "course_slug",
    "needs_gpu",
    "log_length",
    "log_chunk",
    "metrics_length",
    "metrics_json",
)


TIMESTAMPS = ("queued_at", "started_at", "finished_at")


@lru_cache(maxsize=1)
def _live_row_sql() -> str:
    from courses.models import Chapter, Course

    table = connection.ops.quote_name
    # Table names from the models' own metadata, never from input.
    # The dates as integers: the driver parses a timestamp in Python, an integer in C.
    dates = ", ".join(sql.timestamp_sql(f"s.{name}") for name in TIMESTAMPS)
    return (
        f"SELECT s.id, s.user_id, s.assignment_id, s.status, {dates},"  # noqa: S608
        " c.slug, a.needs_gpu, s.log_chars,"
        " CASE WHEN s.log_chars > %s THEN substr(s.log, %s, %s) ELSE '' END, s.metrics_count,"
        " CASE WHEN s.metrics_count > %s THEN s.metrics END"
        f" FROM {table(Submission._meta.db_table)} s"
        f" JOIN {table(Assignment._meta.db_table)} a ON a.id = s.assignment_id"
        f" JOIN {table(Chapter._meta.db_table)} ch ON ch.id = a.chapter_id"
        f" JOIN {table(Course._meta.db_table)} c ON c.id = ch.course_id"
        " WHERE s.id = %s"
    )


def submission_live_row(
    *, submission_id: int, log_from: int, metrics_from: int = 0
) -> Mapping[str, Any] | None:
    """In one query: the run's state, the log after ``log_from``, the metric points when there
    are more than ``metrics_from``, and whose run it is.

    The page asks every second, so this is the cheapest read we could make it: the lengths are
    stored columns (``Submission.log_chars``, ``metrics_count``), the log and the points are
    read (and detoasted) only when there are new ones, and the statement is plain SQL, since
    the ORM took four times longer to compile it than the database took to answer it.
    """
    log_from, metrics_from = max(0, log_from), max(0, metrics_from)
    params = [log_from, log_from + 1, LOG_CHUNK_CHARS, metrics_from, submission_id]
    with connection.cursor() as cursor:
        cursor.execute(_live_row_sql(), params)
        values = cursor.fetchone()
    if values is None:
        return None
    row = dict(zip(LIVE_ROW_COLUMNS, values, strict=True))
    for name in TIMESTAMPS:
        row[name] = sql.timestamp_from_db(row[name])
    row["needs_gpu"] = bool(row["needs_gpu"])
    return row


def _stored_metrics(row: Mapping[str, Any]) -> list[dict[str, Any]]:
    """All the run's metric points: from the row when it read them (there were more than the
    ``metrics_from`` it was read with), else with one more query."""
    stored = row.get("metrics_json")
    if stored is not None:  # JSON text, as the drivers give it to the JSON field
        return (json.loads(stored) if isinstance(stored, str) else stored) or []
    return Submission.objects.filter(pk=row["id"]).values_list("metrics", flat=True).get() or []


def submission_live_status(
    *, row: Mapping[str, Any], log_from: int = 0, metrics_from: int = 0, now: datetime
) -> dict[str, Any]:
    """What the page needs to show a run as it goes, from the offsets it already has.

    ``row`` is ``submission_live_row``'s (read through ``grader.access``): read with the same
    ``metrics_from``, it holds the new metric points already.
    """
    log_from, metrics_from = max(0, log_from), max(0, metrics_from)
    status = row["status"]
    metrics_length = row["metrics_length"] or 0
    metrics: list[dict[str, Any]] = []
    if metrics_length > metrics_from:
        metrics = _stored_metrics(row)[metrics_from : metrics_from + METRICS_CHUNK]
    started, finished = row["started_at"], row["finished_at"]
    data: dict[str, Any] = {
        "id": row["id"],
        "status": status,
        "status_label": RunStatus(status).label,
        "finished": status in (RunStatus.SCORED, RunStatus.FAILED, RunStatus.CANCELLED),
        "log": row["log_chunk"] or "",
        "log_from": log_from,
        "log_length": row["log_length"] or 0,
        "metrics": metrics,
        "metrics_from": metrics_from,
        "metrics_length": metrics_length,
        "elapsed_s": None,
        "queue_position": None,
        "estimated_wait_s": None,
    }
    if started is not None:
        data["elapsed_s"] = round(((finished or now) - started).total_seconds(), 1)
    if status == RunStatus.QUEUED:
        position = queue_position(needs_gpu=row["needs_gpu"], queued_at=row["queued_at"])
        workers = live_workers(queue="gpu" if row["needs_gpu"] else "cpu", now=now)
        data["queue_position"] = position
        data["live_workers"] = workers
        data["estimated_wait_s"] = estimated_wait_s(
            position=position,
            typical_s=typical_duration_s(assignment_id=row["assignment_id"]),
            workers=workers,
        )
    return data
