"""Reviewing free-text answers with a rubric: the score, who may review, the queue's order."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from courses import selectors, services
from courses.models import Answer, Question, RubricItem
from tests.factories import EnrolmentFactory, QuestionFactory, UserFactory


@pytest.fixture
def essay_question(cast) -> Question:
    return QuestionFactory(
        questionnaire=cast.questionnaire,
        key="essay",
        kind=Question.Kind.FREE_TEXT,
        accepted_answers=[],
        reference_answer="Gradients flow **backwards**.",
        points=Decimal(2),
    )


@pytest.fixture
def rubric(essay_question) -> list[RubricItem]:
    return [
        RubricItem.objects.create(
            question=essay_question, position=0, text="Names the chain rule", points=Decimal(1)
        ),
        RubricItem.objects.create(
            question=essay_question, position=1, text="Gives an example", points=Decimal("0.5")
        ),
        RubricItem.objects.create(
            question=essay_question, position=2, text="Mentions vanishing gradients", points=1
        ),
    ]


def answer_from(user, questionnaire, question, text: str = "Backpropagation.") -> Answer:
    attempt = services.attempt_save(
        user=user,
        questionnaire=questionnaire,
        token=None,
        responses={question.id: text},
        submit=True,
    )
    return attempt.answers.get(question=question)


@pytest.fixture
def essay(cast, essay_question) -> Answer:
    return answer_from(cast.student, cast.questionnaire, essay_question)


def review_url(cast, answer: Answer) -> str:
    return reverse("answer_review", args=[cast.course.slug, answer.id])


# Scoring -------------------------------------------------------------------------------------


def test_the_ticked_items_points_make_the_score(cast, rubric, essay):
    services.answer_review(
        reviewer=cast.ta,
        answer=essay,
        rubric_item_ids=[rubric[1].id, rubric[0].id],
        feedback="Good, but no example of vanishing gradients.",
    )

    essay.refresh_from_db()
    assert essay.review_score == Decimal("1.5")
    assert essay.score == Decimal("1.5")
    assert essay.attempt.score == Decimal("1.5")
    assert [item["text"] for item in essay.review_rubric] == [
        "Names the chain rule",
        "Gives an example",
    ]


def test_the_score_is_capped_at_the_questions_points(cast, rubric, essay):
    services.answer_review(
        reviewer=cast.ta, answer=essay, rubric_item_ids=[i.id for i in rubric], feedback=""
    )

    essay.refresh_from_db()
    assert essay.review_score == Decimal(2)  # 2.5 ticked, 2 possible


def test_items_of_another_question_are_refused(cast, rubric, essay):
    other = QuestionFactory(questionnaire=cast.questionnaire, kind=Question.Kind.FREE_TEXT)
    foreign = RubricItem.objects.create(question=other, text="Elsewhere", points=2)

    with pytest.raises(services.CourseError, match="not part of this question's rubric"):
        services.answer_review(
            reviewer=cast.ta, answer=essay, rubric_item_ids=[rubric[0].id, foreign.id], feedback=""
        )

    essay.refresh_from_db()
    assert essay.review_score is None and essay.review_rubric == []


def test_the_page_refuses_an_item_of_another_question(client_for, cast, rubric, essay):
    other = QuestionFactory(questionnaire=cast.questionnaire, kind=Question.Kind.FREE_TEXT)
    foreign = RubricItem.objects.create(question=other, text="Elsewhere", points=2)

    response = client_for(cast.ta).post(review_url(cast, essay), {"rubric_items": [foreign.id]})

    assert response.status_code == 200
    essay.refresh_from_db()
    assert essay.review_score is None


def test_a_question_with_a_rubric_takes_no_typed_score(cast, rubric, essay):
    with pytest.raises(services.CourseError, match="scored by its rubric"):
        services.answer_review(reviewer=cast.ta, answer=essay, score=Decimal(2), feedback="")


def test_without_a_rubric_the_typed_score_still_counts(cast, essay):
    services.answer_review(reviewer=cast.ta, answer=essay, score=Decimal("1.25"), feedback="")

    essay.refresh_from_db()
    assert essay.review_score == Decimal("1.25") and essay.review_rubric == []


# Pages ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["ta", "instructor"])
def test_course_staff_review_with_the_rubric(client_for, cast, rubric, essay, role):
    reviewer = getattr(cast, role)

    response = client_for(reviewer).post(
        review_url(cast, essay), {"rubric_items": [rubric[2].id], "feedback": "Right idea."}
    )

    assert response.status_code == 302
    essay.refresh_from_db()
    assert (essay.review_score, essay.reviewed_by) == (Decimal(1), reviewer)


@pytest.mark.parametrize("who", ["student", "other_student", "outsider"])
def test_students_and_outsiders_cannot_review(client_for, cast, rubric, essay, who):
    client = client_for(getattr(cast, who))

    assert client.get(review_url(cast, essay)).status_code == 403
    response = client.post(review_url(cast, essay), {"rubric_items": [rubric[0].id]})

    assert response.status_code == 403
    essay.refresh_from_db()
    assert essay.review_score is None


def test_the_review_page_shows_the_rubric_with_its_keys(client_for, cast, rubric, essay):
    services.answer_review(
        reviewer=cast.ta, answer=essay, rubric_item_ids=[rubric[1].id], feedback=""
    )

    content = client_for(cast.ta).get(review_url(cast, essay)).content.decode()

    assert "Gradients flow <strong>backwards</strong>." in content  # the reference answer
    assert f'value="{rubric[1].id}" data-points="0.50" data-rubric-key="2" checked' in content
    assert f'value="{rubric[0].id}" data-points="1.00" data-rubric-key="1">' in content
    assert 'name="score"' not in content
    assert "js/review-keys.js" in content
    assert "<script>" not in content  # no inline script


def test_saving_opens_the_next_answer_in_the_reviewers_order(client_for, cast, rubric):
    for user in (cast.student, cast.other_student):
        answer_from(user, cast.questionnaire, rubric[0].question)
    first, second = selectors.review_queue(course=cast.course, reviewer=cast.ta)

    response = client_for(cast.ta).post(review_url(cast, first), {"rubric_items": []})
    assert response.url == review_url(cast, second)

    response = client_for(cast.ta).post(review_url(cast, second), {"rubric_items": []})
    assert response.url == reverse("review_queue", args=[cast.course.slug])


def test_the_student_sees_the_feedback_and_the_ticked_items(client_for, cast, rubric, essay):
    services.answer_review(
        reviewer=cast.ta,
        answer=essay,
        rubric_item_ids=[rubric[0].id, rubric[1].id],
        feedback="Add the vanishing-gradient problem.",
    )

    url = reverse("attempt_detail", args=[cast.course.slug, essay.attempt_id])
    content = client_for(cast.student).get(url).content.decode()

    assert "Add the vanishing-gradient problem." in content
    assert "Names the chain rule" in content and "(1 point)" in content
    assert "Gives an example" in content and "(0.50 points)" in content
    assert "Mentions vanishing gradients" not in content  # not ticked
    assert "1.50 / 2" in content


def test_review_page_query_count(client_for, cast, rubric, essay, django_assert_num_queries):
    client = client_for(cast.ta)
    # Session, user, enrolment, the answer with its attempt, the rubric.
    with django_assert_num_queries(5):
        response = client.get(review_url(cast, essay))
    assert response.status_code == 200


# Queue order ---------------------------------------------------------------------------------


@pytest.fixture
def many_essays(cast, essay_question) -> list[Answer]:
    # Twelve answers: two reviewers' orders agree by chance once in 12! (about 5e8).
    answers = []
    for n in range(12):
        student = UserFactory(username=f"learner-{n}")
        EnrolmentFactory(user=student, course=cast.course)
        answers.append(answer_from(student, cast.questionnaire, essay_question))
    return answers


def test_a_reviewer_sees_the_same_order_on_every_visit(cast, many_essays):
    first = list(selectors.review_queue(course=cast.course, reviewer=cast.ta))
    again = list(selectors.review_queue(course=cast.course, reviewer=cast.ta))

    assert first == again
    assert sorted(a.id for a in first) == sorted(a.id for a in many_essays)
    assert first != many_essays  # not the submission order


def test_two_reviewers_get_different_orders(cast, many_essays):
    for_ta = list(selectors.review_queue(course=cast.course, reviewer=cast.ta))
    for_instructor = list(selectors.review_queue(course=cast.course, reviewer=cast.instructor))

    assert for_ta != for_instructor
    assert set(for_ta) == set(for_instructor)


def test_the_queue_page_lists_answers_in_the_reviewers_order(client_for, cast, many_essays):
    expected = [a.id for a in selectors.review_queue(course=cast.course, reviewer=cast.ta)]

    content = client_for(cast.ta).get(reverse("review_queue", args=[cast.course.slug])).content
    text = content.decode()

    positions = [text.index(review_url(cast, Answer(id=i)) + '"') for i in expected]
    assert positions == sorted(positions)
