"""Sharing the workers fairly before a deadline: GPU time per student, and who goes first.

Two rules, both over a rolling 24 hours like the daily submission limit:

- A GPU assignment may give each student ``gpu_seconds_per_day`` of GPU time. A submission is
  refused once it is spent, and a run never gets more wall time than its student has left.
- A student's first submission of the day is queued ahead of everyone's later ones (broker
  priority), so one student's tenth retry never delays another's first try.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import DurationField, ExpressionWrapper, F, Sum, Value
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from accounts.models import User
from grader.models import Assignment, Submission

WINDOW = timedelta(days=1)
# Kombu's Redis transport keeps one list per step (0, 3, 6, 9) and pops lower numbers first;
# tasks sent without a priority land in 0, with the first submissions of the day.
PRIORITY_FIRST_OF_DAY = 0
PRIORITY_LATER = 6


def gpu_seconds_used(*, user: User, assignment: Assignment, now: datetime) -> float:
    """GPU time the student's runs on ``assignment`` took in the last 24 hours (running ones so
    far). Only the part of a run inside the window counts."""
    since = now - WINDOW
    used = ExpressionWrapper(
        Coalesce(F("finished_at"), Value(now)) - Greatest(F("started_at"), Value(since)),
        output_field=DurationField(),
    )
    total = (
        Submission.objects.filter(
            user=user,
            assignment=assignment,
            started_at__isnull=False,
            counts_against_limit=True,
        )
        .exclude(finished_at__lt=since)
        .aggregate(total=Sum(used))["total"]
    )
    return max(total.total_seconds(), 0.0) if total else 0.0


def gpu_seconds_left(*, user: User, assignment: Assignment, now: datetime) -> float | None:
    """``None`` when the assignment sets no GPU budget (or runs on CPUs)."""
    if not (assignment.needs_gpu and assignment.gpu_seconds_per_day):
        return None
    used = gpu_seconds_used(user=user, assignment=assignment, now=now)
    return max(assignment.gpu_seconds_per_day - used, 0.0)


def submission_priority(*, submission: Submission) -> int:
    """Ahead of the queue when it is the student's first submission in 24 hours."""
    earlier = Submission.objects.filter(
        user_id=submission.user_id,
        created_at__gte=submission.created_at - WINDOW,
        created_at__lt=submission.created_at,
    ).exists()
    return PRIORITY_LATER if earlier else PRIORITY_FIRST_OF_DAY


def run_wall_seconds(*, submission: Submission, assignment: Assignment) -> float | None:
    """The wall time a starting run may use: the assignment's limit, or less when the student's
    GPU budget has less left (``None``: the assignment's limit applies as it is)."""
    left = gpu_seconds_left(
        user=submission.user, assignment=assignment, now=submission.started_at or timezone.now()
    )
    if left is None:
        return None
    return max(min(float(assignment.wall_seconds), left), 1.0)
