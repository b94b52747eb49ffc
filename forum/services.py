"""Everything that writes to the forum. Views and tasks call these.

Callers pass what the access functions in ``forum.access`` returned: a service trusts that the
user may do the thing in general and checks what depends on the data (the rules on size, rate and
links, the thread being locked by now, the post belonging to the thread).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, F, OuterRef
from django.utils import timezone

from accounts.models import User
from courses.access import CourseAccess
from courses.models import Chapter, Course, Question
from forum import notifications, rules
from forum.access import ThreadAccess
from forum.errors import RunError, run_error_of
from forum.indexing import post_vector_update
from forum.models import (
    Category,
    CategoryVisit,
    ErrorOccurrence,
    Flag,
    Notification,
    Post,
    PostLike,
    PostRevision,
    SubmissionReport,
    Thread,
    ThreadRead,
    Watch,
)
from forum.rendering import mention_candidates, post_html
from forum.rules import PostRefused
from grader.models import Assignment, FailureReason, RunStatus, Submission

# Views of a category less than this apart are one visit (see CategoryVisit).
VISIT_GAP = timedelta(minutes=30)


# --- Categories ---------------------------------------------------------------------------------


def category_ensure(*, course: Course, chapter: Chapter | None) -> Category:
    """The course's general category (``chapter=None``) or the chapter's, made if missing."""
    kind = Category.Kind.CHAPTER if chapter else Category.Kind.GENERAL
    lookup = {"chapter": chapter} if chapter else {"course": course, "kind": kind}
    existing = Category.objects.select_related("chapter").filter(**lookup).first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            return Category.objects.create(
                course=course,
                chapter=chapter,
                kind=kind,
                title=chapter.title if chapter else "General",
                description="" if chapter else "Anything about the course that is not one chapter.",
            )
    except IntegrityError:  # made by a concurrent request
        return Category.objects.select_related("chapter").get(**lookup)


def categories_sync(*, course: Course) -> None:
    """A general category for the course and one for each chapter (two or three queries)."""
    have = set(
        Category.objects.filter(course=course).values_list("chapter_id", flat=True).distinct()
    )
    missing = [
        Category(course=course, chapter=chapter, kind=Category.Kind.CHAPTER, title=chapter.title)
        for chapter in Chapter.objects.filter(course=course).only("id", "title")
        if chapter.id not in have
    ]
    if None not in have:
        category_ensure(course=course, chapter=None)
    if missing:
        Category.objects.bulk_create(missing, ignore_conflicts=True)


def _thread_counted(category_id: int, *, hidden: bool, change: int) -> None:
    """Add ``change`` to the category's count of visible or hidden threads."""
    field = "hidden_thread_count" if hidden else "thread_count"
    Category.objects.filter(pk=category_id).update(**{field: F(field) + change})


def category_thread_counts_refresh(*, category_ids: Iterable[int]) -> None:
    """Count the categories' threads again: after changes that did not go through these
    services (the admin)."""
    for category_id in set(category_ids):
        threads = Thread.objects.filter(category_id=category_id)
        Category.objects.filter(pk=category_id).update(
            thread_count=threads.filter(is_hidden=False).count(),
            hidden_thread_count=threads.filter(is_hidden=True).count(),
        )


# --- Writing posts ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cooked:
    html: str
    mentioned: list[User]


def _cook(body: str, *, course: Course) -> Cooked:
    """The post's HTML, with @mentions of the course's members marked (one query if any)."""
    names = sorted(mention_candidates(body))[: rules.MENTIONS_MAX]
    mentioned = (
        list(User.objects.filter(username__in=names, enrolments__course=course).distinct())
        if names
        else []
    )
    return Cooked(
        html=post_html(body, usernames={user.username for user in mentioned}),
        mentioned=mentioned,
    )


def _index(post: Post, *, course_id: int, title: str, body: str) -> None:
    """Keep the post's full-text vector current: title (A, opening posts) above body (B)."""
    if connection.vendor != "postgresql":
        return  # SQLite searches with icontains (see forum.search)
    post_vector_update(post_id=post.pk, course_id=course_id, title=title, body=body)


def _watch(user: User, thread: Thread) -> None:
    Watch.objects.bulk_create([Watch(user=user, thread=thread)], ignore_conflicts=True)


def _answers_flag(contains_answer: bool, thread: Thread) -> bool:
    if contains_answer and thread.question_id is None and thread.assignment_id is None:
        raise PostRefused(
            "Only posts in a thread about a question or an assignment can be marked as "
            "containing an answer."
        )
    return contains_answer


def _check_new_post(*, author: User, access: CourseAccess, body: str, now: datetime) -> None:
    if not access.is_member:
        raise PostRefused("Enrol in this course to post in its forum.")
    rules.body_check(body, user=author, is_staff=access.is_staff, now=now)
    rules.rate_check(user=author, is_staff=access.is_staff, now=now)


def _report_from(run_error: RunError, *, submission: Submission, show_code: bool) -> dict:
    return {
        "submission": submission,
        "assignment_id": submission.assignment_id,
        "status": run_error.status,
        "failure_reason": run_error.failure_reason,
        "summary": run_error.summary,
        "traceback": run_error.traceback,
        "exception": run_error.exception,
        "signature": run_error.signature,
        "device": run_error.device,
        "libraries": run_error.libraries,
        "show_code_to_staff": show_code,
    }


@transaction.atomic
def thread_create(
    *,
    author: User,
    access: CourseAccess,
    category: Category,
    title: str,
    body: str,
    question: Question | None = None,
    assignment: Assignment | None = None,
    contains_answer: bool = False,
    submission: Submission | None = None,
    show_code_to_staff: bool = False,
    now: datetime | None = None,
) -> Thread:
    """A new thread with its opening post. With ``submission`` (the author's own, finished), the
    run's error is attached to the post and the thread is about its assignment."""
    now = now or timezone.now()
    title = rules.title_check(title)
    body = rules.body_normalise(body)
    _check_new_post(author=author, access=access, body=body, now=now)
    if category.course_id != access.course.id:
        raise PostRefused("That category belongs to another course.")
    run_error = None
    if submission is not None:
        if submission.user_id != author.pk or not submission.is_finished:
            raise PostRefused("You can only ask about your own finished runs.")
        assignment, question = submission.assignment, None
        run_error = run_error_of(submission)
    if question is not None and question.questionnaire.chapter_id != category.chapter_id:
        raise PostRefused("That question belongs to another chapter.")
    if assignment is not None and assignment.chapter_id != category.chapter_id:
        raise PostRefused("That assignment belongs to another chapter.")
    thread = Thread(
        course=access.course,
        category=category,
        author=author,
        title=title,
        question=question,
        assignment=assignment,
        error_signature=run_error.signature if run_error else "",
        post_count=1,
        last_posted_at=now,
        last_poster=author,
    )
    _answers_flag(contains_answer, thread)
    thread.save()
    _thread_counted(category.pk, hidden=False, change=1)
    cooked = _cook(body, course=access.course)
    post = Post.objects.create(
        thread=thread,
        number=1,
        author=author,
        body=body,
        body_html=cooked.html,
        contains_answer=contains_answer,
        created_at=now,
    )
    _index(post, course_id=thread.course_id, title=title, body=body)
    if run_error is not None and submission is not None:
        SubmissionReport.objects.create(
            post=post,
            **_report_from(run_error, submission=submission, show_code=show_code_to_staff),
        )
    _watch(author, thread)
    notifications.notify_post(post=post, thread=thread, mentioned=cooked.mentioned)
    return thread


@transaction.atomic
def post_reply_create(
    *,
    author: User,
    thread_access: ThreadAccess,
    body: str,
    contains_answer: bool = False,
    now: datetime | None = None,
) -> Post:
    now = now or timezone.now()
    access = thread_access.access
    body = rules.body_normalise(body)
    _check_new_post(author=author, access=access, body=body, now=now)
    # The row lock numbers replies one after another, and sees a lock set a moment ago.
    thread = Thread.objects.select_for_update().get(pk=thread_access.thread.pk)
    if (thread.is_locked or thread.is_hidden) and not access.is_staff:
        raise PostRefused("This thread is locked: it takes no new posts.")
    _answers_flag(contains_answer, thread)
    number = thread.post_count + 1
    cooked = _cook(body, course=access.course)
    post = Post.objects.create(
        thread=thread,
        number=number,
        author=author,
        body=body,
        body_html=cooked.html,
        contains_answer=contains_answer,
        created_at=now,
    )
    _index(post, course_id=thread.course_id, title="", body=body)
    Thread.objects.filter(pk=thread.pk).update(
        post_count=number, last_posted_at=now, last_poster=author, updated_at=now
    )
    thread.post_count, thread.last_posted_at, thread.last_poster = number, now, author
    _watch(author, thread)
    notifications.notify_post(post=post, thread=thread, mentioned=cooked.mentioned)
    return post


@transaction.atomic
def post_edit(
    *,
    editor: User,
    thread_access: ThreadAccess,
    post: Post,
    body: str,
    title: str | None = None,
    contains_answer: bool | None = None,
    now: datetime | None = None,
) -> Post:
    """Change a post (and, for the opening post, the thread's title), keeping what it said."""
    now = now or timezone.now()
    thread = thread_access.thread
    body = rules.body_normalise(body)
    rules.body_check(body, user=editor, is_staff=thread_access.is_staff, now=now)
    new_title = rules.title_check(title) if title is not None and post.number == 1 else None
    title_changed = new_title is not None and new_title != thread.title
    fields = ["updated_at"]
    if body != post.body or title_changed:
        PostRevision.objects.create(
            post=post,
            number=post.edit_count + 1,
            title=thread.title if post.number == 1 else "",
            body=post.body,
            editor=editor,
            created_at=now,
        )
        before = {user.pk for user in _cook(post.body, course=thread.course).mentioned}
        cooked = _cook(body, course=thread.course)
        post.body, post.body_html = body, cooked.html
        post.edit_count += 1
        post.edited_at = now
        fields += ["body", "body_html", "edit_count", "edited_at"]
        if title_changed and new_title is not None:
            thread.title = new_title
            thread.save(update_fields=["title", "updated_at"])
        newly = [user for user in cooked.mentioned if user.pk not in before]
        if newly:
            notifications.notify_post(post=post, thread=thread, mentioned=newly, mentions_only=True)
    if contains_answer is not None and contains_answer != post.contains_answer:
        post.contains_answer = _answers_flag(contains_answer, thread)
        fields.append("contains_answer")
    post.save(update_fields=fields)
    if "body" in fields:
        _index(
            post,
            course_id=thread.course_id,
            title=thread.title if post.number == 1 else "",
            body=post.body,
        )
    return post


# --- Reactions and answers ----------------------------------------------------------------------


@transaction.atomic
def post_like_toggle(*, user: User, post: Post) -> bool:
    """Like the post, or take the like back. Returns whether the user now likes it."""
    if post.author_id == user.pk:
        raise PostRefused("You cannot like your own post.")
    deleted, _ = PostLike.objects.filter(post=post, user=user).delete()
    if deleted:
        Post.objects.filter(pk=post.pk).update(like_count=F("like_count") - 1)
        return False
    try:
        with transaction.atomic():
            PostLike.objects.create(post=post, user=user)
    except IntegrityError:  # a double click: liked already
        return True
    Post.objects.filter(pk=post.pk).update(like_count=F("like_count") + 1)
    return True


@transaction.atomic
def post_accept_toggle(*, user: User, thread_access: ThreadAccess, post: Post) -> bool:
    """Mark ``post`` as the thread's accepted answer, or unmark it. Returns whether accepted."""
    thread = Thread.objects.select_for_update().get(pk=thread_access.thread.pk)
    if post.thread_id != thread.pk:
        raise PostRefused("That post is in another thread.")
    if post.number == 1:
        raise PostRefused("The question cannot be its own answer.")
    if post.is_hidden:
        raise PostRefused("A hidden post cannot be the accepted answer.")
    if thread.accepted_post_id == post.pk:
        thread.accepted_post = None
        thread.save(update_fields=["accepted_post", "updated_at"])
        return False
    thread.accepted_post = post
    thread.save(update_fields=["accepted_post", "updated_at"])
    if post.author_id is not None and post.author_id != user.pk:
        notifications.notify_accepted(post=post, thread=thread, actor=user)
    return True


# --- Watching and reading -----------------------------------------------------------------------


def watch_toggle(
    *, user: User, thread: Thread | None = None, category: Category | None = None
) -> bool:
    """Start or stop watching; returns whether the user now watches."""
    target = {"thread": thread} if thread is not None else {"category": category}
    deleted, _ = Watch.objects.filter(user=user, **target).delete()
    if deleted:
        return False
    Watch.objects.bulk_create([Watch(user=user, **target)], ignore_conflicts=True)
    return True


def thread_read_mark(*, user: User, thread: Thread, number: int, last_read: int | None) -> None:
    """Record that ``user`` has seen posts up to ``number``; ``last_read`` is what the page
    found recorded, so reading an old page again writes nothing."""
    if last_read is None:
        ThreadRead.objects.bulk_create(
            [ThreadRead(user=user, thread=thread, last_read_number=number)], ignore_conflicts=True
        )
    elif number > last_read:
        ThreadRead.objects.filter(user=user, thread=thread, last_read_number__lt=number).update(
            last_read_number=number, updated_at=timezone.now()
        )


def category_visit(
    *, user: User, category: Category, visit: CategoryVisit | None, now: datetime | None = None
) -> datetime:
    """Record a view of the category; return the moment after which activity counts as new."""
    now = now or timezone.now()
    if visit is None:
        CategoryVisit.objects.bulk_create(
            [CategoryVisit(user=user, category=category, visited_at=now)], ignore_conflicts=True
        )
        return user.date_joined
    if now - visit.visited_at > VISIT_GAP:
        CategoryVisit.objects.filter(pk=visit.pk, visited_at=visit.visited_at).update(
            visited_at=now, previous_visited_at=visit.visited_at
        )
        return visit.visited_at
    return visit.previous_visited_at or user.date_joined


# --- Moderation ---------------------------------------------------------------------------------


class ThreadAction:
    PIN = "pin"
    UNPIN = "unpin"
    LOCK = "lock"
    UNLOCK = "unlock"
    HIDE = "hide"
    UNHIDE = "unhide"

    FIELDS = {
        PIN: ("is_pinned", True),
        UNPIN: ("is_pinned", False),
        LOCK: ("is_locked", True),
        UNLOCK: ("is_locked", False),
        HIDE: ("is_hidden", True),
        UNHIDE: ("is_hidden", False),
    }


@transaction.atomic
def thread_moderate(*, staff: ThreadAccess, action: str) -> Thread:
    """Pin, lock or hide the thread, or undo it. ``staff`` is a staff member's access."""
    if not staff.is_staff:
        raise PostRefused("Only course staff may moderate.")
    if action not in ThreadAction.FIELDS:
        raise PostRefused("Unknown moderation action.")
    name, value = ThreadAction.FIELDS[action]
    thread = staff.thread
    if name == "is_hidden":
        # Under the row lock: the category's counts move once, from the state as it is now.
        current = Thread.objects.select_for_update().only("category", "is_hidden").get(pk=thread.pk)
        if current.is_hidden != value:
            _thread_counted(current.category_id, hidden=current.is_hidden, change=-1)
            _thread_counted(current.category_id, hidden=value, change=1)
    setattr(thread, name, value)
    thread.save(update_fields=[name, "updated_at"])
    return thread


@transaction.atomic
def post_hide(
    *, staff: ThreadAccess, post: Post, hidden: bool, now: datetime | None = None
) -> Post:
    """Hide a post from everyone but its author and staff (or show it again). Hiding settles
    the post's open flags as acted on."""
    if not staff.is_staff:
        raise PostRefused("Only course staff may hide posts.")
    now = now or timezone.now()
    post.is_hidden = hidden
    post.hidden_by = staff.user if hidden else None
    post.hidden_at = now if hidden else None
    post.save(update_fields=["is_hidden", "hidden_by", "hidden_at", "updated_at"])
    if hidden:
        Flag.objects.filter(post=post, status=Flag.Status.OPEN).update(
            status=Flag.Status.ACTIONED, resolved_by=staff.user, resolved_at=now, updated_at=now
        )
        if staff.thread.accepted_post_id == post.pk:
            Thread.objects.filter(pk=staff.thread.pk).update(accepted_post=None)
    return post


def post_answer_mark(*, thread_access: ThreadAccess, post: Post, contains_answer: bool) -> Post:
    """Staff (or the post's author, through ``post_edit``) mark a post as giving an answer."""
    if not thread_access.is_staff:
        raise PostRefused("Only course staff may mark other people's posts.")
    post.contains_answer = _answers_flag(contains_answer, thread_access.thread)
    post.save(update_fields=["contains_answer", "updated_at"])
    return post


def post_flag(*, user: User, post: Post, reason: str, comment: str = "") -> Flag:
    """Ask staff to look at a post. Flagging again while the first flag is open changes nothing."""
    if post.author_id == user.pk:
        raise PostRefused("You cannot flag your own post.")
    if reason not in Flag.Reason.values:
        raise PostRefused("Choose why you flag this post.")
    existing = Flag.objects.filter(post=post, user=user, status=Flag.Status.OPEN).first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            return Flag.objects.create(post=post, user=user, reason=reason, comment=comment[:2000])
    except IntegrityError:
        return Flag.objects.get(post=post, user=user, status=Flag.Status.OPEN)


def flags_resolve(
    *, staff: ThreadAccess, post: Post, hide: bool, now: datetime | None = None
) -> int:
    """Settle every open flag on ``post``: hide the post, or dismiss them. Returns how many."""
    if not staff.is_staff:
        raise PostRefused("Only course staff may settle flags.")
    now = now or timezone.now()
    open_flags = Flag.objects.filter(post=post, status=Flag.Status.OPEN)
    count = open_flags.count()
    if hide:
        post_hide(staff=staff, post=post, hidden=True, now=now)
    else:
        open_flags.update(
            status=Flag.Status.DISMISSED, resolved_by=staff.user, resolved_at=now, updated_at=now
        )
    return count


def _clear_foreign_anchors(thread: Thread, category: Category) -> list[str]:
    fields = []
    question, assignment = thread.question, thread.assignment
    if question is not None and question.questionnaire.chapter_id != category.chapter_id:
        thread.question = None
        fields.append("question")
    if assignment is not None and assignment.chapter_id != category.chapter_id:
        thread.assignment = None
        thread.error_signature = ""
        fields += ["assignment", "error_signature"]
    return fields


@transaction.atomic
def thread_move(*, staff: ThreadAccess, category: Category) -> Thread:
    """Move the thread to another category of its course. It stays about a question or an
    assignment only if that belongs to the new category's chapter."""
    if not staff.is_staff:
        raise PostRefused("Only course staff may move threads.")
    thread = staff.thread
    if category.course_id != thread.course_id:
        raise PostRefused("Threads move only within their course.")
    current = Thread.objects.select_for_update().only("category", "is_hidden").get(pk=thread.pk)
    if current.category_id != category.pk:
        _thread_counted(current.category_id, hidden=current.is_hidden, change=-1)
        _thread_counted(category.pk, hidden=current.is_hidden, change=1)
    thread.category = category
    fields = ["category", "updated_at", *_clear_foreign_anchors(thread, category)]
    thread.save(update_fields=fields)
    return thread


@transaction.atomic
def thread_split(
    *,
    staff: ThreadAccess,
    numbers: Iterable[int],
    title: str,
    category: Category,
) -> Thread:
    """Move the posts numbered ``numbers`` (not the opening post) into a new thread titled
    ``title``. Both threads are renumbered from 1 so their pages stay ranges of numbers."""
    if not staff.is_staff:
        raise PostRefused("Only course staff may split threads.")
    title = rules.title_check(title)
    thread = Thread.objects.select_for_update().get(pk=staff.thread.pk)
    if category.course_id != thread.course_id:
        raise PostRefused("Threads move only within their course.")
    chosen = sorted(set(numbers))
    if not chosen or chosen[0] < 2 or chosen[-1] > thread.post_count:
        raise PostRefused("Choose one or more replies (not the opening post) to move.")
    moving = list(Post.objects.filter(thread=thread, number__in=chosen).order_by("number"))
    staying = list(
        Post.objects.filter(thread=thread)
        .exclude(number__in=chosen)
        .order_by("number")
        .only("id", "number", "author_id", "created_at")
    )
    # A run attached to the first moved post makes the new thread about its assignment, if the
    # assignment belongs to the chosen category's chapter.
    report = SubmissionReport.objects.select_related("assignment").filter(post=moving[0]).first()
    assignment = report.assignment if report else None
    if assignment is not None and assignment.chapter_id != category.chapter_id:
        assignment = None
    new = Thread.objects.create(
        course=thread.course,
        category=category,
        author_id=moving[0].author_id,
        title=title,
        assignment=assignment,
        error_signature=report.signature if report and assignment else "",
        post_count=len(moving),
        last_posted_at=moving[-1].created_at,
        last_poster_id=moving[-1].author_id,
    )
    _thread_counted(category.pk, hidden=False, change=1)
    # Out of the way first: the unique (thread, number) holds after every single statement.
    Post.objects.filter(thread=thread).update(number=F("number") + thread.post_count + 1)
    for index, post in enumerate(moving, start=1):
        post.thread, post.number = new, index
    for index, post in enumerate(staying, start=1):
        post.number = index
    Post.objects.bulk_update(moving, ["thread", "number"])
    Post.objects.bulk_update(staying, ["number"])
    last = staying[-1]
    accepted_moved = thread.accepted_post_id in {post.pk for post in moving}
    Thread.objects.filter(pk=thread.pk).update(
        post_count=len(staying),
        last_posted_at=last.created_at,
        last_poster_id=last.author_id,
        accepted_post=None if accepted_moved else thread.accepted_post_id,
    )
    ThreadRead.objects.filter(thread=thread, last_read_number__gt=len(staying)).update(
        last_read_number=len(staying)
    )
    Notification.objects.filter(post__in=moving).update(thread=new)
    _index(moving[0], course_id=thread.course_id, title=title, body=moving[0].body)
    return new


# --- Errors of failed runs ----------------------------------------------------------------------


def error_occurrence_record(*, submission: Submission) -> ErrorOccurrence | None:
    """Index a failed run's error signature (no-op when it is indexed as it is now)."""
    if (
        submission.status != RunStatus.FAILED
        or submission.failure_reason == FailureReason.INFRASTRUCTURE
    ):
        return None
    existing = ErrorOccurrence.objects.filter(submission=submission).first()
    if existing is not None and existing.finished_at == submission.finished_at:
        return existing
    run_error = run_error_of(submission)
    values = {
        "assignment_id": submission.assignment_id,
        "user_id": submission.user_id,
        "signature": run_error.signature,
        "exception": run_error.exception,
        "finished_at": submission.finished_at,
    }
    if existing is not None:
        for name, value in values.items():
            setattr(existing, name, value)
        existing.save(update_fields=[*values, "updated_at"])
        return existing
    try:
        with transaction.atomic():
            return ErrorOccurrence.objects.create(submission=submission, **values)
    except IntegrityError:
        return ErrorOccurrence.objects.get(submission=submission)


def error_occurrences_index(*, limit: int = 500) -> int:
    """Index failed runs not indexed yet (or regraded since), oldest first; returns how many."""
    indexed = ErrorOccurrence.objects.filter(
        submission=OuterRef("pk"), finished_at=OuterRef("finished_at")
    )
    pending = (
        Submission.objects.filter(status=RunStatus.FAILED)
        .exclude(failure_reason=FailureReason.INFRASTRUCTURE)
        .exclude(Exists(indexed))
        .only(
            "id",
            "user_id",
            "assignment_id",
            "status",
            "failure_reason",
            "message",
            "log",
            "device",
            "finished_at",
        )
        .order_by("id")[:limit]
    )
    count = 0
    # A few at a time: each row carries its log (up to a quarter of a megabyte).
    for submission in pending.iterator(chunk_size=50):
        error_occurrence_record(submission=submission)
        count += 1
    return count


def submission_question_text(*, run_error: RunError, assignment: Assignment) -> tuple[str, str]:
    """A title and opening text for asking about a run; the author edits both before posting."""
    if run_error.exception:
        title = f"{run_error.exception.split(':')[0][:80]} in {assignment.title}"
    elif run_error.failed:
        title = f"{run_error.failure_label} on {assignment.title}"
    else:
        title = f"Question about my run on {assignment.title}"
    if run_error.failed:
        body = (
            f"My submission to *{assignment.title}* failed "
            f"({run_error.failure_label.lower()}). The error is attached below.\n\n"
            "What I was trying to do:\n\n\nWhat I have tried so far:\n"
        )
    else:
        body = f"A question about my run on *{assignment.title}*:\n\n"
    return rules.title_check(title[: rules.TITLE_MAX_CHARS]), body
