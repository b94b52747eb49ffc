"""A real browser on the forum: a student asks with code and maths, a classmate answers, the
asker accepts and the classmate's bell lights up; a student asks about a failed run in one click
from its page. Screenshots go to test-artifacts/browser/forum-*.png."""

from __future__ import annotations

import pytest
from django.utils import timezone

from courses.models import Role
from forum.models import Notification, SubmissionReport, Thread
from grader.models import RunStatus
from tests.browser.conftest import VIEWPORT, log_in
from tests.browser.conftest import shot as browser_shot
from tests.factories import PASSWORD, ChapterFactory, CourseFactory, EnrolmentFactory, UserFactory
from tests.forum.conftest import CRASH_LOG
from tests.grader.factories import AssignmentFactory, SubmissionFactory

pytestmark = [pytest.mark.browser, pytest.mark.slow]

QUESTION = (
    "My loss goes up instead of down. The update is $w \\leftarrow w - \\eta \\nabla L$ and:\n\n"
    "```python\nfor x, y in batches:\n    loss = criterion(model(x), y)\n    loss.backward()\n"
    "    optimizer.step()\n```\n\nWhat am I missing?"
)
ANSWER = "You never call `optimizer.zero_grad()`, so gradients add up from batch to batch."


@pytest.fixture
def classroom(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.FORUM_NEW_ACCOUNT_DAYS = 0
    course = CourseFactory(slug="deep-learning", title="Deep Learning")
    chapter = ChapterFactory(course=course, slug="training", title="Training loops")
    people = {}
    for username, role in (("ada", Role.STUDENT), ("grace", Role.STUDENT)):
        people[username] = UserFactory(username=username, display_name=username.title())
        EnrolmentFactory(user=people[username], course=course, role=role)
    return course, chapter, people


def logged_in(browser, live_server, username: str):
    """A browser context of its own for each person: two people, two sets of cookies."""
    page = browser.new_context(viewport=VIEWPORT).new_page()
    log_in(page, live_server.url, username, PASSWORD)
    return page


def shot(page, name: str) -> None:
    browser_shot(page, f"forum-{name}")


@pytest.mark.django_db(transaction=True)
def test_ask_answer_accept_and_the_answerer_is_notified(browser, live_server, classroom):
    course, chapter, _ = classroom
    ada = logged_in(browser, live_server, "ada")
    ada.goto(f"{live_server.url}/courses/{course.slug}/")
    ada.click("text=Course forum")
    ada.click(f"a.item-title:has-text('{chapter.title}')")
    ada.click("text=New thread")
    ada.fill("input[name=title]", "Loss goes up every epoch")
    ada.fill("textarea[name=body]", QUESTION)
    ada.click("button:has-text('Post the thread')")
    ada.wait_for_selector("h1:has-text('Loss goes up every epoch')")
    ada.wait_for_selector(".post-body .katex")
    assert ada.locator(".post-body pre.highlight").count() == 1
    assert "optimizer.step()" in ada.inner_text(".post-body pre.highlight")
    shot(ada, "1-question")
    thread_url = ada.url

    grace = logged_in(browser, live_server, "grace")
    grace.goto(thread_url)
    grace.fill("textarea[name=body]", ANSWER)
    grace.click("button:has-text('Post reply')")
    grace.wait_for_selector("#post-2")
    shot(grace, "2-answer")

    ada.goto(thread_url)
    assert ada.locator("#post-2 .badge:has-text('New')").count() == 1
    ada.click("#post-2 button:has-text('Accept as the answer')")
    ada.wait_for_selector("#post-2 .badge:has-text('Accepted answer')")
    shot(ada, "3-accepted")

    grace.goto(f"{live_server.url}/courses/{course.slug}/forum/chapters/{chapter.slug}/")
    assert grace.locator(".thread-list .badge-correct:has-text('Answered')").count() == 1
    shot(grace, "3b-category")
    grace.goto(f"{live_server.url}/")
    grace.wait_for_selector("[data-notification-count]:not([hidden])")
    assert grace.inner_text("[data-notification-count]") == "1"
    grace.click("[data-notification-bell]")
    grace.wait_for_selector("text=Ada accepted your answer: Loss goes up every epoch")
    shot(grace, "4-notified")
    grace.click("text=Ada accepted your answer")
    grace.wait_for_selector("#post-2")
    assert Notification.objects.get(user__username="grace").read_at is not None
    grace.context.close()
    ada.context.close()


@pytest.mark.django_db(transaction=True)
def test_a_student_asks_about_a_failed_run_in_one_click(browser, live_server, classroom):
    _, chapter, people = classroom
    assignment = AssignmentFactory(chapter=chapter, slug="digits", title="Digits")
    submission = SubmissionFactory(
        user=people["ada"],
        assignment=assignment,
        status=RunStatus.FAILED,
        failure_reason="crashed",
        message="Your code stopped with an error.",
        log=CRASH_LOG,
        device="cuda:0 (H100)",
        finished_at=timezone.now(),
        code="MY_PRIVATE_SOLUTION = 1\n",
    )
    ada = logged_in(browser, live_server, "ada")
    ada.goto(f"{live_server.url}/submissions/{submission.pk}/")
    shot(ada, "5-failed-run")

    ada.click("text=Ask on the forum")

    assert ada.input_value("input[name=title]") == "ValueError in Digits"
    assert "The error is attached below" in ada.input_value("textarea[name=body]")
    assert "ValueError: matmul" in ada.inner_text(".run-error")
    shot(ada, "6-prefilled")
    ada.click("button:has-text('Post your question')")
    ada.wait_for_selector("h1:has-text('ValueError in Digits')")
    ada.click(".run-error summary")
    assert "cuda:0 (H100)" in ada.inner_text(".run-error")
    assert "MY_PRIVATE_SOLUTION" not in ada.content()
    shot(ada, "7-asked")
    thread = Thread.objects.get()
    assert thread.assignment == assignment and thread.error_signature
    assert SubmissionReport.objects.get().submission == submission
    ada.context.close()
