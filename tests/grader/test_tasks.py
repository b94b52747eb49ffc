"""The grading tasks ride out a database restart: a claim that fails with a connection error is
retried (with backoff) instead of being acknowledged and left for the reconciler."""

from __future__ import annotations

import pytest
from django.db import OperationalError

from grader import submissions, tasks
from grader.models import RunStatus
from tests.factories import UserFactory
from tests.grader.factories import AssignmentFactory

PERFECT = "import numpy as np, topdown_task as tt\ntt.save_predictions(np.arange(12) % 3)\n"


@pytest.mark.django_db
def test_a_grading_task_retries_when_the_database_is_briefly_away(monkeypatch):
    submission = submissions.submission_create(
        user=UserFactory(),
        assignment=AssignmentFactory(wall_seconds=30, memory_mb=512),
        filename="main.py",
        content=PERFECT.encode(),
    )
    real_grade = tasks.submission_grade
    calls = []

    def database_restarting_once(**kwargs):
        calls.append(kwargs["submission_id"])
        if len(calls) == 1:
            raise OperationalError("server closed the connection unexpectedly")
        return real_grade(**kwargs)

    monkeypatch.setattr(tasks, "submission_grade", database_restarting_once)

    # Eager apply runs the retry inline (its countdown skipped), as a worker would later.
    result = tasks.grade_submission_task.apply(args=[submission.pk])

    assert calls == [submission.pk, submission.pk]
    assert result.get() == RunStatus.SCORED
    submission.refresh_from_db()
    assert submission.status == RunStatus.SCORED and submission.attempts == 1


def test_both_grading_tasks_retry_on_connection_errors_only():
    for task in (tasks.grade_submission_task, tasks.grade_baseline_run_task):
        assert set(task.autoretry_for) == {OperationalError, tasks.InterfaceError}
        assert task.max_retries == 12
