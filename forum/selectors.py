"""Read-side queries for the forum. Each owns its joins, so a page makes a fixed number of queries
whatever the number of threads or posts on it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache

from django.core.paginator import EmptyPage, Page, PageNotAnInteger, Paginator
from django.db import connection
from django.db.models import Count, Exists, Max, OuterRef, Q, QuerySet
from django.urls import get_script_prefix, get_urlconf, reverse

from accounts.models import User
from courses.models import Chapter, Course, Question, Questionnaire
from forum import reads
from forum.access import ThreadAccess, post_content_visible
from forum.models import (
    Category,
    CategoryVisit,
    ErrorOccurrence,
    Flag,
    Notification,
    Post,
    PostRevision,
    SubmissionReport,
    Thread,
    ThreadRead,
    Watch,
)
from grader.models import Assignment

THREADS_PER_PAGE = 30
POSTS_PER_PAGE = 20
NOTIFICATIONS_PER_PAGE = 30


# --- The course's forum -------------------------------------------------------------------------


@dataclass
class CategoryRow:
    category: Category
    thread_count: int = 0
    unread_count: int = 0
    last_posted_at: datetime | None = None
    watching: bool = False


def _visible_threads(threads: QuerySet[Thread], *, is_staff: bool) -> QuerySet[Thread]:
    return threads if is_staff else threads.filter(is_hidden=False)


def categories_for_forum(*, course: Course, user: User, is_staff: bool) -> list[CategoryRow]:
    """The general category, then one per chapter in the course's order, with counts and what
    is new to ``user`` (four queries)."""
    categories = list(
        Category.objects.filter(course=course)
        .select_related("chapter")
        .order_by("-kind", "chapter__position", "chapter_id")  # "general" sorts after "chapter"
    )
    rows = {category.pk: CategoryRow(category=category) for category in categories}
    threads = _visible_threads(Thread.objects.filter(course=course), is_staff=is_staff)
    for category_id, count, last in (
        threads.order_by()
        .values("category")
        .annotate(n=Count("id"), last=Max("last_posted_at"))
        .values_list("category", "n", "last")
    ):
        rows[category_id].thread_count, rows[category_id].last_posted_at = count, last
    # New to the user: active since their last visit of the category, and not read to the end.
    visits = dict(
        CategoryVisit.objects.filter(user=user, category__course=course).values_list(
            "category_id", "previous_visited_at"
        )
    )
    read_to_end = ThreadRead.objects.filter(
        user=user, thread=OuterRef("pk"), last_read_number__gte=OuterRef("post_count")
    )
    unread = threads.exclude(Exists(read_to_end))
    conditions = [
        Q(category_id=category_id, last_posted_at__gt=since or user.date_joined)
        for category_id, since in visits.items()
    ]
    others = Q(last_posted_at__gt=user.date_joined) & ~Q(category_id__in=list(visits))
    condition = others
    for extra in conditions:
        condition |= extra
    for category_id, count in (
        unread.filter(condition)
        .order_by()
        .values("category")
        .annotate(n=Count("id"))
        .values_list("category", "n")
    ):
        rows[category_id].unread_count = count
    for category_id in Watch.objects.filter(user=user, category__course=course).values_list(
        "category_id", flat=True
    ):
        rows[category_id].watching = True
    return list(rows.values())


@dataclass
class ThreadRow:
    thread: reads.ListedThread
    # Posts not seen yet: every post of a thread never opened, else those after the last read.
    new_posts: int
    is_new: bool  # never opened, and started since the last visit
    links: dict[str, str] = field(default_factory=dict)


@dataclass
class ThreadListing:
    page: Page
    rows: list[ThreadRow]


class _CountedPaginator(Paginator):
    """A paginator told its count, so it does not count the rows itself."""

    def __init__(self, object_list: QuerySet[Thread], per_page: int, *, count: int) -> None:
        super().__init__(object_list, per_page)
        self.known_count = count

    @property
    def count(self) -> int:
        return self.known_count


def threads_for_category(
    *,
    category: Category,
    user: User,
    is_staff: bool,
    since: datetime,
    page_number: str | int | None,
    question_id: int | None = None,
    assignment_id: int | None = None,
) -> ThreadListing:
    """A page of the category's threads, pinned first then by latest activity, with the
    reader's read marks (one query, ``forum.reads``; two about a question or an assignment,
    which counts them). The whole category's count is the one stored on it (see
    forum.services)."""
    if question_id is None and assignment_id is None:
        count = category.thread_count + (category.hidden_thread_count if is_staff else 0)
    else:
        threads = _visible_threads(Thread.objects.filter(category=category), is_staff=is_staff)
        if question_id is not None:
            threads = threads.filter(question_id=question_id)
        if assignment_id is not None:
            threads = threads.filter(assignment_id=assignment_id)
        count = threads.count()
    paginator = _CountedPaginator(Thread.objects.none(), THREADS_PER_PAGE, count=count)
    try:
        number = paginator.validate_number(1 if page_number is None else page_number)
    except PageNotAnInteger:
        number = 1
    except EmptyPage:
        number = paginator.num_pages
    listed = reads.threads_listed(
        category_id=category.pk,
        user=user,
        visible_only=not is_staff,
        question_id=question_id,
        assignment_id=assignment_id,
        offset=(number - 1) * THREADS_PER_PAGE,
        limit=THREADS_PER_PAGE,
    )
    page = Page(listed, number, paginator)
    links = Links(THREAD_ROUTES)
    rows = []
    for thread in listed:
        last_read = thread.last_read_number
        if last_read is None:
            is_new = thread.created_at > since
            new_posts = thread.post_count if is_new else 0
        else:
            is_new, new_posts = False, max(thread.post_count - last_read, 0)
        rows.append(ThreadRow(thread, new_posts, is_new, links.for_id(thread.pk)))
    return ThreadListing(page=page, rows=rows)


def category_visit_for(*, user: User, category: Category) -> CategoryVisit | None:
    return CategoryVisit.objects.filter(user=user, category=category).first()


def category_watching(*, user: User, category: Category) -> bool:
    return Watch.objects.filter(user=user, category=category).exists()


def categories_for_move(*, course: Course) -> list[Category]:
    return list(
        Category.objects.filter(course=course)
        .select_related("chapter")
        .order_by("-kind", "chapter__position", "chapter_id")
    )


# --- A thread -----------------------------------------------------------------------------------


@lru_cache(maxsize=64)
def _link_patterns(
    routes: tuple[tuple[str, str], ...], prefix: str, urlconf: str | None
) -> dict[str, str]:
    # ``prefix`` and ``urlconf`` are part of the key only: reverse() reads them itself.
    return {name: reverse(route, args=[Links.SENTINEL]) for name, route in routes}


class Links:
    """Action URLs for many objects of one page, made by filling each id into routes reversed
    once: reversing a handful of routes for each of twenty or thirty rows costs more than the
    rest of the page's Python."""

    SENTINEL = 987654321

    def __init__(self, routes: dict[str, str]) -> None:
        self.patterns = _link_patterns(tuple(routes.items()), get_script_prefix(), get_urlconf())

    def for_id(self, pk: int) -> dict[str, str]:
        sentinel, value = str(self.SENTINEL), str(pk)
        return {name: url.replace(sentinel, value) for name, url in self.patterns.items()}


POST_ROUTES = {
    "like": "forum:post_like",
    "accept": "forum:post_accept",
    "flag": "forum:post_flag",
    "edit": "forum:post_edit",
    "history": "forum:post_history",
    "moderate": "forum:post_moderate",
}
THREAD_ROUTES = {"detail": "forum:thread_detail", "unread": "forum:thread_unread"}


@dataclass
class PostRow:
    post: Post
    visible: bool  # its content may be shown to this reader
    liked: bool
    role: str | None  # the author's staff role in the course, for a badge
    is_new: bool
    is_accepted: bool
    is_own: bool
    can_edit: bool
    show_code: bool  # staff see the attached run's code when its author chose so
    links: dict[str, str] = field(default_factory=dict)
    report: SubmissionReport | None = None  # the run attached to the post, if any


class PageNumbers:
    """A page's neighbours, as Django's ``Page`` names them, from ``number`` and ``num_pages``."""

    number: int
    num_pages: int

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.num_pages

    @property
    def previous_page_number(self) -> int:
        return self.number - 1

    @property
    def next_page_number(self) -> int:
        return self.number + 1


@dataclass
class ThreadPage(PageNumbers):
    rows: list[PostRow]
    number: int
    num_pages: int
    last_number: int  # the last post number on this page
    has_answers_hidden: bool = False
    page_numbers: list[int] = field(default_factory=list)


def thread_page_count(thread: Thread) -> int:
    return max(1, math.ceil(thread.post_count / POSTS_PER_PAGE))


def thread_page_of(number: int) -> int:
    return (max(number, 1) - 1) // POSTS_PER_PAGE + 1


def thread_page(*, thread_access: ThreadAccess, page_number: str | int | None) -> ThreadPage:
    """One page of the thread's posts (one query, ``forum.reads``: the posts with their authors
    and attached runs, the reader's likes, the authors' staff roles). Posts are numbered 1, 2,
    ... in each thread, so a page is a range of numbers: no OFFSET, no count."""
    thread, user = thread_access.thread, thread_access.user
    num_pages = thread_page_count(thread)
    try:
        number = min(max(int(page_number or 1), 1), num_pages)
    except (TypeError, ValueError):
        number = 1
    first = (number - 1) * POSTS_PER_PAGE + 1
    found = reads.posts_in_range(thread=thread, user=user, first=first, end=first + POSTS_PER_PAGE)
    last_read = getattr(thread, "last_read_number", None) or 0
    user_id = thread_access.user_id
    links = Links(POST_ROUTES)
    rows = []
    for item in found:
        post = item.post
        visible = post_content_visible(post, thread_access)
        report = getattr(post, "submission_report", None)
        rows.append(
            PostRow(
                post=post,
                visible=visible,
                liked=item.liked,
                role=item.role if post.author_id else None,
                is_new=post.number > last_read and post.author_id != user_id,
                is_accepted=post.pk == thread.accepted_post_id,
                is_own=post.author_id is not None and post.author_id == user_id,
                can_edit=thread_access.can_edit(post),
                show_code=bool(
                    report is not None and report.show_code_to_staff and thread_access.is_staff
                ),
                links=links.for_id(post.pk),
                report=report,
            )
        )
    return ThreadPage(
        rows=rows,
        number=number,
        num_pages=num_pages,
        last_number=found[-1].post.number if found else 0,
        has_answers_hidden=any(row.post.contains_answer and not row.visible for row in rows),
        page_numbers=list(range(1, num_pages + 1)),
    )


def post_with_history(*, post: Post) -> list[PostRevision]:
    return list(post.revisions.select_related("editor").order_by("number"))


# --- Anchors: "Discuss this" --------------------------------------------------------------------


def thread_count_for_chapter(*, chapter: Chapter) -> int:
    """The chapter category's visible threads: the count stored on it, not a count of rows."""
    # Plain SQL: the chapter page shows it on every view (see topdown.sql).
    with connection.cursor() as cursor:
        cursor.execute(_CHAPTER_THREAD_COUNT, [chapter.pk])
        row = cursor.fetchone()
    return row[0] if row else 0


_CHAPTER_THREAD_COUNT = f"SELECT thread_count FROM {Category._meta.db_table} WHERE chapter_id = %s"  # noqa: S608 - a model's table


def thread_count_for_assignment(*, assignment: Assignment) -> int:
    return Thread.objects.filter(assignment=assignment, is_hidden=False).count()


def thread_counts_for_questionnaire(*, questionnaire: Questionnaire) -> dict[int, int]:
    """Visible threads about each question of the questionnaire that has any (one query)."""
    # Plain SQL: the questionnaire page shows them on every view (see topdown.sql).
    with connection.cursor() as cursor:
        cursor.execute(_QUESTION_THREAD_COUNTS, [questionnaire.pk])
        return dict(cursor.fetchall())


_QUESTION_THREAD_COUNTS = (
    f"SELECT t.question_id, COUNT(*) FROM {Thread._meta.db_table} t"  # noqa: S608 - model tables
    f" JOIN {Question._meta.db_table} qu ON qu.id = t.question_id"
    " WHERE qu.questionnaire_id = %s AND NOT t.is_hidden GROUP BY t.question_id"
)


# --- Errors of failed runs ----------------------------------------------------------------------


@dataclass
class ErrorGroup:
    others: int  # other students whose runs failed the same way on the assignment
    threads: list[Thread]


def error_group(*, assignment_id: int, signature: str, user: User, limit: int = 5) -> ErrorGroup:
    """Who else hit this error on the assignment, and the threads about it (two queries)."""
    if not signature:
        return ErrorGroup(0, [])
    others = (
        ErrorOccurrence.objects.filter(assignment_id=assignment_id, signature=signature)
        .exclude(user=user)
        .values("user")
        .distinct()
        .count()
    )
    threads = list(
        Thread.objects.filter(
            assignment_id=assignment_id, error_signature=signature, is_hidden=False
        )
        .select_related("course")
        .order_by("-accepted_post_id", "-last_posted_at")[:limit]
    )
    return ErrorGroup(others, threads)


# --- Notifications ------------------------------------------------------------------------------


def notifications_for_user(*, user: User, page_number: str | int | None) -> Page:
    notifications = (
        Notification.objects.filter(user=user)
        .select_related("actor", "thread", "post")
        .defer("post__body", "post__body_html", "post__search_vector")
        .order_by("-created_at", "-id")
    )
    return Paginator(notifications, NOTIFICATIONS_PER_PAGE).get_page(page_number)


def notification_unread_count(*, user: User) -> int:
    return Notification.objects.filter(user=user, read_at__isnull=True).count()


# --- Moderation ---------------------------------------------------------------------------------


@dataclass
class FlaggedPost:
    post: Post
    flags: list[Flag]


def flagged_posts_for_course(*, course: Course) -> list[FlaggedPost]:
    """Posts with open flags, the most flagged first (one query, flags with their posts)."""
    flags = list(
        Flag.objects.filter(status=Flag.Status.OPEN, post__thread__course=course)
        .select_related("user", "post__author", "post__thread")
        .defer("post__search_vector")
        .order_by("post_id", "created_at")
    )
    grouped: dict[int, FlaggedPost] = {}
    for flag in flags:
        grouped.setdefault(flag.post_id, FlaggedPost(flag.post, [])).flags.append(flag)
    return sorted(grouped.values(), key=lambda item: (-len(item.flags), item.flags[0].created_at))


def hidden_posts_for_course(*, course: Course, limit: int = 50) -> list[Post]:
    return list(
        Post.objects.filter(thread__course=course, is_hidden=True)
        .select_related("author", "thread", "hidden_by")
        .defer("search_vector")
        .order_by("-hidden_at")[:limit]
    )


def split_candidates(*, thread: Thread) -> list[Post]:
    """Every reply of the thread (not the opening post), for staff choosing what to split off."""
    return list(
        Post.objects.filter(thread=thread, number__gt=1)
        .select_related("author")
        .defer("search_vector", "body_html")
        .order_by("number")
    )
