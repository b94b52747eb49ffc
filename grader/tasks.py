from __future__ import annotations

from celery import shared_task

from grader.heartbeat import worker_heartbeats_prune


@shared_task
def worker_heartbeats_prune_task() -> int:
    return worker_heartbeats_prune()
