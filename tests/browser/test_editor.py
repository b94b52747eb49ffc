"""A real browser: the assignment page's code editor, its draft, and submitting from it."""

from __future__ import annotations

import pytest

from courses.models import Role
from grader.models import Submission
from tests.browser.conftest import ARTIFACTS, log_in
from tests.factories import PASSWORD, ChapterFactory, EnrolmentFactory, UserFactory
from tests.grader.factories import AssignmentFactory

pytestmark = [pytest.mark.browser, pytest.mark.slow]

STARTER = "import topdown_task as tt\n\nx_train, y_train = tt.load('train')\n"


def editor_text(page) -> str:
    return page.evaluate(
        "() => Array.from(document.querySelectorAll('.editor-form .cm-line'))"
        ".map((line) => line.textContent).join('\\n')"
    )


@pytest.mark.django_db(transaction=True)
def test_the_editor_keeps_a_draft_and_submits_it(browser, live_server):
    student = UserFactory(username="editor-student")
    chapter = ChapterFactory()
    EnrolmentFactory(user=student, course=chapter.course, role=Role.STUDENT)
    assignment = AssignmentFactory(chapter=chapter, starter_code=STARTER)
    base = live_server.url
    page_url = f"{base}/assignments/{assignment.slug}/"

    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    log_in(page, base, student.username, PASSWORD)

    # The editor replaces the textarea, starts from the starter code and highlights Python.
    page.goto(page_url)
    page.wait_for_selector(".editor-form .cm-editor")
    assert page.locator("textarea[data-code-editor]").is_hidden()
    assert editor_text(page) == STARTER
    keyword = page.locator(".editor-form .cm-line span", has_text="import").first
    colour = keyword.evaluate("(node) => getComputedStyle(node).color")
    plain = page.locator(".editor-form .cm-content").evaluate(
        "(node) => getComputedStyle(node).color"
    )
    assert colour != plain, "the keyword 'import' is not highlighted"

    # A change is kept as a draft in this browser and is back after a reload.
    page.click(".editor-form .cm-content")
    page.keyboard.press("Control+End")
    page.keyboard.type("print('draft kept')")
    page.wait_for_selector("text=Draft saved in this browser.")
    page.reload()
    page.wait_for_selector(".editor-form .cm-editor")
    page.wait_for_selector("text=Your draft from this browser was restored.")
    assert editor_text(page).endswith("print('draft kept')")

    # "Reset to starter code" asks first, then brings the starter code back.
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("text=Reset to starter code")
    assert editor_text(page) == STARTER
    page.reload()
    page.wait_for_selector(".editor-form .cm-editor")
    assert editor_text(page) == STARTER

    # Submitting posts the editor's code through the same path as an upload.
    page.click(".editor-form .cm-content")
    page.keyboard.press("Control+End")
    page.keyboard.type("print('from the editor')")
    page.screenshot(path=str(ARTIFACTS / "editor-1-draft.png"), full_page=True)
    page.click("text=Submit code for grading")
    page.wait_for_url("**/submissions/**")
    submission = Submission.objects.get(user=student)
    assert page.url.endswith(f"/submissions/{submission.pk}/")
    assert submission.filename == "editor.py"
    assert submission.code == STARTER + "print('from the editor')"
    page.screenshot(path=str(ARTIFACTS / "editor-2-submitted.png"), full_page=True)
    assert errors == []
    context.close()

    # Without JavaScript the same form is a plain textarea holding the starter code.
    plain_context = browser.new_context(java_script_enabled=False)
    plain_page = plain_context.new_page()
    log_in(plain_page, base, student.username, PASSWORD)
    plain_page.goto(page_url)
    assert plain_page.locator(".cm-editor").count() == 0
    assert plain_page.locator("textarea[data-code-editor]").input_value() == STARTER
    plain_page.fill("textarea[data-code-editor]", "print('no script')\n")
    plain_page.click("text=Submit code for grading")
    plain_page.wait_for_url("**/submissions/**")
    assert Submission.objects.filter(user=student, code="print('no script')\n").exists()
    plain_context.close()
