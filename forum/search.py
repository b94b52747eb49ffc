"""Searching a course's forum: posts whose text (or thread title) matches, best first.

On PostgreSQL: full-text search on ``Post.search_vector`` (a GIN index), where a thread's title
counts above any post's body (weights A and B): the 200 most recent matches, found block by block
of recent posts through the vector's markers (``forum.indexing``), ranked with ``ts_rank``, and
the page shown with ``ts_headline``, in plain statements built once per process (the ORM took
three times the CPU the database did). On SQLite (the embedded set-up): every word must appear in
the body or the thread's title (``icontains``), newest first. Either way a reader finds only what
they may read: no hidden threads or posts, no answers they have not earned yet.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from django.db import connection
from django.db.models import Q, QuerySet
from django.utils.safestring import SafeString, mark_safe

from accounts.models import User
from courses.access import CourseAccess
from courses.models import Answer, Attempt, Chapter, Question, Questionnaire
from forum.indexing import LEVELS, SEARCH_CONFIG, block_marker, course_marker
from forum.models import Post, Thread
from grader.models import Assignment, Submission
from topdown import sql

RESULTS_PER_PAGE = 20
SEARCH_CANDIDATES = 200
WINDOW_BLOCKS = 4  # the most blocks of one size a window of recent posts is made of
QUERY_MAX_CHARS = 200
SNIPPET_CHARS = 240
# Markers ts_headline puts around matches: control characters no post can contain once escaped.
START, STOP = "\x02", "\x03"
_WORD = re.compile(r"\w+", re.UNICODE)
HEADLINE_OPTIONS = (
    f"StartSel='{START}', StopSel='{STOP}', MaxWords=30, MinWords=12, MaxFragments=2, "
    "FragmentDelimiter=' … '"
)


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
    """SQLite: three small queries (PostgreSQL reads the same lists in ``_reader_and_query``)."""
    course = access.course
    lists: dict[str, list[int]] = {}
    if not access.is_staff:
        lists = {
            "hidden_threads": list(
                Thread.objects.filter(course=course, is_hidden=True).values_list("id", flat=True)
            ),
            "answered_questions": list(
                Answer.objects.filter(
                    attempt__user=user,
                    attempt__status=Attempt.Status.SUBMITTED,
                    question__questionnaire__chapter__course=course,
                ).values_list("question_id", flat=True)
            ),
            "submitted_assignments": list(
                Submission.objects.filter(
                    user=user, assignment__chapter__course=course
                ).values_list("assignment_id", flat=True)
            ),
        }
    return _Reader(
        hidden_threads=lists.get("hidden_threads", []),
        answered_questions=lists.get("answered_questions", []),
        submitted_assignments=lists.get("submitted_assignments", []),
        newest_post=None,
    )


@lru_cache(maxsize=2)
def _reader_statement(is_staff: bool) -> str:
    """The newest post, the query as PostgreSQL parses it (and whether it has any word left),
    and for a student the reader's lists: what ``_reader`` reads, built once per process."""
    post, thread = sql.table(Post), sql.table(Thread)
    parsed = "websearch_to_tsquery(%(config)s::regconfig, %(query)s)"
    columns = [
        f"(SELECT id FROM {post} ORDER BY id DESC LIMIT 1)",  # noqa: S608 - names from the models
        f"{parsed}::text",
        f"numnode({parsed})",
    ]
    if not is_staff:
        chapter = sql.table(Chapter)
        columns += [
            f"ARRAY(SELECT id FROM {thread} WHERE course_id = %(course)s AND is_hidden)",  # noqa: S608 - names from the models
            f"""ARRAY(SELECT an.question_id FROM {sql.table(Answer)} an
                JOIN {sql.table(Attempt)} at ON an.attempt_id = at.id
                JOIN {sql.table(Question)} qu ON an.question_id = qu.id
                JOIN {sql.table(Questionnaire)} qn ON qu.questionnaire_id = qn.id
                JOIN {chapter} ch ON qn.chapter_id = ch.id
                WHERE at.status = %(submitted)s AND at.user_id = %(user)s
                AND ch.course_id = %(course)s)""",  # noqa: S608 - names from the models
            f"""ARRAY(SELECT su.assignment_id FROM {sql.table(Submission)} su
                JOIN {sql.table(Assignment)} asg ON su.assignment_id = asg.id
                JOIN {chapter} ch ON asg.chapter_id = ch.id
                WHERE ch.course_id = %(course)s AND su.user_id = %(user)s)""",  # noqa: S608 - names from the models
        ]
    return "SELECT " + ", ".join(columns)


def _reader_and_query(
    *, access: CourseAccess, user: User, query: str
) -> tuple[_Reader, str | None]:
    """PostgreSQL: the reader (as ``_reader``) and the query as tsquery text, ``None`` when it
    holds no word to search for (stop words alone), in one statement."""
    with connection.cursor() as cursor:
        cursor.execute(
            _reader_statement(access.is_staff),
            {
                "config": SEARCH_CONFIG,
                "query": query,
                "course": access.course.pk,
                "user": user.pk,
                "submitted": Attempt.Status.SUBMITTED.value,
            },
        )
        row = cursor.fetchone()
    newest, parsed, nodes, *lists = row
    hidden, answered, submitted = lists or ([], [], [])
    reader = _Reader(
        hidden_threads=hidden,
        answered_questions=answered,
        submitted_assignments=submitted,
        newest_post=newest,
    )
    return reader, parsed if nodes else None


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


def _ids(values: list[int]) -> str:
    return ", ".join(str(int(value)) for value in values)


def _readable_condition(*, access: CourseAccess, reader: _Reader) -> str:
    """``_readable_posts``' rule in SQL, for PostgreSQL (where the course is the search's marker):
    the reader's lists as literals (whole numbers, each through ``int``), the user as
    ``%(user)s``."""
    if access.is_staff:
        return "TRUE"
    conditions = []
    if reader.hidden_threads:
        conditions.append(f"NOT (p.thread_id IN ({_ids(reader.hidden_threads)}))")
    conditions.append("(NOT p.is_hidden OR p.author_id = %(user)s)")
    earned = []
    if reader.answered_questions:
        earned.append(f"question_id IN ({_ids(reader.answered_questions)})")
    if reader.submitted_assignments:
        earned.append(f"assignment_id IN ({_ids(reader.submitted_assignments)})")
    answers = "NOT p.contains_answer OR p.author_id = %(user)s"
    if earned:
        threads = f"SELECT id FROM {sql.table(Thread)} WHERE {' OR '.join(earned)}"  # noqa: S608
        answers += f" OR p.thread_id IN ({threads})"
    conditions.append(f"({answers})")
    return " AND ".join(conditions)


def _window_statement(condition: str) -> str:
    """The newest matches below ``%(below)s`` within the window's markers, each with its rank
    (``ts_rank``): computed here, for the rows returned only, while they are in hand, rather than
    by reading every candidate again to rank them."""
    newest = (
        f"SELECT p.id, p.search_vector FROM {sql.table(Post)} p WHERE {condition} "  # noqa: S608 - whole numbers
        "AND p.search_vector @@ (%(query)s::tsquery && %(markers)s::tsquery) "
        "AND p.id < %(below)s ORDER BY p.id DESC LIMIT %(limit)s"
    )
    return (
        "SELECT w.id, ts_rank(w.search_vector, %(query)s::tsquery) "  # noqa: S608 - see above
        f"FROM ({newest}) w ORDER BY w.id DESC"
    )


def _window_ids(
    statement: str, *, user: User, query: str, markers: list[str], below: int, limit: int
) -> list[tuple[int, float]]:
    # Planned for this query each time: PostgreSQL's generic plan for a window walks the
    # primary key backwards, seconds for a rare word.
    with sql.unprepared(), connection.cursor() as cursor:
        cursor.execute(
            statement,
            {
                "user": user.pk,
                "query": query,
                "markers": " | ".join(markers),
                "below": below,
                "limit": limit,
            },
        )
        return cursor.fetchall()


@lru_cache(maxsize=1)
def _page_read() -> sql.Read:
    """The page's posts, of the course only, with their thread, author and ``ts_headline``."""
    post, thread, user = sql.table(Post), sql.table(Thread), sql.table(User)
    posts = sql.TimestampColumns(Post, "p", only=("id", "thread", "number", "author", "created_at"))
    threads = sql.Columns(Thread, "t", only=("id", "title"))
    authors = sql.Columns(User, "u", only=("id", "username", "display_name"))
    statement = f"""
        SELECT {posts.sql}, {threads.sql}, {authors.sql},
            ts_headline(%(config)s::regconfig, p.body, %(query)s::tsquery, %(options)s)
        FROM {post} p
        JOIN {thread} t ON t.id = p.thread_id
        LEFT JOIN LATERAL (
            SELECT * FROM {user} u WHERE u.id = p.author_id OFFSET 0
        ) u ON TRUE
        WHERE p.id = ANY(%(ids)s::bigint[]) AND t.course_id = %(course)s"""  # noqa: S608 - names from the models
    return sql.Read(statement, (posts, threads, authors))


def _candidates(
    window: Callable[[list[str], int, int], list[tuple[int, float]]],
    *,
    course_id: int,
    newest: int | None,
) -> list[tuple[int, float]]:
    """The ids of the newest ``SEARCH_CANDIDATES`` posts that match, newest first, with their
    rank, as ``window(markers, below, limit)`` finds them.

    Window after window of recent ids, going down, until enough are found: the first, the two
    newest blocks of the smallest size; each next one as large as the matches found so far say
    is needed, in blocks of the smallest size that takes at most ``WINDOW_BLOCKS`` of them (or
    the next size up when nothing was found), and at last the rest of the course. The GIN index
    intersects the query's words with the blocks' markers (see forum.indexing), so a window
    costs what it holds or what its words match, whichever is less."""
    if newest is None:
        return []
    found: list[tuple[int, float]] = []
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
        found += window(markers, below, SEARCH_CANDIDATES - len(found))
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
    offset = (page - 1) * RESULTS_PER_PAGE
    if connection.vendor == "postgresql":
        reader, parsed = _reader_and_query(access=access, user=user, query=query)
        if parsed is None:
            return SearchResults(query, [], page, False)
        statement = _window_statement(_readable_condition(access=access, reader=reader))

        def window(markers: list[str], below: int, limit: int) -> list[tuple[int, float]]:
            return _window_ids(
                statement, user=user, query=parsed, markers=markers, below=below, limit=limit
            )

        # Rank the most recent matches only: ranking reads every row it ranks, and a common word
        # matches a third of a big forum (see docs/decisions.md).
        candidates = _candidates(window, course_id=access.course.pk, newest=reader.newest_post)
        # Best first: the rank, then the newest (ranks are PostgreSQL's float4, compared exactly).
        candidates.sort(key=lambda candidate: (-candidate[1], -candidate[0]))
        order = {
            pk: index for index, (pk, _) in enumerate(candidates[offset:][: RESULTS_PER_PAGE + 1])
        }
        rows = _page_read().rows(
            {
                "config": SEARCH_CONFIG,
                "query": parsed,
                "options": HEADLINE_OPTIONS,
                "ids": list(order),
                "course": access.course.pk,
            }
        )
        hits = []
        for post, thread, author, headline in sorted(rows, key=lambda row: order[row[0].pk]):
            sql.attach(post, "thread", thread)
            sql.attach(post, "author", author)
            hits.append(SearchHit(post, _highlight(headline)))
    else:
        reader = _reader(access=access, user=user)
        posts = _readable_posts(access=access, user=user, reader=reader)
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
