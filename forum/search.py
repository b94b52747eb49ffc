"""Searching a course's forum: posts whose text (or thread title) matches, best first.

On PostgreSQL: full-text search on ``Post.search_vector`` (a GIN index), where a thread's title
counts above any post's body (weights A and B): the 200 most recent matches, found block by block
of recent posts through the vector's markers (``forum.indexing``), ranked with ``ts_rank``, and
the page shown with ``ts_headline``. On SQLite (the embedded set-up): every word must appear in
the body or the thread's title (``icontains``), newest first. Either way a reader finds only what
they may read: no hidden threads or posts, no answers they have not earned yet.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Any

from django.contrib.postgres.expressions import ArraySubquery
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.search import SearchHeadline, SearchQuery, SearchRank
from django.db import connection
from django.db.models import (
    BigIntegerField,
    BooleanField,
    F,
    Func,
    Q,
    QuerySet,
    Subquery,
    TextField,
    Value,
)
from django.utils.safestring import SafeString, mark_safe

from accounts.models import User
from courses.access import CourseAccess
from courses.models import Answer, Attempt, Course
from forum.indexing import LEVELS, SEARCH_CONFIG, block_marker, course_marker
from forum.models import Post, Thread
from grader.models import Submission

RESULTS_PER_PAGE = 20
SEARCH_CANDIDATES = 200
WINDOW_BLOCKS = 4  # the most blocks of one size a window of recent posts is made of
QUERY_MAX_CHARS = 200
SNIPPET_CHARS = 240
# Markers ts_headline puts around matches: control characters no post can contain once escaped.
START, STOP = "\x02", "\x03"
_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class SearchHit:
    post: Post
    snippet: SafeString


@dataclass(frozen=True)
class SearchResults:
    query: str
    hits: list[SearchHit]
    page: int
    has_next: bool

    @property
    def has_previous(self) -> bool:
        return self.page > 1


@dataclass(frozen=True)
class _Reader:
    """What decides which of the course's posts a reader may find (none of it for staff)."""

    hidden_threads: list[int]
    answered_questions: list[int]
    submitted_assignments: list[int]
    newest_post: int | None  # PostgreSQL only: where the newest blocks are (forum.indexing)


def _reader(*, access: CourseAccess, user: User) -> _Reader:
    """One query on PostgreSQL, three small ones on SQLite: the lists go into the search as
    literals, which keeps every query of a search quick to plan and free of joins."""
    course = access.course
    lists: dict[str, QuerySet] = {}
    if not access.is_staff:
        lists = {
            "hidden_threads": Thread.objects.filter(course=course, is_hidden=True).values("id"),
            "answered_questions": Answer.objects.filter(
                attempt__user=user,
                attempt__status=Attempt.Status.SUBMITTED,
                question__questionnaire__chapter__course=course,
            ).values("question_id"),
            "submitted_assignments": Submission.objects.filter(
                user=user, assignment__chapter__course=course
            ).values("assignment_id"),
        }
    if connection.vendor != "postgresql":
        values = {name: list(qs.values_list(flat=True)) for name, qs in lists.items()}
        return _Reader(
            hidden_threads=values.get("hidden_threads", []),
            answered_questions=values.get("answered_questions", []),
            submitted_assignments=values.get("submitted_assignments", []),
            newest_post=None,
        )
    row: Any = (
        Course.objects.filter(pk=course.pk)
        .values(
            newest_post=Subquery(Post.objects.order_by("-id").values("id")[:1]),
            **{name: ArraySubquery(qs.order_by()) for name, qs in lists.items()},
        )
        .get()
    )
    return _Reader(
        hidden_threads=row.get("hidden_threads", []),
        answered_questions=row.get("answered_questions", []),
        submitted_assignments=row.get("submitted_assignments", []),
        newest_post=row["newest_post"],
    )


def _readable_posts(*, access: CourseAccess, user: User, reader: _Reader) -> QuerySet[Post]:
    """The course's posts that ``user`` may read, by the post's own columns and the reader's
    lists: no hidden threads or posts (but their own), no answers they have not earned yet.
    On PostgreSQL the course is the search's marker (forum.indexing), so there is no join."""
    posts = Post.objects.all()
    if connection.vendor != "postgresql":
        posts = posts.filter(thread__course=access.course)
    if access.is_staff:
        return posts
    if reader.hidden_threads:
        posts = posts.exclude(thread_id__in=reader.hidden_threads)
    earned = Q()
    if reader.answered_questions:
        earned |= Q(question_id__in=reader.answered_questions)
    if reader.submitted_assignments:
        earned |= Q(assignment_id__in=reader.submitted_assignments)
    answers = Q(contains_answer=False) | Q(author=user)
    if earned:
        answers |= Q(thread_id__in=Thread.objects.filter(earned).values("id"))
    return posts.filter(Q(is_hidden=False) | Q(author=user), answers)


class _MatchesWithin(Func):
    """``search_vector @@ (query && (marker | marker ...))``, the markers written as they are
    (parsed as text they would be lowercased; see forum.indexing). A query of stop words alone
    is empty, and stays empty: it matches nothing, rather than every post of the markers."""

    output_field = BooleanField()

    def __init__(self, query: SearchQuery, markers: list[str]) -> None:
        super().__init__(
            F("search_vector"), query, Value(" | ".join(markers), output_field=TextField())
        )

    def as_sql(self, compiler, connection, **extra_context):  # type: ignore[no-untyped-def]
        (vector, vector_params), (query, query_params), (markers, markers_params) = (
            compiler.compile(expression) for expression in self.get_source_expressions()
        )
        sql = (
            f"{vector} @@ (CASE WHEN numnode({query}) = 0 THEN {query} "
            f"ELSE {query} && {markers}::tsquery END)"
        )
        return sql, [*vector_params, *query_params, *query_params, *query_params, *markers_params]


class _IdAmong(Func):
    """``id = ANY(%s)``: the candidates as one array parameter; an IN list of two hundred costs
    Django more than the rest of the search's Python."""

    output_field = BooleanField()

    def __init__(self, ids: list[int]) -> None:
        super().__init__(F("id"), Value(ids, output_field=ArrayField(BigIntegerField())))

    def as_sql(self, compiler, connection, **extra_context):  # type: ignore[no-untyped-def]
        (column, column_params), (ids, ids_params) = (
            compiler.compile(expression) for expression in self.get_source_expressions()
        )
        return f"{column} = ANY({ids})", [*column_params, *ids_params]


def _candidates(
    posts: QuerySet[Post], search: SearchQuery, *, course_id: int, newest: int | None
) -> list[int]:
    """The ids of the newest ``SEARCH_CANDIDATES`` posts among ``posts`` that match, newest first.

    Window after window of recent ids, going down, until enough are found: the first, the two
    newest blocks of the smallest size; each next one as large as the matches found so far say
    is needed, in blocks of the smallest size that takes at most ``WINDOW_BLOCKS`` of them (or
    the next size up when nothing was found), and at last the rest of the course. The GIN index
    intersects the query's words with the blocks' markers (see forum.indexing), so a window
    costs what it holds or what its words match, whichever is less."""
    if newest is None:
        return []
    found: list[int] = []
    below = newest + 1  # ids from here up have been searched
    level, blocks = 0, 2
    while below > 0:
        if level < len(LEVELS):
            letter, shift = LEVELS[level]
            top = (below - 1) >> shift  # the block of the next id down
            bottom = max(top - blocks + 1, 0)
            markers = [block_marker(course_id, letter, b) for b in range(top, bottom - 1, -1)]
            lowest = bottom << shift
        else:
            markers, lowest = [course_marker(course_id)], 0
        window = posts.filter(_MatchesWithin(search, markers), id__lt=below)
        found += window.order_by("-id").values_list("id", flat=True)[
            : SEARCH_CANDIDATES - len(found)
        ]
        below = lowest
        if len(found) >= SEARCH_CANDIDATES:
            break
        if not found:
            level, blocks = min(level + 1, len(LEVELS)), 2
            continue
        # As many more ids as the density so far says, and a quarter more.
        needed = (SEARCH_CANDIDATES - len(found)) * (newest + 1 - below) * 5 // (len(found) * 4)
        level = next(
            (i for i, (_, shift) in enumerate(LEVELS) if needed <= WINDOW_BLOCKS << shift),
            len(LEVELS),
        )
        if level < len(LEVELS):
            blocks = max(-(-needed >> LEVELS[level][1]), 1)
    return found


def _highlight(text: str) -> SafeString:
    """Escape everything, then turn the match markers into <mark>."""
    escaped = html.escape(text).replace(START, "<mark>").replace(STOP, "</mark>")
    return mark_safe(escaped)  # noqa: S308 - escaped above; only our <mark> tags are added


def _excerpt(text: str, words: list[str]) -> SafeString:
    lowered = text.lower()
    positions = [lowered.find(word.lower()) for word in words if word]
    found = [p for p in positions if p >= 0]
    start = max(min(found) - SNIPPET_CHARS // 3, 0) if found else 0
    piece = text[start : start + SNIPPET_CHARS]
    for word in sorted({w for w in words if w}, key=len, reverse=True):
        piece = re.sub(re.escape(word), lambda m: f"{START}{m[0]}{STOP}", piece, flags=re.I)
    prefix = "… " if start else ""
    suffix = " …" if start + SNIPPET_CHARS < len(text) else ""
    return _highlight(f"{prefix}{piece}{suffix}")


def posts_search(*, access: CourseAccess, user: User, query: str, page: int = 1) -> SearchResults:
    """A page of the posts matching ``query`` that ``user`` may read (on PostgreSQL: the
    reader's lists, one query for each block searched, one to rank; see ``_candidates``)."""
    query = " ".join(query.split())[:QUERY_MAX_CHARS]
    page = max(page, 1)
    if not _WORD.search(query):
        return SearchResults(query, [], page, False)
    reader = _reader(access=access, user=user)
    posts = _readable_posts(access=access, user=user, reader=reader)
    offset = (page - 1) * RESULTS_PER_PAGE
    if connection.vendor == "postgresql":
        search = SearchQuery(query, search_type="websearch", config=SEARCH_CONFIG)
        # Rank the most recent matches only: ranking reads every row it ranks, and a common word
        # matches a third of a big forum (see docs/decisions.md).
        candidates = _candidates(
            posts, search, course_id=access.course.pk, newest=reader.newest_post
        )
        ranked: list[Post] = list(
            Post.objects.filter(_IdAmong(candidates), thread__course=access.course)
            .select_related("thread", "author")
            .annotate(
                rank=SearchRank(F("search_vector"), search),
                headline=SearchHeadline(
                    "body",
                    search,
                    config=SEARCH_CONFIG,
                    start_sel=START,
                    stop_sel=STOP,
                    max_words=30,
                    min_words=12,
                    max_fragments=2,
                    fragment_delimiter=" … ",
                ),
            )
            .defer("body_html", "search_vector")
            .order_by("-rank", "-id")[offset : offset + RESULTS_PER_PAGE + 1]
        )
        hits = [SearchHit(post, _highlight(getattr(post, "headline", ""))) for post in ranked]
    else:
        words = _WORD.findall(query)[:8]
        condition = Q()
        for word in words:
            condition &= Q(body__icontains=word) | Q(number=1, thread__title__icontains=word)
        found: list[Post] = list(
            posts.filter(condition)
            .select_related("thread", "author")
            .defer("body_html", "search_vector")
            .order_by("-created_at", "-id")[offset : offset + RESULTS_PER_PAGE + 1]
        )
        hits = [SearchHit(post, _excerpt(post.body, words)) for post in found]
    return SearchResults(
        query=query,
        hits=hits[:RESULTS_PER_PAGE],
        page=page,
        has_next=len(hits) > RESULTS_PER_PAGE,
    )
