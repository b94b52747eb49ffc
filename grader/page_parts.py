"""Parts that the grader's pages share, drawn as fragments (``topdown.fragments``): once per
process for each distinct content, from plain values."""

from __future__ import annotations

from dataclasses import dataclass

from django.core.paginator import Page
from django.utils.safestring import SafeString

from grader.models import Assignment
from topdown import fragments


def breadcrumbs(
    assignment: Assignment, *, current: str, renderer: fragments.Renderer | None = None
) -> SafeString:
    """Courses, the assignment's course, the assignment, then ``current``."""
    course = assignment.chapter.course
    return (renderer or fragments.Renderer()).fragment(
        "grader/includes/breadcrumbs.html",
        course_slug=course.slug,
        course_title=course.title,
        assignment_slug=assignment.slug,
        assignment_title=assignment.title,
        current=current,
    )


@dataclass(frozen=True)
class PageCount:
    num_pages: int


@dataclass(frozen=True)
class PageLinks:
    """What ``includes/pagination.html`` reads of a ``Page``, by value (a fragment's context
    compares by value; a ``Page`` does not)."""

    number: int
    paginator: PageCount
    has_previous: bool
    has_next: bool
    previous_page_number: int | None
    next_page_number: int | None


def pagination(
    page: Page, *, query: str = "", renderer: fragments.Renderer | None = None
) -> SafeString:
    """``includes/pagination.html`` for ``page``; ``query`` as that template takes it."""
    links = PageLinks(
        number=page.number,
        paginator=PageCount(page.paginator.num_pages),
        has_previous=page.has_previous(),
        has_next=page.has_next(),
        previous_page_number=page.number - 1 if page.has_previous() else None,
        next_page_number=page.number + 1 if page.has_next() else None,
    )
    return (renderer or fragments.Renderer()).fragment(
        "includes/pagination.html", page_obj=links, query=query
    )
