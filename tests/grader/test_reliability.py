"""A real Celery worker, real Redis and PostgreSQL: submissions survive workers and brokers dying."""

from __future__ import annotations

import os
import signal
import time

import pytest
import redis
from django.conf import settings
from django.db import connection

from grader import submissions
from grader.models import RunStatus, Submission
from tests.factories import UserFactory
from tests.grader.factories import AssignmentFactory
from tests.processes import celery_worker_args, running, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PERFECT = "import numpy as np, topdown_task as tt\ntt.save_predictions(np.arange(12) % 3)\n"
SLOW = "import time\ntime.sleep(6)\n" + PERFECT
LEASE_SECONDS = 3


@pytest.fixture
def worker_env(settings):
    settings.GRADER_LEASE_SECONDS = LEASE_SECONDS
    db = connection.settings_dict
    return {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "GRADER_LEASE_SECONDS": str(LEASE_SECONDS),
    }


@pytest.fixture
def assignment(db):
    return AssignmentFactory(wall_seconds=30, memory_mb=512)


def worker(env, tmp_path, name):
    args = [*celery_worker_args(f"{name}@%h"), "--queues=default,cpu,gpu"]
    return running(args, env=env, log=tmp_path / f"{name}.log")


def status_of(submission: Submission) -> str:
    submission.refresh_from_db()
    return submission.status


def submit(assignment, code: str) -> Submission:
    return submissions.submission_create(
        user=UserFactory(), assignment=assignment, filename="main.py", content=code.encode()
    )


def test_a_submission_goes_from_queued_to_scored_through_a_worker(worker_env, assignment, tmp_path):
    with worker(worker_env, tmp_path, "w1"):
        submission = submit(assignment, PERFECT)
        wait_for(lambda: status_of(submission) == RunStatus.SCORED, timeout=60, what="scoring")
    assert submission.public_score == 1.0 and submission.attempts == 1


def test_a_worker_killed_mid_job_loses_nothing_and_grades_once(worker_env, assignment, tmp_path):
    with worker(worker_env, tmp_path, "doomed") as doomed:
        submission = submit(assignment, SLOW)
        wait_for(lambda: status_of(submission) == RunStatus.RUNNING, timeout=60, what="running")
        os.killpg(doomed.pid, signal.SIGKILL)
        doomed.wait()

    time.sleep(LEASE_SECONDS + 1)
    with worker(worker_env, tmp_path, "rescuer"):
        assert submissions.graded_runs_reap() == 1  # beat does this every 30 s in production
        wait_for(lambda: status_of(submission) == RunStatus.SCORED, timeout=90, what="rescue")
    assert submission.public_score == 1.0
    assert submission.attempts == 2 and submission.infrastructure_retries == 1
    assert not submission.counts_against_limit  # the platform's failure is not the student's


def test_a_broker_flush_loses_no_submission(worker_env, assignment, tmp_path):
    queued = [submit(assignment, PERFECT) for _ in range(3)]
    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()  # the broker forgets everything

    with worker(worker_env, tmp_path, "after-flush"):
        time.sleep(2)
        assert all(status_of(s) == RunStatus.QUEUED for s in queued)  # nothing arrived
        Submission.objects.update(queued_at=Submission.objects.first().queued_at.replace(year=2000))
        assert submissions.graded_runs_reconcile() == 3  # beat does this every minute
        wait_for(
            lambda: all(status_of(s) == RunStatus.SCORED for s in queued),
            timeout=90,
            what="every submission scored after the flush",
        )


def test_a_task_delivered_twice_grades_once(worker_env, assignment, tmp_path):
    from grader.tasks import grade_submission_task

    with worker(worker_env, tmp_path, "dup"):
        submission = submit(assignment, PERFECT)
        grade_submission_task.apply_async(args=[submission.pk], queue="cpu")  # the duplicate
        wait_for(lambda: status_of(submission) == RunStatus.SCORED, timeout=60, what="scoring")
        time.sleep(2)  # let the duplicate arrive and find the run taken
    submission.refresh_from_db()
    assert submission.attempts == 1
