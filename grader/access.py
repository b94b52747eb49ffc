"""Who may see or change assignments and submissions. Views call these, never check roles."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import connection
from django.http import Http404

from accounts.models import User
from courses.access import (
    NOT_A_MEMBER,
    CourseAccess,
    course_access_for_user,
    course_access_from,
    course_get_for_instructor,
    course_get_for_member,
)
from courses.models import STAFF_ROLES, Chapter, Course, Enrolment
from grader import live, staff_selectors, submissions
from grader.authoring import datasets_for_course
from grader.models import (
    Assignment,
    Baseline,
    BaselineRun,
    Dataset,
    Regrade,
    RunStatus,
    Submission,
)
from topdown import sql


def assignment_get_for_user(
    *, user: User, assignment_slug: str, with_dataset: bool = False
) -> tuple[CourseAccess, Assignment]:
    """Members of the assignment's course may see it; others learn nothing about it.

    With ``with_dataset``, a draft that has no dataset yet is a 404 too (for pages that show
    scores or data: leaderboard, history, samples).
    """
    access, assignment, _ = _assignment_with_access(user=user, assignment_slug=assignment_slug)
    if not access.is_member:
        raise PermissionDenied(NOT_A_MEMBER)
    if not access.is_staff and not (assignment.published and assignment.chapter.published):
        raise Http404("No such assignment.")
    if with_dataset and assignment.dataset_id is None:
        raise Http404("This assignment is a draft without a dataset yet.")
    return access, assignment


LEAN_DEFERRED = (
    "code",
    "log",
    "metrics",
    "per_class",
    "confusion_matrix",
    "assignment__description",
    "assignment__starter_code",
)


def submission_get_for_user(
    *,
    user: User,
    submission_id: int,
    write: bool = False,
) -> tuple[CourseAccess, Submission]:
    """Students see their own submissions; course staff see everyone's and change none.

    Whoever may see a submission may cancel it while it is queued or running (the student, or
    staff stopping runaway work): cancelling needs no ``write``.

    Another student's submission is a 404, not a 403: its existence is not theirs to know.
    """
    access, submission, _ = _submission_with_access(user=user, submission_id=submission_id)
    _submission_check(access, submission, user=user, write=write)
    return access, submission


@dataclass(frozen=True)
class SubmissionPage:
    """What the result page reads with the submission, in the same statement."""

    access: CourseAccess
    submission: Submission
    latest_regrade: Regrade | None  # as staff_selectors.regrade_latest finds it
    baseline_scores: list[tuple[str, float]]  # as submissions.baseline_scores gives them


def submission_page_get_for_user(*, user: User, submission_id: int) -> SubmissionPage:
    """``submission_get_for_user`` for the result page: with the submission's latest regrade
    and its assignment's baselines' scores, read by the same statement."""
    access, submission, extra = _submission_with_access(
        user=user, submission_id=submission_id, for_page=True
    )
    _submission_check(access, submission, user=user, write=False)
    regrade, scores = extra
    return SubmissionPage(access, submission, regrade, scores)


def _submission_check(
    access: CourseAccess, submission: Submission, *, user: User, write: bool
) -> None:
    if not access.is_member:
        raise PermissionDenied(NOT_A_MEMBER)
    if submission.user_id != user.pk:
        if not access.is_staff:
            raise Http404("No such submission.")
        if write:
            raise PermissionDenied("Only the student who submitted this may change it.")


STAFF_ONLY = "Only the course's instructors and teaching assistants may do this."


def assignment_get_for_staff(
    *, user: User, assignment_slug: str
) -> tuple[CourseAccess, Assignment]:
    """The course's instructors and TAs (and superusers): all submissions, regrades, exports.

    A non-member gets a 404 (they learn nothing about the course); a student a 403.
    """
    access, assignment, _ = _assignment_with_access(user=user, assignment_slug=assignment_slug)
    _staff_check(access)
    return access, assignment


def assignment_list_get_for_staff(
    *, user: User, assignment_slug: str
) -> tuple[CourseAccess, Assignment, list[staff_selectors.BaselineLatestRun]]:
    """``assignment_get_for_staff`` for the staff's list, with the assignment's baselines and
    their latest runs (``staff_selectors.baselines_with_latest_run``) read by the same
    statement."""
    access, assignment, baselines = _assignment_with_access(
        user=user, assignment_slug=assignment_slug, with_baselines=True
    )
    _staff_check(access)
    return access, assignment, baselines


def _staff_check(access: CourseAccess) -> None:
    if not access.is_member:
        raise Http404("No such assignment.")
    if not access.is_staff:
        raise PermissionDenied(STAFF_ONLY)


def submission_get_for_staff(*, user: User, submission_id: int) -> tuple[CourseAccess, Submission]:
    """A submission for a staff action (override). Its own student gets a 403; anyone else who
    is not course staff a 404, as in ``submission_get_for_user``.
    """
    try:
        submission = (
            Submission.objects.select_related(
                "assignment__chapter__course", "assignment__dataset", "user"
            )
            .defer(*LEAN_DEFERRED)
            .get(pk=submission_id)
        )
    except Submission.DoesNotExist:
        raise Http404("No such submission.") from None
    access = course_access_for_user(
        user=user, course_slug=submission.assignment.chapter.course.slug
    )
    if not access.is_staff:
        if submission.user_id == user.pk:
            raise PermissionDenied(STAFF_ONLY)
        raise Http404("No such submission.")
    return access, submission


def queue_courses_for_staff(*, user: User) -> set[int] | None:
    """Ids of the courses whose grading queue the user may watch: those they teach.

    ``None`` for superusers, who see every course. Whoever teaches no course gets a 403.
    """
    if user.is_superuser:
        return None
    course_ids = set(
        Enrolment.objects.filter(user=user, role__in=STAFF_ROLES).values_list(
            "course_id", flat=True
        )
    )
    if not course_ids:
        raise PermissionDenied("Only instructors and teaching assistants may see the queue.")
    return course_ids


def assignment_student_get_for_user(
    *, user: User, assignment_slug: str, student_username: str | None = None
) -> tuple[CourseAccess, Assignment, User]:
    """Whose work on an assignment ``user`` may look through: their own; course staff may name
    any student of the course. Naming anyone else without being staff is a 404, as for their
    submissions."""
    access, assignment = assignment_get_for_user(
        user=user, assignment_slug=assignment_slug, with_dataset=True
    )
    if not student_username or student_username == user.get_username():
        return access, assignment, user
    if not access.is_staff:
        raise Http404("No such student.")
    enrolment = (
        Enrolment.objects.select_related("user")
        .filter(course=access.course, user__username=student_username)
        .exclude(role__in=STAFF_ROLES)
        .first()
    )
    if enrolment is None:
        raise Http404("No such student in this course.")
    return access, assignment, enrolment.user


def submission_pair_get_for_user(
    *, user: User, submission_id: int, other_id: int
) -> tuple[CourseAccess, Submission, Submission]:
    """Two submissions to compare: each visible to ``user`` (see ``submission_get_for_user``),
    both by the same student for the same assignment; anything else is a 404."""
    access, submission = submission_get_for_user(user=user, submission_id=submission_id)
    _, other = submission_get_for_user(user=user, submission_id=other_id)
    if (other.user_id, other.assignment_id) != (submission.user_id, submission.assignment_id):
        raise Http404("These submissions are not two versions of the same work.")
    return access, submission, other


def leaderboard_enrolment_get_for_user(
    *, user: User, assignment_slug: str
) -> tuple[CourseAccess, Assignment, Enrolment]:
    """The student's own enrolment, to choose how they appear on the course's leaderboards.

    Only students are ranked: staff (and superusers without an enrolment) get a 403.
    """
    access, assignment = assignment_get_for_user(user=user, assignment_slug=assignment_slug)
    if access.enrolment is None or not access.is_student:
        raise PermissionDenied("Only the course's students appear on its leaderboards.")
    return access, assignment, access.enrolment


def submission_live_row_for_user(
    *, user: User, submission_id: int, log_from: int, metrics_from: int = 0
) -> Mapping[str, Any]:
    """What the live page polls (``grader.live.submission_live_row``), if ``user`` may see it.

    The student's own run needs no second query. Anyone else must be staff of its course: the
    same answer as ``submission_get_for_user`` (404 for another student, 403 for a stranger).
    A student who has left the course still sees their own run's progress.
    """
    row = live.submission_live_row(
        submission_id=submission_id, log_from=log_from, metrics_from=metrics_from
    )
    if row is None:
        raise Http404("No such submission.")
    if row["user_id"] != user.pk:
        access = course_get_for_member(user=user, course_slug=row["course_slug"])
        if not access.is_staff:
            raise Http404("No such submission.")
    return row


# --- The reads behind the functions above, in plain SQL (see topdown.sql) -----------------------
#
# The pages call these on every view: one statement finds the assignment (or the submission and
# its assignment) with its chapter, course and dataset, and the user's enrolment in the course.


def _assignment_joins() -> str:
    """Joins the assignment ``a``'s chapter, course and dataset, and the enrolment in the course
    of the user given as the statement's first parameter."""
    return (
        f" JOIN {sql.table(Chapter)} ch ON ch.id = a.chapter_id"
        f" JOIN {sql.table(Course)} co ON co.id = ch.course_id"
        f" LEFT JOIN {sql.table(Dataset)} d ON d.id = a.dataset_id"
        f" LEFT JOIN {sql.table(Enrolment)} e ON e.course_id = co.id AND e.user_id = %s"
    )


# Columns no grader page shows: left deferred (the ORM loads one if something reads it). Each
# timestamp costs the driver's Python parsing, and the chapter's text is a page long.
NOT_READ = ("created_at", "updated_at")


def _columns_without(
    model: type[Any], alias: str, without: tuple[str, ...] = NOT_READ
) -> sql.Columns[Any]:
    return sql.TimestampColumns(model, alias, without=without)


def _assignment_columns() -> tuple[sql.Columns[Any], ...]:
    """What ``_assignment_joins`` reads: the assignment, chapter, course, dataset, enrolment."""
    return (
        sql.TimestampColumns(Assignment, "a"),  # its updated_at names the cached leaderboard
        _columns_without(Chapter, "ch", ("body", *NOT_READ)),
        _columns_without(Course, "co", ("description", *NOT_READ)),
        _columns_without(Dataset, "d"),
        _columns_without(Enrolment, "e"),
    )


def _assignment_attach(
    assignment: Assignment, chapter: Chapter, course: Course, dataset: Dataset | None
) -> None:
    """Link the instances one read made, as ``select_related`` would have."""
    sql.attach(chapter, "course", course)
    sql.attach(assignment, "chapter", chapter)
    sql.attach(assignment, "dataset", dataset)


@lru_cache(maxsize=2)
def _assignment_read(*, with_baselines: bool) -> sql.Read:
    columns = _assignment_columns()
    baselines = (
        f", {staff_selectors.baselines_with_latest_run_sql('a.id')}" if with_baselines else ""
    )
    statement = (
        f"SELECT {', '.join(c.sql for c in columns)}{baselines}"  # noqa: S608 - model names
        f" FROM {sql.table(Assignment)} a{_assignment_joins()}"
        " WHERE a.slug = %s"
    )
    return sql.Read(statement, columns)


def _assignment_with_access(
    *, user: User, assignment_slug: str, with_baselines: bool = False
) -> tuple[CourseAccess, Assignment, list[staff_selectors.BaselineLatestRun]]:
    """The assignment with its chapter, course and dataset, and what ``user`` may do in its
    course (not checked here); with ``with_baselines``, its baselines and their latest runs.
    An unknown slug is a 404."""
    read = _assignment_read(with_baselines=with_baselines)
    with connection.cursor() as cursor:
        cursor.execute(read.statement, [user.pk, assignment_slug])
        row = cursor.fetchone()
    if row is None:
        raise Http404("No such assignment.")
    assignment, chapter, course, dataset, enrolment = _instances(read, row)
    _assignment_attach(assignment, chapter, course, dataset)
    baselines = staff_selectors.baselines_with_latest_run_from_db(row[-1]) if with_baselines else []
    return course_access_from(user=user, course=course, enrolment=enrolment), assignment, baselines


def _instances(read: sql.Read, row: Sequence[Any]) -> list[Any]:
    """Each model's instance in ``row``, as ``sql.Read.row`` makes them."""
    found: list[Any] = []
    start = 0
    for columns in read.columns:
        found.append(columns.instance(row, start))
        start += len(columns)
    return found


@lru_cache(maxsize=2)
def _submission_read(*, for_page: bool) -> sql.Read:
    columns: tuple[sql.Columns[Any], ...] = (
        sql.TimestampColumns(Submission, "s"),
        _columns_without(User, "u", ("password", "last_login", "date_joined")),
        *_assignment_columns(),
        # The pass rule's baseline, by name (the result page's verdict): not its code.
        sql.TimestampColumns(Baseline, "pb", only=("id", "assignment", "name")),
    )
    joins = (
        f" JOIN {sql.table(User)} u ON u.id = s.user_id"
        f" JOIN {sql.table(Assignment)} a ON a.id = s.assignment_id"
        f"{_assignment_joins()}"
        f" LEFT JOIN {sql.table(Baseline)} pb ON pb.id = a.pass_baseline_id"
    )
    extra = ""
    if for_page:  # the latest regrade, as staff_selectors.regrade_latest orders them
        columns = (*columns, sql.TimestampColumns(Regrade, "rg"))
        latest = (
            f"SELECT l.id FROM {sql.table(Regrade)} l"  # noqa: S608 - names from the models
            " WHERE l.submission_id = s.id ORDER BY l.created_at DESC, l.id DESC LIMIT 1"
        )
        joins += f" LEFT JOIN {sql.table(Regrade)} rg ON rg.id = ({latest})"
        extra = f", {submissions.baseline_scores_sql('a.id')}"
    statement = (
        f"SELECT {', '.join(c.sql for c in columns)}{extra}"  # noqa: S608 - names from the models
        f" FROM {sql.table(Submission)} s{joins} WHERE s.id = %s"
    )
    return sql.Read(statement, columns)


def _submission_with_access(
    *, user: User, submission_id: int, for_page: bool = False
) -> tuple[CourseAccess, Submission, tuple[Regrade | None, list[tuple[str, float]]]]:
    """The submission with its student, assignment, chapter, course and dataset, and what
    ``user`` may do in its course (not checked here); with ``for_page``, its latest regrade and
    its baselines' scores too. An unknown id is a 404."""
    read = _submission_read(for_page=for_page)
    params: list[Any] = [user.pk, submission_id]
    with connection.cursor() as cursor:
        # The baselines' scores come first in the statement, before the joins' parameters.
        cursor.execute(read.statement, [RunStatus.SCORED, *params] if for_page else params)
        row = cursor.fetchone()
    if row is None:
        raise Http404("No such submission.")
    found = _instances(read, row)
    submission, student, assignment, chapter, course, dataset, enrolment, pass_baseline = found[:8]
    _assignment_attach(assignment, chapter, course, dataset)
    sql.attach(assignment, "pass_baseline", pass_baseline)
    sql.attach(submission, "assignment", assignment)
    sql.attach(submission, "user", student)
    regrade, scores = None, []
    if for_page:
        regrade = found[8]
        if regrade is not None:
            sql.attach(regrade, "submission", submission)
        scores = submissions.baseline_scores_from_db(row[-1])
    return (
        course_access_from(user=user, course=course, enrolment=enrolment),
        submission,
        (regrade, scores),
    )


# --- Authoring: changing assignments, baselines and datasets is for instructors, not TAs -------

INSTRUCTORS_ONLY = "Only the course's instructors may change its content."


def chapter_get_for_instructor(
    *, user: User, course_slug: str, chapter_slug: str
) -> tuple[CourseAccess, Chapter]:
    """A chapter to add assignments to. TAs, students and outsiders get a 403 (as for every
    change to course content); an unknown chapter a 404."""
    course_access = course_get_for_instructor(user=user, course_slug=course_slug)
    try:
        chapter = Chapter.objects.get(course=course_access.course, slug=chapter_slug)
    except Chapter.DoesNotExist:
        raise Http404("No such chapter.") from None
    return course_access, chapter


def assignment_get_for_instructor(
    *, user: User, assignment_slug: str
) -> tuple[CourseAccess, Assignment]:
    """An assignment to edit, publish, or give baselines: the course's instructors only.

    A non-member (or a student, for a draft) learns nothing: 404. A student or TA of the
    course gets a 403: TAs review and grade, they do not change content.
    """
    try:
        assignment = Assignment.objects.select_related(
            "chapter__course", "dataset", "pass_baseline"
        ).get(slug=assignment_slug)
    except Assignment.DoesNotExist:
        raise Http404("No such assignment.") from None
    course_access = course_access_for_user(user=user, course_slug=assignment.chapter.course.slug)
    if not course_access.is_member:
        raise Http404("No such assignment.")
    visible = assignment.published and assignment.chapter.published
    if not course_access.is_staff and not visible:
        raise Http404("No such assignment.")
    if not course_access.is_instructor:
        raise PermissionDenied(INSTRUCTORS_ONLY)
    return course_access, assignment


def baseline_get_for_instructor(
    *, user: User, assignment_slug: str, baseline_id: int
) -> tuple[CourseAccess, Baseline]:
    course_access, assignment = assignment_get_for_instructor(
        user=user, assignment_slug=assignment_slug
    )
    try:
        baseline = Baseline.objects.get(pk=baseline_id, assignment=assignment)
    except Baseline.DoesNotExist:
        raise Http404("No such baseline.") from None
    baseline.assignment = assignment
    return course_access, baseline


def baseline_run_get_for_instructor(
    *, user: User, assignment_slug: str, run_id: int
) -> tuple[CourseAccess, BaselineRun]:
    course_access, assignment = assignment_get_for_instructor(
        user=user, assignment_slug=assignment_slug
    )
    try:
        run = BaselineRun.objects.select_related("baseline", "dataset").get(
            pk=run_id, baseline__assignment=assignment
        )
    except BaselineRun.DoesNotExist:
        raise Http404("No such baseline run.") from None
    run.baseline.assignment = assignment
    return course_access, run


def dataset_get_for_instructor(
    *, user: User, course_slug: str, dataset_id: int
) -> tuple[CourseAccess, Dataset]:
    """A dataset the course's instructors may look at and use: a built-in one, or one that an
    instructor of this course registered (see ``grader.authoring.datasets_for_course``)."""
    course_access = course_get_for_instructor(user=user, course_slug=course_slug)
    try:
        dataset = datasets_for_course(course=course_access.course).get(pk=dataset_id)
    except Dataset.DoesNotExist:
        raise Http404("No such dataset.") from None
    return course_access, dataset
