"""What course staff read about an assignment's submissions and the grading queue.

Each selector owns its ``select_related`` and subqueries so that a page's query count does not grow
with its rows (the tests pin the counts).
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, NamedTuple, cast

from django.core.cache import cache
from django.core.paginator import Page, Paginator
from django.db import connection
from django.db.models import (
    Count,
    DateTimeField,
    F,
    IntegerField,
    Max,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.expressions import OrderBy
from django.db.models.functions import Coalesce, TruncHour
from django.utils import timezone

from accounts.models import User
from courses.models import Enrolment, Role
from grader.live import WORKER_FRESH
from grader.metrics import Direction
from grader.models import (
    Assignment,
    Baseline,
    BaselineRun,
    FailureReason,
    Regrade,
    RunStatus,
    Submission,
    WorkerHeartbeat,
)
from topdown import sql

# Columns no list needs: they can be large (a log is up to 256 KB).
HEAVY_FIELDS = ("code", "log", "metrics", "per_class", "confusion_matrix")
# What the staff's list and its CSV export read of each submission, and nothing else.
LIST_FIELDS = (
    "created_at",
    "filename",
    "status",
    "failure_reason",
    "public_score",
    "private_score",
    "score_override",
    "override_comment",
    "user__username",
    "user__display_name",
)

SORTS: dict[str, tuple[str | OrderBy, str]] = {
    "newest": ("-created_at", "-id"),
    "oldest": ("created_at", "id"),
    "score_high": (F("graded_score").desc(nulls_last=True), "-id"),
    "score_low": (F("graded_score").asc(nulls_last=True), "-id"),
}


def _latest_regrade() -> QuerySet[Regrade]:
    return Regrade.objects.filter(submission=OuterRef("pk")).order_by("-created_at", "-id")


def submissions_for_staff(
    *,
    assignment: Assignment,
    status: str = "",
    student: str = "",
    score_min: float | None = None,
    score_max: float | None = None,
    sort: str = "newest",
) -> QuerySet[Submission]:
    """Every submission of the assignment, filtered and sorted, for course staff.

    ``graded_score`` is the score that counts (staff's override, else the measured public
    score); the score filters and sorts use it. ``previous_score``, ``previous_status`` and
    ``regraded_at`` come from the latest regrade, if any.
    """
    latest = _latest_regrade()
    submissions = (
        Submission.objects.filter(assignment=assignment)
        .select_related("user")
        .only(*LIST_FIELDS)
        .annotate(
            graded_score=Coalesce("score_override", "public_score"),
            previous_score=Subquery(latest.values("previous_public_score")[:1]),
            previous_status=Subquery(latest.values("previous_status")[:1]),
            regraded_at=Subquery(latest.values("created_at")[:1]),
        )
    )
    if status:
        submissions = submissions.filter(status=status)
    if student:
        submissions = submissions.filter(
            Q(user__username__icontains=student) | Q(user__display_name__icontains=student)
        )
    if score_min is not None:
        submissions = submissions.filter(graded_score__gte=score_min)
    if score_max is not None:
        submissions = submissions.filter(graded_score__lte=score_max)
    return submissions.order_by(*SORTS.get(sort, SORTS["newest"]))


class SubmissionListRow(NamedTuple):
    """One line of the staff's submissions list: plain values, so that the rendered line can be
    kept (``topdown.fragments``) until one of them changes. A named tuple: fifty frozen
    dataclasses took longer to make and to hash than the query took."""

    pk: int
    created_at: datetime
    filename: str
    username: str
    display_name: str
    status: str
    status_label: str
    failure_label: str  # empty unless the run failed
    public_score: float | None
    regraded_at: datetime | None
    previous_score: float | None
    previous_status: str | None
    score_override: float | None
    override_comment: str

    @property
    def student_name(self) -> str:
        return self.display_name or self.username

    @property
    def cancellable(self) -> bool:
        return self.status in (RunStatus.QUEUED, RunStatus.RUNNING)


_ROW_COLUMNS = (
    "pk",
    "created_at",
    "filename",
    "user__username",
    "user__display_name",
    "status",
    "failure_reason",
    "public_score",
    "regraded_at",
    "previous_score",
    "previous_status",
    "score_override",
    "override_comment",
)
_STATUS_LABELS: dict[str, str] = dict(RunStatus.choices)
_FAILURE_LABELS: dict[str, str] = dict(FailureReason.choices)


COUNT_CACHE_SECONDS = 30

# The list page in plain SQL (topdown.sql): the ORM took longer to compile its three subqueries
# than PostgreSQL took to run them. The same filters and sorts as ``submissions_for_staff``,
# which the CSV export reads (the tests hold the two to the same rows).
_LIST_SORTS = {
    "newest": "s.created_at DESC, s.id DESC",
    "oldest": "s.created_at ASC, s.id ASC",
    "score_high": "COALESCE(s.score_override, s.public_score) DESC NULLS LAST, s.id DESC",
    "score_low": "COALESCE(s.score_override, s.public_score) ASC NULLS LAST, s.id DESC",
}


def _latest_regrade_sql(column: str) -> str:
    return (
        f"(SELECT r.{sql.quote(column)} FROM {sql.table(Regrade)} r"  # noqa: S608 - model names
        " WHERE r.submission_id = s.id ORDER BY r.created_at DESC, r.id DESC LIMIT 1)"
    )


def _list_where(
    *,
    assignment: Assignment,
    status: str,
    student: str,
    score_min: float | None,
    score_max: float | None,
) -> tuple[str, list[Any], bool]:
    """The list's WHERE clause (``s``: the submission, ``u``: its student) and its parameters,
    and whether it reads the student's row."""
    clauses = ["s.assignment_id = %s"]
    params: list[Any] = [assignment.pk]
    if status:
        clauses.append("s.status = %s")
        params.append(status)
    if student:
        # As the ORM's icontains: the backend's own case folding and LIKE escapes.
        like = connection.operators["icontains"] % "%s"  # type: ignore[attr-defined]
        pattern = f"%{connection.ops.prep_for_like_query(student)}%"
        either = [
            f"{connection.ops.lookup_cast('icontains') % f'u.{name}'} {like}"
            for name in ("username", "display_name")
        ]
        clauses.append(f"({' OR '.join(either)})")
        params += [pattern, pattern]
    if score_min is not None:
        clauses.append("COALESCE(s.score_override, s.public_score) >= %s")
        params.append(score_min)
    if score_max is not None:
        clauses.append("COALESCE(s.score_override, s.public_score) <= %s")
        params.append(score_max)
    return f" WHERE {' AND '.join(clauses)}", params, bool(student)


class _SubmissionList:
    """What ``Paginator`` asks of a list: its length (kept ``COUNT_CACHE_SECONDS``: counting
    200,000 rows costs more than the rest of the page, so the number of pages may lag a new
    submission by that long) and a slice of rows (always read fresh)."""

    def __init__(self, *, assignment: Assignment, sort: str, **filters: Any) -> None:
        self.where, self.params, by_student = _list_where(assignment=assignment, **filters)
        # Counting needs the students' table only to filter on their names.
        self.counted = f" FROM {sql.table(Submission)} s"
        if by_student:
            self.counted += f" JOIN {sql.table(User)} u ON u.id = s.user_id"
        self.order = _LIST_SORTS.get(sort, _LIST_SORTS["newest"])
        key = repr((assignment.pk, sorted(filters.items()))).encode()
        self.count_key = f"grader:submission-count:{hashlib.sha256(key).hexdigest()}"

    def count(self) -> int:
        counted = cache.get(self.count_key)
        if counted is None:
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT COUNT(*){self.counted}{self.where}", self.params)
                counted = cursor.fetchone()[0]
            cache.set(self.count_key, counted, COUNT_CACHE_SECONDS)
        return int(counted)

    def __getitem__(self, shown: slice) -> list[SubmissionListRow]:
        if shown.stop <= shown.start:
            return []
        # The dates as sql.timestamp_sql sends them: fifty parsed by the driver cost 0.6 ms.
        created_at = sql.timestamp_sql("s.created_at")
        regraded_at = sql.timestamp_sql(_latest_regrade_sql("created_at"))
        statement = (
            f"SELECT s.id, {created_at}, {regraded_at}, u.username,"  # noqa: S608
            " u.display_name, s.filename, s.status, s.failure_reason, s.public_score,"
            f" {_latest_regrade_sql('previous_public_score')},"
            f" {_latest_regrade_sql('previous_status')}, s.score_override, s.override_comment"
            f" FROM {sql.table(Submission)} s JOIN {sql.table(User)} u ON u.id = s.user_id"
            f"{self.where} ORDER BY {self.order} LIMIT %s OFFSET %s"
        )
        with connection.cursor() as cursor:
            cursor.execute(statement, [*self.params, shown.stop - shown.start, shown.start])
            found = cursor.fetchall()
        rows = []
        for row in found:
            (
                pk,
                created_at,
                regraded_at,
                username,
                display_name,
                filename,
                status,
                reason,
                public_score,
                previous_score,
                previous_status,
                score_override,
                override_comment,
            ) = row
            rows.append(
                SubmissionListRow(
                    pk=pk,
                    created_at=cast(datetime, sql.timestamp_from_db(created_at)),  # NOT NULL
                    filename=filename,
                    username=username,
                    display_name=display_name,
                    status=status,
                    status_label=_STATUS_LABELS.get(status, status),
                    failure_label=_FAILURE_LABELS.get(reason, reason) if reason else "",
                    public_score=public_score,
                    regraded_at=sql.timestamp_from_db(regraded_at),
                    previous_score=previous_score,
                    previous_status=previous_status,
                    score_override=score_override,
                    override_comment=override_comment,
                )
            )
        return rows


def submission_list_page(
    *,
    assignment: Assignment,
    page: int | str | None,
    per_page: int,
    status: str = "",
    student: str = "",
    score_min: float | None = None,
    score_max: float | None = None,
    sort: str = "newest",
) -> Page:
    """One page of the assignment's submissions, filtered and sorted as by
    ``submissions_for_staff``, as ``SubmissionListRow``s (plain values, not model instances)."""
    submissions = _SubmissionList(
        assignment=assignment,
        sort=sort,
        status=status,
        student=student,
        score_min=score_min,
        score_max=score_max,
    )
    # Paginator asks only for count() and slices.
    return Paginator(submissions, per_page).get_page(page)  # type: ignore[arg-type]


@lru_cache(maxsize=1)
def _regrade_latest_read() -> sql.Read:
    columns = sql.TimestampColumns(Regrade, "r")
    statement = (
        f"SELECT {columns.sql} FROM {sql.table(Regrade)} r"  # noqa: S608 - names from the models
        " WHERE r.submission_id = %s ORDER BY r.created_at DESC, r.id DESC LIMIT 1"
    )
    return sql.Read(statement, (columns,))


def regrade_latest(*, submission: Submission) -> Regrade | None:
    """The submission's latest regrade, if any (plain SQL: the submission page reads it on every
    view). Nothing is joined: the page reads the previous dataset only when it differs from the
    submission's (a rare regrade onto a new dataset version), and that costs one query then."""
    found = _regrade_latest_read().row([submission.pk])
    return None if found is None else found[0]


@dataclass(frozen=True)
class BaselineLatestRun:
    """A baseline and its latest run (of any code, on any dataset), as the staff's list shows."""

    name: str
    run_status: str | None
    run_failure_reason: str | None
    run_public_score: float | None
    run_created_at: datetime | None
    run_finished_at: datetime | None


@lru_cache(maxsize=1)
def _baselines_read() -> tuple[str, sql.Columns[BaselineRun]]:
    run = sql.TimestampColumns(
        BaselineRun,
        "r",
        only=("status", "failure_reason", "public_score", "created_at", "finished_at"),
    )
    latest = (
        f"SELECT l.id FROM {sql.table(BaselineRun)} l"  # noqa: S608 - names from the models
        " WHERE l.baseline_id = b.id ORDER BY l.created_at DESC, l.id DESC LIMIT 1"
    )
    statement = (
        f"SELECT b.name, {run.sql} FROM {sql.table(Baseline)} b"  # noqa: S608
        f" LEFT JOIN {sql.table(BaselineRun)} r ON r.id = ({latest})"
        " WHERE b.assignment_id = %s ORDER BY b.name"
    )
    return statement, run


def baselines_with_latest_run(*, assignment: Assignment) -> list[BaselineLatestRun]:
    """The assignment's baselines by name, each with its latest run's status, score and times
    (plain SQL: the staff's list reads it on every view)."""
    statement, run = _baselines_read()
    with connection.cursor() as cursor:
        cursor.execute(statement, [assignment.pk])
        found = cursor.fetchall()
    return [
        BaselineLatestRun(
            row[0], **{f"run_{name}": value for name, value in run.named(row, 1).items()}
        )
        for row in found
    ]


def baselines_with_latest_run_sql(assignment: str) -> str:
    """``baselines_with_latest_run`` as one JSON column of an enclosing statement, whose
    ``assignment`` column is the assignment's id (no parameters). Read it with
    ``baselines_with_latest_run_from_db``."""
    latest = (
        f"SELECT l.id FROM {sql.table(BaselineRun)} l"  # noqa: S608 - names from the models
        " WHERE l.baseline_id = b.id ORDER BY l.created_at DESC, l.id DESC LIMIT 1"
    )
    runs = (
        "SELECT b.name, r.status, r.failure_reason, r.public_score,"  # noqa: S608 - model names
        f" {sql.timestamp_sql('r.created_at')} AS created, {sql.timestamp_sql('r.finished_at')}"
        f" AS finished FROM {sql.table(Baseline)} b"
        f" LEFT JOIN {sql.table(BaselineRun)} r ON r.id = ({latest})"
        f" WHERE b.assignment_id = {assignment} ORDER BY b.name"
    )
    row = "x.name, x.status, x.failure_reason, x.public_score, x.created, x.finished"
    pairs = (
        f"json_agg(json_build_array({row}) ORDER BY x.name)"
        if connection.vendor == "postgresql"
        else f"json_group_array(json_array({row}))"  # in the subquery's order
    )
    return f"(SELECT {pairs} FROM ({runs}) x)"  # noqa: S608


def baselines_with_latest_run_from_db(value: Any) -> list[BaselineLatestRun]:
    """What ``baselines_with_latest_run_sql`` read, as ``baselines_with_latest_run`` gives it."""
    rows = json.loads(value) if isinstance(value, str | bytes) else value
    return [
        BaselineLatestRun(
            name,
            status,
            reason,
            score,
            sql.timestamp_from_db(created),
            sql.timestamp_from_db(finished),
        )
        for name, status, reason, score, created, finished in rows or []
    ]


# --- Grades -------------------------------------------------------------------------------------


@dataclass
class StudentGrade:
    """One student's line in the grade export."""

    username: str
    display_name: str
    submissions: int = 0
    scored: int = 0
    overridden: int = 0
    last_submitted_at: datetime | None = None
    best_score: float | None = None
    best_private_score: float | None = None


def assignment_grades(*, assignment: Assignment, with_private: bool) -> list[StudentGrade]:
    """One line per student: the course's students, and anyone else who submitted.

    The best score is the best, by the metric's direction, of each submission's counted score
    (staff's override, else the measured score). ``with_private`` adds the private split's best
    (the caller decides when it may be shown: after the due date).
    """
    best = Max if assignment.direction == Direction.HIGHER_IS_BETTER else Min
    rows = (
        Submission.objects.filter(assignment=assignment)
        .values("user_id")
        .annotate(
            n=Count("id"),
            n_scored=Count("id", filter=Q(status=RunStatus.SCORED)),
            n_overridden=Count("id", filter=Q(score_override__isnull=False)),
            last=Max("created_at"),
            best=best(Coalesce("score_override", "public_score")),
            best_private=best(Coalesce("score_override", "private_score")),
            username=F("user__username"),
            display_name=F("user__display_name"),
        )
        .order_by()
    )
    grades: dict[int, StudentGrade] = {}
    students = Enrolment.objects.filter(course=assignment.chapter.course, role=Role.STUDENT)
    for user_id, username, display_name in students.values_list(
        "user_id", "user__username", "user__display_name"
    ):
        grades[user_id] = StudentGrade(username=username, display_name=display_name)
    for row in rows:
        grades[row["user_id"]] = StudentGrade(
            username=row["username"],
            display_name=row["display_name"],
            submissions=row["n"],
            scored=row["n_scored"],
            overridden=row["n_overridden"],
            last_submitted_at=row["last"],
            best_score=row["best"],
            best_private_score=row["best_private"] if with_private else None,
        )
    return sorted(grades.values(), key=lambda grade: grade.username.lower())


# --- The grading queue --------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueRow:
    """A queued or running run as the queue dashboard shows it."""

    submission: Submission | None
    baseline_run: BaselineRun | None
    assignment: Assignment
    status: str
    since: datetime
    position: int | None

    @property
    def queue(self) -> str:
        return "gpu" if self.assignment.needs_gpu else "cpu"

    @property
    def run(self) -> Submission | BaselineRun:
        run = self.submission or self.baseline_run
        assert run is not None
        return run


def _ahead_count(model: type[Submission] | type[BaselineRun], needs_gpu_path: str) -> Coalesce:
    """Queued runs of ``model`` on the same queue queued before the outer row (as in
    ``grader.live.queue_position``: both kinds of runs share the queues)."""
    own_path = "assignment__needs_gpu" if model is Submission else "baseline__assignment__needs_gpu"
    ahead = (
        model._default_manager.filter(
            status=RunStatus.QUEUED,
            queued_at__lt=OuterRef("queued_at"),
            **{own_path: OuterRef(needs_gpu_path)},
        )
        .order_by()
        .values("status")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(ahead, output_field=IntegerField()), Value(0))


def _with_position(queryset: QuerySet, needs_gpu_path: str) -> QuerySet:
    return queryset.annotate(
        ahead_submissions=_ahead_count(Submission, needs_gpu_path),
        ahead_baselines=_ahead_count(BaselineRun, needs_gpu_path),
    )


def runs_in_progress(
    *, course_ids: set[int] | None, limit: int = 500
) -> tuple[list[QueueRow], bool]:
    """Queued and running submissions and baseline runs of the given courses (``None``: all),
    running first (longest first), then queued in queue order; and whether ``limit`` cut it.
    """
    active = Q(status__in=[RunStatus.QUEUED, RunStatus.RUNNING])
    submissions = (
        Submission.objects.filter(active)
        .select_related("user", "assignment")
        .defer(*HEAVY_FIELDS, "assignment__description", "assignment__starter_code")
    )
    baseline_runs: QuerySet[BaselineRun] = (
        BaselineRun.objects.filter(active)
        .select_related("baseline__assignment")
        .defer(
            *HEAVY_FIELDS,
            "baseline__code",
            "baseline__description",
            "baseline__assignment__description",
            "baseline__assignment__starter_code",
        )
    )
    if course_ids is not None:
        submissions = submissions.filter(assignment__chapter__course_id__in=course_ids)
        baseline_runs = baseline_runs.filter(
            baseline__assignment__chapter__course_id__in=course_ids
        )
    submissions = _with_position(submissions, "assignment__needs_gpu")
    baseline_runs = _with_position(baseline_runs, "baseline__assignment__needs_gpu")
    order = ("-status", "started_at", "queued_at", "pk")  # "running" sorts after "queued"
    rows: list[QueueRow] = []
    for submission in submissions.order_by(*order)[: limit + 1]:
        rows.append(_queue_row(submission, None, submission.assignment))
    for run in baseline_runs.order_by(*order)[: limit + 1]:
        rows.append(_queue_row(None, run, run.baseline.assignment))
    rows.sort(key=lambda row: (row.status != RunStatus.RUNNING, row.since))
    return rows[:limit], len(rows) > limit


def _queue_row(
    submission: Submission | None, baseline_run: BaselineRun | None, assignment: Assignment
) -> QueueRow:
    run = submission or baseline_run
    assert run is not None
    running = run.status == RunStatus.RUNNING
    return QueueRow(
        submission=submission,
        baseline_run=baseline_run,
        assignment=assignment,
        status=run.status,
        since=(run.started_at or run.queued_at) if running else run.queued_at,
        position=None if running else run.ahead_submissions + run.ahead_baselines + 1,  # type: ignore[union-attr]
    )


@dataclass
class FailureCount:
    reason: str
    label: str
    count: int
    hourly: list[int] = field(default_factory=list)


def failures_by_reason(
    *, course_ids: set[int] | None, now: datetime, hours: int = 24
) -> list[FailureCount]:
    """Failed submissions and baseline runs of the given courses over the last ``hours``, by
    reason, most frequent first, with a count per hour (oldest hour first)."""
    since = now - timedelta(hours=hours)
    # TruncHour truncates in the current time zone (whole hours there, not in UTC).
    start = timezone.localtime(since).replace(minute=0, second=0, microsecond=0)
    failed = Q(status=RunStatus.FAILED, finished_at__gte=since)
    querysets: list[QuerySet] = [
        Submission.objects.filter(failed),
        BaselineRun.objects.filter(failed),
    ]
    if course_ids is not None:
        querysets = [
            querysets[0].filter(assignment__chapter__course_id__in=course_ids),
            querysets[1].filter(baseline__assignment__chapter__course_id__in=course_ids),
        ]
    slots = hours + 1  # the window straddles hour boundaries
    counts: dict[str, list[int]] = defaultdict(lambda: [0] * slots)
    for queryset in querysets:
        grouped = (
            queryset.annotate(hour=TruncHour("finished_at", output_field=DateTimeField()))
            .values("failure_reason", "hour")
            .annotate(n=Count("pk"))
            .order_by()
        )
        for row in grouped:
            slot = int((row["hour"] - start).total_seconds() // 3600)
            counts[row["failure_reason"]][min(max(slot, 0), slots - 1)] += row["n"]
    result = [
        FailureCount(
            reason=reason,
            label=FailureReason(reason).label if reason in FailureReason.values else reason,
            count=sum(hourly),
            hourly=hourly,
        )
        for reason, hourly in counts.items()
    ]
    return sorted(result, key=lambda failure: (-failure.count, failure.label))


def workers_live(*, now: datetime) -> list[WorkerHeartbeat]:
    """Workers that sent a heartbeat recently (as /healthz counts them)."""
    return list(WorkerHeartbeat.objects.filter(last_seen_at__gte=now - WORKER_FRESH))


def running_by_worker(rows: Iterable[QueueRow]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for row in rows:
        if row.status == RunStatus.RUNNING:
            counts[row.run.worker_id] += 1
    return dict(counts)
