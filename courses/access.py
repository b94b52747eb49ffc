"""Who may see or change what in a course. Views call these; they never check roles themselves.

Each function returns the object asked for, or raises ``Http404`` (it does not exist, or the user
may not know it exists) or ``PermissionDenied`` (it exists and the user lacks the role).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import PermissionDenied
from django.db.models import Case, F, TextField, Value, When
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

NOT_A_MEMBER = "Enrol in this course to see its chapters and questionnaires."


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
    """Anyone may see a course's front page; this says what else they may do."""
    enrolment = None
    if user.is_authenticated:
        # Members are the common case: one query finds the course and the role together.
        enrolment = (
            Enrolment.objects.select_related("course")
            .filter(user=user, course__slug=course_slug)
            .first()
        )
    if enrolment is not None:
        course = enrolment.course
    else:
        try:
            course = Course.objects.get(slug=course_slug)
        except Course.DoesNotExist:
            raise Http404("No such course.") from None
    return course_access_from(user=user, course=course, enrolment=enrolment)


def course_access_from(*, user: User, course: Course, enrolment: Enrolment | None) -> CourseAccess:
    """The access that ``user``'s ``enrolment`` in ``course`` (read already, or None) gives:
    the role enrolled as, and an instructor's for superusers."""
    role = enrolment.role if enrolment else None
    if user.is_authenticated and user.is_superuser:
        role = "instructor"
    return CourseAccess(course=course, enrolment=enrolment, role=role)


def course_get_for_member(*, user: User, course_slug: str, staff: bool = False) -> CourseAccess:
    access = course_access_for_user(user=user, course_slug=course_slug)
    if not access.is_member:
        raise PermissionDenied(NOT_A_MEMBER)
    if staff and not access.is_staff:
        raise PermissionDenied("Only the course's instructors and teaching assistants may do this.")
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
    chapters = list(
        Chapter.objects.filter(course=access.course)
        .select_related("questionnaire")
        .defer("body")
        .annotate(
            page_body=Case(
                When(slug=chapter_slug, then=F("body")),
                default=Value(""),
                output_field=TextField(),
            )
        )
    )
    chapter = next((c for c in chapters if c.slug == chapter_slug), None)
    if chapter is None or (not chapter.published and not access.is_staff):
        raise Http404("No such chapter.")
    chapter.body = chapter.page_body
    return access, chapter, [c for c in chapters if c.published or access.is_staff]


def questionnaire_get_for_user(
    *, user: User, course_slug: str, chapter_slug: str
) -> tuple[CourseAccess, Questionnaire]:
    access = course_get_for_member(user=user, course_slug=course_slug)
    try:
        questionnaire = Questionnaire.objects.select_related("chapter").get(
            chapter__course=access.course, chapter__slug=chapter_slug
        )
    except Questionnaire.DoesNotExist:
        raise Http404("This chapter has no questionnaire.") from None
    if not questionnaire.chapter.published and not access.is_staff:
        raise Http404("This chapter has no questionnaire.")
    return access, questionnaire


def questionnaire_get_for_staff(
    *, user: User, course_slug: str, chapter_slug: str
) -> tuple[CourseAccess, Questionnaire]:
    """A questionnaire's statistics are for course staff (instructors and TAs)."""
    access = course_get_for_member(user=user, course_slug=course_slug, staff=True)
    try:
        questionnaire = Questionnaire.objects.select_related("chapter").get(
            chapter__course=access.course, chapter__slug=chapter_slug
        )
    except Questionnaire.DoesNotExist:
        raise Http404("This chapter has no questionnaire.") from None
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
