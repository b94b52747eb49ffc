from __future__ import annotations

from django.db import models


class WorkerHeartbeat(models.Model):
    """One row per Celery worker, touched every few seconds while it runs (see grader.heartbeat).

    Kept in the database, not the broker, so /healthz can count live workers whatever broker
    transport is in use.
    """

    hostname = models.CharField(max_length=255, unique=True)
    queues = models.CharField(max_length=255, blank=True)
    pid = models.PositiveIntegerField(null=True)
    started_at = models.DateTimeField()
    last_seen_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["hostname"]

    def __str__(self) -> str:
        return self.hostname
