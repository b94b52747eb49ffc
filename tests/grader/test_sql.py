"""topdown.sql: the plain-SQL reads make the instances the ORM would have made."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.utils import timezone

from grader import access, staff_selectors, submissions
from grader.models import RunStatus, Submission
from tests.factories import UserFactory
from tests.grader.factories import (
    AssignmentFactory,
    BaselineFactory,
    BaselineRunFactory,
    SubmissionFactory,
)
from topdown import sql

pytestmark = pytest.mark.django_db


def field_values(instance) -> dict[str, object]:
    return {
        field.attname: getattr(instance, field.attname) for field in instance._meta.concrete_fields
    }


def test_the_submission_read_gives_what_the_orm_gives(cast):
    assignment = AssignmentFactory(chapter=cast.questionnaire.chapter)
    submission = SubmissionFactory(
        assignment=assignment,
        user=cast.student,
        scored=True,
        confusion_matrix=[[3, 1], [0, 4]],
        metrics=[{"epoch": 1, "loss": 0.5}],
    )
    expected = (
        type(submission)
        .objects.select_related("assignment__chapter__course", "assignment__dataset", "user")
        .get(pk=submission.pk)
    )

    course_access, read = access.submission_get_for_user(
        user=cast.student, submission_id=submission.pk
    )

    assert field_values(read) == field_values(expected)
    assert field_values(read.assignment) == field_values(expected.assignment)
    assert field_values(read.assignment.dataset) == field_values(expected.assignment.dataset)
    assert read.assignment.chapter.course == expected.assignment.chapter.course
    assert read.user == cast.student
    assert course_access.enrolment.user_id == cast.student.pk and course_access.is_student


def test_a_superuser_outside_the_course_reads_as_its_instructor(cast):
    assignment = AssignmentFactory(chapter=cast.questionnaire.chapter)
    submission = SubmissionFactory(assignment=assignment, user=cast.student)

    course_access, _ = access.submission_get_for_user(
        user=UserFactory(is_superuser=True), submission_id=submission.pk
    )

    assert course_access.enrolment is None and course_access.is_instructor


def test_the_latest_regrade_is_read_whole(cast):
    assignment = AssignmentFactory(chapter=cast.questionnaire.chapter)
    submission = SubmissionFactory(assignment=assignment, user=cast.student, scored=True)
    submissions.submissions_regrade(assignment=assignment, requested_by=cast.instructor)
    expected = submission.regrades.order_by("-created_at", "-id").first()

    latest = staff_selectors.regrade_latest(submission=submission)

    assert field_values(latest) == field_values(expected)
    assert latest.created_at <= timezone.now()


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 11, 27, 1, 30, 17, 123457, tzinfo=UTC),
        datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2099, 6, 30, 12, 0, 0, 1, tzinfo=UTC),
    ],
)
def test_timestamps_read_as_integers_are_the_orms_to_the_microsecond(cast, moment):
    submission = SubmissionFactory(
        assignment=AssignmentFactory(chapter=cast.questionnaire.chapter),
        user=cast.student,
        started_at=moment,
        finished_at=None,
    )
    columns = sql.TimestampColumns(Submission, "s", only=("id", "started_at", "finished_at"))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {columns.sql} FROM {sql.table(Submission)} s WHERE s.id = %s",
            [submission.pk],
        )
        read = columns.instance(cursor.fetchone())

    expected = Submission.objects.get(pk=submission.pk)
    assert read.started_at == expected.started_at == moment
    assert read.started_at.utcoffset() == expected.started_at.utcoffset()
    assert read.finished_at is None


def test_the_result_pages_read_finds_the_latest_regrade(cast):
    assignment = AssignmentFactory(chapter=cast.questionnaire.chapter)
    submission = SubmissionFactory(assignment=assignment, user=cast.student, scored=True)
    for score in (0.25, 0.5):
        Submission.objects.filter(pk=submission.pk).update(
            status="scored", public_score=score, finished_at=timezone.now()
        )
        submissions.submissions_regrade(assignment=assignment, requested_by=cast.instructor)
    never = SubmissionFactory(assignment=assignment, user=cast.student, scored=True)
    expected = staff_selectors.regrade_latest(submission=submission)

    page = access.submission_page_get_for_user(user=cast.student, submission_id=submission.pk)
    none = access.submission_page_get_for_user(user=cast.student, submission_id=never.pk)

    assert page.latest_regrade is not None and page.latest_regrade.previous_public_score == 0.5
    assert field_values(page.latest_regrade) == field_values(expected)
    assert field_values(page.submission) == field_values(
        access.submission_get_for_user(user=cast.student, submission_id=submission.pk)[1]
    )
    assert none.latest_regrade is None


def test_the_result_pages_read_gives_the_baselines_scores_as_their_own_query(cast):
    assignment = AssignmentFactory(chapter=cast.questionnaire.chapter)
    now = timezone.now()
    for name, runs in (
        ("zeta", [(0.4, 3), (0.7, 1)]),  # the latest scored run counts: 0.7
        ("alpha", [(0.9, 2)]),
        ("stale", [(0.99, 1)]),  # its code changed since: no current run
    ):
        baseline = BaselineFactory(assignment=assignment, name=name)
        for score, minutes_ago in runs:
            BaselineRunFactory(
                baseline=baseline,
                status=RunStatus.SCORED,
                public_score=score,
                finished_at=now - timedelta(minutes=minutes_ago),
            )
        if name == "stale":
            baseline.code = "print('changed')"
            baseline.save()
    submission = SubmissionFactory(assignment=assignment, user=cast.student, scored=True)
    bare = SubmissionFactory(
        assignment=AssignmentFactory(chapter=cast.questionnaire.chapter), user=cast.student
    )

    page = access.submission_page_get_for_user(user=cast.student, submission_id=submission.pk)

    assert page.baseline_scores == submissions.baseline_scores(assignment=assignment)
    assert page.baseline_scores == [("alpha", 0.9), ("zeta", 0.7)]
    assert (
        access.submission_page_get_for_user(
            user=cast.student, submission_id=bare.pk
        ).baseline_scores
        == []
    )


def test_the_staff_lists_dates_are_the_orms(cast):
    assignment = AssignmentFactory(chapter=cast.questionnaire.chapter)
    regraded = SubmissionFactory(assignment=assignment, user=cast.student, scored=True)
    submissions.submissions_regrade(assignment=assignment, requested_by=cast.instructor)
    fresh = SubmissionFactory(assignment=assignment, user=cast.other_student, scored=True)

    page = staff_selectors.submission_list_page(assignment=assignment, page=1, per_page=10)

    rows = {row.pk: row for row in page}
    for submission in (regraded, fresh):
        expected = Submission.objects.get(pk=submission.pk)
        assert rows[submission.pk].created_at == expected.created_at
        assert rows[submission.pk].created_at.utcoffset() == expected.created_at.utcoffset()
    latest = staff_selectors.regrade_latest(submission=regraded)
    assert latest is not None and rows[regraded.pk].regraded_at == latest.created_at
    assert rows[fresh.pk].regraded_at is None


def test_the_staff_lists_read_gives_the_baselines_latest_runs(cast):
    assignment = AssignmentFactory(chapter=cast.questionnaire.chapter)
    now = timezone.now()
    ran = BaselineFactory(assignment=assignment, name="ran")
    for score, minutes_ago in ((0.4, 5), (0.6, 1)):
        BaselineRunFactory(
            baseline=ran,
            status=RunStatus.SCORED,
            public_score=score,
            created_at=now - timedelta(minutes=minutes_ago),
            finished_at=now - timedelta(minutes=minutes_ago) + timedelta(microseconds=7),
        )
    BaselineFactory(assignment=assignment, name="a never run")

    _, _, baselines = access.assignment_list_get_for_staff(
        user=cast.ta, assignment_slug=assignment.slug
    )

    assert baselines == staff_selectors.baselines_with_latest_run(assignment=assignment)
    assert [(b.name, b.run_public_score) for b in baselines] == [
        ("a never run", None),
        ("ran", 0.6),
    ]
    assert baselines[1].run_finished_at.utcoffset() == timedelta(0)
