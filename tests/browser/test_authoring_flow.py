"""A real browser: an instructor builds a chapter with three question types and an assignment,
previews it as a student (answering does not count), and publishes it for the students."""

from __future__ import annotations

import pytest

from courses.models import Attempt, Chapter, Question, Role
from grader.models import Assignment
from tests.browser.conftest import VIEWPORT, log_in, shot
from tests.factories import PASSWORD, CourseFactory, EnrolmentFactory, UserFactory
from tests.grader.factories import DatasetFactory

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def add_question(page, base: str, course: str, chapter: str, kind: str, fill) -> None:
    page.goto(f"{base}/courses/{course}/chapters/{chapter}/questionnaire/edit/")
    page.check(f"input[name=kind][value={kind}]")
    page.click("form.kind-picker button[type=submit]")
    fill(page)
    page.click("form.question-builder button[type=submit]")
    page.wait_for_selector(".alert-success, .messages")
    assert not page.locator(".errorlist").count(), page.content()


@pytest.mark.django_db(transaction=True)
def test_an_instructor_builds_previews_and_publishes_a_chapter(browser, live_server):
    course = CourseFactory(slug="authoring", title="Authoring course")
    instructor = UserFactory(username="author")
    student = UserFactory(username="reader")
    EnrolmentFactory(user=instructor, course=course, role=Role.INSTRUCTOR)
    EnrolmentFactory(user=student, course=course, role=Role.STUDENT)
    dataset = DatasetFactory(slug="tiny-digits", name="Tiny digits")
    base = live_server.url

    page = browser.new_context(viewport=VIEWPORT).new_page()
    page.set_default_timeout(10_000)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    # Every authoring page must satisfy the Content-Security-Policy the site sends.
    page.on(
        "console",
        lambda message: (
            errors.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    log_in(page, base, instructor.username, PASSWORD)

    # A new chapter, with the live preview rendering the markdown as it is typed
    page.goto(f"{base}/courses/{course.slug}/edit/")
    page.click("text=New chapter")
    page.fill("input[name=title]", "Gradient descent")
    page.fill("input[name=slug]", "gradient-descent")
    page.fill(
        "textarea[name=body]", "## Steps downhill\n\nThe update is $w \\leftarrow w - \\eta g$."
    )
    page.wait_for_selector("#body-preview h2")
    page.wait_for_selector("#body-preview .katex")  # the preview typesets the maths too
    page.click("button:has-text('Create chapter')")
    page.wait_for_url("**/chapters/gradient-descent/edit/")
    chapter = Chapter.objects.get(course=course, slug="gradient-descent")
    assert not chapter.published  # new chapters start as drafts

    # Its questionnaire with three kinds of question
    page.goto(f"{base}/courses/{course.slug}/chapters/{chapter.slug}/questionnaire/edit/")
    page.click("form.settings-grid button[type=submit]")
    page.wait_for_selector("form.kind-picker")

    def single(p):
        p.fill("input[name=key]", "direction")
        p.fill("textarea[name=prompt]", "Which way does a step go?")
        p.fill("textarea[name=choices-0-text]", "Against the gradient")
        p.check("input[name=choices-0-is_correct]")
        p.fill("textarea[name=choices-1-text]", "Along the gradient")

    def numeric(p):
        p.fill("input[name=key]", "step-size")
        p.fill("textarea[name=prompt]", "With $w=1$, $g=2$, $\\eta=0.1$, what is the new $w$?")
        p.fill("input[name=numeric_answer]", "0.8")
        p.fill("input[name=tolerance]", "0.001")

    def short_text(p):
        p.fill("input[name=key]", "name-of-eta")
        p.fill("textarea[name=prompt]", "What is $\\eta$ called?")
        p.fill("textarea[name=accepted_answers]", "learning rate\nstep size")

    add_question(page, base, course.slug, chapter.slug, "single", single)
    add_question(page, base, course.slug, chapter.slug, "numeric", numeric)
    add_question(page, base, course.slug, chapter.slug, "short_text", short_text)
    kinds = list(chapter.questionnaire.questions.values_list("kind", flat=True))
    assert kinds == [Question.Kind.SINGLE, Question.Kind.NUMERIC, Question.Kind.SHORT_TEXT]
    shot(page, "authoring-questionnaire-builder")
    # A code question's fields become CodeMirror editors, within the policy
    page.goto(
        f"{base}/courses/{course.slug}/chapters/{chapter.slug}/questionnaire/questions/new/?kind=code"
    )
    page.wait_for_selector(".cm-editor")

    # An assignment on the dataset, with a baseline
    page.goto(f"{base}/courses/{course.slug}/chapters/{chapter.slug}/")
    page.click("text=New assignment")
    page.fill("input[name=title]", "Descend on digits")
    page.fill("input[name=slug]", "descend-on-digits")
    page.click("button:has-text('Create the draft')")
    page.wait_for_url("**/assignments/descend-on-digits/edit/")
    page.select_option("select[name=dataset]", str(dataset.pk))
    page.fill("input[name=submissions_per_day]", "3")
    page.click("form.editor-form button[type=submit]")
    page.wait_for_selector(".alert-success, .messages")
    assignment = Assignment.objects.get(slug="descend-on-digits")
    assert assignment.dataset_id == dataset.pk and not assignment.published
    shot(page, "authoring-assignment-editor")

    # Preview as a student: the student's pages, with drafts, and answers that do not count
    page.goto(f"{base}/courses/{course.slug}/")
    page.click("form[action$='/preview/'] button")
    page.wait_for_selector("text=previewing")
    page.goto(f"{base}/courses/{course.slug}/chapters/{chapter.slug}/")
    assert page.locator("text=Edit chapter").count() == 0  # no staff links while previewing
    assert page.locator("text=Descend on digits").count() >= 1  # the draft assignment is there
    page.goto(f"{base}/courses/{course.slug}/chapters/{chapter.slug}/questionnaire/")
    page.check("text=Against the gradient")
    page.fill(f"input[name=q_{chapter.questionnaire.questions.get(key='step-size').pk}]", "0.8")
    page.fill(
        f"input[name=q_{chapter.questionnaire.questions.get(key='name-of-eta').pk}]",
        "Learning rate",
    )
    page.click("button[name=submit]")
    page.wait_for_url("**/attempts/*/")
    shot(page, "authoring-preview-attempt")
    attempt = Attempt.objects.get(questionnaire=chapter.questionnaire, user=instructor)
    assert attempt.score == attempt.max_score == 3
    page.goto(f"{base}/courses/{course.slug}/chapters/{chapter.slug}/questionnaire/stats/")
    summary = " ".join(page.inner_text("main").split())
    assert "0 students submitted 0 attempts" in summary, summary

    # The student cannot see the draft yet
    reader = browser.new_context(viewport=VIEWPORT).new_page()
    log_in(reader, base, student.username, PASSWORD)
    response = reader.goto(f"{base}/courses/{course.slug}/chapters/{chapter.slug}/")
    assert response.status == 404

    # Stop previewing, publish the chapter and the assignment
    page.goto(f"{base}/courses/{course.slug}/edit/")
    page.click("text=Stop preview")
    page.goto(f"{base}/courses/{course.slug}/edit/")
    page.click(f"#chapter-{chapter.pk} button:has-text('Publish')")
    page.wait_for_selector(f"#chapter-{chapter.pk} .badge-success")
    page.goto(f"{base}/assignments/{assignment.slug}/edit/")
    page.click("form[action$='/publish/'] button:has-text('Publish')")
    page.wait_for_selector("text=Unpublish")
    chapter.refresh_from_db()
    assignment.refresh_from_db()
    assert chapter.published and assignment.published

    # Now the student sees both
    response = reader.goto(f"{base}/courses/{course.slug}/chapters/{chapter.slug}/")
    assert response.status == 200
    reader.click("text=Descend on digits")
    reader.wait_for_selector("text=Submit")
    shot(reader, "authoring-published-for-student")
    assert not errors, errors
