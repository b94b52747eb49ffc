"""Prometheus metrics at ``/metrics``, for the scraper (bearer token) and staff only.

Two kinds of figures, decided in docs/decisions.md:

- From the database at scrape time, so they are the same whichever web process answers and
  cover workers on every machine without scraping them: queue depth per queue (queued graded
  runs, the source of truth), live workers per queue (heartbeats), and over the last hour the
  grading duration histogram (``started_at`` to ``finished_at`` of finished runs, a gauge
  histogram: a sliding window, not a counter) and finished runs by status and failure reason.
  Computed at most once per ``DB_METRICS_SECONDS`` (cached) whoever scrapes.
- In the web process: request latency by view name (a histogram fed by
  ``RequestLatencyMiddleware``). Under gunicorn, ``PROMETHEUS_MULTIPROC_DIR`` makes the
  processes share it (prometheus_client's multiprocess mode; deploy/gunicorn.conf.py clears the
  folder at start and marks dead workers).

With a Redis broker, ``topdown_broker_queue_length`` adds what the broker holds per Celery queue
(every task: grading, code questions, mail), which can differ from the database's count (a
flushed broker, the reconciler's duplicate reminders).
"""

from __future__ import annotations

import hmac
import os
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db.models import (
    Case,
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeHistogramMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

QUEUES = ("default", "cpu", "gpu")
GRADED_QUEUES = ("cpu", "gpu")
DURATION_BUCKETS = (1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
WINDOW = timedelta(hours=1)
DB_METRICS_SECONDS = 10
DB_METRICS_CACHE_KEY = "topdown:metrics:db"

REQUEST_LATENCY = Histogram(
    "topdown_http_request_duration_seconds",
    "Time the web process took to answer, by view name.",
    ["view", "method", "status"],
    buckets=LATENCY_BUCKETS,
)


class RequestLatencyMiddleware:
    """Outermost middleware: the whole request, labelled by the URL pattern's view name (never
    the raw path: one series per view, whatever the ids in the URL)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        view = (match.view_name or "unnamed") if match is not None else "unmatched"
        REQUEST_LATENCY.labels(
            view=view,
            method=request.method if request.method in _METHODS else "other",
            status=f"{response.status_code // 100}xx",
        ).observe(time.perf_counter() - started)
        return response


_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


# Figures from the database -------------------------------------------------------------------


def _queue_of(gpu_field: str) -> Case:
    return Case(When(**{gpu_field: True}, then=Value("gpu")), default=Value("cpu"))


def _runs() -> Iterator[tuple[QuerySet[Any], str]]:
    from grader.models import BaselineRun, Submission

    yield Submission.objects.all(), "assignment__needs_gpu"
    yield BaselineRun.objects.all(), "baseline__assignment__needs_gpu"


def database_figures(*, now: Any = None) -> dict[str, Any]:
    """Plain numbers (cacheable): queue depth, live workers, last hour's durations and outcomes."""
    from grader.models import RunStatus, WorkerHeartbeat

    now = now or timezone.now()
    since = now - WINDOW
    depth = dict.fromkeys(GRADED_QUEUES, 0)
    buckets = {queue: [0] * len(DURATION_BUCKETS) for queue in GRADED_QUEUES}
    counts = dict.fromkeys(GRADED_QUEUES, 0)
    sums = dict.fromkeys(GRADED_QUEUES, 0.0)
    finished: dict[tuple[str, str, str], int] = {}
    duration = ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField())
    for runs, gpu_field in _runs():
        queued = (
            runs.filter(status=RunStatus.QUEUED)
            .annotate(queue=_queue_of(gpu_field))
            .values("queue")
            .annotate(n=Count("pk"))
        )
        for row in queued:
            depth[row["queue"]] += row["n"]
        done = (
            runs.filter(finished_at__gte=since, finished_at__lte=now)
            .exclude(status=RunStatus.CANCELLED)
            .exclude(started_at=None)
            .annotate(queue=_queue_of(gpu_field), duration=duration)
            .values("queue", "status", "failure_reason")
            .annotate(
                n=Count("pk"),
                total=Sum("duration"),
                **{
                    f"le{index}": Count("pk", filter=Q(duration__lte=timedelta(seconds=bound)))
                    for index, bound in enumerate(DURATION_BUCKETS)
                },
            )
        )
        for row in done:
            queue = row["queue"]
            counts[queue] += row["n"]
            sums[queue] += row["total"].total_seconds() if row["total"] else 0.0
            for index in range(len(DURATION_BUCKETS)):
                buckets[queue][index] += row[f"le{index}"]
            key = (queue, row["status"], row["failure_reason"] or "")
            finished[key] = finished.get(key, 0) + row["n"]
    alive = dict.fromkeys(QUEUES, 0)
    fresh = now - timedelta(seconds=settings.WORKER_ALIVE_SECONDS)
    for queues in WorkerHeartbeat.objects.filter(last_seen_at__gte=fresh).values_list(
        "queues", flat=True
    ):
        for queue in {name.strip() for name in queues.split(",")}:
            if queue in alive:
                alive[queue] += 1
    return {
        "depth": depth,
        "alive": alive,
        "buckets": buckets,
        "counts": counts,
        "sums": sums,
        "finished": [[*key, n] for key, n in sorted(finished.items())],
    }


def broker_queue_lengths() -> dict[str, int] | None:
    """LLEN of each Celery queue when the broker is Redis; None otherwise or when unreachable."""
    url = settings.CELERY_BROKER_URL
    if not url.startswith(("redis://", "rediss://")):
        return None
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        with client.pipeline(transaction=False) as pipe:
            for queue in QUEUES:
                pipe.llen(queue)
            lengths = pipe.execute()
    except redis.RedisError:
        return None
    return {queue: int(length) for queue, length in zip(QUEUES, lengths, strict=True)}


class DatabaseCollector(Collector):
    def __init__(self, figures: dict[str, Any], broker: dict[str, int] | None) -> None:
        self.figures, self.broker = figures, broker

    def collect(self) -> Iterable[Metric]:
        figures = self.figures
        depth = GaugeMetricFamily(
            "topdown_queue_depth", "Graded runs waiting for a worker.", labels=["queue"]
        )
        for queue, n in figures["depth"].items():
            depth.add_metric([queue], n)
        yield depth
        if self.broker is not None:
            broker = GaugeMetricFamily(
                "topdown_broker_queue_length",
                "Messages waiting in the broker's Celery queue (Redis LLEN).",
                labels=["queue"],
            )
            for queue, n in self.broker.items():
                broker.add_metric([queue], n)
            yield broker
        alive = GaugeMetricFamily(
            "topdown_workers_alive",
            "Workers whose heartbeat is fresh, by the queues they consume.",
            labels=["queue"],
        )
        for queue, n in figures["alive"].items():
            alive.add_metric([queue], n)
        yield alive
        durations = GaugeHistogramMetricFamily(
            "topdown_grading_duration_seconds",
            "Start to finish of the graded runs that finished in the last hour.",
            labels=["queue"],
        )
        for queue in GRADED_QUEUES:
            cumulative = [
                (str(float(bound)), figures["buckets"][queue][index])
                for index, bound in enumerate(DURATION_BUCKETS)
            ]
            cumulative.append(("+Inf", figures["counts"][queue]))
            durations.add_metric([queue], cumulative, gsum_value=figures["sums"][queue])
        yield durations
        finished = GaugeMetricFamily(
            "topdown_graded_runs_finished_last_hour",
            "Graded runs that finished in the last hour, by outcome and failure reason.",
            labels=["queue", "status", "reason"],
        )
        for queue, status, reason, n in figures["finished"]:
            finished.add_metric([queue, status, reason], n)
        yield finished


def _cached_database_figures() -> dict[str, Any]:
    figures = cache.get(DB_METRICS_CACHE_KEY)
    if figures is None:
        figures = database_figures()
        cache.set(DB_METRICS_CACHE_KEY, figures, DB_METRICS_SECONDS)
    return figures


def exposition() -> bytes:
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_ProcessHistograms())
    registry.register(DatabaseCollector(_cached_database_figures(), broker_queue_lengths()))
    return generate_latest(registry)


class _ProcessHistograms(Collector):
    """This process's own histograms (without multiprocess mode)."""

    def collect(self) -> Iterable[Metric]:
        yield from REQUEST_LATENCY.collect()


# Access ----------------------------------------------------------------------------------------


def metrics_access_allowed(request: HttpRequest) -> bool:
    token = settings.METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    if token and scheme.lower() == "bearer" and given:
        # Constant time: the comparison must not tell how much of a guess was right.
        return hmac.compare_digest(given.strip().encode(), token.encode())
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_authenticated and user.is_staff)


@never_cache
def metrics_view(request: HttpRequest) -> HttpResponse:
    if not metrics_access_allowed(request):
        raise Http404  # the public learns nothing, not even that the page exists
    return HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)
