"""The forum's fixtures: the shared cast, a chapter with a question and an assignment, and
helpers that write through the services (so posts are rendered and indexed as in real use)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.utils import timezone

from accounts.models import User
from courses.access import course_access_for_user
from courses.models import Chapter, Question
from forum import access, services
from forum.models import Category, Post, Thread
from grader.models import Assignment, RunStatus, Submission
from tests.factories import QuestionFactory
from tests.grader.factories import AssignmentFactory, SubmissionFactory

CRASH_LOG = (
    "loading the data\n"
    "Traceback (most recent call last):\n"
    '  File "/work/main.py", line 14, in <module>\n'
    "    model = train(x_train)\n"
    '  File "/work/main.py", line 9, in train\n'
    "    return x @ weights\n"
    "ValueError: matmul: Input operand 1 has a mismatch in its core dimension 0 (size 784 is "
    "different from 28)\n"
)


@pytest.fixture(autouse=True)
def _forum_settings(settings, tmp_path):
    # Rate limits have tests of their own; elsewhere the cast posts as often as a test needs.
    settings.FORUM_NEW_ACCOUNT_DAYS = 0
    settings.FORUM_POSTS_PER_MINUTE = 10_000
    settings.MEDIA_ROOT = tmp_path / "media"  # dataset files of the assignments
    settings.CELERY_TASK_ALWAYS_EAGER = False


@dataclass
class Place:
    chapter: Chapter
    category: Category
    question: Question
    assignment: Assignment


@pytest.fixture
def place(cast) -> Place:
    chapter = cast.questionnaire.chapter
    return Place(
        chapter=chapter,
        category=services.category_ensure(course=cast.course, chapter=chapter),
        question=QuestionFactory(questionnaire=cast.questionnaire, key="loss"),
        assignment=AssignmentFactory(chapter=chapter, slug="digits", title="Digits"),
    )


def start_thread(
    user: User,
    category: Category,
    *,
    title: str = "How do I pick a learning rate?",
    body: str = "I tried 0.1 and it diverges.",
    **kwargs: object,
) -> Thread:
    course_access = course_access_for_user(user=user, course_slug=category.course.slug)
    return services.thread_create(
        author=user,
        access=course_access,
        category=category,
        title=title,
        body=body,
        **kwargs,
    )


def reply_to(user: User, thread: Thread, body: str = "Try 1e-3.", **kwargs: object) -> Post:
    thread_access = access.thread_get_for_user(user=user, thread_id=thread.pk, reply=True)
    return services.post_reply_create(author=user, thread_access=thread_access, body=body, **kwargs)


def bulk_replies(thread: Thread, authors: list[User], count: int) -> None:
    """``count`` replies straight into the table, for tests of reading (not of writing)."""
    now = timezone.now()
    first = thread.post_count + 1
    Post.objects.bulk_create(
        Post(
            thread=thread,
            number=first + i,
            author=authors[i % len(authors)],
            body=f"Reply {first + i}",
            body_html=f"<p>Reply {first + i}</p>",
            created_at=now,
        )
        for i in range(count)
    )
    Thread.objects.filter(pk=thread.pk).update(post_count=first + count - 1)
    thread.refresh_from_db()


def failed_submission(
    user: User, assignment: Assignment, *, log: str = CRASH_LOG, **kw
) -> Submission:
    fields = {
        "status": RunStatus.FAILED,
        "failure_reason": "crashed",
        "message": "Your code stopped with an error.",
        "log": log,
        "device": "cpu",
        "finished_at": timezone.now(),
        "code": "SECRET_CODE = 'my own solution'\nprint('hello')\n",
    }
    fields.update(kw)
    return SubmissionFactory(user=user, assignment=assignment, **fields)
