"""A post that gives away an answer stays hidden from whoever has not yet submitted the question
(a submitted attempt with an answer to it) or the assignment (a submission)."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from courses.models import Answer, Attempt
from forum.rules import PostRefused
from tests.forum.conftest import reply_to, start_thread
from tests.grader.factories import SubmissionFactory

pytestmark = pytest.mark.django_db

ANSWER = "The answer is forty two, because the loss is convex."


def attempt(user, questionnaire, question, *, submitted: bool):
    made = Attempt.objects.create(
        questionnaire=questionnaire,
        user=user,
        number=Attempt.objects.filter(user=user, questionnaire=questionnaire).count() + 1,
        status=Attempt.Status.SUBMITTED if submitted else Attempt.Status.DRAFT,
        submitted_at=timezone.now() if submitted else None,
    )
    Answer.objects.create(attempt=made, question=question, response="forty two")
    return made


@pytest.fixture
def question_thread(cast, place):
    thread = start_thread(cast.student, place.category, question=place.question)
    reply_to(cast.ta, thread, ANSWER, contains_answer=True)
    return thread


def page_of(client, thread) -> bytes:
    return client.get(reverse("forum:thread_detail", args=[thread.pk])).content


def test_an_answer_is_hidden_from_a_student_who_has_not_submitted(
    client_for, cast, question_thread
):
    content = page_of(client_for(cast.other_student), question_thread)

    assert ANSWER.encode() not in content
    assert b"It shows once you have submitted this question" in content


def test_a_draft_does_not_count_as_submitting(client_for, cast, place, question_thread):
    attempt(cast.other_student, cast.questionnaire, place.question, submitted=False)

    assert ANSWER.encode() not in page_of(client_for(cast.other_student), question_thread)


def test_the_answer_shows_once_the_question_is_submitted(client_for, cast, place, question_thread):
    attempt(cast.other_student, cast.questionnaire, place.question, submitted=True)

    assert ANSWER.encode() in page_of(client_for(cast.other_student), question_thread)


def test_submitting_another_question_does_not_reveal_it(client_for, cast, place, question_thread):
    from tests.factories import QuestionFactory

    other_question = QuestionFactory(questionnaire=cast.questionnaire, key="other")
    attempt(cast.other_student, cast.questionnaire, other_question, submitted=True)

    assert ANSWER.encode() not in page_of(client_for(cast.other_student), question_thread)


def test_staff_and_the_author_always_see_it(client_for, cast, question_thread):
    assert ANSWER.encode() in page_of(client_for(cast.instructor), question_thread)
    assert ANSWER.encode() in page_of(client_for(cast.ta), question_thread)


def test_a_student_after_staff_in_the_same_process_still_does_not_see_it(
    client_for, cast, question_thread
):
    # Posts are drawn once per process for each distinct context (topdown.fragments): what staff
    # were shown must not be what a student is shown next.
    assert ANSWER.encode() in page_of(client_for(cast.ta), question_thread)

    content = page_of(client_for(cast.other_student), question_thread)

    assert ANSWER.encode() not in content
    assert b"It shows once you have submitted this question" in content


def test_an_assignment_answer_shows_after_a_submission(client_for, cast, place):
    thread = start_thread(cast.student, place.category, assignment=place.assignment)
    reply_to(cast.ta, thread, ANSWER, contains_answer=True)
    client = client_for(cast.other_student)
    assert ANSWER.encode() not in page_of(client, thread)

    SubmissionFactory(user=cast.other_student, assignment=place.assignment)

    assert ANSWER.encode() in page_of(client, thread)


def test_hidden_answers_stay_out_of_search_quotes_and_history(client_for, cast, question_thread):
    answer_post = question_thread.posts.get(number=2)
    client = client_for(cast.other_student)

    search = client.get(reverse("forum:search", args=[cast.course.slug]), {"q": "forty two"})
    quote = client.get(
        reverse("forum:thread_reply", args=[question_thread.pk]) + f"?quote={answer_post.pk}"
    )
    history = client.get(reverse("forum:post_history", args=[answer_post.pk]))

    assert b"Nothing found" in search.content and b"convex" not in search.content
    assert quote.status_code == 403 and b"convex" not in quote.content
    assert history.status_code == 403


def test_quoting_an_answer_marks_the_reply_as_an_answer_too(
    client_for, cast, place, question_thread
):
    attempt(cast.other_student, cast.questionnaire, place.question, submitted=True)
    answer_post = question_thread.posts.get(number=2)

    page = client_for(cast.other_student).get(
        reverse("forum:thread_reply", args=[question_thread.pk]) + f"?quote={answer_post.pk}"
    )

    assert b'id="id_contains_answer" checked' in page.content


def test_only_threads_about_a_question_or_an_assignment_can_hide_answers(cast, place):
    thread = start_thread(cast.student, place.category)

    with pytest.raises(PostRefused, match="about a question or an assignment"):
        reply_to(cast.other_student, thread, ANSWER, contains_answer=True)


def test_staff_can_mark_a_students_post_as_an_answer(client_for, cast, question_thread):
    leak = reply_to(cast.student, question_thread, "It is forty two, I checked.")

    client_for(cast.ta).post(
        reverse("forum:post_moderate", args=[leak.pk]), {"action": "mark_answer"}
    )

    assert b"I checked" not in page_of(client_for(cast.other_student), question_thread)


def test_search_finds_an_answer_once_it_may_be_read(client_for, cast, place, question_thread):
    client = client_for(cast.other_student)
    url = reverse("forum:search", args=[cast.course.slug])
    assert b"Nothing found" in client.get(url, {"q": "convex"}).content

    attempt(cast.other_student, cast.questionnaire, place.question, submitted=True)

    assert b"<mark>convex</mark>" in client.get(url, {"q": "convex"}).content
