from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from django import forms
from django.conf import settings

from courses.code_questions import CODE_MAX_LENGTH
from courses.models import Answer, Question, RubricItem
from topdown.numbers import format_number

SHORT_TEXT_MAX_LENGTH = 500
NUMBER_MAX_LENGTH = 64


def field_name(question: Question) -> str:
    return f"q_{question.id}"


def parse_number(raw: str) -> float:
    """Read a number as people type it: spaces, a unicode minus and scientific notation allowed."""
    text = raw.strip().replace("\u2212", "-").replace(" ", "").replace("\u202f", "")
    if text.count(",") == 1 and "." not in text:
        text = text.replace(",", ".")  # a decimal comma, as in 0,5
    try:
        value = float(text)
    except ValueError:
        raise forms.ValidationError(
            f"“{raw.strip()}” is not a number. Write e.g. 0.25 or 1e-3."
        ) from None
    if not math.isfinite(value):
        raise forms.ValidationError("Enter a finite number.")
    return value


class CodeField(forms.CharField):
    """Source code as typed: indentation kept, line endings made ``\n`` before the length check
    (browsers post a textarea's line breaks as ``\r\n``, counted twice)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strip=False, **kwargs)

    def to_python(self, value: object) -> str:
        text = super().to_python(value)
        return text.replace("\r\n", "\n").replace("\r", "\n")


@dataclass(frozen=True)
class QuestionField:
    """What one question of the form shows, by value: ``topdown.fragments`` keeps its HTML."""

    number: int
    question_id: int
    kind: str
    points: Decimal
    prompt: str
    choices: tuple[tuple[int, str, bool], ...]  # id, text, checked
    html_name: str
    auto_id: str
    value: str  # as the input shows it: "" for none, "true" or "false" for a true/false question
    errors: str  # the field's error list as HTML, "" for none
    max_length: int | None
    visible_tests: str
    has_hidden_tests: bool
    time_limit_seconds: int | None


class QuestionnaireForm(forms.Form):
    """One field per question of this questionnaire; anything else posted is ignored."""

    token = forms.UUIDField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: object, questions: list[Question], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.questions = questions
        for question in questions:
            choices = ()
            if question.has_choices:
                choices = tuple((c.id, c.text) for c in question.choices.all())
            self.fields[field_name(question)] = _field_for(question.kind, choices)

    @classmethod
    def for_draft(
        cls, *, questions: list[Question], responses: dict[int, object], token: uuid.UUID
    ) -> QuestionnaireForm:
        """An unbound form showing saved answers as the student typed them."""
        initial: dict[str, object] = {"token": token}
        for question in questions:
            response = responses.get(question.id)
            if question.kind == Question.Kind.TRUE_FALSE and response is not None:
                response = "true" if response else "false"
            elif question.kind == Question.Kind.NUMERIC and isinstance(response, int | float):
                response = format_number(response)
            elif question.kind == Question.Kind.SINGLE and isinstance(response, list) and response:
                response = response[0]
            elif question.kind == Question.Kind.CODE and response is None:
                response = question.starter_code
            initial[field_name(question)] = response
        return cls(initial=initial, questions=questions)

    def question_fields(self) -> list[QuestionField]:
        """Each question with its answer and errors as this form shows them."""
        fields = []
        for number, question in enumerate(self.questions, start=1):
            bound = self[field_name(question)]
            value = bound.value()
            if question.kind == Question.Kind.MULTIPLE:
                picked = {str(v) for v in value or []}
            else:
                picked = {"" if value is None else str(value)}
            choices = tuple(
                (choice.id, choice.text, str(choice.id) in picked)
                for choice in (question.choices.all() if question.has_choices else ())
            )
            is_code = question.kind == Question.Kind.CODE
            fields.append(
                QuestionField(
                    number=number,
                    question_id=question.id,
                    kind=question.kind,
                    points=question.points,
                    prompt=question.prompt,
                    choices=choices,
                    html_name=bound.html_name,
                    auto_id=bound.auto_id,
                    value="" if value is None or isinstance(value, list) else str(value),
                    errors=str(bound.errors) if bound.errors else "",
                    max_length=getattr(bound.field, "max_length", None),
                    visible_tests=question.visible_tests if is_code else "",
                    has_hidden_tests=question.has_hidden_tests if is_code else False,
                    time_limit_seconds=question.time_limit_seconds if is_code else None,
                )
            )
        return fields

    def clean(self) -> dict[str, object]:
        cleaned = super().clean() or {}
        for question in self.questions:
            name = field_name(question)
            if question.kind == Question.Kind.NUMERIC and cleaned.get(name):
                try:
                    cleaned[name] = parse_number(cleaned[name])
                except forms.ValidationError as error:
                    self.add_error(name, error)
        return cleaned

    def responses(self) -> dict[int, object]:
        """Cleaned answers keyed by question id, as the grader expects them."""
        result: dict[int, object] = {}
        for question in self.questions:
            value = self.cleaned_data.get(field_name(question))
            if question.kind == Question.Kind.SINGLE:
                value = [value] if value is not None else []
            elif value == "" or (question.kind == Question.Kind.CODE and not value.strip()):
                value = None
            result[question.id] = value
        return result

    @property
    def token_value(self) -> uuid.UUID | None:
        return self.cleaned_data.get("token")


class SelfAssessmentForm(forms.Form):
    assessment = forms.ChoiceField(choices=Answer.SelfAssessment.choices)


class ReviewForm(forms.Form):
    score = forms.DecimalField(min_value=Decimal("0"), max_digits=6, decimal_places=2)
    feedback = forms.CharField(
        required=False, max_length=settings.ANSWER_TEXT_MAX_LENGTH, widget=forms.Textarea
    )

    def __init__(
        self,
        *args: object,
        points: Decimal,
        rubric: Sequence[RubricItem] = (),
        **kwargs: object,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.points = points
        self.fields["score"].max_value = points
        self.fields["score"].widget.attrs.update({"max": str(points), "step": "0.25"})
        if rubric:
            # The ticked items make the score; there is nothing to type.
            del self.fields["score"]
            self.fields["rubric_items"] = forms.TypedMultipleChoiceField(
                choices=[(item.id, item.text) for item in rubric],
                coerce=int,
                required=False,
                widget=forms.CheckboxSelectMultiple,
            )

    def clean_score(self) -> Decimal:
        score = self.cleaned_data["score"]
        try:
            if score > self.points:
                raise forms.ValidationError(f"The score can be at most {self.points}.")
        except InvalidOperation:
            raise forms.ValidationError("Enter a number.") from None
        return score


class EnrolForm(forms.Form):
    invite_code = forms.CharField(max_length=64, required=False)


@lru_cache(maxsize=1024)
def _field_for(kind: str, choices: tuple[tuple[int, str], ...]) -> forms.Field:
    """The form field of a question of ``kind`` (with ``choices``, by id and text, for the
    choice kinds). Built once per process for each distinct question and shared by the forms
    that show it: a field holds no state of its own form (Django copies only a form's declared
    fields, which these are not), and building ten of them cost a tenth of the page."""
    invalid_choice = {"invalid_choice": "That option is not part of this question."}
    if kind == Question.Kind.SINGLE:
        return forms.TypedChoiceField(
            choices=list(choices),
            coerce=int,
            required=False,
            empty_value=None,
            error_messages=invalid_choice,
        )
    if kind == Question.Kind.MULTIPLE:
        return forms.TypedMultipleChoiceField(
            choices=list(choices),
            coerce=int,
            required=False,
            error_messages=invalid_choice,
        )
    if kind == Question.Kind.TRUE_FALSE:
        return forms.TypedChoiceField(
            choices=[("true", "True"), ("false", "False")],
            coerce=lambda v: v == "true",
            required=False,
            empty_value=None,
            error_messages={"invalid_choice": "Answer true or false."},
        )
    if kind == Question.Kind.NUMERIC:
        return forms.CharField(max_length=NUMBER_MAX_LENGTH, required=False)
    if kind == Question.Kind.SHORT_TEXT:
        return forms.CharField(max_length=SHORT_TEXT_MAX_LENGTH, required=False)
    if kind == Question.Kind.CODE:
        return CodeField(max_length=CODE_MAX_LENGTH, required=False, widget=forms.Textarea)
    return forms.CharField(
        max_length=settings.ANSWER_TEXT_MAX_LENGTH,
        required=False,
        strip=True,
        widget=forms.Textarea,
    )
