"""Who may see or change what in a course. Views call these; they never check roles themselves.

Each function returns the object asked for, or raises ``Http404`` (it does not exist, or the user
may not know it exists) or ``PermissionDenied`` (it exists and the user lacks the role).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404

from accounts.models import User
from courses.models import (
    STAFF_ROLES,
    Answer,
    Attempt,
    Chapter,
    Course,
    Enrolment,
    Question,
    Questionnaire,
)
from topdown import sql

NOT_A_MEMBER = "Enrol in this course to see its chapters and questionnaires."
STAFF_ONLY = "Only the course's instructors and teaching assistants may do this."


@dataclass(frozen=True)
class CourseAccess:
    course: Course
    enrolment: Enrolment | None
    role: str | None
    # Staff previewing the course as a student (``courses.preview.viewer_access``): ``role`` is
    # then "student", so pages show what a student sees.
    previewing: bool = False

    @property
    def is_member(self) -> bool:
        return self.role is not None

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES

    @property
    def is_instructor(self) -> bool:
        return self.role == "instructor"

    @property
    def is_student(self) -> bool:
        return self.enrolment is not None and not self.is_staff

    @property
    def sees_drafts(self) -> bool:
        """Staff see draft chapters and assignments, and so do staff previewing as a student."""
        return self.is_staff or self.previewing


def course_access_for_user(*, user: User, course_slug: str) -> CourseAccess:
    """Anyone may see a course's front page; this says what else they may do.

    One statement reads the course and the user's enrolment in it (none for anonymous users,
    whose ``pk`` is ``None`` and matches no row)."""
    found = _course_read().row([user.pk, course_slug])
    if found is None:
        raise Http404("No such course.")
    course, enrolment = found
    return course_access_from(user=user, course=course, enrolment=enrolment)


def course_access_from(*, user: User, course: Course, enrolment: Enrolment | None) -> CourseAccess:
    """The access that ``user``'s ``enrolment`` in ``course`` (read already, or None) gives:
    the role enrolled as, and an instructor's for superusers. The enrolment's ``course`` is
    ``course`` from then on, as ``select_related`` would have left it."""
    role = None
    if enrolment is not None:
        sql.attach(enrolment, "course", course)
        role = enrolment.role
    if user.is_authenticated and user.is_superuser:
        role = "instructor"
    return CourseAccess(course=course, enrolment=enrolment, role=role)


def course_get_for_member(*, user: User, course_slug: str, staff: bool = False) -> CourseAccess:
    access = course_access_for_user(user=user, course_slug=course_slug)
    if not access.is_member:
        raise PermissionDenied(NOT_A_MEMBER)
    if staff and not access.is_staff:
        raise PermissionDenied(STAFF_ONLY)
    return access


def course_get_for_instructor(*, user: User, course_slug: str) -> CourseAccess:
    """Changing course content (importing chapters, say) is for instructors, not TAs."""
    access = course_get_for_member(user=user, course_slug=course_slug)
    if access.role != "instructor":
        raise PermissionDenied("Only the course's instructors may change its content.")
    return access


def course_check_can_create(*, user: User) -> None:
    """Creating a course takes the ``courses.add_course`` permission (superusers have it)."""
    if not user.has_perm("courses.add_course"):
        raise PermissionDenied("Only site staff given the right to create courses may do this.")


def chapter_get_for_instructor(
    *, user: User, course_slug: str, chapter_slug: str
) -> tuple[CourseAccess, Chapter]:
    """A chapter to edit, draft or published: the course's instructors only."""
    access = course_get_for_instructor(user=user, course_slug=course_slug)
    try:
        chapter = Chapter.objects.get(course=access.course, slug=chapter_slug)
    except Chapter.DoesNotExist:
        raise Http404("No such chapter.") from None
    return access, chapter


def question_get_for_instructor(
    *, user: User, course_slug: str, chapter_slug: str, question_id: int, archived: bool = False
) -> tuple[CourseAccess, Question]:
    """A question to edit, or with ``archived`` one removed earlier, to restore: authoring sees
    each kind only where it asks for it."""
    access = course_get_for_instructor(user=user, course_slug=course_slug)
    try:
        question = Question.objects.select_related("questionnaire__chapter").get(
            pk=question_id,
            archived=archived,
            questionnaire__chapter__course=access.course,
            questionnaire__chapter__slug=chapter_slug,
        )
    except Question.DoesNotExist:
        raise Http404("No such question.") from None
    return access, question


def chapter_get_for_user(
    *, user: User, course_slug: str, chapter_slug: str
) -> tuple[CourseAccess, Chapter, list[Chapter]]:
    """The chapter to read and the course's outline around it: the chapters the user may see,
    in order, with their questionnaires. One query for both, with only this chapter's body."""
    access = course_get_for_member(user=user, course_slug=course_slug)
    chapters, chapter = [], None
    for found, questionnaire, body in _outline_read().rows([chapter_slug, access.course.pk]):
        sql.attach(found, "course", access.course)
        sql.attach(found, "questionnaire", questionnaire)
        if questionnaire is not None:
            sql.attach(questionnaire, "chapter", found)
        if found.slug == chapter_slug:
            found.body, chapter = body, found
        if found.published or access.is_staff:
            chapters.append(found)
    if chapter is None or (not chapter.published and not access.is_staff):
        raise Http404("No such chapter.")
    return access, chapter, chapters


def questionnaire_get_for_user(
    *, user: User, course_slug: str, chapter_slug: str
) -> tuple[CourseAccess, Questionnaire]:
    access, questionnaire = _questionnaire_with_access(
        user=user, course_slug=course_slug, chapter_slug=chapter_slug
    )
    if not questionnaire.chapter.published and not access.is_staff:
        raise Http404("This chapter has no questionnaire.")
    return access, questionnaire


def questionnaire_get_for_staff(
    *, user: User, course_slug: str, chapter_slug: str
) -> tuple[CourseAccess, Questionnaire]:
    """A questionnaire's statistics are for course staff (instructors and TAs)."""
    return _questionnaire_with_access(
        user=user, course_slug=course_slug, chapter_slug=chapter_slug, staff=True
    )


def _questionnaire_with_access(
    *, user: User, course_slug: str, chapter_slug: str, staff: bool = False
) -> tuple[CourseAccess, Questionnaire]:
    """The course's access for ``user`` (members only, or with ``staff`` course staff only, as
    ``course_get_for_member`` has it) and the chapter's questionnaire, with its chapter (no
    body), from one statement."""
    found = _questionnaire_read().row([user.pk, chapter_slug, course_slug])
    if found is None:
        raise Http404("No such course.")
    course, enrolment, chapter, questionnaire = found
    access = course_access_from(user=user, course=course, enrolment=enrolment)
    if not access.is_member:
        raise PermissionDenied(NOT_A_MEMBER)
    if staff and not access.is_staff:
        raise PermissionDenied(STAFF_ONLY)
    if questionnaire is None:
        raise Http404("This chapter has no questionnaire.")
    sql.attach(chapter, "course", course)
    sql.attach(questionnaire, "chapter", chapter)
    return access, questionnaire


def attempt_get_for_user(
    *, user: User, course_slug: str, attempt_id: int, write: bool = False
) -> tuple[CourseAccess, Attempt]:
    """Students see their own attempts; course staff see everyone's but change none."""
    access = course_get_for_member(user=user, course_slug=course_slug)
    try:
        attempt = Attempt.objects.select_related("questionnaire__chapter", "user").get(
            pk=attempt_id, questionnaire__chapter__course=access.course
        )
    except Attempt.DoesNotExist:
        raise Http404("No such attempt.") from None
    if attempt.user_id != user.pk:
        if not access.is_staff:
            raise Http404("No such attempt.")
        if write:
            raise PermissionDenied("Only the student who made this attempt may change it.")
    return access, attempt


def answer_get_for_reviewer(*, user: User, course_slug: str, answer_id: int) -> Answer:
    access = course_get_for_member(user=user, course_slug=course_slug, staff=True)
    try:
        return Answer.objects.select_related(
            "question", "attempt__user", "attempt__questionnaire__chapter"
        ).get(pk=answer_id, attempt__questionnaire__chapter__course=access.course)
    except Answer.DoesNotExist:
        raise Http404("No such answer.") from None


# --- The reads behind the functions above, in plain SQL (see topdown.sql) -----------------------
#
# Every course page reads the course with the viewer's enrolment, and the chapter page the outline;
# their statements are built once per process.


def _course_joins() -> str:
    """The course ``co`` and, outer joined, the enrolment ``e`` in it of the user given as the
    statement's first parameter."""
    return (
        f" FROM {sql.table(Course)} co"
        f" LEFT JOIN {sql.table(Enrolment)} e ON e.course_id = co.id AND e.user_id = %s"
    )


# What pages other than a chapter's own read of chapters and questionnaires: not the body, nor
# timestamps nobody shows (fifty datetimes parsed for nothing on the chapter page).
_SLIM = ("body", "created_at", "updated_at")


def _slim(model: type[Chapter | Questionnaire], alias: str) -> sql.Columns[Any]:
    return sql.Columns(model, alias, without=_SLIM)


@lru_cache(maxsize=1)
def _course_read() -> sql.Read:
    columns = (sql.Columns(Course, "co"), sql.Columns(Enrolment, "e"))
    statement = (
        f"SELECT {', '.join(c.sql for c in columns)}{_course_joins()}"
        f" WHERE co.{sql.quote('slug')} = %s"
    )
    return sql.Read(statement, columns)


@lru_cache(maxsize=1)
def _questionnaire_read() -> sql.Read:
    columns = (
        sql.Columns(Course, "co"),
        sql.Columns(Enrolment, "e"),
        _slim(Chapter, "ch"),
        sql.Columns(Questionnaire, "q"),
    )
    slug = sql.quote("slug")
    statement = (
        f"SELECT {', '.join(c.sql for c in columns)}{_course_joins()}"
        f" LEFT JOIN {sql.table(Chapter)} ch ON ch.course_id = co.id AND ch.{slug} = %s"
        f" LEFT JOIN {sql.table(Questionnaire)} q ON q.chapter_id = ch.id"
        f" WHERE co.{slug} = %s"
    )
    return sql.Read(statement, columns)


@lru_cache(maxsize=1)
def _outline_read() -> sql.Read:
    """A course's chapters in order with their questionnaires; the body of the one whose slug
    is the first parameter comes last in its row, the others' bodies are not read."""
    columns = (_slim(Chapter, "ch"), _slim(Questionnaire, "q"))
    body = sql.quote("body")
    statement = (
        f"SELECT {', '.join(c.sql for c in columns)},"  # noqa: S608 - names from the models
        f" CASE WHEN ch.{sql.quote('slug')} = %s THEN ch.{body} ELSE '' END"
        f" FROM {sql.table(Chapter)} ch"
        f" LEFT JOIN {sql.table(Questionnaire)} q ON q.chapter_id = ch.id"
        f" WHERE ch.course_id = %s ORDER BY ch.{sql.quote('position')}, ch.id"
    )
    return sql.Read(statement, columns)
