"""The course pages as users meet them: who may see what, and what bad input does."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from courses.models import Answer, Attempt, Course, Enrolment, Question
from tests.factories import (
    ChapterFactory,
    CourseFactory,
    QuestionFactory,
    QuestionnaireFactory,
    UserFactory,
    choice_question,
)


@pytest.fixture
def quiz(cast):
    q = cast.questionnaire
    single = choice_question(q, kind="single", correct=[False, True], key="single", position=0)
    numeric = QuestionFactory(
        questionnaire=q,
        key="numeric",
        kind=Question.Kind.NUMERIC,
        numeric_answer=784,
        accepted_answers=[],
        position=1,
    )
    essay = QuestionFactory(
        questionnaire=q,
        key="essay",
        kind=Question.Kind.FREE_TEXT,
        accepted_answers=[],
        reference_answer="The **reference**.",
        position=2,
    )
    return q, single, numeric, essay


def urls(cast):
    course = cast.course.slug
    chapter = cast.questionnaire.chapter.slug
    return {
        "chapter": reverse("chapter_detail", args=[course, chapter]),
        "questionnaire": reverse("questionnaire_detail", args=[course, chapter]),
        "progress": reverse("class_progress", args=[course]),
        "review": reverse("review_queue", args=[course]),
        "course": reverse("course_detail", args=[course]),
    }


def submit(client: Client, url: str, data: dict, *, action: str = "submit"):
    return client.post(url, {**data, action: "1"})


# Permissions -------------------------------------------------------------------------------


@pytest.mark.parametrize("page", ["chapter", "questionnaire", "progress", "review"])
def test_anonymous_visitors_are_sent_to_log_in(client, cast, page):
    response = client.get(urls(cast)[page])
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


@pytest.mark.parametrize("page", ["chapter", "questionnaire", "progress", "review"])
def test_the_outsider_is_refused_course_content(client_for, cast, page):
    response = client_for(cast.outsider).get(urls(cast)[page])
    assert response.status_code == 403
    assert b"Enrol in this course" in response.content


def test_the_outsider_can_see_the_course_front_page_and_enrol(client_for, cast):
    client = client_for(cast.outsider)
    page = client.get(urls(cast)["course"])
    assert page.status_code == 200
    assert reverse("course_enrol", args=[cast.course.slug]).encode() in page.content

    client.post(reverse("course_enrol", args=[cast.course.slug]))

    assert Enrolment.objects.filter(user=cast.outsider, course=cast.course).exists()
    assert client.get(urls(cast)["chapter"]).status_code == 200


def test_invite_only_course_needs_the_right_code(client_for, db):
    course = CourseFactory(enrolment=Course.Enrolment.INVITE, invite_code="sesame")
    user = UserFactory()
    client = client_for(user)
    url = reverse("course_enrol", args=[course.slug])

    response = client.post(url, {"invite_code": "wrong"}, follow=True)
    assert b"invite code is not right" in response.content
    assert not Enrolment.objects.filter(user=user).exists()

    client.post(url, {"invite_code": "sesame"})
    assert Enrolment.objects.filter(user=user, course=course).exists()


@pytest.mark.parametrize("page", ["progress", "review"])
def test_students_cannot_see_staff_pages(client_for, cast, page):
    assert client_for(cast.student).get(urls(cast)[page]).status_code == 403


@pytest.mark.parametrize("who", ["ta", "instructor"])
@pytest.mark.parametrize("page", ["progress", "review"])
def test_staff_see_staff_pages(client_for, cast, who, page):
    assert client_for(getattr(cast, who)).get(urls(cast)[page]).status_code == 200


def test_membership_of_one_course_opens_no_other(client_for, cast):
    other_chapter = ChapterFactory(course=CourseFactory(slug="other-course"))
    url = reverse("chapter_detail", args=["other-course", other_chapter.slug])
    assert client_for(cast.instructor).get(url).status_code == 403


class TestAttemptPrivacy:
    @pytest.fixture
    def attempt(self, client_for, cast, quiz):
        _, _, _, essay = quiz
        client = client_for(cast.student)
        submit(client, urls(cast)["questionnaire"], {f"q_{essay.id}": "MY-SECRET-ANSWER"})
        client.logout()
        return Attempt.objects.get(user=cast.student)

    def url(self, attempt):
        return reverse(
            "attempt_detail", args=[attempt.questionnaire.chapter.course.slug, attempt.id]
        )

    def test_student_sees_own_attempt(self, client_for, cast, attempt):
        assert client_for(cast.student).get(self.url(attempt)).status_code == 200

    def test_other_student_cannot_see_it(self, client_for, cast, attempt):
        assert client_for(cast.other_student).get(self.url(attempt)).status_code == 404

    def test_outsider_cannot_see_it(self, client_for, cast, attempt):
        assert client_for(cast.outsider).get(self.url(attempt)).status_code == 403

    @pytest.mark.parametrize("who", ["ta", "instructor"])
    def test_staff_can_see_it(self, client_for, cast, attempt, who):
        assert client_for(getattr(cast, who)).get(self.url(attempt)).status_code == 200

    def test_other_student_cannot_self_assess_it(self, client_for, cast, attempt, quiz):
        essay = attempt.answers.get(question=quiz[3])
        url = reverse("answer_self_assess", args=[cast.course.slug, essay.id])
        response = client_for(cast.other_student).post(url, {"assessment": "got_it"})
        assert response.status_code == 404
        essay.refresh_from_db()
        assert essay.self_assessment == ""

    def test_staff_cannot_self_assess_for_a_student(self, client_for, cast, attempt, quiz):
        essay = attempt.answers.get(question=quiz[3])
        url = reverse("answer_self_assess", args=[cast.course.slug, essay.id])
        assert client_for(cast.ta).post(url, {"assessment": "got_it"}).status_code == 403

    def test_student_cannot_review_answers(self, client_for, cast, attempt, quiz):
        essay = attempt.answers.get(question=quiz[3])
        url = reverse("answer_review", args=[cast.course.slug, essay.id])
        response = client_for(cast.student).post(url, {"score": "1", "feedback": "great"})
        assert response.status_code == 403
        essay.refresh_from_db()
        assert essay.review_score is None

    def test_class_progress_does_not_leak_to_other_students(self, client_for, cast, attempt):
        url = reverse("student_progress", args=[cast.course.slug, cast.student.id])
        assert client_for(cast.other_student).get(url).status_code == 403
        assert client_for(cast.instructor).get(url).status_code == 200


# Answering ---------------------------------------------------------------------------------


def test_student_answers_and_sees_feedback(client_for, cast, quiz):
    _, single, numeric, essay = quiz
    right = single.choices.get(is_correct=True)
    client = client_for(cast.student)

    response = submit(
        client,
        urls(cast)["questionnaire"],
        {f"q_{single.id}": right.id, f"q_{numeric.id}": " 7.84e2 ", f"q_{essay.id}": "Mine."},
    )

    attempt = Attempt.objects.get(user=cast.student)
    assert response.status_code == 302 and response.url.endswith(f"/attempts/{attempt.id}/")
    page = client.get(response.url)
    assert page.status_code == 200
    assert attempt.score == Decimal(2)
    assert b"<strong>reference</strong>" in page.content  # free text reveals the reference


def test_a_draft_is_saved_and_shown_again(client_for, cast, quiz):
    _, _, numeric, essay = quiz
    client = client_for(cast.student)

    response = submit(
        client,
        urls(cast)["questionnaire"],
        {f"q_{numeric.id}": "12", f"q_{essay.id}": "Half-written <b>essay</b>"},
        action="save",
    )

    assert response.status_code == 302
    page = client.get(urls(cast)["questionnaire"])
    assert b'value="12"' in page.content
    assert b"Half-written &lt;b&gt;essay&lt;/b&gt;" in page.content
    assert Attempt.objects.get(user=cast.student).status == Attempt.Status.DRAFT


def test_an_answer_for_another_questionnaires_question_is_ignored(client_for, cast, quiz):
    _, single, _, _ = quiz
    foreign = QuestionFactory(questionnaire=QuestionnaireFactory(chapter__course=cast.course))

    response = submit(
        client_for(cast.student),
        urls(cast)["questionnaire"],
        {f"q_{foreign.id}": "forty two", f"q_{single.id}": ""},
    )

    assert response.status_code == 302
    assert not Answer.objects.filter(question=foreign).exists()


def test_a_choice_of_another_question_is_refused_and_the_draft_kept(client_for, cast, quiz):
    _, single, numeric, _ = quiz
    other = choice_question(cast.questionnaire, kind="single", correct=[True], key="other")
    client = client_for(cast.student)
    submit(client, urls(cast)["questionnaire"], {f"q_{numeric.id}": "1"}, action="save")

    response = submit(
        client,
        urls(cast)["questionnaire"],
        {f"q_{single.id}": other.choices.get().id, f"q_{numeric.id}": "784"},
    )

    assert response.status_code == 200
    assert b"That option is not part of this question." in response.content
    draft = Attempt.objects.get(user=cast.student)
    assert draft.status == Attempt.Status.DRAFT
    assert draft.answers.get(question=numeric).response == 1.0


@pytest.mark.parametrize("value", ["abc", "1/2", "nan", "inf", "1e999"])
def test_a_non_number_in_a_numeric_answer_is_explained(client_for, cast, quiz, value):
    _, _, numeric, _ = quiz

    response = submit(
        client_for(cast.student), urls(cast)["questionnaire"], {f"q_{numeric.id}": value}
    )

    assert response.status_code == 200
    assert b"number" in response.content
    assert not Attempt.objects.exists()


def test_numbers_are_read_as_people_write_them(client_for, cast, quiz):
    _, _, numeric, _ = quiz
    submit(
        client_for(cast.student), urls(cast)["questionnaire"], {f"q_{numeric.id}": "\u2212784,0"}
    )
    assert Answer.objects.get(question=numeric).response == -784.0


def test_an_over_long_text_is_refused(client_for, cast, quiz, settings):
    _, _, _, essay = quiz

    response = submit(
        client_for(cast.student),
        urls(cast)["questionnaire"],
        {f"q_{essay.id}": "x" * (settings.ANSWER_TEXT_MAX_LENGTH + 1)},
    )

    assert response.status_code == 200
    assert b"at most 5000 characters" in response.content
    assert not Attempt.objects.exists()


def test_a_double_submit_grades_once(client_for, cast, quiz):
    _, single, _, _ = quiz
    client = client_for(cast.student)
    token = str(uuid.uuid4())
    data = {"token": token, f"q_{single.id}": single.choices.first().id}

    first = submit(client, urls(cast)["questionnaire"], data)
    second = submit(client, urls(cast)["questionnaire"], data)

    assert first.status_code == second.status_code == 302
    assert first.url == second.url
    assert Attempt.objects.filter(user=cast.student).count() == 1


def test_a_submit_after_the_deadline_is_refused_clearly(client_for, cast, quiz):
    questionnaire, single, _, _ = quiz
    questionnaire.due_at = timezone.now() - timedelta(minutes=5)
    questionnaire.save()

    response = submit(client_for(cast.student), urls(cast)["questionnaire"], {f"q_{single.id}": ""})

    assert response.status_code == 200
    assert b"has passed" in response.content
    assert not Attempt.objects.filter(status=Attempt.Status.SUBMITTED).exists()


def test_staff_cannot_post_answers_unless_enrolled_as_students(client, cast, quiz, db):
    admin = UserFactory(is_superuser=True, is_staff=True)
    client.force_login(admin)
    response = submit(client, urls(cast)["questionnaire"], {})
    assert response.status_code == 200
    assert not Attempt.objects.exists()


def test_forms_need_a_csrf_token(cast, quiz):
    client = Client(enforce_csrf_checks=True)
    client.force_login(cast.student)
    response = submit(client, urls(cast)["questionnaire"], {})
    assert response.status_code == 403
    assert not Attempt.objects.exists()


def test_self_assessment_and_review_through_the_pages(client_for, cast, quiz):
    _, _, _, essay_question = quiz
    client = client_for(cast.student)
    submit(client, urls(cast)["questionnaire"], {f"q_{essay_question.id}": "My <script>essay"})
    essay = Answer.objects.get(question=essay_question)

    client.post(
        reverse("answer_self_assess", args=[cast.course.slug, essay.id]), {"assessment": "partly"}
    )
    essay.refresh_from_db()
    assert essay.self_assessment == "partly" and essay.score == Decimal("0.5")

    staff = client_for(cast.ta)
    queue = staff.get(urls(cast)["review"])
    assert b"My &lt;script&gt;essay" in queue.content or str(essay.id).encode() in queue.content
    review_page = staff.get(reverse("answer_review", args=[cast.course.slug, essay.id]))
    assert b"My &lt;script&gt;essay" in review_page.content
    response = staff.post(
        reverse("answer_review", args=[cast.course.slug, essay.id]),
        {"score": "1", "feedback": "Well argued."},
    )
    assert response.status_code == 302
    essay.refresh_from_db()
    assert essay.score == Decimal(1) and essay.reviewed_by == cast.ta


def test_a_review_score_above_the_points_is_refused(client_for, cast, quiz):
    _, _, _, essay_question = quiz
    submit(client_for(cast.student), urls(cast)["questionnaire"], {f"q_{essay_question.id}": "x"})
    essay = Answer.objects.get(question=essay_question)

    response = client_for(cast.ta).post(
        reverse("answer_review", args=[cast.course.slug, essay.id]), {"score": "5"}
    )

    assert response.status_code == 200
    essay.refresh_from_db()
    assert essay.review_score is None


# Progress ------------------------------------------------------------------------------------


def test_progress_bar_moves_after_submitting(client_for, cast, quiz):
    _, single, numeric, essay = quiz
    essay.delete()
    client = client_for(cast.student)
    assert b'aria-valuenow="0"' in client.get(urls(cast)["course"]).content

    submit(
        client,
        urls(cast)["questionnaire"],
        {f"q_{single.id}": single.choices.get(is_correct=True).id, f"q_{numeric.id}": "0"},
    )

    assert b'aria-valuenow="50"' in client.get(urls(cast)["course"]).content


def test_instructor_sees_class_progress(client_for, cast, quiz):
    _, single, _, _ = quiz
    submit(client_for(cast.student), urls(cast)["questionnaire"], {f"q_{single.id}": ""})

    page = client_for(cast.instructor).get(urls(cast)["progress"])

    assert cast.student.public_name.encode() in page.content
    assert cast.other_student.public_name.encode() in page.content


# Query counts ------------------------------------------------------------------------------


@pytest.fixture
def big_course(cast):
    """Ten chapters with questionnaires and a student with several attempts on each."""
    for position in range(10):
        questionnaire = QuestionnaireFactory(
            chapter__course=cast.course, chapter__position=position + 1
        )
        for _ in range(3):
            choice_question(questionnaire, kind="multiple", correct=[True, False, True])
    return cast


def test_course_page_query_count_does_not_grow_with_chapters(
    client_for, big_course, django_assert_num_queries
):
    client = client_for(big_course.student)
    # user, enrolment+course, chapters+questionnaires, attempts (the session is in the cache)
    with django_assert_num_queries(4):
        assert client.get(urls(big_course)["course"]).status_code == 200


def test_chapter_page_query_count(client_for, big_course, django_assert_num_queries):
    client = client_for(big_course.student)
    # user, enrolment+course, chapters+questionnaires (with this chapter's body), attempts,
    # assignments, and the forum's thread count for "Discuss this"
    with django_assert_num_queries(6):
        assert client.get(urls(big_course)["chapter"]).status_code == 200


def test_questionnaire_page_query_count_does_not_grow_with_questions(
    client_for, big_course, django_assert_num_queries
):
    questionnaire = big_course.questionnaire
    for _ in range(12):
        choice_question(questionnaire, kind="single", correct=[True, False, False])
    client = client_for(big_course.student)
    client.post(urls(big_course)["questionnaire"], {"save": "1"})
    # user, course+enrolment+questionnaire, questions, choices, attempts, draft answers, and
    # the forum's thread counts per question for "Discuss these questions"
    with django_assert_num_queries(7):
        assert client.get(urls(big_course)["questionnaire"]).status_code == 200


def test_submit_query_count_does_not_grow_with_questions_or_attempts(
    client_for, big_course, django_assert_num_queries
):
    questionnaire = big_course.questionnaire
    questionnaire.max_attempts = 0  # unlimited
    questionnaire.save()
    for _ in range(12):
        choice_question(questionnaire, kind="single", correct=[True, False, False])
    client = client_for(big_course.student)
    for _ in range(3):
        assert submit(client, urls(big_course)["questionnaire"], {}).status_code == 302
    # user, course+enrolment+questionnaire, questions, choices, the enrolment's row lock, the
    # student's attempts, the graded attempt's INSERT, the answers' INSERT, and the savepoint
    # around the save with its release.
    with django_assert_num_queries(10):
        response = submit(client, urls(big_course)["questionnaire"], {})
    assert response.status_code == 302
    attempts = Attempt.objects.filter(questionnaire=questionnaire, user=big_course.student)
    assert sorted(attempts.values_list("number", flat=True)) == [1, 2, 3, 4]
    newest = attempts.get(number=4)
    assert newest.status == Attempt.Status.SUBMITTED and newest.score is not None
    assert newest.answers.count() == questionnaire.questions.count()


def test_a_closed_questionnaire_says_so_before_anyone_types(client_for, cast, quiz):
    questionnaire = quiz[0]
    questionnaire.due_at = timezone.now() - timedelta(days=1)
    questionnaire.save()

    page = client_for(cast.student).get(urls(cast)["questionnaire"])

    assert b"no longer accepts answers" in page.content
    assert b'name="submit"' not in page.content


def test_a_numeric_draft_comes_back_as_the_student_wrote_it(client_for, cast, quiz):
    _, _, numeric, _ = quiz
    client = client_for(cast.student)
    submit(client, urls(cast)["questionnaire"], {f"q_{numeric.id}": "0.1"}, action="save")
    assert b'value="0.1"' in client.get(urls(cast)["questionnaire"]).content


def test_question_form_fields_are_shared_per_question_and_follow_its_choices(cast):
    from courses.forms import QuestionnaireForm, field_name
    from courses.selectors import questionnaire_questions

    question = choice_question(cast.questionnaire, kind="single", correct=[True, False])
    questions = questionnaire_questions(questionnaire=cast.questionnaire)
    first, second = (QuestionnaireForm(questions=questions) for _ in range(2))
    name = field_name(question)
    assert first.fields[name] is second.fields[name]

    choice = question.choices.first()
    choice.text = "A changed option"
    choice.save()
    changed = QuestionnaireForm(questions=questionnaire_questions(questionnaire=cast.questionnaire))
    assert changed.fields[name] is not first.fields[name]
    assert (choice.id, "A changed option") in changed.fields[name].choices

    # Validation stays per form: one form's bad answer is not another's.
    bad = QuestionnaireForm({name: "999999"}, questions=questions)
    good = QuestionnaireForm({name: str(choice.id)}, questions=questions)
    assert not bad.is_valid() and name in bad.errors
    assert good.is_valid(), good.errors
    assert good.responses()[question.id] == [choice.id]
