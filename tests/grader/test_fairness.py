"""GPU-seconds per student per day, and first submissions of the day ahead of later ones."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from grader import fairness, submissions
from grader.models import RunStatus, Submission
from grader.submissions import SubmissionRefused
from tests.factories import UserFactory
from tests.grader.factories import AssignmentFactory, SubmissionFactory
from tests.processes import celery_worker_args, running, wait_for

PERFECT = "import numpy as np, topdown_task as tt\ntt.save_predictions(np.arange(12) % 3)\n"


def gpu_run(*, user, assignment, started_s_ago: float, took_s: float | None, **fields):
    now = timezone.now()
    started = now - timedelta(seconds=started_s_ago)
    return SubmissionFactory(
        user=user,
        assignment=assignment,
        status=RunStatus.SCORED if took_s is not None else RunStatus.RUNNING,
        started_at=started,
        finished_at=started + timedelta(seconds=took_s) if took_s is not None else None,
        lease_expires_at=None if took_s is not None else now + timedelta(minutes=2),
        worker_id="" if took_s is not None else "w@host",
        public_score=0.5 if took_s is not None else None,
        private_score=0.5 if took_s is not None else None,
        **fields,
    )


@pytest.fixture
def gpu_assignment(db):
    return AssignmentFactory(needs_gpu=True, gpu_seconds_per_day=60, wall_seconds=600)


@pytest.mark.django_db
def test_gpu_time_counts_finished_and_running_runs_inside_the_window(gpu_assignment):
    student = UserFactory()
    gpu_run(user=student, assignment=gpu_assignment, started_s_ago=100, took_s=20)
    gpu_run(user=student, assignment=gpu_assignment, started_s_ago=10, took_s=None)  # running
    # half of this one lies before the 24-hour window
    gpu_run(user=student, assignment=gpu_assignment, started_s_ago=86_400 + 15, took_s=30)
    gpu_run(user=UserFactory(), assignment=gpu_assignment, started_s_ago=50, took_s=40)  # not hers

    used = fairness.gpu_seconds_used(user=student, assignment=gpu_assignment, now=timezone.now())

    assert used == pytest.approx(20 + 10 + 15, abs=1)


@pytest.mark.django_db
def test_a_student_who_spent_her_gpu_seconds_is_refused_with_a_reason(gpu_assignment):
    student = UserFactory()
    gpu_run(user=student, assignment=gpu_assignment, started_s_ago=300, took_s=60)

    with pytest.raises(SubmissionRefused, match="used your 60 GPU-seconds"):
        submissions.submission_create(
            user=student, assignment=gpu_assignment, filename="main.py", content=PERFECT.encode()
        )
    # another student still has her whole budget
    assert submissions.submission_create(
        user=UserFactory(), assignment=gpu_assignment, filename="main.py", content=PERFECT.encode()
    )


@pytest.mark.django_db
def test_platform_failures_give_their_gpu_time_back(gpu_assignment):
    student = UserFactory()
    gpu_run(
        user=student,
        assignment=gpu_assignment,
        started_s_ago=300,
        took_s=60,
        counts_against_limit=False,
    )
    assert fairness.gpu_seconds_left(
        user=student, assignment=gpu_assignment, now=timezone.now()
    ) == pytest.approx(60, abs=1)


@pytest.mark.django_db
def test_a_run_gets_no_more_wall_time_than_the_budget_left(gpu_assignment):
    student = UserFactory()
    gpu_run(user=student, assignment=gpu_assignment, started_s_ago=300, took_s=45)
    starting = gpu_run(user=student, assignment=gpu_assignment, started_s_ago=0, took_s=None)

    wall = fairness.run_wall_seconds(submission=starting, assignment=gpu_assignment)

    assert wall == pytest.approx(15, abs=1)


@pytest.mark.django_db
def test_without_a_budget_the_assignment_limits_apply_unchanged():
    cpu = AssignmentFactory(needs_gpu=False, gpu_seconds_per_day=60)
    unlimited = AssignmentFactory(needs_gpu=True, gpu_seconds_per_day=0)
    for assignment in (cpu, unlimited):
        run = gpu_run(user=UserFactory(), assignment=assignment, started_s_ago=0, took_s=None)
        assert fairness.run_wall_seconds(submission=run, assignment=assignment) is None


@pytest.mark.django_db
def test_only_the_first_submission_in_24_hours_is_ahead_of_the_queue():
    student = UserFactory()
    assignment = AssignmentFactory()
    yesterday = SubmissionFactory(user=student, assignment=assignment)
    Submission.objects.filter(pk=yesterday.pk).update(
        created_at=timezone.now() - timedelta(hours=25)
    )
    first = SubmissionFactory(user=student, assignment=assignment)
    second = SubmissionFactory(user=student, assignment=assignment)

    assert fairness.submission_priority(submission=first) == fairness.PRIORITY_FIRST_OF_DAY
    assert fairness.submission_priority(submission=second) == fairness.PRIORITY_LATER


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_grades_another_students_first_try_before_ones_retries(settings, tmp_path):
    # Given one student's three submissions and then another's first, queued with no worker up
    assignment = AssignmentFactory(wall_seconds=30, memory_mb=512)
    eager, patient = UserFactory(username="eager"), UserFactory(username="patient")
    order = []
    for user in (eager, eager, eager, patient):
        order.append(
            submissions.submission_create(
                user=user, assignment=assignment, filename="main.py", content=PERFECT.encode()
            )
        )
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
    }
    # When one worker process takes them
    with running(celery_worker_args("fair@%h"), env=env, log=tmp_path / "worker.log"):
        wait_for(
            lambda: Submission.objects.filter(status=RunStatus.SCORED).count() == 4,
            timeout=90,
            what="all four scored",
        )
    # Then the second student's first try ran right after the first student's first
    started = [s.user.username for s in Submission.objects.order_by("started_at")]
    assert started == ["eager", "patient", "eager", "eager"], started
