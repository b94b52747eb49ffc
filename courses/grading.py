"""Grading of questionnaire answers: pure functions, no database writes.

A response is what ``courses.forms`` cleaned: a list of choice ids (single, multiple), a bool
(true/false), a float (numeric), a string (short and free text, code), or ``None`` for no answer.
Code answers are graded later, by running tests in the sandbox (``courses.code_questions``).
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from courses.code_questions import RUNNING_FEEDBACK
from courses.models import Answer, Question

SELF_ASSESSMENT_CREDIT = {
    Answer.SelfAssessment.GOT_IT: Decimal("1"),
    Answer.SelfAssessment.PARTLY: Decimal("0.5"),
    Answer.SelfAssessment.MISSED: Decimal("0"),
}


@dataclass(frozen=True)
class Grade:
    """A fraction of the question's points in [0, 1]; ``None`` while a person must still judge."""

    fraction: Decimal | None
    is_correct: bool | None
    feedback: str


def normalise_text(text: str) -> str:
    """Case, width, accents' composition, punctuation and spacing do not matter in short answers."""
    text = unicodedata.normalize("NFKC", text).casefold()
    kept = "".join(" " if unicodedata.category(ch).startswith("P") else ch for ch in text)
    return " ".join(kept.split())


def _relative_epsilon(value: float) -> float:
    # Answers typed in decimal rarely hit a binary float bound exactly: 0.1 + 0.2 must equal 0.3.
    return 1e-9 * max(1.0, abs(value))


def numeric_matches(*, given: float, expected: float, tolerance: float, mode: str) -> bool:
    if not math.isfinite(given):
        return False
    allowed = tolerance * abs(expected) if mode == Question.ToleranceMode.RELATIVE else tolerance
    return abs(given - expected) <= allowed + _relative_epsilon(expected)


def short_text_matches(*, given: str, accepted: list[str], regex: str) -> bool:
    normalised = normalise_text(given)
    if normalised and normalised in {normalise_text(a) for a in accepted}:
        return True
    if regex:
        try:
            return re.fullmatch(regex, given.strip(), flags=re.IGNORECASE) is not None
        except re.error:
            return False
    return False


def _is_empty(response: object) -> bool:
    return response is None or response == "" or response == []


def grade_answer(question: Question, response: object) -> Grade:
    """Grade one response. ``question.choices`` should be prefetched for choice questions."""
    kind = question.kind
    if _is_empty(response) or (kind == Question.Kind.CODE and not str(response).strip()):
        return Grade(Decimal("0"), False, "No answer given.")

    if kind in (Question.Kind.SINGLE, Question.Kind.MULTIPLE):
        return _grade_choices(question, response)
    if kind == Question.Kind.TRUE_FALSE:
        correct = response is question.correct_boolean
        return Grade(Decimal(int(correct)), correct, "Correct." if correct else "Not quite.")
    if kind == Question.Kind.NUMERIC:
        assert question.numeric_answer is not None
        correct = numeric_matches(
            given=float(response),  # type: ignore[arg-type]
            expected=question.numeric_answer,
            tolerance=question.tolerance,
            mode=question.tolerance_mode,
        )
        return Grade(Decimal(int(correct)), correct, "Correct." if correct else "Not quite.")
    if kind == Question.Kind.SHORT_TEXT:
        correct = short_text_matches(
            given=str(response),
            accepted=list(question.accepted_answers or []),
            regex=question.answer_regex,
        )
        return Grade(Decimal(int(correct)), correct, "Correct." if correct else "Not quite.")
    if kind == Question.Kind.FREE_TEXT:
        return Grade(
            None, None, "Compare your answer with the reference answer and assess yourself."
        )
    if kind == Question.Kind.CODE:
        # The tests run in the sandbox, on a worker: see attempt_code_answers_grade.
        return Grade(None, None, RUNNING_FEEDBACK)
    raise ValueError(f"unknown question kind {kind!r}")


def _grade_choices(question: Question, response: object) -> Grade:
    selected = set(response)  # type: ignore[call-overload]
    correct_ids = {c.id for c in question.choices.all() if c.is_correct}
    if question.kind == Question.Kind.SINGLE:
        correct = selected == correct_ids
        return Grade(Decimal(int(correct)), correct, "Correct." if correct else "Not quite.")
    # Right picks minus wrong picks, floored at zero: ticking every box earns nothing.
    right = len(selected & correct_ids)
    wrong = len(selected - correct_ids)
    fraction = max(Decimal(0), Decimal(right - wrong) / Decimal(max(len(correct_ids), 1)))
    fraction = fraction.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
    if fraction == 1:
        return Grade(fraction, True, "Correct.")
    if fraction > 0:
        return Grade(
            fraction,
            False,
            f"Partly right: {right} of {len(correct_ids)} correct option(s) chosen, {wrong} wrong.",
        )
    return Grade(fraction, False, "Not quite.")


def free_text_fraction(answer: Answer) -> Decimal | None:
    """A reviewer's score replaces the student's self-assessment."""
    if answer.review_score is not None:
        points = answer.question.points
        return (answer.review_score / points) if points else Decimal("0")
    if answer.self_assessment:
        return SELF_ASSESSMENT_CREDIT[Answer.SelfAssessment(answer.self_assessment)]
    return None


def points_for(fraction: Decimal | None, points: Decimal) -> Decimal | None:
    if fraction is None:
        return None
    return (fraction * points).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
