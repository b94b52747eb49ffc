from __future__ import annotations

from decimal import Decimal

import pytest

from courses.grading import free_text_fraction, grade_answer, normalise_text, points_for
from courses.models import Answer, Question
from tests.factories import QuestionFactory, choice_question

pytestmark = pytest.mark.django_db


def numeric(answer: float, tolerance: float = 0, mode: str = "absolute") -> Question:
    return QuestionFactory.build(
        kind=Question.Kind.NUMERIC, numeric_answer=answer, tolerance=tolerance, tolerance_mode=mode
    )


def short(accepted: list[str], regex: str = "") -> Question:
    return QuestionFactory.build(
        kind=Question.Kind.SHORT_TEXT, accepted_answers=accepted, answer_regex=regex
    )


class TestSingleChoice:
    def test_the_correct_choice_earns_full_marks(self, questionnaire):
        question = choice_question(questionnaire, kind="single", correct=[False, True, False])
        right = question.choices.get(is_correct=True)
        grade = grade_answer(question, [right.id])
        assert grade.fraction == 1 and grade.is_correct

    def test_a_wrong_choice_earns_nothing(self, questionnaire):
        question = choice_question(questionnaire, kind="single", correct=[False, True])
        wrong = question.choices.get(is_correct=False)
        grade = grade_answer(question, [wrong.id])
        assert grade.fraction == 0 and grade.is_correct is False

    def test_no_choice_is_no_answer(self, questionnaire):
        question = choice_question(questionnaire, kind="single", correct=[True, False])
        grade = grade_answer(question, [])
        assert grade.fraction == 0 and grade.feedback == "No answer given."


class TestMultipleChoice:
    @pytest.fixture
    def question(self, questionnaire):
        # Three correct options (0, 1, 2) and two wrong ones (3, 4).
        return choice_question(
            questionnaire, kind="multiple", correct=[True, True, True, False, False]
        )

    def ids(self, question, positions):
        return [c.id for c in question.choices.all() if c.position in positions]

    def test_all_correct_and_no_wrong_is_full_credit(self, question):
        grade = grade_answer(question, self.ids(question, {0, 1, 2}))
        assert grade.fraction == 1 and grade.is_correct

    def test_some_correct_is_partial_credit(self, question):
        grade = grade_answer(question, self.ids(question, {0, 1}))
        assert grade.fraction == Decimal("0.6667") and grade.is_correct is False
        assert "2 of 3" in grade.feedback

    def test_wrong_picks_cancel_right_ones(self, question):
        grade = grade_answer(question, self.ids(question, {0, 1, 3}))
        assert grade.fraction == Decimal("0.3333")

    def test_ticking_every_box_earns_nothing_more_than_it_should(self, question):
        grade = grade_answer(question, self.ids(question, {0, 1, 2, 3, 4}))
        assert grade.fraction == Decimal("0.3333")

    def test_credit_never_goes_below_zero(self, question):
        grade = grade_answer(question, self.ids(question, {3, 4}))
        assert grade.fraction == 0


class TestTrueFalse:
    def test_matching_answer_is_correct(self):
        question = QuestionFactory.build(kind=Question.Kind.TRUE_FALSE, correct_boolean=False)
        assert grade_answer(question, False).is_correct
        assert grade_answer(question, True).is_correct is False

    def test_missing_answer_is_not_false(self):
        question = QuestionFactory.build(kind=Question.Kind.TRUE_FALSE, correct_boolean=False)
        assert grade_answer(question, None).fraction == 0


class TestNumeric:
    def test_exact_answer_without_tolerance(self):
        assert grade_answer(numeric(784), 784.0).is_correct
        assert grade_answer(numeric(784), 783.0).is_correct is False

    @pytest.mark.parametrize("given", [0.94, 0.95, 0.96])
    def test_absolute_tolerance_bounds_are_inclusive(self, given):
        assert grade_answer(numeric(0.95, 0.01), given).is_correct

    @pytest.mark.parametrize("given", [0.9399, 0.9601])
    def test_just_outside_absolute_tolerance_is_wrong(self, given):
        assert grade_answer(numeric(0.95, 0.01), given).is_correct is False

    def test_decimal_rounding_noise_does_not_fail_an_exact_answer(self):
        assert grade_answer(numeric(0.3), 0.1 + 0.2).is_correct

    def test_relative_tolerance_scales_with_the_answer(self):
        question = numeric(2000, 0.01, "relative")
        assert grade_answer(question, 2020.0).is_correct
        assert grade_answer(question, 1980.0).is_correct
        assert grade_answer(question, 2021.0).is_correct is False

    def test_relative_tolerance_of_a_negative_answer(self):
        question = numeric(-10, 0.1, "relative")
        assert grade_answer(question, -11.0).is_correct
        assert grade_answer(question, -11.5).is_correct is False

    def test_infinity_is_never_right(self):
        assert grade_answer(numeric(1e308, 1e308), float("inf")).is_correct is False


class TestShortText:
    def test_case_spacing_and_punctuation_are_ignored(self):
        question = short(["Rectified Linear Unit"])
        assert grade_answer(question, "  rectified   linear unit. ").is_correct
        assert grade_answer(question, "rectified-linear unit").is_correct  # a hyphen is a space
        assert grade_answer(question, "rectifiedlinear unit").is_correct is False
        assert grade_answer(question, "RECTIFIED, LINEAR, UNIT!").is_correct

    def test_unicode_is_normalised(self):
        question = short(["café"])
        assert grade_answer(question, "CAFE\u0301").is_correct  # combining accent
        assert grade_answer(
            question, "\uff23\uff21\uff26\uff25\u0301"
        ).is_correct  # full-width letters
        assert grade_answer(question, "cafe").is_correct is False

    def test_any_accepted_answer_counts(self):
        question = short(["relu", "rectified linear unit"])
        assert grade_answer(question, "ReLU").is_correct

    def test_regex_is_a_full_case_insensitive_match(self):
        question = short([], regex=r"epochs?")
        assert grade_answer(question, "Epochs").is_correct
        assert grade_answer(question, "epochs are fun").is_correct is False

    def test_a_broken_regex_marks_wrong_instead_of_crashing(self):
        assert grade_answer(short([], regex="("), "(").is_correct is False

    def test_punctuation_only_answer_does_not_match_an_empty_normalised_answer(self):
        assert grade_answer(short(["!!!"]), "...").is_correct is False

    def test_empty_answer(self):
        assert grade_answer(short(["x"]), "").feedback == "No answer given."


class TestFreeText:
    def test_free_text_waits_for_a_person(self):
        question = QuestionFactory.build(kind=Question.Kind.FREE_TEXT, reference_answer="r")
        grade = grade_answer(question, "my essay")
        assert grade.fraction is None and grade.is_correct is None

    def test_empty_free_text_scores_zero_at_once(self):
        question = QuestionFactory.build(kind=Question.Kind.FREE_TEXT, reference_answer="r")
        assert grade_answer(question, "").fraction == 0

    @pytest.mark.parametrize(
        ("assessment", "fraction"),
        [("got_it", Decimal(1)), ("partly", Decimal("0.5")), ("missed", Decimal(0))],
    )
    def test_self_assessment_credit(self, assessment, fraction):
        question = QuestionFactory.build(kind=Question.Kind.FREE_TEXT, points=Decimal(2))
        answer = Answer(question=question, self_assessment=assessment)
        assert free_text_fraction(answer) == fraction

    def test_review_score_replaces_self_assessment(self):
        question = QuestionFactory.build(kind=Question.Kind.FREE_TEXT, points=Decimal(2))
        answer = Answer(question=question, self_assessment="got_it", review_score=Decimal("0.5"))
        assert free_text_fraction(answer) == Decimal("0.25")


def test_points_are_rounded_to_hundredths():
    assert points_for(Decimal("0.6667"), Decimal("2")) == Decimal("1.33")
    assert points_for(None, Decimal("2")) is None


def test_normalise_text_collapses_whitespace_and_punctuation():
    assert normalise_text(" Hello,\tWorld! ") == "hello world"
