"""Read a course folder (see docs/course-folder.md) and import it idempotently.

Parsing and validation happen first, for the whole folder, so a broken file imports nothing.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from django.db import transaction
from django.db.models import Model

from courses.code_questions import TIME_LIMIT_MAX, TIME_LIMIT_MIN, code_problem, tests_problem
from courses.models import Chapter, Choice, Course, Question, Questionnaire

SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
FRONT_MATTER_RE = re.compile(r"\A\+\+\+\s*\n(.*?)\n\+\+\+\s*(?:\n|\Z)", re.DOTALL)


class CourseFolderError(Exception):
    """The folder is not a valid course; the message names the file and what is wrong."""


@dataclass
class ChoiceSpec:
    text: str
    correct: bool


@dataclass
class QuestionSpec:
    key: str
    kind: str
    prompt: str
    explanation: str = ""
    points: Decimal = Decimal("1")
    choices: list[ChoiceSpec] = field(default_factory=list)
    correct_boolean: bool | None = None
    numeric_answer: float | None = None
    tolerance: float = 0.0
    tolerance_mode: str = Question.ToleranceMode.ABSOLUTE
    accepted_answers: list[str] = field(default_factory=list)
    answer_regex: str = ""
    reference_answer: str = ""
    starter_code: str = ""
    visible_tests: str = ""
    hidden_tests: str = ""
    time_limit_seconds: int = 10


@dataclass
class QuestionnaireSpec:
    title: str
    max_attempts: int
    counts: str
    reveal: str
    late: str
    due_at: datetime | None
    questions: list[QuestionSpec]


@dataclass
class ChapterSpec:
    slug: str
    title: str
    body: str
    questionnaire: QuestionnaireSpec | None


@dataclass
class CourseSpec:
    slug: str
    title: str
    description: str
    enrolment: str
    invite_code: str
    chapters: list[ChapterSpec]


def _toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CourseFolderError(f"{path}: file not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise CourseFolderError(f"{path}: {error}") from None


def _require(data: dict[str, Any], key: str, kind: type, where: str) -> Any:
    value = data.get(key)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise CourseFolderError(f"{where}: '{key}' must be a {kind.__name__}")
    return value


def _slug(value: str, where: str) -> str:
    if not SLUG_RE.match(value):
        raise CourseFolderError(f"{where}: {value!r} is not a slug (lowercase, digits, hyphens)")
    return value


def _choice_of(data: dict[str, Any], key: str, allowed: list[str], default: str, where: str) -> str:
    value = data.get(key, default)
    if value not in allowed:
        raise CourseFolderError(f"{where}: '{key}' must be one of {', '.join(allowed)}")
    return value


def parse_question(data: dict[str, Any], where: str) -> QuestionSpec:
    key = _slug(_require(data, "key", str, where), where)
    where = f"{where} (question {key})"
    kind = _choice_of(data, "kind", Question.Kind.values, "", where)
    try:
        points = Decimal(str(data.get("points", 1)))
    except InvalidOperation:
        raise CourseFolderError(f"{where}: 'points' must be a number") from None
    if points < 0:
        raise CourseFolderError(f"{where}: 'points' cannot be negative")
    spec = QuestionSpec(
        key=key,
        kind=kind,
        prompt=_require(data, "prompt", str, where),
        explanation=data.get("explanation", ""),
        points=points,
    )
    if kind in (Question.Kind.SINGLE, Question.Kind.MULTIPLE):
        raw = data.get("choices")
        if not isinstance(raw, list) or len(raw) < 2:
            raise CourseFolderError(f"{where}: needs a list of at least two 'choices'")
        for choice in raw:
            if not isinstance(choice, dict) or not isinstance(choice.get("text"), str):
                raise CourseFolderError(f"{where}: every choice needs a 'text'")
            spec.choices.append(ChoiceSpec(choice["text"], bool(choice.get("correct", False))))
        correct = sum(c.correct for c in spec.choices)
        if kind == Question.Kind.SINGLE and correct != 1:
            raise CourseFolderError(f"{where}: a single-choice question needs exactly one correct")
        if kind == Question.Kind.MULTIPLE and correct < 1:
            raise CourseFolderError(f"{where}: a multiple-choice question needs a correct choice")
    elif kind == Question.Kind.TRUE_FALSE:
        spec.correct_boolean = _require(data, "answer", bool, where)
    elif kind == Question.Kind.NUMERIC:
        answer = data.get("answer")
        if isinstance(answer, bool) or not isinstance(answer, int | float):
            raise CourseFolderError(f"{where}: 'answer' must be a number")
        spec.numeric_answer = float(answer)
        spec.tolerance = float(data.get("tolerance", 0))
        if spec.tolerance < 0:
            raise CourseFolderError(f"{where}: 'tolerance' cannot be negative")
        spec.tolerance_mode = _choice_of(
            data, "tolerance_mode", Question.ToleranceMode.values, "absolute", where
        )
    elif kind == Question.Kind.SHORT_TEXT:
        accepted = data.get("accepted", [])
        if not isinstance(accepted, list) or not all(isinstance(a, str) for a in accepted):
            raise CourseFolderError(f"{where}: 'accepted' must be a list of strings")
        spec.accepted_answers = accepted
        spec.answer_regex = data.get("regex", "")
        if spec.answer_regex:
            try:
                re.compile(spec.answer_regex)
            except re.error as error:
                raise CourseFolderError(f"{where}: 'regex' does not compile: {error}") from None
        if not accepted and not spec.answer_regex:
            raise CourseFolderError(f"{where}: give 'accepted' answers or a 'regex'")
    elif kind == Question.Kind.FREE_TEXT:
        spec.reference_answer = _require(data, "reference", str, where)
    elif kind == Question.Kind.CODE:
        _parse_code(data, spec, where)
    return spec


def _parse_code(data: dict[str, Any], spec: QuestionSpec, where: str) -> None:
    for key in ("starter", "tests", "hidden_tests"):
        if not isinstance(data.get(key, ""), str):
            raise CourseFolderError(f"{where}: '{key}' must be a string of Python")
    spec.starter_code = data.get("starter", "")
    spec.visible_tests = data.get("tests", "")
    spec.hidden_tests = data.get("hidden_tests", "")
    if not spec.visible_tests.strip() and not spec.hidden_tests.strip():
        raise CourseFolderError(f"{where}: a code question needs 'tests' or 'hidden_tests'")
    for key, source in (("tests", spec.visible_tests), ("hidden_tests", spec.hidden_tests)):
        problem = tests_problem(source) if source.strip() else ""
        if problem:
            raise CourseFolderError(f"{where}: '{key}' {problem}")
    problem = code_problem(spec.starter_code, "'starter'")
    if problem:
        raise CourseFolderError(f"{where}: {problem}")
    limit = data.get("time_limit", 10)
    if (
        isinstance(limit, bool)
        or not isinstance(limit, int)
        or not TIME_LIMIT_MIN <= limit <= TIME_LIMIT_MAX
    ):
        raise CourseFolderError(
            f"{where}: 'time_limit' must be a whole number of seconds, "
            f"{TIME_LIMIT_MIN} to {TIME_LIMIT_MAX}"
        )
    spec.time_limit_seconds = limit


def parse_questionnaire(path: Path) -> QuestionnaireSpec:
    data = _toml(path)
    where = str(path)
    max_attempts = data.get("max_attempts", 0)
    if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 0:
        raise CourseFolderError(f"{where}: 'max_attempts' must be a whole number, 0 = unlimited")
    due = data.get("due")
    if due is not None and (not isinstance(due, datetime) or due.tzinfo is None):
        raise CourseFolderError(f"{where}: 'due' must be a TOML datetime with a UTC offset")
    raw_questions = data.get("questions", [])
    if not isinstance(raw_questions, list):
        raise CourseFolderError(f"{where}: 'questions' must be a list ([[questions]])")
    questions = [parse_question(q, where) for q in raw_questions]
    keys = [q.key for q in questions]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        raise CourseFolderError(f"{where}: duplicate question keys: {', '.join(duplicates)}")
    return QuestionnaireSpec(
        title=data.get("title", "Check your understanding"),
        max_attempts=max_attempts,
        counts=_choice_of(data, "counts", Questionnaire.Counts.values, "best", where),
        reveal=_choice_of(data, "reveal", Questionnaire.Reveal.values, "after_each_attempt", where),
        late=_choice_of(data, "late", Questionnaire.Late.values, "refuse", where),
        due_at=due,
        questions=questions,
    )


def parse_chapter(folder: Path) -> ChapterSpec:
    path = folder / "chapter.md"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CourseFolderError(f"{path}: file not found") from None
    match = FRONT_MATTER_RE.match(text)
    if not match:
        raise CourseFolderError(f"{path}: must start with TOML front matter between +++ lines")
    try:
        meta = tomllib.loads(match.group(1))
    except tomllib.TOMLDecodeError as error:
        raise CourseFolderError(f"{path}: front matter: {error}") from None
    questionnaire_path = folder / "questionnaire.toml"
    return ChapterSpec(
        slug=_slug(_require(meta, "slug", str, str(path)), str(path)),
        title=_require(meta, "title", str, str(path)),
        body=text[match.end() :].strip() + "\n",
        questionnaire=parse_questionnaire(questionnaire_path)
        if questionnaire_path.exists()
        else None,
    )


def course_folder_parse(root: Path) -> CourseSpec:
    data = _toml(root / "course.toml")
    where = str(root / "course.toml")
    chapters_dir = root / "chapters"
    folders = (
        sorted(p for p in chapters_dir.iterdir() if p.is_dir()) if chapters_dir.is_dir() else []
    )
    chapters = [parse_chapter(folder) for folder in folders]
    slugs = [c.slug for c in chapters]
    if len(set(slugs)) != len(slugs):
        raise CourseFolderError(f"{chapters_dir}: two chapters share a slug")
    enrolment = _choice_of(data, "enrolment", Course.Enrolment.values, "open", where)
    invite_code = data.get("invite_code", "")
    if enrolment == Course.Enrolment.INVITE and not invite_code:
        raise CourseFolderError(f"{where}: an invite-only course needs an 'invite_code'")
    return CourseSpec(
        slug=_slug(_require(data, "slug", str, where), where),
        title=_require(data, "title", str, where),
        description=data.get("description", ""),
        enrolment=enrolment,
        invite_code=invite_code,
        chapters=chapters,
    )


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.deleted)


def _upsert(
    model: type[Model], report: ImportReport, lookup: dict[str, Any], values: dict[str, Any]
) -> Any:
    """Create, or update only the fields that differ, so an unchanged import writes nothing."""
    manager = model._default_manager
    instance = manager.filter(**lookup).first()
    if instance is None:
        report.created += 1
        return manager.create(**lookup, **values)
    changed = [name for name, value in values.items() if getattr(instance, name) != value]
    if changed:
        for name in changed:
            setattr(instance, name, values[name])
        instance.full_clean(validate_unique=False, validate_constraints=False)
        instance.save(
            update_fields=[*changed, *(["updated_at"] if hasattr(instance, "updated_at") else [])]
        )
        report.updated += 1
    else:
        report.unchanged += 1
    return instance


def _remove_unanswered(queryset: Any, what: str, report: ImportReport) -> None:
    answered = [str(obj) for obj in queryset.filter(answers__isnull=False).distinct()]
    if answered:
        raise CourseFolderError(
            f"cannot remove {what} that students already answered: {', '.join(answered)}"
        )
    deleted, _ = queryset.delete()
    report.deleted += deleted


def _import_questions(
    questionnaire: Questionnaire, specs: list[QuestionSpec], report: ImportReport
) -> None:
    _remove_unanswered(
        questionnaire.questions.exclude(key__in=[q.key for q in specs]), "questions", report
    )
    for position, spec in enumerate(specs):
        question = _upsert(
            Question,
            report,
            {"questionnaire": questionnaire, "key": spec.key},
            {
                "position": position,
                "kind": spec.kind,
                "prompt": spec.prompt,
                "explanation": spec.explanation,
                "points": spec.points,
                "correct_boolean": spec.correct_boolean,
                "numeric_answer": spec.numeric_answer,
                "tolerance": spec.tolerance,
                "tolerance_mode": spec.tolerance_mode,
                "accepted_answers": spec.accepted_answers,
                "answer_regex": spec.answer_regex,
                "reference_answer": spec.reference_answer,
                "starter_code": spec.starter_code,
                "visible_tests": spec.visible_tests,
                "hidden_tests": spec.hidden_tests,
                "time_limit_seconds": spec.time_limit_seconds,
            },
        )
        # Choices are matched by position: answers store choice ids, so ids must survive edits.
        extra = question.choices.filter(position__gte=len(spec.choices))
        if extra.exists():
            report.deleted += extra.delete()[0]
        for choice_position, choice in enumerate(spec.choices):
            _upsert(
                Choice,
                report,
                {"question": question, "position": choice_position},
                {"text": choice.text, "is_correct": choice.correct},
            )


@transaction.atomic
def course_folder_import(root: Path) -> tuple[Course, ImportReport]:
    """Import or update the course in ``root``. All or nothing: an error changes nothing."""
    spec = course_folder_parse(root)
    report = ImportReport()
    course = _upsert(
        Course,
        report,
        {"slug": spec.slug},
        {
            "title": spec.title,
            "description": spec.description,
            "enrolment": spec.enrolment,
            "invite_code": spec.invite_code,
        },
    )
    for position, chapter_spec in enumerate(spec.chapters):
        chapter = _upsert(
            Chapter,
            report,
            {"course": course, "slug": chapter_spec.slug},
            {"title": chapter_spec.title, "body": chapter_spec.body, "position": position},
        )
        q_spec = chapter_spec.questionnaire
        if q_spec is None:
            continue
        questionnaire = _upsert(
            Questionnaire,
            report,
            {"chapter": chapter},
            {
                "title": q_spec.title,
                "max_attempts": q_spec.max_attempts,
                "counts": q_spec.counts,
                "reveal": q_spec.reveal,
                "late": q_spec.late,
                "due_at": q_spec.due_at,
            },
        )
        _import_questions(questionnaire, q_spec.questions, report)
    return course, report
