"""The Content-Security-Policy the site sends is one its pages satisfy: a real browser visits the
main pages as a student and as an instructor and fails on any violation it reports, in the
console or as a ``securitypolicyviolation`` event (maths typeset by KaTeX, the CodeMirror
editor, charts, code blocks and the live scripts included)."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse
from django.utils import timezone

from courses.models import Question, Role
from grader.models import RunStatus
from tests.browser.conftest import VIEWPORT, log_in
from tests.factories import (
    PASSWORD,
    ChapterFactory,
    CourseFactory,
    EnrolmentFactory,
    QuestionnaireFactory,
    UserFactory,
    choice_question,
)
from tests.forum.conftest import reply_to, start_thread
from tests.grader.factories import AssignmentFactory, BaselineFactory, SubmissionFactory
from topdown.csp import policy_header_value

pytestmark = [pytest.mark.browser, pytest.mark.slow]

MATHS = (
    "Gradient descent: $w \\leftarrow w - \\eta \\nabla L(w)$, with\n\n"
    "$$\\hat{y} = \\operatorname{softmax}(\\vec{x} W + b), \\quad "
    "\\sqrt{\\frac{1}{n}\\sum_{i=1}^{n} (y_i - \\hat{y}_i)^2}, \\quad \\widehat{xyz}, \\quad "
    "\\overrightarrow{AB}, \\quad \\underbrace{a+b}_{c}$$\n"
)
CODE = "```python\nfor x, y in batches:\n    loss = criterion(model(x), y)\n```\n"

# Collects violations from the moment a page starts, before any of its scripts run.
WATCH = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(
    `${event.violatedDirective} blocked ${event.blockedURI || "inline"} ` +
    `at ${event.sourceFile}:${event.lineNumber} (${event.sample})`
  );
});
"""


@pytest.fixture
def site(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.FORUM_NEW_ACCOUNT_DAYS = 0
    course = CourseFactory(slug="deep-learning", title="Deep Learning")
    chapter = ChapterFactory(course=course, slug="gradients", title="Gradients", body=MATHS + CODE)
    questionnaire = QuestionnaireFactory(chapter=chapter)
    choice_question(
        questionnaire, kind=Question.Kind.SINGLE, correct=[True, False], prompt="Is $x^2$ convex?"
    )
    student = UserFactory(username="ada", display_name="Ada")
    instructor = UserFactory(username="grace", display_name="Grace")
    EnrolmentFactory(user=student, course=course, role=Role.STUDENT)
    EnrolmentFactory(user=instructor, course=course, role=Role.INSTRUCTOR)
    assignment = AssignmentFactory(chapter=chapter, slug="digits", title="Digits")
    BaselineFactory(assignment=assignment, name="Majority class")
    submission = SubmissionFactory(
        user=student,
        assignment=assignment,
        scored=True,
        worker_id="cpu@test",
        started_at=timezone.now(),
        per_class=[
            {"class": name, "support": 4, "precision": 0.5, "recall": 0.5, "f1": 0.5}
            for name in ("0", "1", "2")
        ],
        confusion_matrix=[[2, 1, 1], [1, 2, 1], [1, 1, 2]],
        metrics=[{"step": step, "loss": 1 / (step + 1)} for step in range(20)],
        log="epoch 1 loss 0.5\n",
    )
    failed = SubmissionFactory(
        user=student,
        assignment=assignment,
        status=RunStatus.FAILED,
        failure_reason="crashed",
        message="It crashed.",
        finished_at=timezone.now(),
        log="Traceback (most recent call last):\nValueError: shapes\n",
    )
    from forum.services import category_ensure

    category = category_ensure(course=course, chapter=chapter)
    thread = start_thread(student, category, title="Why the square root?", body=MATHS + CODE)
    reply_to(instructor, thread, body="Look at $\\sqrt{x}$ near zero:\n\n" + CODE)
    return {
        "course": course,
        "chapter": chapter,
        "assignment": assignment,
        "submission": submission,
        "failed": failed,
        "thread": thread,
        "student": student,
        "instructor": instructor,
    }


def student_pages(site) -> list[str]:
    course, chapter, assignment = site["course"], site["chapter"], site["assignment"]
    return [
        reverse("home"),
        reverse("course_detail", args=[course.slug]),
        reverse("chapter_detail", args=[course.slug, chapter.slug]),
        reverse("questionnaire_detail", args=[course.slug, chapter.slug]),
        reverse("assignment_detail", args=[assignment.slug]),
        reverse("submission_detail", args=[site["submission"].pk]),
        reverse("submission_detail", args=[site["failed"].pk]),
        reverse("assignment_leaderboard", args=[assignment.slug]),
        reverse("assignment_history", args=[assignment.slug]),
        reverse("forum:thread_detail", args=[site["thread"].pk]),
        reverse("forum:index", args=[course.slug]),
    ]


def instructor_pages(site) -> list[str]:
    course, assignment = site["course"], site["assignment"]
    return [
        reverse("course_detail", args=[course.slug]),
        reverse("assignment_submissions", args=[assignment.slug]),
        reverse("submission_detail", args=[site["submission"].pk]),
        reverse("class_progress", args=[course.slug]),
        reverse("gradebook", args=[course.slug]),
        reverse("grader_queue"),
        reverse("forum:thread_detail", args=[site["thread"].pk]),
        # the authoring pages: markdown previews and code editors
        reverse("course_authoring", args=[course.slug]),
        reverse("course_settings", args=[course.slug]),
        reverse("chapter_edit", args=[course.slug, site["chapter"].slug]),
        reverse("questionnaire_edit", args=[course.slug, site["chapter"].slug]),
        reverse("question_create", args=[course.slug, site["chapter"].slug]) + "?kind=code",
        reverse("assignment_edit", args=[assignment.slug]),
        reverse("course_datasets", args=[course.slug]),
        reverse("dataset_upload", args=[course.slug]),
        reverse("course_folder", args=[course.slug]),
        reverse("notebooks_import", args=[course.slug]),
        reverse("review_queue", args=[course.slug]),
    ]


def admin_pages(site) -> list[str]:
    return [
        reverse("admin:index"),
        reverse("admin:grader_assignment_changelist") + "?needs_gpu__exact=0",
        reverse("admin:grader_assignment_change", args=[site["assignment"].pk]),
        reverse("admin:courses_chapter_change", args=[site["chapter"].pk]),
        reverse("admin:accounts_user_changelist"),
    ]


def without_nonce(policy: str) -> str:
    return re.sub(r"'nonce-[^']+'", "'nonce'", policy)


def violations_on(browser, base: str, username: str, paths: list[str]) -> list[str]:
    context = browser.new_context(viewport=VIEWPORT)
    context.add_init_script(WATCH)
    page = context.new_page()
    console: list[str] = []
    page.on(
        "console",
        lambda message: (
            console.append(f"{page.url}: {message.text}")
            if "Content Security Policy" in message.text
            else None
        ),
    )
    log_in(page, base, username, PASSWORD)
    found: list[str] = []
    try:
        for path in paths:
            response = page.goto(base + path)
            assert response is not None and response.status == 200, f"{path}: {response.status}"
            header = response.headers.get("content-security-policy", "")
            assert without_nonce(header) == without_nonce(policy_header_value(nonce="n")), path
            page.wait_for_load_state("networkidle")
            page.wait_for_timeout(300)  # deferred scripts: KaTeX, the editor, charts
            found += [f"{path}: {v}" for v in page.evaluate("window.__cspViolations")]
    finally:
        context.close()
    return found + console


@pytest.mark.django_db(transaction=True)
def test_student_pages_satisfy_the_content_security_policy(browser, live_server, site):
    found = violations_on(browser, live_server.url, "ada", student_pages(site))

    assert not found, "\n".join(found)


@pytest.mark.django_db(transaction=True)
def test_instructor_pages_satisfy_the_content_security_policy(browser, live_server, site):
    found = violations_on(browser, live_server.url, "grace", instructor_pages(site))

    assert not found, "\n".join(found)


@pytest.mark.django_db(transaction=True)
def test_admin_pages_satisfy_the_content_security_policy(browser, live_server, site):
    UserFactory(username="root", is_staff=True, is_superuser=True)

    found = violations_on(browser, live_server.url, "root", admin_pages(site))

    assert not found, "\n".join(found)


@pytest.mark.django_db(transaction=True)
def test_maths_is_typeset_under_the_policy(browser, live_server, site):
    page = browser.new_context(viewport=VIEWPORT).new_page()
    log_in(page, live_server.url, "ada", PASSWORD)
    course, chapter = site["course"], site["chapter"]

    page.goto(live_server.url + reverse("chapter_detail", args=[course.slug, chapter.slug]))
    page.wait_for_selector(".katex")

    assert page.locator(".katex").count() >= 2
    assert page.locator(".katex-error").count() == 0


@pytest.mark.django_db(transaction=True)
def test_the_policy_blocks_an_inline_script(browser, live_server, site):
    # The test has teeth: an inline script on one of our pages is reported and does not run.
    context = browser.new_context(viewport=VIEWPORT)
    context.add_init_script(WATCH)
    page = context.new_page()
    page.goto(live_server.url + reverse("login"))
    page.evaluate(
        "() => { const s = document.createElement('script');"
        " s.textContent = 'window.__ran = true'; document.body.appendChild(s); }"
    )
    page.wait_for_timeout(200)

    assert page.evaluate("window.__ran === undefined")
    assert any("script-src" in v for v in page.evaluate("window.__cspViolations"))
