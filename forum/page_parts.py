"""Parts of the forum's thread and category pages drawn as fragments (``topdown.fragments``):
once per process for each distinct content, from plain values that compare by value."""

from __future__ import annotations

from dataclasses import dataclass

from django.http import HttpRequest
from django.urls import reverse
from django.utils.safestring import SafeString

from courses.models import Question
from forum.access import ThreadAccess
from forum.models import Category
from forum.selectors import PageNumbers, ThreadPage
from grader.models import Assignment
from topdown import fragments


@dataclass(frozen=True)
class CourseRef:
    slug: str
    title: str


@dataclass(frozen=True)
class CategoryRef:
    display_title: str


@dataclass(frozen=True)
class ThreadRef:
    pk: int
    title: str


def breadcrumbs(
    *,
    course_slug: str,
    course_title: str,
    category_title: str,
    category_url: str,
    thread: ThreadRef | None = None,
    here: str | None = None,
) -> SafeString:
    """``forum/includes/breadcrumbs.html`` down to a category, or to one of its threads."""
    return fragments.render_fragment(
        "forum/includes/breadcrumbs.html",
        course=CourseRef(course_slug, course_title),
        category=CategoryRef(category_title),
        category_url=category_url,
        thread=thread,
        here=here,
    )


@dataclass(frozen=True)
class ThreadHead:
    """What the top of a thread page shows of the thread."""

    pk: int
    title: str
    is_pinned: bool
    is_locked: bool
    is_hidden: bool
    post_count: int
    accepted_number: int | None
    question_id: int | None
    question_key: str | None
    assignment_slug: str | None
    assignment_title: str | None


def thread_head(
    thread_access: ThreadAccess, *, page: ThreadPage, accepted_url: str, csrf_token: str
) -> SafeString:
    """The thread's title, badges, tools and notes (``forum/includes/thread_head.html``), with
    ``csrf_token`` (the request's hidden field) in its forms."""
    thread = thread_access.thread
    question, assignment = thread.question, thread.assignment
    accepted = thread.accepted_post
    head = ThreadHead(
        pk=thread.pk,
        title=thread.title,
        is_pinned=thread.is_pinned,
        is_locked=thread.is_locked,
        is_hidden=thread.is_hidden,
        post_count=thread.post_count,
        accepted_number=accepted.number if accepted else None,
        question_id=question.pk if question else None,
        question_key=question.key if question else None,
        assignment_slug=assignment.slug if assignment else None,
        assignment_title=assignment.title if assignment else None,
    )
    html = fragments.render_fragment(
        "forum/includes/thread_head.html",
        thread=head,
        course_slug=thread.course.slug,
        watching=bool(getattr(thread, "watching", False)),
        can_reply=thread_access.can_reply,
        can_moderate=thread_access.can_moderate,
        accepted_url=accepted_url,
        page_number=page.number,
        has_answers_hidden=page.has_answers_hidden,
    )
    # Both parts are safe: an autoescaping template's output and Django's own hidden field.
    return SafeString(html.replace(fragments.CSRF_SLOT, csrf_token))


@dataclass(frozen=True)
class ThreadPages(PageNumbers):
    """What ``forum/includes/thread_pages.html`` reads of a ``ThreadPage``, by value."""

    number: int
    num_pages: int


def thread_pages(page: ThreadPage) -> SafeString:
    return fragments.render_fragment(
        "forum/includes/thread_pages.html", page=ThreadPages(page.number, page.num_pages)
    )


def category_head(
    request: HttpRequest,
    *,
    category: Category,
    category_url: str,
    anchor: Question | Assignment | None,
    new_url: str,
    watching: bool,
) -> SafeString:
    """A category page's title, description and tools (``forum/includes/category_head.html``),
    or those of the threads about ``anchor``; the watch form with the request's CSRF field."""
    chapter = category.chapter if category.chapter_id is not None else None
    course_slug = category.course.slug
    # As the template read them: a question's key when it has one, else the anchor's title.
    anchor_key = anchor.key if isinstance(anchor, Question) and anchor.key else None
    anchor_title = getattr(anchor, "title", "") if anchor is not None and not anchor_key else None
    watch_url = ""
    if anchor is None:
        watch_url = (
            reverse("forum:category_chapter_watch", args=[course_slug, chapter.slug])
            if chapter is not None
            else reverse("forum:category_general_watch", args=[course_slug])
        )
    html = fragments.render_fragment(
        "forum/includes/category_head.html",
        anchored=anchor is not None,
        anchor_key=anchor_key,
        anchor_title=anchor_title,
        category_title=category.display_title,
        category_url=category_url,
        is_chapter=chapter is not None,
        description=category.description,
        new_url=new_url,
        watch_url=watch_url,
        watching=watching,
    )
    return fragments.fill_csrf_slots(html, request)
