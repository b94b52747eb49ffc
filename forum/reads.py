"""The thread page's and the category page's reads, in plain SQL (see ``topdown.sql``).

Each of these pages made six or seven ORM queries, and compiling them cost more Python than the
rest of the page. Their shapes never change, so each statement is built once per process from the
models' metadata (names, never input) and its rows become model instances with each field's own
converters, linked as ``select_related`` would have linked them. The rules they feed stay where
they were: ``forum.access`` decides who may see what from the rows read here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connection

from accounts.models import User
from courses.models import (
    STAFF_ROLES,
    Answer,
    Attempt,
    Chapter,
    Course,
    Enrolment,
    Question,
)
from forum.models import (
    Category,
    CategoryVisit,
    Post,
    PostLike,
    SubmissionReport,
    Thread,
    ThreadRead,
    Watch,
)
from grader.models import Assignment, Submission
from topdown import sql

# What the pages show of a person: never a password hash. (Of a chapter: all but its text.)
PERSON_FIELDS = ("id", "username", "display_name")
# What a thread page shows of a post (its text is stored rendered): the rest loads if read.
POST_FIELDS = (
    "id",
    "thread",
    "number",
    "author",
    "body_html",
    "contains_answer",
    "is_hidden",
    "like_count",
    "edit_count",
    "created_at",
)


def _column(model: type[Any], field: str) -> str:
    return sql.quote(str(model._meta.get_field(field).column))


# --- A thread and its reader ---------------------------------------------------------------------


@dataclass(frozen=True)
class ThreadRow:
    """A thread with its course, category, anchors and accepted answer linked, and its reader's
    enrolment in the course, watch, read mark and whether they submitted what it is about."""

    thread: Thread
    enrolment: Enrolment | None
    watching: bool
    last_read_number: int | None
    submitted_anchor: bool  # True for a thread about neither a question nor an assignment


def _thread_anchor_joins() -> str:
    """The thread ``t``'s question ``q``, assignment ``a`` and its reader's enrolment ``e``."""
    question, assignment = _column(Thread, "question"), _column(Thread, "assignment")
    course, user = _column(Enrolment, "course"), _column(Enrolment, "user")
    if connection.vendor != "postgresql":
        return (
            f" LEFT JOIN {sql.table(Question)} q ON q.id = t.{question}"
            f" LEFT JOIN {sql.table(Assignment)} a ON a.id = t.{assignment}"
            f" LEFT JOIN {sql.table(Enrolment)} e ON e.{course} = t.{_column(Thread, 'course')}"
            f"  AND e.{user} = %(user)s"
        )
    # Each a subquery of its own (OFFSET 0 keeps PostgreSQL from folding it into the join): as
    # plain joins, the question and the assignment (wide tables with many indexes) cost more
    # than a millisecond of planning on every view.
    return (
        f" LEFT JOIN LATERAL (SELECT * FROM {sql.table(Question)} q0"  # noqa: S608 - names from the models
        f"  WHERE q0.id = t.{question} OFFSET 0) q ON TRUE"
        f" LEFT JOIN LATERAL (SELECT * FROM {sql.table(Assignment)} a0"
        f"  WHERE a0.id = t.{assignment} OFFSET 0) a ON TRUE"
        f" LEFT JOIN LATERAL (SELECT * FROM {sql.table(Enrolment)} e0"
        f"  WHERE e0.{course} = t.{_column(Thread, 'course')} AND e0.{user} = %(user)s"
        " OFFSET 0) e ON TRUE"
    )


@lru_cache(maxsize=1)
def _thread_read() -> sql.Read:
    columns: tuple[sql.Columns[Any], ...] = (
        sql.Columns(Thread, "t"),
        sql.Columns(Course, "co"),
        sql.Columns(Category, "cat"),
        sql.Columns(Chapter, "ch", without=("body",)),
        sql.Columns(Question, "q"),
        sql.Columns(Assignment, "a"),
        sql.Columns(Enrolment, "e"),
    )
    user_id = _column(Watch, "user")
    accepted = f"FROM {sql.table(Post)} ap WHERE ap.id = t.{_column(Thread, 'accepted_post')}"
    statement = (
        f"SELECT {', '.join(c.sql for c in columns)},"  # noqa: S608 - names from the models
        # The accepted answer's place, not a join: each join of this statement cost PostgreSQL
        # about half a millisecond of planning.
        f" (SELECT ap.{_column(Post, 'thread')} {accepted}),"
        f" (SELECT ap.{_column(Post, 'number')} {accepted}),"
        f" EXISTS (SELECT 1 FROM {sql.table(Watch)} w"
        f"  WHERE w.{_column(Watch, 'thread')} = t.id AND w.{user_id} = %(user)s),"
        f" (SELECT r.{_column(ThreadRead, 'last_read_number')} FROM {sql.table(ThreadRead)} r"
        f"  WHERE r.{_column(ThreadRead, 'thread')} = t.id"
        f"  AND r.{_column(ThreadRead, 'user')} = %(user)s LIMIT 1),"
        # forum.access.answers_visible_to's rule: a submitted attempt answering the question,
        # else any submission to the assignment.
        " CASE WHEN t.{q} IS NOT NULL THEN EXISTS (SELECT 1 FROM {answer} an"
        "  JOIN {attempt} at ON at.id = an.{attempt_id}"
        "  WHERE an.{answer_question} = t.{q} AND at.{attempt_user} = %(user)s"
        "  AND at.{attempt_status} = %(submitted)s)"
        " WHEN t.{asg} IS NOT NULL THEN EXISTS (SELECT 1 FROM {submission} s"
        "  WHERE s.{submission_assignment} = t.{asg} AND s.{submission_user} = %(user)s)"
        " ELSE TRUE END".format(
            q=_column(Thread, "question"),
            asg=_column(Thread, "assignment"),
            answer=sql.table(Answer),
            attempt=sql.table(Attempt),
            attempt_id=_column(Answer, "attempt"),
            answer_question=_column(Answer, "question"),
            attempt_user=_column(Attempt, "user"),
            attempt_status=_column(Attempt, "status"),
            submission=sql.table(Submission),
            submission_assignment=_column(Submission, "assignment"),
            submission_user=_column(Submission, "user"),
        )
        + f" FROM {sql.table(Thread)} t"
        f" JOIN {sql.table(Course)} co ON co.id = t.{_column(Thread, 'course')}"
        f" JOIN {sql.table(Category)} cat ON cat.id = t.{_column(Thread, 'category')}"
        f" LEFT JOIN {sql.table(Chapter)} ch ON ch.id = cat.{_column(Category, 'chapter')}"
        f"{_thread_anchor_joins()}"
        " WHERE t.id = %(thread)s"
    )
    return sql.Read(statement, columns)


def thread_row(*, user: User, thread_id: int) -> ThreadRow | None:
    """The thread ``thread_id`` as its reader ``user`` sees it (no access checked here)."""
    found = _thread_read().row(
        {"user": user.pk, "thread": thread_id, "submitted": Attempt.Status.SUBMITTED.value}
    )
    if found is None:
        return None
    (thread, course, category, chapter, question, assignment, enrolment) = found[:7]
    accepted_thread_id, accepted_number, watching, last_read_number, submitted = found[7:]
    accepted = None
    if thread.accepted_post_id is not None and accepted_number is not None:
        # Only the fields an accepted answer's link needs: the others load if read.
        accepted = Post.from_db(
            DEFAULT_DB_ALIAS,
            ["id", "thread_id", "number"],
            [thread.accepted_post_id, accepted_thread_id, accepted_number],
        )
    sql.attach(category, "course", course)
    sql.attach(category, "chapter", chapter)
    sql.attach(thread, "course", course)
    sql.attach(thread, "category", category)
    sql.attach(thread, "question", question)
    sql.attach(thread, "assignment", assignment)
    sql.attach(thread, "accepted_post", accepted)
    if enrolment is not None:
        sql.attach(enrolment, "course", course)
    # What the ORM's annotations were called: views read them from the thread.
    thread.watching = bool(watching)
    thread.last_read_number = last_read_number
    return ThreadRow(thread, enrolment, bool(watching), last_read_number, bool(submitted))


# --- A page of posts -----------------------------------------------------------------------------


@dataclass(frozen=True)
class PostWithReader:
    """A post with its author and attached run linked, whether the reader liked it, and its
    author's staff role in the course (None for students and former members)."""

    post: Post
    liked: bool
    role: str | None


@lru_cache(maxsize=1)
def _posts_read() -> tuple[str, tuple[sql.Columns[Any], ...]]:
    columns: tuple[sql.Columns[Any], ...] = (
        sql.Columns(Post, "p", only=POST_FIELDS),
        sql.Columns(User, "u", only=PERSON_FIELDS),
        sql.Columns(SubmissionReport, "sr"),
    )
    author = _column(Post, "author")
    roles = ", ".join(f"%(role{index})s" for index in range(len(STAFF_ROLES)))
    statement = (
        f"SELECT {', '.join(c.sql for c in columns)},"  # noqa: S608 - names from the models
        f" EXISTS (SELECT 1 FROM {sql.table(PostLike)} l WHERE l.{_column(PostLike, 'post')} = p.id"
        f"  AND l.{_column(PostLike, 'user')} = %(user)s),"
        f" (SELECT e.{_column(Enrolment, 'role')} FROM {sql.table(Enrolment)} e"
        f"  WHERE e.{_column(Enrolment, 'course')} = %(course)s"
        f"  AND e.{_column(Enrolment, 'user')} = p.{author}"
        f"  AND e.{_column(Enrolment, 'role')} IN ({roles}) LIMIT 1)"
        f" FROM {sql.table(Post)} p"
        f" LEFT JOIN {sql.table(User)} u ON u.id = p.{author}"
        f" LEFT JOIN {sql.table(SubmissionReport)} sr ON sr.{_column(SubmissionReport, 'post')}"
        " = p.id"
        f" WHERE p.{_column(Post, 'thread')} = %(thread)s"
        f" AND p.{_column(Post, 'number')} >= %(first)s AND p.{_column(Post, 'number')} < %(end)s"
        f" ORDER BY p.{_column(Post, 'number')}"
    )
    return statement, columns


def posts_in_range(*, thread: Thread, user: User, first: int, end: int) -> list[PostWithReader]:
    """The thread's posts numbered ``first`` to ``end`` (excluded), in order."""
    statement, columns = _posts_read()
    posts_columns, author_columns, report_columns = columns
    with connection.cursor() as cursor:
        cursor.execute(
            statement,
            {
                "user": user.pk,
                "course": thread.course_id,
                **{f"role{index}": str(role) for index, role in enumerate(STAFF_ROLES)},
                "thread": thread.pk,
                "first": first,
                "end": end,
            },
        )
        rows = cursor.fetchall()
    found = []
    author_start = len(posts_columns)
    report_start = author_start + len(author_columns)
    extra = report_start + len(report_columns)
    for row in rows:
        post = posts_columns.instance(row, 0)
        assert post is not None
        author = author_columns.instance(row, author_start)
        report = report_columns.instance(row, report_start)
        sql.attach(post, "author", author)
        post.thread = thread
        if report is not None:
            sql.attach(report, "post", post)
        sql.attach(post, "submission_report", report)
        found.append(PostWithReader(post, bool(row[extra]), row[extra + 1]))
    return found


# --- A category and its reader -------------------------------------------------------------------


@dataclass(frozen=True)
class CategoryRow:
    """A course, its reader's enrolment, and one of its categories (None when it has not been
    made yet) with the reader's visit and whether they watch it."""

    course: Course
    enrolment: Enrolment | None
    category: Category | None
    visit: CategoryVisit | None
    watching: bool


@lru_cache(maxsize=2)
def _category_read(by_chapter: bool) -> sql.Read:
    columns: tuple[sql.Columns[Any], ...] = (
        sql.Columns(Course, "co"),
        sql.Columns(Enrolment, "e"),
        sql.Columns(Category, "cat"),
        sql.Columns(Chapter, "ch", without=("body",)),
        sql.Columns(CategoryVisit, "v"),
    )
    cat_course, cat_chapter = _column(Category, "course"), _column(Category, "chapter")
    if by_chapter:
        # One category per chapter (a one-to-one field), so at most one row.
        category_join = (
            f" LEFT JOIN ({sql.table(Category)} cat JOIN {sql.table(Chapter)} ch"
            f"  ON ch.id = cat.{cat_chapter} AND ch.{_column(Chapter, 'slug')} = %(chapter)s)"
            f"  ON cat.{cat_course} = co.id"
        )
    else:
        # One general category per course (a constraint).
        category_join = (
            f" LEFT JOIN {sql.table(Category)} cat ON cat.{cat_course} = co.id"
            f"  AND cat.{_column(Category, 'kind')} = %(general)s"
            f" LEFT JOIN {sql.table(Chapter)} ch ON ch.id = cat.{cat_chapter}"
        )
    statement = (
        f"SELECT {', '.join(c.sql for c in columns)},"  # noqa: S608 - names from the models
        f" EXISTS (SELECT 1 FROM {sql.table(Watch)} w"
        f"  WHERE w.{_column(Watch, 'category')} = cat.id"
        f"  AND w.{_column(Watch, 'user')} = %(user)s)"
        f" FROM {sql.table(Course)} co"
        f" LEFT JOIN {sql.table(Enrolment)} e ON e.{_column(Enrolment, 'course')} = co.id"
        f"  AND e.{_column(Enrolment, 'user')} = %(user)s"
        f"{category_join}"
        f" LEFT JOIN {sql.table(CategoryVisit)} v"
        f"  ON v.{_column(CategoryVisit, 'category')} = cat.id"
        f"  AND v.{_column(CategoryVisit, 'user')} = %(user)s"
        f" WHERE co.{_column(Course, 'slug')} = %(course)s"
        " ORDER BY cat.id LIMIT 1"
    )
    return sql.Read(statement, columns)


def category_row(*, user: User, course_slug: str, chapter_slug: str | None) -> CategoryRow | None:
    """The course ``course_slug`` (None if there is none) with ``user``'s enrolment, and its
    general category or the chapter's, with the reader's visit and watch (no access checked)."""
    found = _category_read(chapter_slug is not None).row(
        {
            "user": user.pk,
            "course": course_slug,
            "chapter": chapter_slug,
            "general": Category.Kind.GENERAL.value,
        }
    )
    if found is None:
        return None
    course, enrolment, category, chapter, visit, watching = found
    if enrolment is not None:
        sql.attach(enrolment, "course", course)
    if category is not None:
        sql.attach(category, "course", course)
        sql.attach(category, "chapter", chapter)
    if visit is not None:
        sql.attach(visit, "category", category)
    return CategoryRow(course, enrolment, category, visit, bool(watching))


# --- A page of a category's threads --------------------------------------------------------------

# What a category page shows of each thread (forum/includes/thread_row.html), with the keys of
# what it links to.
LISTED_THREAD_FIELDS = (
    "id",
    "author",
    "last_poster",
    "question",
    "assignment",
    "accepted_post",
    "title",
    "is_pinned",
    "is_locked",
    "is_hidden",
    "post_count",
    "last_posted_at",
    "created_at",
)


@dataclass(frozen=True)
class ListedThread:
    """What a category page shows of a thread, by value: no model instances, which cost more
    to build than the rest of the page's rows (thirty threads, their authors and anchors)."""

    pk: int
    title: str
    is_pinned: bool
    is_locked: bool
    is_hidden: bool
    is_answered: bool
    post_count: int
    last_posted_at: datetime
    created_at: datetime
    author: str  # the author's public name; "" for a former member
    last_poster: str
    question_key: str | None  # None: not about a question
    assignment_title: str | None  # None: not about an assignment
    last_read_number: int | None  # how far the reader has read it; None: never opened


def _public_name(person: dict[str, Any]) -> str:
    """``User.public_name`` of a person's columns; "" when the join found nobody."""
    if person["id"] is None:
        return ""
    return str(person["display_name"] or person["username"])


@lru_cache(maxsize=8)
def _threads_read(
    visible_only: bool, by_question: bool, by_assignment: bool
) -> tuple[str, tuple[sql.Columns[Any], ...]]:
    columns: tuple[sql.Columns[Any], ...] = (
        sql.Columns(Thread, "t", only=LISTED_THREAD_FIELDS),
        sql.Columns(User, "au", only=PERSON_FIELDS),
        sql.Columns(User, "lp", only=PERSON_FIELDS),
        sql.Columns(Question, "q", only=("id", "key")),
        sql.Columns(Assignment, "a", only=("id", "title")),
    )
    conditions = [f"t.{_column(Thread, 'category')} = %(category)s"]
    if visible_only:
        conditions.append(f"NOT t.{_column(Thread, 'is_hidden')}")  # as the partial index says
    if by_question:
        conditions.append(f"t.{_column(Thread, 'question')} = %(question)s")
    if by_assignment:
        conditions.append(f"t.{_column(Thread, 'assignment')} = %(assignment)s")
    order = ", ".join(
        f"t.{_column(Thread, name)} DESC" for name in ("is_pinned", "last_posted_at", "id")
    )
    # The page of threads first, then what each row links to: joined to the whole category,
    # the same rows took PostgreSQL 6 ms to plan (the read marks' join alone 4 ms) and 1 ms to
    # run. Scalar subqueries are planned on their own, cheaply, and run for the page's rows.
    page = (
        f"SELECT {columns[0].sql} FROM {sql.table(Thread)} t"  # noqa: S608 - names from the models
        f" WHERE {' AND '.join(conditions)}"
        f" ORDER BY {order} LIMIT %(limit)s OFFSET %(offset)s"
    )
    statement = (
        f"SELECT {', '.join(c.sql for c in columns)},"  # noqa: S608 - names from the models
        # One read mark per reader and thread (a constraint).
        f" (SELECT r.{_column(ThreadRead, 'last_read_number')} FROM {sql.table(ThreadRead)} r"
        f"  WHERE r.{_column(ThreadRead, 'thread')} = t.id"
        f"  AND r.{_column(ThreadRead, 'user')} = %(user)s)"
        f" FROM ({page}) t"
        f" LEFT JOIN {sql.table(User)} au ON au.id = t.{_column(Thread, 'author')}"
        f" LEFT JOIN {sql.table(User)} lp ON lp.id = t.{_column(Thread, 'last_poster')}"
        f" LEFT JOIN {sql.table(Question)} q ON q.id = t.{_column(Thread, 'question')}"
        f" LEFT JOIN {sql.table(Assignment)} a ON a.id = t.{_column(Thread, 'assignment')}"
        f" ORDER BY {order}"
    )
    return statement, columns


def threads_listed(
    *,
    category_id: int,
    user: User,
    visible_only: bool,
    question_id: int | None,
    assignment_id: int | None,
    offset: int,
    limit: int,
) -> list[ListedThread]:
    """The category's threads (only those not hidden if ``visible_only``; only those about the
    question or the assignment if given), pinned first then by latest activity."""
    statement, columns = _threads_read(
        visible_only, question_id is not None, assignment_id is not None
    )
    params = {
        "category": category_id,
        "user": user.pk,
        "question": question_id,
        "assignment": assignment_id,
        "limit": limit,
        "offset": offset,
    }
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        rows = cursor.fetchall()
    threads, authors, posters, questions, assignments = columns
    found = []
    for row in rows:
        start = 0
        thread = threads.named(row, start)
        start += len(threads)
        author = authors.named(row, start)
        start += len(authors)
        last_poster = posters.named(row, start)
        start += len(posters)
        question = questions.named(row, start)
        start += len(questions)
        assignment = assignments.named(row, start)
        start += len(assignments)
        found.append(
            ListedThread(
                pk=thread["id"],
                title=thread["title"],
                is_pinned=thread["is_pinned"],
                is_locked=thread["is_locked"],
                is_hidden=thread["is_hidden"],
                is_answered=thread["accepted_post"] is not None,
                post_count=thread["post_count"],
                last_posted_at=thread["last_posted_at"],
                created_at=thread["created_at"],
                author=_public_name(author),
                last_poster=_public_name(last_poster),
                question_key=question["key"] if question["id"] is not None else None,
                assignment_title=assignment["title"] if assignment["id"] is not None else None,
                last_read_number=row[start],
            )
        )
    return found
