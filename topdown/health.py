"""``/healthz``: can this web process reach its database and broker, and are workers alive?"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache

from topdown.celery import app as celery_app


def database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    except Exception:
        return False


def broker_ok() -> bool:
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, timeout=2)
            conn.default_channel  # noqa: B018 - opening a channel proves the broker answers
        return True
    except Exception:
        return False


def workers_alive() -> int:
    from grader.models import WorkerHeartbeat

    since = timezone.now() - timedelta(seconds=settings.WORKER_ALIVE_SECONDS)
    try:
        return WorkerHeartbeat.objects.filter(last_seen_at__gte=since).count()
    except Exception:
        return 0


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    db = database_ok()
    broker = broker_ok()
    body = {
        "status": "ok" if db and broker else "unavailable",
        "database": db,
        "broker": broker,
        "workers": workers_alive() if db else 0,
        "version": settings.TOPDOWN_VERSION,
    }
    return JsonResponse(body, status=200 if db and broker else 503)
