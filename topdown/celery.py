"""The Celery application shared by the web process, the workers and beat."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from celery.signals import worker_process_shutdown, worker_ready, worker_shutdown
from django.conf import settings
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "topdown.settings")

app = Celery("topdown")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.update(
    task_queues=[Queue("default"), Queue("cpu"), Queue("gpu")],
    task_default_queue="default",
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    task_ignore_result=True,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    beat_schedule={
        # Periods from the settings (GRADER_REAP_SECONDS, GRADER_RECONCILE_SECONDS): 10 s and 60 s.
        "reap-graded-runs": {
            "task": "grader.tasks.graded_runs_reap_task",
            "schedule": float(getattr(settings, "GRADER_REAP_SECONDS", 10.0)),
        },
        "reconcile-graded-runs": {
            "task": "grader.tasks.graded_runs_reconcile_task",
            "schedule": float(getattr(settings, "GRADER_RECONCILE_SECONDS", 60.0)),
        },
        "reconcile-code-answers": {
            "task": "courses.tasks.code_answers_reconcile_task",
            "schedule": 300.0,
        },
        "prune-worker-heartbeats": {
            "task": "grader.tasks.worker_heartbeats_prune_task",
            "schedule": 3600.0,
        },
        # Hourly: each user's digest goes once their last one is a day old (forum.notifications).
        "send-forum-digests": {"task": "forum.tasks.digests_send_task", "schedule": 3600.0},
        "index-forum-errors": {
            "task": "forum.tasks.error_occurrences_index_task",
            "schedule": 60.0,
        },
    },
)
app.autodiscover_tasks()


def _ensure_filesystem_broker_folders() -> None:
    options = app.conf.broker_transport_options or {}
    for key in ("data_folder_in", "data_folder_out", "control_folder"):
        if key in options:
            os.makedirs(options[key], exist_ok=True)


_ensure_filesystem_broker_folders()


_heartbeat = None


@worker_ready.connect
def _start_heartbeat(sender: Any, **_: object) -> None:
    global _heartbeat
    from grader.heartbeat import HeartbeatThread

    consumer = sender
    queues = ",".join(sorted(q.name for q in consumer.task_consumer.queues))
    _heartbeat = HeartbeatThread(hostname=consumer.hostname, queues=queues)
    _heartbeat.start()


@worker_shutdown.connect
def _stop_heartbeat(**_: object) -> None:
    if _heartbeat is not None:
        _heartbeat.stop()


@worker_ready.connect
def _sweep_stale_job_folders(**_: object) -> None:
    """Job folders a killed worker left behind go when a worker starts (running jobs are locked)."""
    import logging
    from pathlib import Path

    from django.conf import settings

    from workers.sandbox import sweep_stale_job_folders

    root = Path(settings.GRADER_JOBS_DIR) if settings.GRADER_JOBS_DIR else None
    try:
        removed = sweep_stale_job_folders(root)
    except OSError:
        logging.getLogger(__name__).warning("could not sweep job folders", exc_info=True)
        return
    if removed:
        logging.getLogger(__name__).info("removed %d stale job folder(s)", len(removed))


@worker_process_shutdown.connect
@worker_shutdown.connect
def _destroy_warm_sandbox(**_: object) -> None:
    """A pool process may exit without Python's exit handlers: take its waiting sandbox along."""
    from workers.sandbox import warm_start_shutdown

    warm_start_shutdown(timeout=10)
