"""Leaderboards: each student's best submission of an assignment, ranked, with the baselines.

While the assignment is open the ranking uses the public split. After its due date the private
split decides: each student's best public submission (the one they would have picked from what
they could see) is ranked by its private score, and the change of rank is shown. Before the due
date nothing here reads a private score, so no page can leak one.

The ranking is one SQL query (on PostgreSQL a LATERAL subquery per student, elsewhere a window
function picks each student's best submission), cached under the assignment's *scores version*:
``leaderboard_invalidate`` changes that version when a run of the assignment is scored. Names are
not cached: they are read for the page shown only, so a new display name or anonymity choice
shows at once.
"""

from __future__ import annotations

import math
import statistics
import time
import uuid
from array import array
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, NamedTuple, TypeVar, cast

import numpy as np
from django.core.cache import cache
from django.core.paginator import Page, Paginator
from django.core.signals import setting_changed
from django.db import connection, transaction
from django.db.models import Exists, F, OrderBy, OuterRef, Window
from django.db.models.functions import RowNumber
from django.utils.crypto import salted_hmac

from accounts.models import User
from courses.models import STAFF_ROLES, Enrolment, Role
from grader.metrics import Direction, Metric
from grader.models import Assignment, BaselineRun, RunStatus, Submission
from topdown import sql

PER_PAGE = 50
# A backstop only: scoring changes the version at once; this bounds how long changes that do
# not go through the grader (an enrolment removed, a baseline edited) take to show.
CACHE_SECONDS = 15 * 60
RANKING_FORMAT = 4
MEMO_KEPT = 32  # per ranking: charts of the distribution, one per place marked

T = TypeVar("T")
_MISSING = object()


class Split:
    PUBLIC = "public"
    PRIVATE = "private"


def private_split_revealed(*, assignment: Assignment, now: datetime) -> bool:
    """The private split's scores may be shown from the moment submissions close."""
    return assignment.due_at is not None and now > assignment.due_at


# --- Cache ---------------------------------------------------------------------------------


def _version_key(assignment_id: int) -> str:
    return f"grader:scores-version:{assignment_id}"


def scores_version(*, assignment_id: int) -> str:
    """A token that changes whenever a run of the assignment is scored."""
    version = cache.get_or_set(_version_key(assignment_id), lambda: uuid.uuid4().hex, timeout=None)
    return str(version)


def leaderboard_invalidate(*, assignment_id: int) -> None:
    """Call after saving a run's result for the assignment (a submission or a baseline run).

    The version changes once the caller's transaction commits: a reader that computed the
    ranking before the commit stores it under the old version, which nobody reads any more.
    """
    transaction.on_commit(
        lambda: cache.set(_version_key(assignment_id), uuid.uuid4().hex, timeout=None)
    )


def _ranking_keys(assignment: Assignment, split: str) -> tuple[str, str]:
    """The key of the ranking for the current scores, and of the latest ranking computed.

    The assignment's own fields (metric, due date, dataset) are part of both, so editing the
    assignment never serves a ranking computed under its old settings; RANKING_FORMAT changes
    with the cached class, so a deploy never reads an old layout.
    """
    changed = int(assignment.updated_at.timestamp() * 1_000_000)
    stem = f"grader:leaderboard:{RANKING_FORMAT}:{assignment.pk}:{changed}:{assignment.metric}"
    version = scores_version(assignment_id=assignment.pk)
    return f"{stem}:{split}:{version}", f"{stem}:{split}:latest"


# --- The ranking (cached) ----------------------------------------------------------------------


class Entry(NamedTuple):
    """One ranked row: a student's best submission, or a baseline."""

    score: float | None
    user_id: int | None = None  # None for a baseline
    baseline: str = ""
    submission_id: int | None = None
    submitted_at: float = 0.0  # POSIX seconds: parsing 10,000 datetimes is slow
    rank: int | None = None  # students only: baselines take no place
    public_rank: int | None = None  # private split only


@dataclass(frozen=True)
class Distribution:
    """The figures behind the distribution chart, for those who read rather than look."""

    count: int
    best: float | None
    median: float | None
    worst: float | None
    baselines: tuple[tuple[str, float, int], ...]  # name, score, students who beat it


class Ranking:
    """A split's whole ranking, students and baselines in display order, as flat columns.

    Cached as arrays rather than row objects: unpickling 10,000 tuples with datetimes costs more
    than the page's query. Rows become ``Entry`` objects only for the page shown.
    """

    def __init__(self, entries: list[Entry]) -> None:
        self.user_ids = array("q", [e.user_id or 0 for e in entries])
        self.submission_ids = array("q", [e.submission_id or 0 for e in entries])
        self.submitted_at = array("d", [e.submitted_at for e in entries])
        self.scores = array("d", [math.nan if e.score is None else e.score for e in entries])
        self.ranks = array("q", [e.rank or 0 for e in entries])
        self.public_ranks = array("q", [e.public_rank or 0 for e in entries])
        self.baselines = {i: e.baseline for i, e in enumerate(entries) if e.user_id is None}
        self.student_scores = array(
            "d", [e.score for e in entries if e.user_id is not None and e.score is not None]
        )
        self.distribution = self._distribution(entries)
        self.computed_at = time.time()
        self._memo: OrderedDict[Hashable, Any] = OrderedDict()

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_memo": OrderedDict()}

    def memo(self, key: Hashable, make: Callable[[], T]) -> T:
        """``make()``, kept with this ranking (in this process) for the next ``MEMO_KEPT`` keys:
        what is drawn from the whole ranking, such as the distribution chart. ``key`` must
        determine the result together with the ranking."""
        # No lock: a race between threads (the development server's) at worst draws twice.
        found = self._memo.get(key, _MISSING)
        if found is not _MISSING:
            return cast(T, found)
        value = self._memo[key] = make()
        while len(self._memo) > MEMO_KEPT:
            try:
                self._memo.popitem(last=False)
            except KeyError:
                break
        return value

    def _distribution(self, entries: list[Entry]) -> Distribution:
        # Entries are in order, best first: every student above a baseline beats it, nobody
        # below does (see _merged).
        beaten, students_above = [], 0
        for entry in entries:
            if entry.user_id is not None:
                students_above += 1
            elif entry.score is not None:
                beaten.append((entry.baseline, entry.score, students_above))
        scores = self.student_scores
        if not scores:
            return Distribution(0, None, None, None, tuple(beaten))
        median = statistics.median(scores)
        return Distribution(len(scores), scores[0], median, scores[-1], tuple(beaten))

    def __len__(self) -> int:
        return len(self.user_ids)

    def entry(self, index: int) -> Entry:
        score = None if math.isnan(self.scores[index]) else self.scores[index]
        if index in self.baselines:
            return Entry(score, baseline=self.baselines[index])
        return Entry(
            score,
            self.user_ids[index],
            "",
            self.submission_ids[index],
            self.submitted_at[index],
            self.ranks[index],
            self.public_ranks[index] or None,
        )

    def index_of(self, user_id: int) -> int | None:
        found = np.flatnonzero(np.frombuffer(self.user_ids, dtype=np.int64) == user_id)
        return int(found[0]) if found.size else None

    @property
    def student_count(self) -> int:
        return len(self.user_ids) - len(self.baselines)

    def baseline_scores(self) -> list[tuple[str, float]]:
        return [
            (name, self.scores[i])
            for i, name in self.baselines.items()
            if not math.isnan(self.scores[i])
        ]


def _order(metric: Metric, field: str) -> OrderBy:
    if metric.direction == Direction.HIGHER_IS_BETTER:
        return F(field).desc(nulls_last=True)
    return F(field).asc(nulls_last=True)


# Each student's best submission through LATERAL: one short index probe per student, whatever
# the number of submissions. It wants the index on (assignment, user, public_score, created_at,
# id) INCLUDE (private_score) WHERE status = 'scored' (see docs/decisions.md).
_BEST_SQL = """
SELECT e.user_id, b.id, EXTRACT(EPOCH FROM b.created_at)::float8, b.public_score{private_outer}
FROM {enrolment} e
CROSS JOIN LATERAL (
    SELECT s.id, s.created_at, s.public_score{private_inner}
    FROM {submission} s
    WHERE s.assignment_id = %s AND s.user_id = e.user_id AND s.status = %s
      AND s.public_score IS NOT NULL
    ORDER BY s.public_score {direction}, s.created_at, s.id
    LIMIT 1
) b
WHERE e.course_id = %s AND e.role = %s
ORDER BY b.public_score {direction}, b.created_at, b.id
"""


def _best_submissions(assignment: Assignment, *, with_private: bool) -> list[tuple[Any, ...]]:
    """Each ranked student's best public submission, best first, in one query:
    (user id, submission id, submitted at, public score[, private score]).

    Ranked students are the course's students (not staff, not people who left). Ties go to the
    earlier submission, within a student's submissions and between students.
    """
    metric = assignment.metric_spec
    course_id = assignment.chapter.course_id
    if connection.vendor == "postgresql":
        direction = "DESC" if metric.direction == Direction.HIGHER_IS_BETTER else "ASC"
        sql = _BEST_SQL.format(
            enrolment=Enrolment._meta.db_table,
            submission=Submission._meta.db_table,
            direction=direction,
            private_outer=", b.private_score" if with_private else "",
            private_inner=", s.private_score" if with_private else "",
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [assignment.pk, RunStatus.SCORED, course_id, Role.STUDENT])
            return cursor.fetchall()
    return _best_submissions_portable(assignment, with_private=with_private)


def _best_submissions_portable(
    assignment: Assignment, *, with_private: bool
) -> list[tuple[Any, ...]]:
    """The same as ``_best_submissions`` with a window function, for SQLite (``make run``)."""
    order = _order(assignment.metric_spec, "public_score")
    students = Enrolment.objects.filter(
        course_id=assignment.chapter.course_id, user_id=OuterRef("user_id"), role=Role.STUDENT
    )
    columns = ["user_id", "id", "created_at", "public_score"]
    if with_private:
        columns.append("private_score")
    rows = (
        Submission.objects.filter(
            assignment_id=assignment.pk, status=RunStatus.SCORED, public_score__isnull=False
        )
        .filter(Exists(students))
        .annotate(
            best=Window(
                RowNumber(),
                partition_by=[F("user_id")],
                order_by=[order, F("created_at").asc(), F("id").asc()],
            )
        )
        .filter(best=1)
        .order_by(order, "created_at", "id")
        .values_list(*columns)
    )
    return [(row[0], row[1], row[2].timestamp(), *row[3:]) for row in rows]


def baseline_results(*, assignment: Assignment) -> list[tuple[str, float, float | None]]:
    """(name, public score, private score) of each baseline's latest scored current run."""
    runs = (
        BaselineRun.objects.current()
        .filter(baseline__assignment=assignment, status=RunStatus.SCORED)
        .order_by("baseline__name", "-finished_at", "-id")
        .values_list("baseline__name", "public_score", "private_score")
    )
    results: dict[str, tuple[str, float, float | None]] = {}
    for name, public, private in runs:
        if public is not None:
            results.setdefault(name, (name, public, private))
    return list(results.values())


def _sort_key(metric: Metric, score: float | None) -> tuple[bool, float]:
    """Best first; a missing score (a run from before the split existed) last."""
    if score is None:
        return (True, 0.0)
    return (False, -score if metric.direction == Direction.HIGHER_IS_BETTER else score)


def _merged(students: list[Entry], baselines: list[Entry], metric: Metric) -> list[Entry]:
    """Baselines slot in before the first student who does not beat them (a tie is no win)."""
    remaining = sorted(baselines, key=lambda baseline: _sort_key(metric, baseline.score))
    merged: list[Entry] = []
    for student in students:
        while remaining and not _beats(metric, student.score, remaining[0].score):
            merged.append(remaining.pop(0))
        merged.append(student)
    merged.extend(remaining)
    return merged


def _beats(metric: Metric, score: float | None, baseline: float | None) -> bool:
    if baseline is None:
        return True
    return score is not None and metric.better(score, than=baseline)


def _ranking(assignment: Assignment, split: str) -> Ranking:
    metric = assignment.metric_spec
    best = _best_submissions(assignment, with_private=split == Split.PRIVATE)
    baselines = baseline_results(assignment=assignment)
    if split == Split.PUBLIC:
        students = [
            Entry(score, user_id, "", submission_id, submitted_at, rank)
            for rank, (user_id, submission_id, submitted_at, score) in enumerate(best, start=1)
        ]
        marks = [Entry(public, baseline=name) for name, public, _ in baselines]
        return Ranking(_merged(students, marks, metric))
    # The same submissions, ranked by their private score; ties to the earlier submission.
    by_private = sorted(
        enumerate(best, start=1),
        key=lambda item: (_sort_key(metric, item[1][4]), item[1][2], item[1][1]),
    )
    students = [
        Entry(private, user_id, "", submission_id, submitted_at, rank, public_rank)
        for rank, (public_rank, (user_id, submission_id, submitted_at, _, private)) in enumerate(
            by_private, start=1
        )
    ]
    marks = [Entry(private, baseline=name) for name, _, private in baselines]
    return Ranking(_merged(students, marks, metric))


# Rankings this process has read, by cache key: fetching 10,000 students' ranking from Redis
# costs more than the rest of the page. A key names one set of scores for good (it holds the
# scores version); the backstop expiry holds here as in Redis.
_RECENT_RANKINGS: OrderedDict[str, Ranking] = OrderedDict()
RECENT_RANKINGS_KEPT = 8


def _remember(key: str, ranking: Ranking) -> Ranking:
    _RECENT_RANKINGS[key] = ranking
    while len(_RECENT_RANKINGS) > RECENT_RANKINGS_KEPT:
        _RECENT_RANKINGS.popitem(last=False)
    return ranking


def _recalled(key: str) -> Ranking | None:
    ranking = _RECENT_RANKINGS.get(key)
    if ranking is None or time.time() > ranking.computed_at + CACHE_SECONDS:
        return None
    return ranking


def leaderboard_ranking(*, assignment: Assignment, split: str) -> Ranking:
    """The whole ranking of a split, from the cache when the scores have not changed.

    When a new score has just landed, one request computes the new ranking while the others
    keep serving the previous one for that moment, rather than all running the query at once.
    """
    key, latest_key = _ranking_keys(assignment, split)
    ranking = _recalled(key)
    if ranking is not None:
        return ranking
    ranking = cache.get(key)
    if ranking is not None:
        return _remember(key, ranking)
    if not cache.add(f"{key}:computing", True, timeout=30):
        ranking = cache.get(latest_key)
        if ranking is not None:
            return ranking  # not remembered: it is not the ranking ``key`` names
    ranking = _ranking(assignment, split)
    cache.set_many({key: ranking, latest_key: ranking}, timeout=CACHE_SECONDS)
    return _remember(key, ranking)


# --- Names ---------------------------------------------------------------------------------


def _feistel(value: int, bits: int) -> int:
    half = bits // 2
    mask = (1 << half) - 1
    left, right = value >> half, value & mask
    for round_number in range(4):
        digest = salted_hmac("topdown.leaderboard.anonymous", f"{round_number}:{right}").digest()
        left, right = right, left ^ (int.from_bytes(digest[:8], "big") & mask)
    return (left << half) | right


@lru_cache(maxsize=65_536)  # a page names up to fifty: the Feistel rounds are 4 HMACs each
def anonymous_number(enrolment_id: int) -> int:
    """The N of "Anonymous student #N": stable, one enrolment to one number, not the id.

    A keyed permutation (a Feistel network on SECRET_KEY, cycle-walked into range) of the
    enrolment ids below a million onto 1 to 1,000,000; larger ids map within their own decade,
    so numbers never collide. Without the secret key N says nothing about the id or about when
    the student enrolled. Rotating SECRET_KEY renumbers everyone.
    """
    upper = 10**6
    while enrolment_id >= upper:
        upper *= 10
    lower = 0 if upper == 10**6 else upper // 10
    size = upper - lower
    bits = size.bit_length() + size.bit_length() % 2
    value = enrolment_id - lower
    while True:
        value = _feistel(value, bits)
        if value < size:
            return lower + value + 1


def anonymous_label(enrolment_id: int) -> str:
    return f"Anonymous student #{anonymous_number(enrolment_id)}"


def _forget_anonymous_numbers(*, setting: str, **kwargs: Any) -> None:
    if setting == "SECRET_KEY":
        anonymous_number.cache_clear()


setting_changed.connect(_forget_anonymous_numbers, dispatch_uid="grader.leaderboards.anonymous")


class _Member(NamedTuple):
    enrolment_id: int
    role: str
    anonymous: bool
    name: str


@lru_cache(maxsize=1)
def _members_sql() -> str:
    # PostgreSQL takes the ids as one array literal: adapting fifty parameters one by one cost
    # more than the query.
    among = (
        "= ANY(%s::bigint[])"
        if connection.vendor == "postgresql"
        else "IN (SELECT value FROM json_each(%s))"
    )
    return (
        "SELECT e.user_id, e.id, e.role, e.leaderboard_anonymous, u.display_name, u.username"  # noqa: S608 - names from the models
        f" FROM {sql.table(Enrolment)} e JOIN {sql.table(User)} u ON u.id = e.user_id"
        f" WHERE e.course_id = %s AND e.user_id {among}"
    )


def _members(course_id: int, user_ids: set[int]) -> dict[int, _Member]:
    # Plain SQL: read on every view of the page, and the ORM's compiling cost more than the query.
    ids = ",".join(str(int(user_id)) for user_id in sorted(user_ids))
    as_array = f"{{{ids}}}" if connection.vendor == "postgresql" else f"[{ids}]"
    with connection.cursor() as cursor:
        cursor.execute(_members_sql(), [course_id, as_array])
        rows = cursor.fetchall()
    return {
        user_id: _Member(enrolment_id, role, bool(anonymous), display_name or username)
        for user_id, enrolment_id, role, anonymous, display_name, username in rows
    }


# --- The page --------------------------------------------------------------------------------


class LeaderboardRow(NamedTuple):
    """A row as shown: a fragment's context (``topdown.fragments``), so compared by value.
    A named tuple, not a frozen dataclass: fifty of those took longer to make and to hash."""

    position: int  # 1-based place in the list, baselines included
    score: float | None
    name: str
    rank: int | None = None  # students only
    is_baseline: bool = False
    is_viewer: bool = False
    # For the viewer and staff only: the label other students see, if the student chose one.
    shown_as: str = ""
    submission_id: int | None = None  # the viewer's own, or any for staff: never others' code
    submitted_at: datetime | None = None
    public_rank: int | None = None
    rank_change: int | None = None  # places gained on the private split (negative: lost)


@dataclass(frozen=True)
class Leaderboard:
    assignment: Assignment
    ranking: Ranking
    metric: Metric
    split: str
    page: Page  # of LeaderboardRow
    student_count: int
    scores: Sequence[float]  # every ranked student's score, for the distribution
    baselines: list[tuple[str, float]]
    viewer_row: LeaderboardRow | None
    viewer_page: int | None
    viewer_is_staff: bool
    viewer_anonymous: bool | None  # None: the viewer is not a student of the course
    distribution: Distribution

    @property
    def revealed(self) -> bool:
        return self.split == Split.PRIVATE

    @property
    def viewer_row_on_page(self) -> bool:
        return self.viewer_row is not None and self.viewer_page == self.page.number


def _row(
    entry: Entry,
    position: int,
    members: dict[int, _Member],
    *,
    viewer_id: int,
    viewer_is_staff: bool,
) -> LeaderboardRow:
    if entry.user_id is None:
        return LeaderboardRow(
            position=position, score=entry.score, name=entry.baseline, is_baseline=True
        )
    member = members.get(entry.user_id)
    is_viewer = entry.user_id == viewer_id
    sees_identity = is_viewer or viewer_is_staff
    alias = anonymous_label(member.enrolment_id) if member and member.anonymous else ""
    if member is None:
        name = "Former student"  # left the course since the ranking was cached
    elif alias and not sees_identity:
        name = alias
    else:
        name = member.name
    rank_change = None
    if entry.public_rank is not None and entry.rank is not None:
        rank_change = entry.public_rank - entry.rank
    return LeaderboardRow(
        position=position,
        score=entry.score,
        name=name,
        rank=entry.rank,
        is_viewer=is_viewer,
        shown_as=alias if sees_identity else "",
        submission_id=entry.submission_id if sees_identity else None,
        submitted_at=datetime.fromtimestamp(entry.submitted_at, tz=UTC),
        public_rank=entry.public_rank,
        rank_change=rank_change,
    )


def leaderboard_for_assignment(
    *, assignment: Assignment, viewer: User, now: datetime, page: int | str | None
) -> Leaderboard:
    """One page of the assignment's leaderboard as ``viewer`` may see it (a course member:
    check access first). At most three queries, one when the ranking is cached.

    Students see others' display names, or "Anonymous student #N" for those who chose it; staff
    see real names with the choice marked. Nobody sees a link to another student's code.
    """
    split = (
        Split.PRIVATE if private_split_revealed(assignment=assignment, now=now) else Split.PUBLIC
    )
    ranking = leaderboard_ranking(assignment=assignment, split=split)
    shown = Paginator(range(len(ranking)), PER_PAGE).get_page(page)
    entries = [ranking.entry(index) for index in shown.object_list]
    viewer_id = viewer.pk  # once: the request's user is a lazy object
    viewer_index = ranking.index_of(viewer_id)
    user_ids = {entry.user_id for entry in entries if entry.user_id is not None}
    members = _members(assignment.chapter.course_id, {*user_ids, viewer_id})
    viewer_member = members.get(viewer_id)
    viewer_is_staff = viewer.is_superuser or (
        viewer_member is not None and viewer_member.role in STAFF_ROLES
    )
    first = shown.start_index()
    rows = [
        _row(entry, first + offset, members, viewer_id=viewer_id, viewer_is_staff=viewer_is_staff)
        for offset, entry in enumerate(entries)
    ]
    viewer_row = None
    if viewer_index is not None:
        viewer_row = _row(
            ranking.entry(viewer_index),
            viewer_index + 1,
            members,
            viewer_id=viewer_id,
            viewer_is_staff=viewer_is_staff,
        )
    return Leaderboard(
        assignment=assignment,
        ranking=ranking,
        metric=assignment.metric_spec,
        split=split,
        page=Page(rows, shown.number, shown.paginator),
        student_count=ranking.student_count,
        scores=ranking.student_scores,
        baselines=ranking.baseline_scores(),
        distribution=ranking.distribution,
        viewer_row=viewer_row,
        viewer_page=viewer_index // PER_PAGE + 1 if viewer_index is not None else None,
        viewer_is_staff=viewer_is_staff,
        viewer_anonymous=viewer_member.anonymous
        if viewer_member is not None and viewer_member.role == Role.STUDENT
        else None,
    )
