"""Read-side queries for courses. Each owns its joins, so pages make a fixed number of queries."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

from django.db import connection
from django.db.models import CharField, Count, Q, QuerySet, Value
from django.db.models.functions import MD5, Cast, Concat
from django.utils import timezone

from accounts.models import User
from courses.models import (
    Answer,
    Attempt,
    Chapter,
    Choice,
    Course,
    Enrolment,
    Question,
    Questionnaire,
    Role,
    RubricItem,
)
from grader.models import Assignment
from topdown import sql


@dataclass(frozen=True)
class AttemptSummary:
    """The few columns progress needs, without loading whole attempts."""

    id: int
    number: int
    score: Decimal | None
    max_score: Decimal
    submitted_at: datetime | None

    @property
    def fraction(self) -> float:
        if not self.max_score or self.score is None:
            return 0.0
        return float(self.score / self.max_score)


def counted_attempt(attempts: list[AttemptSummary], counts: str) -> AttemptSummary | None:
    """The attempt that counts under the questionnaire's policy (best, or the last submitted)."""
    if not attempts:
        return None
    if counts == Questionnaire.Counts.LAST:
        return max(attempts, key=lambda a: a.number)
    return max(attempts, key=lambda a: (a.fraction, -a.number))


@dataclass
class ChapterProgress:
    chapter: Chapter
    questionnaire: Questionnaire | None
    attempts: list[AttemptSummary] = field(default_factory=list)

    @property
    def counted(self) -> AttemptSummary | None:
        if self.questionnaire is None:
            return None
        return counted_attempt(self.attempts, self.questionnaire.counts)

    @property
    def fraction(self) -> float:
        counted = self.counted
        return counted.fraction if counted else 0.0

    @property
    def percent(self) -> int:
        return round(self.fraction * 100)


def course_progress_percent(rows: Iterable[ChapterProgress]) -> int:
    graded = [row.fraction for row in rows if row.questionnaire is not None]
    return round(100 * sum(graded) / len(graded)) if graded else 0


# questionnaire_id, user_id, then AttemptSummary's fields in order.
SummaryRow = tuple[int, int, int, int, Decimal | None, Decimal, datetime | None]


def _submitted_attempt_summaries(**filters: object) -> QuerySet[Attempt, SummaryRow]:
    return Attempt.objects.filter(status=Attempt.Status.SUBMITTED, **filters).values_list(
        "questionnaire_id", "user_id", "id", "number", "score", "max_score", "submitted_at"
    )


def chapters_with_progress(
    *,
    course: Course,
    user: User | None,
    include_drafts: bool = False,
    chapters: list[Chapter] | None = None,
) -> list[ChapterProgress]:
    """The course's chapters in order, with ``user``'s progress on each (two queries, or one
    when the caller has the ``chapters`` already, with their questionnaires).

    Draft chapters are left out unless ``include_drafts`` (course staff see them).
    """
    if chapters is None:
        # The outline only: chapter bodies are long and only the chapter page shows one.
        chapters_qs = Chapter.objects.filter(course=course)
        if not include_drafts:
            chapters_qs = chapters_qs.filter(published=True)
        chapters = list(chapters_qs.select_related("questionnaire").defer("body"))
    rows = []
    by_questionnaire: dict[int, ChapterProgress] = {}
    for chapter in chapters:
        questionnaire = getattr(chapter, "questionnaire", None)
        row = ChapterProgress(chapter=chapter, questionnaire=questionnaire)
        rows.append(row)
        if questionnaire is not None:
            by_questionnaire[questionnaire.id] = row
    if user is not None and user.is_authenticated and by_questionnaire:
        for id_, questionnaire_id, *rest in _user_summaries(user.pk, list(by_questionnaire)):
            by_questionnaire[questionnaire_id].attempts.append(AttemptSummary(id_, *rest))
    return rows


# The columns progress reads from an attempt, in the model's field order: its id, its
# questionnaire, then the rest of AttemptSummary's fields.
_SUMMARY = sql.Columns(
    Attempt, "att", only=("id", "questionnaire", "number", "score", "max_score", "submitted_at")
)


def _user_summaries(user_id: int, questionnaire_ids: list[int]) -> list[list[Any]]:
    """The user's submitted attempts at these questionnaires, in plain SQL: every course page
    reads them. One statement per number of questionnaires, built once."""
    with connection.cursor() as cursor:
        cursor.execute(
            _user_summaries_statement(len(questionnaire_ids)),
            [user_id, Attempt.Status.SUBMITTED, *questionnaire_ids],
        )
        return [_SUMMARY.values(row) for row in cursor.fetchall()]


@lru_cache(maxsize=64)
def _user_summaries_statement(count: int) -> str:
    placeholders = ", ".join(["%s"] * count)
    return (
        f"SELECT {_SUMMARY.sql} FROM {sql.table(Attempt)} att"  # noqa: S608 - names from the models
        f" WHERE att.user_id = %s AND att.{sql.quote('status')} = %s"
        f" AND att.questionnaire_id IN ({placeholders})"
        f" ORDER BY att.questionnaire_id, att.{sql.quote('number')}"
    )


def chapter_assignments(*, chapter: Chapter, include_drafts: bool) -> list[Assignment]:
    """The chapter's further-research assignments to list on its page, in order (plain SQL: the
    chapter page shows them on every view); drafts only for ``include_drafts`` (staff)."""
    with connection.cursor() as cursor:
        cursor.execute(_chapter_assignments_statement(include_drafts), [chapter.pk])
        return [_ASSIGNMENT_LINK.instance(row) for row in cursor.fetchall()]  # type: ignore[misc]


_ASSIGNMENT_LINK = sql.Columns(
    Assignment, "a", only=("id", "chapter", "slug", "title", "published")
)


@lru_cache(maxsize=2)
def _chapter_assignments_statement(include_drafts: bool) -> str:
    return (
        f"SELECT {_ASSIGNMENT_LINK.sql} FROM {sql.table(Assignment)} a"  # noqa: S608 - names from the models
        f" WHERE a.chapter_id = %s{'' if include_drafts else ' AND a.published'}"
        f" ORDER BY a.{sql.quote('position')}, a.id"
    )


def courses_for_user(*, user: User) -> list[tuple[Course, str | None]]:
    """Courses the user is enrolled in (with their role) and courses open to enrol, in one query."""
    if not user.is_authenticated:
        return [(course, None) for course in Course.objects.filter(enrolment="open")]
    roles = dict(Enrolment.objects.filter(user=user).values_list("course_id", "role"))
    courses = Course.objects.filter(Q(enrolment="open") | Q(id__in=list(roles)))
    return [(course, roles.get(course.id)) for course in courses]


@dataclass
class QuestionnairePage:
    questions: list[Question]
    draft: Attempt | None
    draft_responses: dict[int, object]
    submitted: list[Attempt]


def questionnaire_questions(*, questionnaire: Questionnaire) -> list[Question]:
    """The questionnaire's questions in order, with their choices (two statements, in plain SQL:
    the questionnaire page and its submit read them every time)."""
    reads = _question_reads()
    with connection.cursor() as cursor:
        cursor.execute(reads.questions, [questionnaire.pk])
        questions = [reads.question.instance(row) for row in cursor.fetchall()]
        choices: dict[int, list[Choice]] = defaultdict(list)
        if any(question.has_choices for question in questions):  # type: ignore[union-attr]
            cursor.execute(reads.choices, [questionnaire.pk])
            for row in cursor.fetchall():
                choice: Choice = reads.choice.instance(row)  # type: ignore[assignment]
                choices[choice.question_id].append(choice)
    for question in questions:
        # What prefetch_related("choices") leaves: question.choices.all() reads no more.
        cached = Choice.objects.all()
        cached._result_cache = choices.get(question.pk, [])  # type: ignore[union-attr]
        cached._prefetch_done = True  # type: ignore[attr-defined]
        question._prefetched_objects_cache = {"choices": cached}  # type: ignore[union-attr]
    return questions  # type: ignore[return-value]


@dataclass(frozen=True)
class _QuestionReads:
    question: sql.Columns[Question]
    choice: sql.Columns[Choice]
    questions: str
    choices: str


@lru_cache(maxsize=1)
def _question_reads() -> _QuestionReads:
    question = sql.Columns(Question, "qu", without=("created_at", "updated_at"))
    choice = sql.Columns(Choice, "c")
    live = f"qu.questionnaire_id = %s AND NOT qu.{sql.quote('archived')}"
    position = sql.quote("position")
    return _QuestionReads(
        question=question,
        choice=choice,
        questions=(
            f"SELECT {question.sql} FROM {sql.table(Question)} qu"  # noqa: S608 - names from the models
            f" WHERE {live} ORDER BY qu.{position}, qu.id"
        ),
        choices=(
            f"SELECT {choice.sql} FROM {sql.table(Choice)} c"  # noqa: S608 - names from the models
            f" JOIN {sql.table(Question)} qu ON qu.id = c.question_id"
            f" WHERE {live} ORDER BY c.question_id, c.{position}, c.id"
        ),
    )


def questionnaire_page(
    *, questionnaire: Questionnaire, user: User, questions: list[Question]
) -> QuestionnairePage:
    """The student's draft and past attempts beside the questions (one or two statements)."""
    attempts = user_attempts(questionnaire_id=questionnaire.pk, user_id=user.pk)
    draft = next((a for a in attempts if a.status == Attempt.Status.DRAFT), None)
    # Only the draft's answers are shown: one query for them, none per past attempt.
    responses = dict(draft.answers.values_list("question_id", "response")) if draft else {}
    submitted = [a for a in attempts if a.status == Attempt.Status.SUBMITTED]
    return QuestionnairePage(
        questions=questions, draft=draft, draft_responses=responses, submitted=submitted
    )


def enrolment_locked(*, user_id: int, course_id: int) -> Enrolment | None:
    """The user's enrolment in the course, locked for the transaction (``SELECT ... FOR UPDATE``
    where the database has it), in plain SQL: every questionnaire submit takes it."""
    columns, statement = _enrolment_locked_read()
    with connection.cursor() as cursor:
        cursor.execute(statement, [user_id, course_id])
        row = cursor.fetchone()
    return None if row is None else columns.instance(row)


@lru_cache(maxsize=1)
def _enrolment_locked_read() -> tuple[sql.Columns[Enrolment], str]:
    columns = sql.Columns(Enrolment, "e")
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    return columns, (
        f"SELECT {columns.sql} FROM {sql.table(Enrolment)} e"  # noqa: S608 - names from the models
        f" WHERE e.user_id = %s AND e.course_id = %s{lock}"
    )


def user_attempts(*, questionnaire_id: int, user_id: int) -> list[Attempt]:
    """The user's attempts at the questionnaire, in order, in plain SQL (every view reads them)."""
    columns, statement = _user_attempts_read()
    with connection.cursor() as cursor:
        cursor.execute(statement, [questionnaire_id, user_id])
        return [columns.instance(row) for row in cursor.fetchall()]  # type: ignore[misc]


@lru_cache(maxsize=1)
def _user_attempts_read() -> tuple[sql.Columns[Attempt], str]:
    columns = sql.Columns(Attempt, "att")
    return columns, (
        f"SELECT {columns.sql} FROM {sql.table(Attempt)} att"  # noqa: S608 - names from the models
        f" WHERE att.questionnaire_id = %s AND att.user_id = %s ORDER BY att.{sql.quote('number')}"
    )


def attempt_with_answers(*, attempt: Attempt) -> list[Answer]:
    return list(
        attempt.answers.select_related("question", "reviewed_by")
        .prefetch_related("question__choices")
        .order_by("question__position", "question_id")
    )


def answers_revealed(
    *, questionnaire: Questionnaire, submitted_count: int, now: datetime | None = None
) -> bool:
    """Whether correct answers and explanations may be shown to a student now."""
    now = now or timezone.now()
    past_due = questionnaire.due_at is not None and now > questionnaire.due_at
    if questionnaire.reveal == Questionnaire.Reveal.AFTER_EACH_ATTEMPT:
        return submitted_count > 0
    if questionnaire.reveal == Questionnaire.Reveal.AFTER_LAST_ATTEMPT:
        used_all = (
            bool(questionnaire.max_attempts) and submitted_count >= questionnaire.max_attempts
        )
        return submitted_count > 0 and (used_all or past_due)
    return past_due


@dataclass
class StudentProgress:
    user_id: int
    name: str
    username: str
    chapters: list[int | None]
    attempts: int
    course_percent: int
    # The counted score per chapter as a 0-1 fraction (None: no questionnaire or no attempt),
    # unrounded, for the gradebook.
    fractions: list[float | None] = field(default_factory=list)


def class_progress(*, course: Course) -> tuple[list[Chapter], list[StudentProgress]]:
    """Every student's counted score per chapter, for the instructor's table (three queries)."""
    chapters = list(
        Chapter.objects.filter(course=course, published=True).select_related("questionnaire")
    )
    students = list(
        Enrolment.objects.filter(course=course, role=Role.STUDENT)
        .select_related("user")
        .order_by("user__username")
    )
    per_user: dict[int, dict[int, list[AttemptSummary]]] = defaultdict(lambda: defaultdict(list))
    questionnaire_ids = [c.questionnaire.id for c in chapters if hasattr(c, "questionnaire")]
    for summary in _submitted_attempt_summaries(questionnaire_id__in=questionnaire_ids):
        per_user[summary[1]][summary[0]].append(AttemptSummary(*summary[2:]))
    table = []
    for enrolment in students:
        attempts_by_q = per_user.get(enrolment.user_id, {})
        rows = [
            ChapterProgress(
                chapter=c,
                questionnaire=getattr(c, "questionnaire", None),
                attempts=attempts_by_q.get(c.questionnaire.id, [])
                if hasattr(c, "questionnaire")
                else [],
            )
            for c in chapters
        ]
        table.append(
            StudentProgress(
                user_id=enrolment.user_id,
                name=enrolment.user.public_name,
                username=enrolment.user.username,
                chapters=[
                    (row.percent if row.attempts else None) if row.questionnaire else None
                    for row in rows
                ],
                attempts=sum(len(v) for v in attempts_by_q.values()),
                course_percent=course_progress_percent(rows),
                fractions=[
                    row.fraction if row.questionnaire and row.attempts else None for row in rows
                ],
            )
        )
    return chapters, table


def student_attempts(*, course: Course, user_id: int) -> QuerySet[Attempt]:
    return (
        Attempt.objects.filter(questionnaire__chapter__course=course, user_id=user_id)
        .select_related("questionnaire__chapter")
        .order_by("questionnaire__chapter__position", "number")
    )


def review_queue(
    *, course: Course, reviewed: bool = False, reviewer: User | None = None
) -> QuerySet[Answer]:
    """Free-text answers in submitted attempts waiting for (or past) review.

    Oldest first, unless a reviewer is given: then in a pseudo-random order of their own (a hash
    of the answer's and the reviewer's ids), the same on every reload, so reviewers working in
    parallel start at different answers and no student is always marked first.
    """
    answers = (
        Answer.objects.filter(
            attempt__questionnaire__chapter__course=course,
            attempt__status=Attempt.Status.SUBMITTED,
            question__kind=Question.Kind.FREE_TEXT,
            reviewed_at__isnull=not reviewed,
            # Students' answers only: staff answering while they preview the course do not count.
            attempt__user__enrolments__course=course,
            attempt__user__enrolments__role=Role.STUDENT,
        )
        .exclude(response=None)
        .exclude(response="")
        .select_related("question", "attempt__user", "attempt__questionnaire__chapter")
    )
    if reviewer is None:
        return answers.order_by("attempt__submitted_at", "id")
    shuffle_key = MD5(Concat(Cast("id", CharField()), Value(f":{reviewer.pk}")))
    return answers.order_by(shuffle_key, "id")


def review_queue_next(*, course: Course, reviewer: User) -> Answer | None:
    """The first answer still waiting in the reviewer's own order."""
    return review_queue(course=course, reviewer=reviewer).first()


def rubric_for_question(*, question: Question) -> list[RubricItem]:
    return list(question.rubric_items.all())


def review_queue_count(*, course: Course) -> int:
    return review_queue(course=course).aggregate(n=Count("id"))["n"]
