from __future__ import annotations

import logging
from typing import Any

from celery import Task, shared_task
from django.db import InterfaceError, OperationalError

from grader.heartbeat import worker_heartbeats_prune
from grader.submissions import (
    baseline_run_grade,
    graded_runs_reap,
    graded_runs_reconcile,
    submission_grade,
)
from workers.gpu import GpuAssignmentError, worker_gpu_index

log = logging.getLogger(__name__)


def _gpu_index() -> int | None:
    try:
        return worker_gpu_index()
    except GpuAssignmentError as error:
        # A CPU worker on a many-GPU machine needs no GPU; a GPU job here runs on the CPU.
        log.warning("%s; GPU jobs on this worker will run on the CPU", error)
        return None


# While the database restarts, a worker that took a message cannot claim its run. Failing would
# acknowledge the message and leave the run to the reconciler a minute later; retrying with a
# short backoff picks it up as soon as the database is back. The claim keeps it graded once.
DATABASE_RETRY: dict[str, Any] = {
    "autoretry_for": (OperationalError, InterfaceError),
    "retry_backoff": 1,
    "retry_backoff_max": 20,
    "retry_jitter": True,
    "max_retries": 12,
}


@shared_task
def worker_heartbeats_prune_task() -> int:
    return worker_heartbeats_prune()


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, **DATABASE_RETRY)
def grade_submission_task(self: Task, submission_id: int) -> str | None:
    run = submission_grade(
        submission_id=submission_id,
        worker_id=self.request.hostname or "worker",
        gpu_index=_gpu_index(),
    )
    return run.status if run else None


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, **DATABASE_RETRY)
def grade_baseline_run_task(self: Task, baseline_run_id: int) -> str | None:
    run = baseline_run_grade(
        baseline_run_id=baseline_run_id,
        worker_id=self.request.hostname or "worker",
        gpu_index=_gpu_index(),
    )
    return run.status if run else None


@shared_task
def graded_runs_reap_task() -> int:
    return graded_runs_reap()


@shared_task
def graded_runs_reconcile_task() -> int:
    return graded_runs_reconcile()
