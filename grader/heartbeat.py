"""Worker heartbeats: a thread in each Celery worker touches its row in ``WorkerHeartbeat``."""

from __future__ import annotations

import logging
import os
import threading
from datetime import datetime, timedelta

from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

from grader.models import WorkerHeartbeat

log = logging.getLogger(__name__)


def worker_heartbeat_touch(*, hostname: str, queues: str, started_at: datetime) -> None:
    WorkerHeartbeat.objects.update_or_create(
        hostname=hostname,
        defaults={
            "queues": queues[:255],
            "pid": os.getpid(),
            "started_at": started_at,
            "last_seen_at": timezone.now(),
        },
    )


def worker_heartbeats_prune(*, older_than: timedelta = timedelta(days=1)) -> int:
    deleted, _ = WorkerHeartbeat.objects.filter(
        last_seen_at__lt=timezone.now() - older_than
    ).delete()
    return deleted


class HeartbeatThread(threading.Thread):
    def __init__(self, *, hostname: str, queues: str) -> None:
        super().__init__(name="topdown-heartbeat", daemon=True)
        self.hostname = hostname
        self.queues = queues
        self.started_at = timezone.now()
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                worker_heartbeat_touch(
                    hostname=self.hostname, queues=self.queues, started_at=self.started_at
                )
            except Exception:
                # The database may be briefly away; the next beat tries again.
                log.warning("worker heartbeat failed", exc_info=True)
            finally:
                close_old_connections()
            self.stopping.wait(settings.WORKER_HEARTBEAT_SECONDS)

    def stop(self) -> None:
        self.stopping.set()
        try:
            WorkerHeartbeat.objects.filter(hostname=self.hostname).delete()
        except Exception:
            log.warning("could not remove worker heartbeat", exc_info=True)
