"""Services that write course content from the browser: courses, chapters, questionnaires and
their questions.

Callers have checked that the user is an instructor of the course (``courses.access``). Every
service validates before it writes and raises ``ValidationError`` (a dict keyed by field name
where it can) or ``AuthoringError`` (a refusal to show as is); each runs in one transaction, so a
refused change writes nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max, Model, QuerySet

from accounts.models import User
from courses.models import (
    STAFF_ROLES,
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

SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
# Words site addresses use after "courses/" and "chapters/" ("courses/new/", "courses/import/",
# "chapters/new/"): a course or chapter with such a slug would be shadowed by that page.
RESERVED_SLUGS = frozenset({"new", "import"})
KEY_MAX_LENGTH = Question._meta.get_field("key").max_length or 80


class AuthoringError(Exception):
    """A change the rules refuse; the message is shown to the instructor as is."""


def slug_problem(value: str) -> str:
    """Why ``value`` cannot be a course or chapter slug, or ``""``."""
    if not SLUG_RE.match(value):
        return "Use lowercase letters, digits and single hyphens, e.g. first-model."
    if value in RESERVED_SLUGS:
        return f"“{value}” is reserved; choose another."
    return ""


def _raise_if(errors: dict[str, list[str]]) -> None:
    if errors:
        raise ValidationError(errors)


def _not_by_staff(attempts: QuerySet[Attempt], course_id: int) -> QuerySet[Attempt]:
    """The attempts that are not the course staff's own trials: students', and also those of
    people no longer enrolled, whose work is history that deleting must not lose."""
    staff = Enrolment.objects.filter(course_id=course_id, role__in=STAFF_ROLES)
    return attempts.exclude(user__in=staff.values("user_id"))


# --- Courses -----------------------------------------------------------------------------------


def _course_check(course: Course) -> None:
    errors: dict[str, list[str]] = {}
    if course.enrolment == Course.Enrolment.INVITE and not course.invite_code.strip():
        errors["invite_code"] = ["An invite-only course needs an invite code."]
    _raise_if(errors)
    course.full_clean(exclude=["slug"] if course.pk else None)


@transaction.atomic
def course_create(
    *,
    user: User,
    slug: str,
    title: str,
    description: str = "",
    enrolment: str = Course.Enrolment.OPEN,
    invite_code: str = "",
) -> Course:
    """Create a course with ``user`` as its instructor (caller checked they may create one)."""
    problem = slug_problem(slug)
    if not problem and Course.objects.filter(slug=slug).exists():
        problem = "Another course already uses this slug."
    _raise_if({"slug": [problem]} if problem else {})
    course = Course(
        slug=slug,
        title=title.strip(),
        description=description,
        enrolment=enrolment,
        invite_code=invite_code.strip(),
    )
    _course_check(course)
    course.save()
    Enrolment.objects.create(user=user, course=course, role=Role.INSTRUCTOR)
    return course


@transaction.atomic
def course_update(
    *, course: Course, title: str, description: str, enrolment: str, invite_code: str
) -> Course:
    course.title = title.strip()
    course.description = description
    course.enrolment = enrolment
    course.invite_code = invite_code.strip()
    _course_check(course)
    course.save(update_fields=["title", "description", "enrolment", "invite_code", "updated_at"])
    return course


# --- Chapters ----------------------------------------------------------------------------------


def _chapter_slug_check(*, course: Course, slug: str, chapter_id: int | None = None) -> None:
    problem = slug_problem(slug)
    if not problem:
        others = Chapter.objects.filter(course=course, slug=slug)
        if chapter_id is not None:
            others = others.exclude(pk=chapter_id)
        if others.exists():
            problem = "Another chapter of this course already uses this slug."
    _raise_if({"slug": [problem]} if problem else {})


def _free_uid(*, course: Course, slug: str) -> str:
    """The slug, unless a renamed chapter still carries it as its stable id."""
    taken = set(
        Chapter.objects.filter(course=course, uid__startswith=slug).values_list("uid", flat=True)
    )
    uid, number = slug, 2
    while uid in taken:
        uid = f"{slug[:75]}-{number}"
        number += 1
    return uid


@transaction.atomic
def chapter_create(*, course: Course, slug: str, title: str, body: str = "") -> Chapter:
    """A new chapter at the end of the course, as a draft: students see it once published."""
    _chapter_slug_check(course=course, slug=slug)
    last = Chapter.objects.filter(course=course).aggregate(last=Max("position"))["last"]
    chapter = Chapter(
        course=course,
        slug=slug,
        uid=_free_uid(course=course, slug=slug),
        title=title.strip(),
        body=body,
        position=0 if last is None else last + 1,
        published=False,
    )
    chapter.full_clean(validate_constraints=False)
    chapter.save()
    return chapter


@transaction.atomic
def chapter_update(*, chapter: Chapter, slug: str, title: str, body: str) -> Chapter:
    """Change a chapter's text. Its ``uid`` stays, so course folders still recognise it."""
    _chapter_slug_check(course=chapter.course, slug=slug, chapter_id=chapter.pk)
    chapter.slug = slug
    chapter.title = title.strip()
    chapter.body = body
    chapter.full_clean(validate_constraints=False)
    chapter.save(update_fields=["slug", "title", "body", "updated_at"])
    return chapter


def _swap_positions(rows: list[Any], index: int, offset: int) -> list[Any]:
    """Move the row at ``index`` by ``offset`` and renumber 0, 1, ...; return the rows changed."""
    target = index + offset
    if not 0 <= target < len(rows):
        return []
    rows[index], rows[target] = rows[target], rows[index]
    changed = []
    for position, row in enumerate(rows):
        if row.position != position:
            row.position = position
            changed.append(row)
    return changed


@transaction.atomic
def chapter_move(*, chapter: Chapter, offset: int) -> Chapter:
    """Move a chapter up (``offset=-1``) or down (``+1``); at either end nothing changes."""
    # Locking the course's chapters serialises two instructors reordering at once.
    chapters = list(
        Chapter.objects.select_for_update().filter(course_id=chapter.course_id).only("position")
    )
    index = next(i for i, c in enumerate(chapters) if c.pk == chapter.pk)
    changed = _swap_positions(chapters, index, offset)
    Chapter.objects.bulk_update(changed, ["position"])
    chapter.position = next(c.position for c in chapters if c.pk == chapter.pk)
    return chapter


def chapter_publish(*, chapter: Chapter, published: bool) -> Chapter:
    if chapter.published != published:
        chapter.published = published
        chapter.save(update_fields=["published", "updated_at"])
    return chapter


@transaction.atomic
def chapter_delete(*, chapter: Chapter) -> None:
    """Delete a chapter nobody depends on: refused once students answered its questionnaire
    (unpublish it instead) or while it has further-research assignments (they hold submissions).
    """
    answered = _not_by_staff(
        Attempt.objects.filter(questionnaire__chapter=chapter), chapter.course_id
    ).exists()
    if answered:
        raise AuthoringError(
            "Students have answered this chapter's questionnaire, so it cannot be deleted. "
            "Unpublish it to hide it from students."
        )
    if chapter.assignments.exists():
        raise AuthoringError(
            "This chapter has further-research assignments; delete or move them first."
        )
    chapter.delete()


# --- Questionnaires ----------------------------------------------------------------------------


@transaction.atomic
def questionnaire_save(
    *,
    chapter: Chapter,
    title: str,
    max_attempts: int,
    counts: str,
    reveal: str,
    late: str,
    due_at: datetime | None,
) -> Questionnaire:
    """Create the chapter's questionnaire or change its settings."""
    questionnaire = Questionnaire.objects.filter(chapter=chapter).first() or Questionnaire(
        chapter=chapter
    )
    questionnaire.title = title.strip()
    questionnaire.max_attempts = max_attempts
    questionnaire.counts = counts
    questionnaire.reveal = reveal
    questionnaire.late = late
    questionnaire.due_at = due_at
    questionnaire.full_clean(exclude=["chapter"])
    questionnaire.save()
    return questionnaire


@transaction.atomic
def questionnaire_delete(*, questionnaire: Questionnaire) -> None:
    """Delete a questionnaire nobody depends on, with its questions and staff's trial attempts:
    refused once students have attempted it (their attempts and scores count towards grades)."""
    attempted = _not_by_staff(
        Attempt.objects.filter(questionnaire=questionnaire), questionnaire.chapter.course_id
    ).exists()
    if attempted:
        raise AuthoringError(
            "Students have attempted this questionnaire, so it cannot be deleted: their attempts "
            "and scores count towards their grades. Remove single questions instead (answered "
            "ones are archived), or unpublish the chapter."
        )
    questionnaire.delete()


# --- Questions ---------------------------------------------------------------------------------


@dataclass
class ChoiceData:
    text: str
    is_correct: bool = False
    # The choice this row edits, when the editor knows it; see ``_save_rows``.
    id: int | None = None


@dataclass
class RubricItemData:
    text: str
    points: Decimal = Decimal("1")
    id: int | None = None


@dataclass
class QuestionData:
    """Everything a question is. Fields another kind uses are ignored (stored as defaults)."""

    key: str
    prompt: str
    explanation: str = ""
    points: Decimal = Decimal("1")
    choices: list[ChoiceData] = field(default_factory=list)
    correct_boolean: bool | None = None
    numeric_answer: float | None = None
    tolerance: float = 0.0
    tolerance_mode: str = Question.ToleranceMode.ABSOLUTE
    accepted_answers: list[str] = field(default_factory=list)
    answer_regex: str = ""
    reference_answer: str = ""
    rubric: list[RubricItemData] = field(default_factory=list)
    starter_code: str = ""
    visible_tests: str = ""
    hidden_tests: str = ""
    time_limit_seconds: int = 10


# Which of QuestionData's fields each kind keeps; the rest are reset to their defaults.
KIND_FIELDS: dict[str, tuple[str, ...]] = {
    Question.Kind.SINGLE: ("choices",),
    Question.Kind.MULTIPLE: ("choices",),
    Question.Kind.TRUE_FALSE: ("correct_boolean",),
    Question.Kind.NUMERIC: ("numeric_answer", "tolerance", "tolerance_mode"),
    Question.Kind.SHORT_TEXT: ("accepted_answers", "answer_regex"),
    Question.Kind.FREE_TEXT: ("reference_answer", "rubric"),
    Question.Kind.CODE: ("starter_code", "visible_tests", "hidden_tests", "time_limit_seconds"),
}
QUESTION_COLUMNS = (
    "correct_boolean",
    "numeric_answer",
    "tolerance",
    "tolerance_mode",
    "accepted_answers",
    "answer_regex",
    "reference_answer",
    "starter_code",
    "visible_tests",
    "hidden_tests",
    "time_limit_seconds",
)


def _kind_problems(kind: str, data: QuestionData) -> dict[str, list[str]]:
    """The rules the model's constraints cannot say, per kind (code is checked by the model)."""
    errors: dict[str, list[str]] = {}
    if kind in (Question.Kind.SINGLE, Question.Kind.MULTIPLE):
        if len(data.choices) < 2:
            errors["choices"] = ["Give at least two choices."]
        elif any(not choice.text.strip() for choice in data.choices):
            errors["choices"] = ["Every choice needs a text."]
        else:
            correct = sum(choice.is_correct for choice in data.choices)
            if kind == Question.Kind.SINGLE and correct != 1:
                errors["choices"] = ["A single-choice question needs exactly one correct choice."]
            if kind == Question.Kind.MULTIPLE and correct < 1:
                errors["choices"] = ["Mark at least one choice as correct."]
    elif kind == Question.Kind.TRUE_FALSE and data.correct_boolean is None:
        errors["correct_boolean"] = ["Say whether the statement is true or false."]
    elif kind == Question.Kind.NUMERIC:
        if data.numeric_answer is None:
            errors["numeric_answer"] = ["Give the correct number."]
    elif kind == Question.Kind.SHORT_TEXT:
        if data.answer_regex:
            try:
                re.compile(data.answer_regex)
            except re.error as error:
                errors["answer_regex"] = [f"This pattern does not compile: {error}."]
        if not any(a.strip() for a in data.accepted_answers) and not data.answer_regex:
            errors["accepted_answers"] = ["Give at least one accepted answer, or a pattern."]
    elif kind == Question.Kind.FREE_TEXT:
        if not data.reference_answer.strip():
            errors["reference_answer"] = [
                "Give a reference answer: students compare theirs with it to assess themselves."
            ]
        if any(item.points < 0 for item in data.rubric):
            errors["rubric"] = ["Rubric points cannot be negative."]
        elif any(not item.text.strip() for item in data.rubric):
            errors["rubric"] = ["Every rubric item needs a text."]
    return errors


def _key_problem(*, questionnaire: Questionnaire, key: str, question_id: int | None) -> str:
    if not SLUG_RE.match(key):
        return "Use lowercase letters, digits and single hyphens, e.g. loss-function."
    if len(key) > KEY_MAX_LENGTH:
        return f"At most {KEY_MAX_LENGTH} characters."
    others = questionnaire.questions.filter(key=key)
    if question_id is not None:
        others = others.exclude(pk=question_id)
    other = others.first()
    if other is not None:
        where = " (removed, kept for its answers)" if other.archived else ""
        return f"Another question of this questionnaire{where} already uses this key."
    return ""


def _question_write(*, question: Question, data: QuestionData) -> Question:
    """Validate ``data`` for ``question``'s kind and save it with its choices and rubric."""
    kind = question.kind
    kept = KIND_FIELDS[kind]
    defaults = QuestionData(key="", prompt="")
    errors = _kind_problems(kind, data)
    problem = _key_problem(
        questionnaire=question.questionnaire, key=data.key, question_id=question.pk
    )
    if problem:
        errors["key"] = [problem]
    if not data.prompt.strip():
        errors["prompt"] = ["Write the question."]
    question.key = data.key
    question.prompt = data.prompt
    question.explanation = data.explanation
    question.points = data.points
    for name in QUESTION_COLUMNS:
        setattr(question, name, getattr(data if name in kept else defaults, name))
    if kind == Question.Kind.SHORT_TEXT:
        question.accepted_answers = [a.strip() for a in data.accepted_answers if a.strip()]
    try:
        # Field validators (points, time limit) and the model's own rules for code questions.
        question.full_clean(
            exclude=["questionnaire", "key", "prompt"],
            validate_unique=False,
            validate_constraints=False,
        )
    except ValidationError as error:
        for name, messages in error.message_dict.items():
            errors.setdefault(name, []).extend(m for m in messages if m not in errors.get(name, []))
    _raise_if(errors)
    question.save()
    choices = data.choices if "choices" in kept else []
    _save_rows(
        question.choices.all(),
        [
            Choice(question=question, text=c.text.strip(), is_correct=c.is_correct, id=c.id)
            for c in choices
        ],
        ["text", "is_correct"],
    )
    rubric = data.rubric if "rubric" in kept else []
    _save_rows(
        question.rubric_items.all(),
        [
            RubricItem(question=question, text=r.text.strip(), points=r.points, id=r.id)
            for r in rubric
        ],
        ["text", "points"],
    )
    return question


def _save_rows(existing_qs: QuerySet[Any], rows: list[Any], fields: list[str]) -> None:
    """Make a question's choices (or rubric items) ``rows``, in order, keeping ids.

    Answers store choice ids, so an edit must update rows in place rather than replace them.
    When rows name existing ids (the browser editor sends them), each updates its own row, rows
    without one are new, and unnamed existing rows are deleted: removing the second of four
    choices keeps the third and fourth as they were, and an added choice never takes over a
    removed one's id. When no row names one (a caller that does not know the ids), rows are
    matched by position, as course folders match them. Existing rows left over are deleted.
    """
    existing = list(existing_qs.order_by("position", "id"))
    by_id = {row.pk: row for row in existing}
    named = {row.pk for row in rows if row.pk in by_id}
    # Rows left unnamed by an editor that names ids are gone, not free for new rows to reuse.
    reusable = [] if named else list(existing)
    used: set[int] = set()
    to_update: list[Model] = []
    to_create: list[Model] = []
    for position, row in enumerate(rows):
        if row.pk in named and row.pk not in used:
            target = by_id[row.pk]
        else:
            target = reusable.pop(0) if reusable else None
        if target is None:
            row.pk = None
            row.position = position
            to_create.append(row)
            continue
        used.add(target.pk)
        for name in fields:
            setattr(target, name, getattr(row, name))
        target.position = position
        to_update.append(target)
    left_over = [row.pk for row in existing if row.pk not in used]
    if left_over:
        existing_qs.model.objects.filter(pk__in=left_over).delete()
    if to_update:
        existing_qs.model.objects.bulk_update(to_update, [*fields, "position"])
    if to_create:
        existing_qs.model.objects.bulk_create(to_create)


@transaction.atomic
def question_create(*, questionnaire: Questionnaire, kind: str, data: QuestionData) -> Question:
    """A new question of ``kind`` at the end of the questionnaire."""
    if kind not in Question.Kind.values:
        raise AuthoringError("Choose a kind of question.")
    last = questionnaire.questions.aggregate(last=Max("position"))["last"]
    question = Question(
        questionnaire=questionnaire, kind=kind, position=0 if last is None else last + 1
    )
    return _question_write(question=question, data=data)


@transaction.atomic
def question_update(*, question: Question, data: QuestionData) -> Question:
    """Change a question; its kind stays (answers already given are of that kind)."""
    return _question_write(question=question, data=data)


def _live_questions(questionnaire_id: int) -> QuerySet[Question]:
    return Question.objects.filter(questionnaire_id=questionnaire_id, archived=False)


@transaction.atomic
def question_move(*, question: Question, offset: int) -> Question:
    """Move a question up (``-1``) or down (``+1``) among the questionnaire's questions."""
    questions = list(
        _live_questions(question.questionnaire_id).select_for_update().only("position")
    )
    index = next(i for i, q in enumerate(questions) if q.pk == question.pk)
    Question.objects.bulk_update(_swap_positions(questions, index, offset), ["position"])
    question.position = next(q.position for q in questions if q.pk == question.pk)
    return question


def _copy_key(*, questionnaire: Questionnaire, key: str) -> str:
    taken = set(questionnaire.questions.values_list("key", flat=True))
    number = 1
    while True:
        suffix = "-copy" if number == 1 else f"-copy-{number}"
        candidate = key[: KEY_MAX_LENGTH - len(suffix)].rstrip("-") + suffix
        if candidate not in taken:
            return candidate
        number += 1


@transaction.atomic
def question_duplicate(*, question: Question) -> Question:
    """A copy of the question, its choices and rubric, right after it, keyed ``<key>-copy``."""
    questions = list(
        _live_questions(question.questionnaire_id).select_for_update().only("position")
    )
    copy = Question.objects.get(pk=question.pk)
    copy.pk = None
    copy._state.adding = True
    copy.key = _copy_key(questionnaire=question.questionnaire, key=question.key)
    copy.save()
    index = next(i for i, q in enumerate(questions) if q.pk == question.pk)
    questions.insert(index + 1, copy)
    changed = [q for position, q in enumerate(questions) if q.position != position]
    for position, q in enumerate(questions):
        q.position = position
    Question.objects.bulk_update(changed, ["position"])
    Choice.objects.bulk_create(
        Choice(question=copy, position=c.position, text=c.text, is_correct=c.is_correct)
        for c in question.choices.all()
    )
    RubricItem.objects.bulk_create(
        RubricItem(question=copy, position=r.position, text=r.text, points=r.points)
        for r in question.rubric_items.all()
    )
    return copy


@transaction.atomic
def question_remove(*, question: Question) -> bool:
    """Take a question out of its questionnaire. Returns whether it was archived.

    A question students answered (or people since unenrolled) is archived: it leaves the
    questionnaire (new attempts do not ask it) but stays with their answers and scores.
    Otherwise it is deleted, with any answers staff gave while previewing.
    """
    course_id = question.questionnaire.chapter.course_id
    attempts = _not_by_staff(Attempt.objects.filter(answers__question=question), course_id)
    if attempts.exists():
        question.archived = True
        question.save(update_fields=["archived", "updated_at"])
        return True
    question.delete()
    return False


@transaction.atomic
def question_restore(*, question: Question) -> Question:
    """Bring an archived question back, as the questionnaire's last question. Its past answers
    kept their scores all along; new attempts ask it again."""
    last = _live_questions(question.questionnaire_id).aggregate(last=Max("position"))["last"]
    question.archived = False
    question.position = (last or 0) + 1
    question.save(update_fields=["archived", "position", "updated_at"])
    return question
