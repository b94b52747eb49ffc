"""Who may see or change assignments and submissions. Views call these, never check roles."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404

from accounts.models import User
from courses.access import CourseAccess, course_get_for_member
from grader.models import Assignment, Submission


def assignment_get_for_user(*, user: User, assignment_slug: str) -> tuple[CourseAccess, Assignment]:
    """Members of the assignment's course may see it; others learn nothing about it."""
    try:
        assignment = Assignment.objects.select_related("chapter__course", "dataset").get(
            slug=assignment_slug
        )
    except Assignment.DoesNotExist:
        raise Http404("No such assignment.") from None
    access = course_get_for_member(user=user, course_slug=assignment.chapter.course.slug)
    return access, assignment


def submission_get_for_user(
    *, user: User, submission_id: int, write: bool = False
) -> tuple[CourseAccess, Submission]:
    """Students see their own submissions; course staff see everyone's and change none.

    Another student's submission is a 404, not a 403: its existence is not theirs to know.
    """
    try:
        submission = Submission.objects.select_related(
            "assignment__chapter__course", "assignment__dataset", "user"
        ).get(pk=submission_id)
    except Submission.DoesNotExist:
        raise Http404("No such submission.") from None
    access = course_get_for_member(user=user, course_slug=submission.assignment.chapter.course.slug)
    if submission.user_id != user.pk:
        if not access.is_staff:
            raise Http404("No such submission.")
        if write:
            raise PermissionDenied("Only the student who submitted this may change it.")
    return access, submission
