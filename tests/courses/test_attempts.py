"""Attempt policies: drafts, submitting, attempt limits, best/last, reveal, due dates, reviews."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from courses import selectors, services
from courses.models import Answer, Attempt, Question, Questionnaire
from tests.factories import QuestionFactory, UserFactory, choice_question


@pytest.fixture
def quiz(cast):
    """A questionnaire with a 1-point short-text question and a 2-point free-text question."""
    q = cast.questionnaire
    short = QuestionFactory(questionnaire=q, key="short", accepted_answers=["yes"], position=0)
    free = QuestionFactory(
        questionnaire=q,
        key="essay",
        kind=Question.Kind.FREE_TEXT,
        accepted_answers=[],
        reference_answer="The reference.",
        points=Decimal(2),
        position=1,
    )
    return q, short, free


def save(user, questionnaire, responses, *, submit=True, token=None, now=None):
    return services.attempt_save(
        user=user,
        questionnaire=questionnaire,
        token=token,
        responses=responses,
        submit=submit,
        now=now,
    )


def test_a_draft_keeps_answers_until_the_student_comes_back(cast, quiz):
    questionnaire, short, free = quiz
    save(cast.student, questionnaire, {short.id: "maybe", free.id: "half an essay"}, submit=False)

    questions = selectors.questionnaire_questions(questionnaire=questionnaire)
    page = selectors.questionnaire_page(
        questionnaire=questionnaire, user=cast.student, questions=questions
    )

    assert page.draft is not None and page.submitted == []
    assert page.draft_responses == {short.id: "maybe", free.id: "half an essay"}
    assert Answer.objects.get(question=short).score is None  # a draft is not graded


def test_submitting_grades_every_answer_at_once(cast, quiz):
    questionnaire, short, free = quiz
    save(cast.student, questionnaire, {short.id: "maybe"}, submit=False)

    attempt = save(cast.student, questionnaire, {short.id: "Yes!", free.id: "an essay"})

    attempt.refresh_from_db()
    assert attempt.status == Attempt.Status.SUBMITTED and attempt.number == 1
    assert (attempt.score, attempt.max_score) == (Decimal(1), Decimal(3))
    answers = {a.question_id: a for a in attempt.answers.all()}
    assert answers[short.id].is_correct is True
    assert answers[free.id].score is None  # waits for the student's self-assessment
    assert Attempt.objects.filter(user=cast.student).count() == 1  # the draft became the attempt


def test_resubmitting_the_same_form_does_not_use_another_attempt(cast, quiz):
    questionnaire, short, _ = quiz
    token = uuid.uuid4()
    first = save(cast.student, questionnaire, {short.id: "yes"}, token=token)

    with pytest.raises(services.AttemptAlreadySubmitted) as raised:
        save(cast.student, questionnaire, {short.id: "no"}, token=token)

    assert raised.value.attempt == first
    assert Attempt.objects.filter(user=cast.student).count() == 1
    assert Answer.objects.get(question=short).response == "yes"


def test_attempts_run_out(cast, quiz):
    questionnaire, short, _ = quiz
    questionnaire.max_attempts = 2
    questionnaire.save()
    save(cast.student, questionnaire, {short.id: "no"})
    save(cast.student, questionnaire, {short.id: "no"})

    with pytest.raises(services.CourseError, match="used all your attempts"):
        save(cast.student, questionnaire, {short.id: "yes"})
    with pytest.raises(services.CourseError, match="used all your attempts"):
        save(cast.student, questionnaire, {short.id: "yes"}, submit=False)
    assert Attempt.objects.filter(user=cast.student).count() == 2


def test_other_students_attempts_do_not_count_against_mine(cast, quiz):
    questionnaire, short, _ = quiz
    questionnaire.max_attempts = 1
    questionnaire.save()
    save(cast.other_student, questionnaire, {short.id: "yes"})

    attempt = save(cast.student, questionnaire, {short.id: "yes"})

    assert attempt.number == 1


@pytest.mark.parametrize(("counts", "expected"), [("best", 100), ("last", 0)])
def test_progress_uses_the_attempt_that_counts(cast, quiz, counts, expected):
    questionnaire, short, free = quiz
    questionnaire.counts = counts
    questionnaire.save()
    free.delete()
    save(cast.student, questionnaire, {short.id: "yes"})
    save(cast.student, questionnaire, {short.id: "no"})

    rows = selectors.chapters_with_progress(course=cast.course, user=cast.student)

    assert rows[0].percent == expected
    assert selectors.course_progress_percent(rows) == expected


def test_unenrolled_user_cannot_save_an_attempt(cast, quiz):
    questionnaire, short, _ = quiz
    with pytest.raises(services.CourseError, match="Enrol"):
        save(cast.outsider, questionnaire, {short.id: "yes"})
    assert not Attempt.objects.exists()


class TestDueDate:
    def test_late_submission_is_refused_and_the_draft_survives(self, cast, quiz):
        questionnaire, short, _ = quiz
        now = timezone.now()
        questionnaire.due_at = now + timedelta(hours=1)
        questionnaire.save()
        save(cast.student, questionnaire, {short.id: "draft answer"}, submit=False, now=now)

        with pytest.raises(services.CourseError, match="due date"):
            save(cast.student, questionnaire, {short.id: "yes"}, now=now + timedelta(hours=2))

        draft = Attempt.objects.get(user=cast.student)
        assert draft.status == Attempt.Status.DRAFT
        assert draft.answers.get(question=short).response == "draft answer"

    def test_late_submission_is_accepted_and_marked_late(self, cast, quiz):
        questionnaire, short, _ = quiz
        now = timezone.now()
        questionnaire.due_at = now - timedelta(minutes=1)
        questionnaire.late = Questionnaire.Late.ACCEPT
        questionnaire.save()

        attempt = save(cast.student, questionnaire, {short.id: "yes"}, now=now)

        assert attempt.is_late is True

    def test_submission_before_the_due_date_is_not_late(self, cast, quiz):
        questionnaire, short, _ = quiz
        now = timezone.now()
        questionnaire.due_at = now + timedelta(minutes=1)
        questionnaire.save()
        assert save(cast.student, questionnaire, {short.id: "yes"}, now=now).is_late is False


class TestReveal:
    def reveal(self, questionnaire, submitted, now=None):
        return selectors.answers_revealed(
            questionnaire=questionnaire, submitted_count=submitted, now=now
        )

    def test_after_each_attempt(self, questionnaire):
        questionnaire.reveal = Questionnaire.Reveal.AFTER_EACH_ATTEMPT
        assert not self.reveal(questionnaire, 0)
        assert self.reveal(questionnaire, 1)

    def test_after_the_last_attempt(self, questionnaire):
        questionnaire.reveal = Questionnaire.Reveal.AFTER_LAST_ATTEMPT
        questionnaire.max_attempts = 2
        assert not self.reveal(questionnaire, 1)
        assert self.reveal(questionnaire, 2)

    def test_after_the_last_attempt_with_unlimited_attempts_waits_for_the_due_date(
        self, questionnaire
    ):
        questionnaire.reveal = Questionnaire.Reveal.AFTER_LAST_ATTEMPT
        questionnaire.max_attempts = 0
        now = timezone.now()
        questionnaire.due_at = now
        assert not self.reveal(questionnaire, 5, now=now - timedelta(seconds=1))
        assert self.reveal(questionnaire, 5, now=now + timedelta(seconds=1))

    def test_after_the_due_date(self, questionnaire):
        questionnaire.reveal = Questionnaire.Reveal.AFTER_DUE_DATE
        now = timezone.now()
        questionnaire.due_at = now
        assert not self.reveal(questionnaire, 3, now=now - timedelta(seconds=1))
        assert self.reveal(questionnaire, 0, now=now + timedelta(seconds=1))

    def test_after_the_due_date_without_a_due_date_never_reveals(self, questionnaire):
        questionnaire.reveal = Questionnaire.Reveal.AFTER_DUE_DATE
        assert not self.reveal(questionnaire, 3)


class TestFreeTextReview:
    @pytest.fixture
    def essay(self, cast, quiz):
        questionnaire, short, free = quiz
        attempt = save(cast.student, questionnaire, {short.id: "yes", free.id: "My essay."})
        return attempt.answers.get(question=free)

    def test_self_assessment_adds_to_the_attempt_score(self, cast, essay):
        services.answer_self_assess(user=cast.student, answer=essay, assessment="partly")

        essay.refresh_from_db()
        assert essay.score == Decimal(1)  # half of 2 points
        assert essay.attempt.score == Decimal(2)  # 1 (short) + 1

    def test_review_replaces_self_assessment(self, cast, essay):
        services.answer_self_assess(user=cast.student, answer=essay, assessment="got_it")

        services.answer_review(
            reviewer=cast.ta, answer=essay, score=Decimal("0.5"), feedback="Too short."
        )

        essay.refresh_from_db()
        assert (essay.score, essay.review_feedback, essay.reviewed_by) == (
            Decimal("0.5"),
            "Too short.",
            cast.ta,
        )
        assert essay.attempt.score == Decimal("1.5")
        with pytest.raises(services.CourseError, match="already reviewed"):
            services.answer_self_assess(user=cast.student, answer=essay, assessment="got_it")

    def test_review_score_must_fit_the_points(self, cast, essay):
        with pytest.raises(services.CourseError, match="between 0 and 2"):
            services.answer_review(reviewer=cast.ta, answer=essay, score=Decimal(3), feedback="")
        essay.refresh_from_db()
        assert essay.review_score is None

    def test_a_student_cannot_assess_someone_elses_answer(self, cast, essay):
        with pytest.raises(services.CourseError):
            services.answer_self_assess(user=cast.other_student, answer=essay, assessment="got_it")

    def test_reviewed_answers_leave_the_queue(self, cast, essay):
        assert list(selectors.review_queue(course=cast.course)) == [essay]
        services.answer_review(reviewer=cast.ta, answer=essay, score=Decimal(2), feedback="")
        assert list(selectors.review_queue(course=cast.course)) == []
        assert list(selectors.review_queue(course=cast.course, reviewed=True)) == [essay]


def test_class_progress_lists_every_student_and_their_counted_scores(cast, quiz):
    questionnaire, short, free = quiz
    free.delete()
    save(cast.student, questionnaire, {short.id: "yes"})
    UserFactory()  # not enrolled: not in the table

    chapters, table = selectors.class_progress(course=cast.course)

    assert [c.id for c in chapters] == [questionnaire.chapter_id]
    by_name = {row.username: row for row in table}
    assert set(by_name) == {"student", "other"}  # TA and instructor are not students
    assert by_name["student"].chapters == [100]
    assert by_name["other"].chapters == [None]


def test_choice_answers_are_graded_on_submit(cast):
    question = choice_question(cast.questionnaire, kind="multiple", correct=[True, True, False])
    first, _, wrong = question.choices.all()
    attempt = save(cast.student, cast.questionnaire, {question.id: [first.id, wrong.id]})
    assert attempt.score == Decimal(0)
    attempt = save(cast.student, cast.questionnaire, {question.id: [first.id]})
    assert attempt.score == Decimal("0.5")
