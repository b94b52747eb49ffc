"""A real browser: a TA reviews free-text answers with the keyboard (1-9 and Ctrl+Enter)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from courses import selectors, services
from courses.models import Answer, Question, Role, RubricItem
from tests.browser.conftest import VIEWPORT, log_in, shot
from tests.factories import (
    PASSWORD,
    EnrolmentFactory,
    QuestionFactory,
    QuestionnaireFactory,
    UserFactory,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.mark.django_db(transaction=True)
def test_a_ta_ticks_the_rubric_with_number_keys_and_saves_with_ctrl_enter(browser, live_server):
    questionnaire = QuestionnaireFactory()
    course = questionnaire.chapter.course
    question = QuestionFactory(
        questionnaire=questionnaire,
        key="essay",
        kind=Question.Kind.FREE_TEXT,
        accepted_answers=[],
        reference_answer="Gradients flow backwards.",
        points=Decimal(2),
    )
    items = [
        RubricItem.objects.create(question=question, position=i, text=text, points=points)
        for i, (text, points) in enumerate(
            [("Names the chain rule", Decimal(1)), ("Gives an example", Decimal("0.5"))]
        )
    ]
    ta = UserFactory(username="keys-ta")
    EnrolmentFactory(user=ta, course=course, role=Role.TA)
    for name in ("keys-a", "keys-b"):
        student = UserFactory(username=name)
        EnrolmentFactory(user=student, course=course, role=Role.STUDENT)
        services.attempt_save(
            user=student,
            questionnaire=questionnaire,
            token=None,
            responses={question.id: "Backpropagation uses the chain rule."},
            submit=True,
        )
    first, second = selectors.review_queue(course=course, reviewer=ta)

    page = browser.new_context(viewport=VIEWPORT).new_page()
    log_in(page, live_server.url, ta.username, PASSWORD)
    page.goto(f"{live_server.url}/courses/{course.slug}/review/{first.pk}/")
    page.wait_for_selector("[data-review-keys-hint]:not([hidden])")  # the script is running
    page.keyboard.press("1")
    page.keyboard.press("2")
    assert page.locator("[data-rubric-score]").inner_text() == "1.5"
    page.keyboard.press("2")  # untick
    assert page.locator("[data-rubric-score]").inner_text() == "1"
    page.fill("textarea[name=feedback]", "Good; now show it on ")
    page.keyboard.type("2 layers.")  # in the feedback box, a digit is text, not a tick
    assert page.locator("[data-rubric-score]").inner_text() == "1"
    shot(page, "review-keys")
    page.keyboard.press("Control+Enter")
    page.wait_for_url(f"**/review/{second.pk}/")

    first = Answer.objects.get(pk=first.pk)
    assert first.review_score == Decimal(1)
    assert first.review_feedback == "Good; now show it on 2 layers."
    assert [item["id"] for item in first.review_rubric] == [items[0].id]
