"""Searching a course's forum: posts whose text (or thread title) matches, best first.

On PostgreSQL: full-text search on ``Post.search_vector`` (a GIN index), where a thread's title
counts above any post's body (weights A and B): the most recent matches ranked with ``ts_rank``,
shown with ``ts_headline``. On SQLite (the embedded set-up): every word must appear in the body
or the thread's title (``icontains``), newest first. Either way a reader finds only what they may
read: no hidden threads or posts, no answers they have not earned yet.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from django.contrib.postgres.search import SearchHeadline, SearchQuery, SearchRank
from django.db import connection
from django.db.models import F, Q, QuerySet
from django.utils.safestring import SafeString, mark_safe

from accounts.models import User
from courses.access import CourseAccess
from courses.models import Answer, Attempt
from forum.models import Post
from forum.services import SEARCH_CONFIG
from grader.models import Submission

RESULTS_PER_PAGE = 20
SEARCH_CANDIDATES = 200
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


def _readable_posts(*, access: CourseAccess, user: User) -> QuerySet[Post]:
    posts = Post.objects.filter(thread__course=access.course)
    if access.is_staff:
        return posts
    answered = Answer.objects.filter(
        attempt__user=user,
        attempt__status=Attempt.Status.SUBMITTED,
        question__questionnaire__chapter__course=access.course,
    ).values("question_id")
    submitted = Submission.objects.filter(
        user=user, assignment__chapter__course=access.course
    ).values("assignment_id")
    return posts.filter(
        Q(thread__is_hidden=False),
        Q(is_hidden=False) | Q(author=user),
        Q(contains_answer=False)
        | Q(author=user)
        | Q(thread__question_id__in=answered)
        | Q(thread__assignment_id__in=submitted),
    )


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
    """A page of the posts matching ``query`` that ``user`` may read (two or three queries)."""
    query = " ".join(query.split())[:QUERY_MAX_CHARS]
    page = max(page, 1)
    if not _WORD.search(query):
        return SearchResults(query, [], page, False)
    posts = _readable_posts(access=access, user=user).select_related("thread", "author")
    offset = (page - 1) * RESULTS_PER_PAGE
    if connection.vendor == "postgresql":
        search = SearchQuery(query, search_type="websearch", config=SEARCH_CONFIG)
        # Rank the most recent matches only: ranking reads every row it ranks, and a common word
        # matches a third of a big forum (see docs/decisions.md).
        candidates = (
            posts.filter(search_vector=search).order_by("-id").values("id")[:SEARCH_CANDIDATES]
        )
        ranked: list[Post] = list(
            Post.objects.filter(id__in=candidates)
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
