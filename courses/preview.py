"""Preview as a student: a per-course switch in the staff member's session.

While it is on, the course's pages show what a student sees (no staff links or panels), draft
chapters included and marked, so staff can read and answer them. Nothing staff do counts: every
grade, statistic and queue counts enrolled students only. Pages call ``viewer_access`` once,
right after their access check; the banner comes from ``context`` (a context processor).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from django.http import HttpRequest

from courses.access import CourseAccess
from courses.models import Course, Role

SESSION_KEY = "course_preview"


def _previews(request: HttpRequest) -> dict[str, dict[str, str]]:
    """Course id (as a string: the session is JSON) to the course's slug and title."""
    value = request.session.get(SESSION_KEY)
    return value if isinstance(value, dict) else {}


def preview_enabled(request: HttpRequest, course: Course) -> bool:
    return str(course.pk) in _previews(request)


def preview_set(request: HttpRequest, *, course: Course, enabled: bool) -> None:
    """Turn previewing ``course`` on or off. Caller checks the user is the course's staff."""
    previews = dict(_previews(request))
    if enabled:
        previews[str(course.pk)] = {"slug": course.slug, "title": course.title}
    else:
        previews.pop(str(course.pk), None)
    if previews:
        request.session[SESSION_KEY] = previews
    else:
        request.session.pop(SESSION_KEY, None)


def viewer_access(request: HttpRequest, access: CourseAccess) -> CourseAccess:
    """The access a page shows: a student's while course staff preview the course.

    Use it for what the page displays only; permission checks keep the real access (a
    previewing instructor may still open the editor).
    """
    if access.is_staff and preview_enabled(request, access.course):
        return dataclasses.replace(access, role=Role.STUDENT, previewing=True)
    return access


def context(request: HttpRequest) -> dict[str, Any]:
    """The courses previewed, for the banner every page shows (no query: it is in the session)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    previews = _previews(request)
    return {"course_previews": list(previews.values())} if previews else {}
