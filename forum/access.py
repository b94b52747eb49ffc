"""Who may see or do what on the forum. Views call these; they never check roles themselves.

A course's forum is for its members (``PermissionDenied`` for anyone else, as for its chapters).
Hidden threads are a 404 for everyone but staff. A hidden post, or a post marked as containing an
answer that the reader has not yet submitted, keeps its place in the thread but not its content:
``post_content_visible`` says which, and every action that would show the content (quoting, the
edit history, liking, flagging) checks it too.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from django.core.exceptions import PermissionDenied
from django.http import Http404

from accounts.models import User
from courses.access import NOT_A_MEMBER, CourseAccess, course_access_from, course_get_for_member
from courses.models import Answer, Attempt, Chapter, Course, Enrolment, Question
from forum import reads
from forum.models import Category, CategoryVisit, Flag, Notification, Post, Thread
from grader import access as grader_access
from grader.models import Assignment, Submission

NOT_MEMBER = "Enrol in this course to read and write in its forum."
STAFF_ONLY = "Only the course's instructors and teaching assistants may do this."
LOCKED = "This thread is locked: it takes no new posts."


@dataclass(frozen=True)
class ThreadAccess:
    access: CourseAccess
    thread: Thread
    user: User
    # Whether posts marked as containing an answer show their content to this user.
    answers_visible: bool

    @cached_property
    def user_id(self) -> int:
        # Once: ``user`` is often the request's lazy user, and each post of a page asks.
        return int(self.user.pk)

    @cached_property
    def is_staff(self) -> bool:
        return self.access.is_staff

    @property
    def can_reply(self) -> bool:
        return self.is_staff or not self.thread.is_locked

    @property
    def can_accept(self) -> bool:
        return self.is_staff or (
            self.thread.author_id == self.user_id and not self.thread.is_locked
        )

    @property
    def can_moderate(self) -> bool:
        return self.is_staff

    @property
    def can_mark_answers(self) -> bool:
        """Only threads about a question or an assignment have answers to hide."""
        return self.thread.question_id is not None or self.thread.assignment_id is not None

    def can_edit(self, post: Post) -> bool:
        return self.is_staff or (post.author_id == self.user_id and not self.thread.is_locked)


def _member_access(*, user: User, course: Course) -> CourseAccess:
    """``course_access_for_user`` for a course already loaded: one query for the enrolment."""
    enrolment = Enrolment.objects.filter(user=user, course=course).first()
    return _access_from(user=user, course=course, enrolment=enrolment)


def answers_visible_to(
    *, user: User, access: CourseAccess, question_id: int | None, assignment_id: int | None
) -> bool:
    """Whether ``user`` has submitted the question or assignment (staff always may see).

    The thread page reads the same rule in SQL with the thread (``forum.reads.thread_row``);
    a test holds the two to the same answers."""
    if access.is_staff or (question_id is None and assignment_id is None):
        return True
    if question_id is not None:
        return Answer.objects.filter(
            question_id=question_id,
            attempt__user=user,
            attempt__status=Attempt.Status.SUBMITTED,
        ).exists()
    return Submission.objects.filter(assignment=assignment_id, user=user).exists()


def post_content_visible(post: Post, thread_access: ThreadAccess) -> bool:
    """Whether the post's text (and what is attached to it) may be shown to this reader."""
    if thread_access.is_staff or (
        post.author_id is not None and post.author_id == thread_access.user_id
    ):
        return True
    if post.is_hidden:
        return False
    return not post.contains_answer or thread_access.answers_visible


def forum_get_for_member(*, user: User, course_slug: str, staff: bool = False) -> CourseAccess:
    return course_get_for_member(user=user, course_slug=course_slug, staff=staff)


@dataclass(frozen=True)
class CategoryReader:
    """A category its reader may read, with what the page shows of the reader's own state."""

    access: CourseAccess
    category: Category
    visit: CategoryVisit | None
    watching: bool


def category_get_for_reader(
    *, user: User, course_slug: str, chapter_slug: str | None = None
) -> CategoryReader:
    """The general category (no ``chapter_slug``) or a chapter's, made on first use; with the
    reader's visit and watch. One statement (``forum.reads.category_row``) finds the course,
    the reader's enrolment, the category, the visit and the watch; a category not made yet
    takes the queries that make it."""
    from forum.services import category_ensure

    found = reads.category_row(user=user, course_slug=course_slug, chapter_slug=chapter_slug)
    if found is None:
        raise Http404("No such course.")
    access = course_access_from(user=user, course=found.course, enrolment=found.enrolment)
    if not access.is_member:
        raise PermissionDenied(NOT_A_MEMBER)
    if found.category is not None:
        return CategoryReader(access, found.category, found.visit, found.watching)
    if chapter_slug is None:
        category = category_ensure(course=access.course, chapter=None)
    else:
        chapter = Chapter.objects.filter(course=access.course, slug=chapter_slug).first()
        if chapter is None:
            raise Http404("No such chapter.")
        category = category_ensure(course=access.course, chapter=chapter)
    category.course = access.course
    # Made just now: nobody has visited or watched it (or, in a race, only just).
    return CategoryReader(access, category, None, False)


def category_get_for_user(
    *, user: User, course_slug: str, chapter_slug: str | None = None
) -> tuple[CourseAccess, Category]:
    """The general category (no ``chapter_slug``) or a chapter's; made on first use."""
    reader = category_get_for_reader(user=user, course_slug=course_slug, chapter_slug=chapter_slug)
    return reader.access, reader.category


def _access_from(*, user: User, course: Course, enrolment: Enrolment | None) -> CourseAccess:
    """``_member_access`` from an enrolment read already (or None)."""
    role = enrolment.role if enrolment else None
    if user.is_superuser:
        role = "instructor"
    if role is None:
        raise PermissionDenied(NOT_MEMBER)
    return CourseAccess(course=course, enrolment=enrolment, role=role)


def thread_get_for_user(*, user: User, thread_id: int, reply: bool = False) -> ThreadAccess:
    """A thread its course's members may read; ``reply``: and post in (not when locked).

    One statement (``forum.reads.thread_row``) reads the thread with its course, category,
    anchors and accepted answer, and the reader's enrolment, watch, read mark and whether they
    submitted what the thread is about (``answers_visible_to``'s rule); the thread carries the
    reader's ``watching`` and ``last_read_number``."""
    found = reads.thread_row(user=user, thread_id=thread_id)
    if found is None:
        raise Http404("No such thread.")
    thread = found.thread
    access = _access_from(user=user, course=thread.course, enrolment=found.enrolment)
    if thread.is_hidden and not access.is_staff:
        raise Http404("No such thread.")
    thread_access = ThreadAccess(
        access=access,
        thread=thread,
        user=user,
        answers_visible=access.is_staff or found.submitted_anchor,
    )
    if reply and not thread_access.can_reply:
        raise PermissionDenied(LOCKED)
    return thread_access


def thread_get_for_staff(*, user: User, thread_id: int) -> ThreadAccess:
    thread_access = thread_get_for_user(user=user, thread_id=thread_id)
    if not thread_access.is_staff:
        raise PermissionDenied(STAFF_ONLY)
    return thread_access


class PostAction:
    VIEW = "view"
    EDIT = "edit"
    LIKE = "like"
    ACCEPT = "accept"
    FLAG = "flag"
    QUOTE = "quote"
    HISTORY = "history"
    MODERATE = "moderate"


@dataclass(frozen=True)
class PostAccess:
    thread_access: ThreadAccess
    post: Post

    @property
    def thread(self) -> Thread:
        return self.thread_access.thread


def post_get_for_user(*, user: User, post_id: int, action: str = PostAction.VIEW) -> PostAccess:
    """A post and what ``user`` may do with it; raises 404/403 when ``action`` is not allowed."""
    try:
        post = Post.objects.defer("search_vector").select_related("author").get(pk=post_id)
    except Post.DoesNotExist:
        raise Http404("No such post.") from None
    thread_access = thread_get_for_user(user=user, thread_id=post.thread_id)
    post.thread = thread_access.thread
    is_own = post.author_id is not None and post.author_id == user.pk
    if action == PostAction.VIEW:
        return PostAccess(thread_access, post)
    if action == PostAction.MODERATE:
        if not thread_access.is_staff:
            raise PermissionDenied(STAFF_ONLY)
        return PostAccess(thread_access, post)
    if action == PostAction.EDIT:
        if not thread_access.can_edit(post):
            raise PermissionDenied(
                LOCKED if is_own else "Only the author and course staff may edit this post."
            )
        return PostAccess(thread_access, post)
    if not post_content_visible(post, thread_access):
        if post.is_hidden:
            raise Http404("No such post.")
        raise PermissionDenied("This post contains an answer: it shows once you have submitted.")
    if action == PostAction.ACCEPT and not thread_access.can_accept:
        raise PermissionDenied("Only the thread's author and course staff may accept an answer.")
    if action in (PostAction.LIKE, PostAction.FLAG) and is_own:
        raise PermissionDenied(f"You cannot {action} your own post.")
    return PostAccess(thread_access, post)


def flag_get_for_staff(*, user: User, flag_id: int) -> tuple[CourseAccess, Flag]:
    try:
        flag = Flag.objects.select_related("post__thread__course").get(pk=flag_id)
    except Flag.DoesNotExist:
        raise Http404("No such flag.") from None
    access = _member_access(user=user, course=flag.post.thread.course)
    if not access.is_staff:
        raise PermissionDenied(STAFF_ONLY)
    return access, flag


def notification_get_for_user(*, user: User, notification_id: int) -> Notification:
    """Notifications are their recipient's alone: anyone else's is a 404."""
    try:
        return Notification.objects.select_related("post").get(pk=notification_id, user=user)
    except Notification.DoesNotExist:
        raise Http404("No such notification.") from None


def submission_get_for_asking(*, user: User, submission_id: int) -> tuple[CourseAccess, Submission]:
    """Only a submission's own student may ask about it, once it has finished. Staff get a 403
    (it is not theirs to publish); other students a 404, as on the submission's page."""
    access, submission = grader_access.submission_get_for_user(
        user=user, submission_id=submission_id, write=True
    )
    if not submission.is_finished:
        raise PermissionDenied("Ask about a run once it has finished.")
    return access, submission


ANCHOR_KINDS = ("question", "assignment")


def anchor_get_for_user(
    *, user: User, course_slug: str, kind: str, anchor_id: int
) -> tuple[CourseAccess, Question | Assignment, Chapter]:
    """A question or assignment of the course, to discuss; with the chapter it belongs to."""
    access = forum_get_for_member(user=user, course_slug=course_slug)
    anchor: Question | Assignment | None
    if kind == "question":
        anchor = (
            Question.objects.select_related("questionnaire__chapter")
            .filter(pk=anchor_id, questionnaire__chapter__course=access.course)
            .first()
        )
        chapter = anchor.questionnaire.chapter if anchor else None
    elif kind == "assignment":
        anchor = (
            Assignment.objects.select_related("chapter")
            .filter(pk=anchor_id, chapter__course=access.course)
            .first()
        )
        chapter = anchor.chapter if anchor else None
    else:
        anchor, chapter = None, None
    if anchor is None or chapter is None:
        raise Http404("Nothing to discuss here.")
    return access, anchor, chapter


def moderation_get_for_staff(*, user: User, course_slug: str) -> CourseAccess:
    return forum_get_for_member(user=user, course_slug=course_slug, staff=True)
