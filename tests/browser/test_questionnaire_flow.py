"""A real browser: the demo student logs in, answers a questionnaire, sees feedback and progress."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from courses.models import Attempt, Question
from courses.services import attempt_code_answers_grade
from tests.browser.conftest import shot

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# The demo's code question in chapter 1, answered as its explanation does.
ACCURACY = """def accuracy(predictions, labels):
    correct = sum(p == y for p, y in zip(predictions, labels))
    return correct / len(predictions)
"""


def progress_value(page, selector: str) -> int:
    return int(page.locator(selector).first.get_attribute("aria-valuenow"))


@pytest.mark.django_db(transaction=True)
def test_demo_student_answers_a_questionnaire_and_sees_progress_move(page, live_server):
    call_command("demo_load")
    base = live_server.url

    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=username]", "student")
    page.fill("input[name=password]", "topdown-demo")
    page.click("form button[type=submit]")
    page.goto(f"{base}/courses/practical-deep-learning/")
    shot(page, "1-course-before")
    before = progress_value(page, "[role=progressbar]")
    assert before == 0

    page.click("text=Train your first model")
    page.wait_for_selector("main")
    assert page.locator(".katex").count() > 0, "KaTeX did not render the chapter's maths"
    page.goto(f"{base}/courses/practical-deep-learning/chapters/first-model/questionnaire/")
    shot(page, "2-questionnaire")

    # Answer every question correctly, straight from the course's own answer key.
    for question in Question.objects.filter(questionnaire__chapter__slug="first-model"):
        name = f"q_{question.id}"
        if question.kind in ("single", "multiple"):
            for choice in question.choices.filter(is_correct=True):
                page.check(f"input[name={name}][value='{choice.id}']")
        elif question.kind == "true_false":
            value = "true" if question.correct_boolean else "false"
            page.check(f"input[name={name}][value={value}]")
        elif question.kind == "numeric":
            page.fill(f"input[name={name}]", repr(question.numeric_answer))
        elif question.kind == "short_text":
            page.fill(f"input[name={name}]", question.accepted_answers[0])
        elif question.kind == "code":
            page.fill(f"textarea[name={name}]", ACCURACY)
        else:
            page.fill(f"textarea[name={name}]", "My own explanation of the idea.")
    page.click("button[name=submit]")
    page.wait_for_url("**/attempts/**")

    attempt = Attempt.objects.get(user__username="student", status="submitted")
    questions = Question.objects.filter(questionnaire=attempt.questionnaire)
    auto_graded = questions.exclude(kind__in=["free_text", "code"])
    # No worker runs here: the code answer waits for its tests, and the page says so.
    assert attempt.score == sum(q.points for q in auto_graded)
    assert page.locator("text=Running your code…").count() > 0

    # What the worker would do: run the tests in the sandbox. The page stops refreshing.
    attempt_code_answers_grade(attempt_id=attempt.id)
    attempt.refresh_from_db()
    assert attempt.score == sum(q.points for q in questions.exclude(kind="free_text"))
    page.reload()
    page.wait_for_selector("text=Hidden tests: 2 of 2 passed")
    shot(page, "3-feedback")
    assert page.locator("text=Running your code…").count() == 0
    assert page.locator("text=Correct").count() > 0
    assert page.locator("text=reference answer").count() > 0

    page.goto(f"{base}/courses/practical-deep-learning/")
    shot(page, "4-course-after")
    assert progress_value(page, "[role=progressbar]") > before
