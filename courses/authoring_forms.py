"""Forms of the course editor. They read and tidy input; the rules live in ``courses.authoring``.

Markdown fields carry ``data-markdown-preview`` (``static/js/markdown-preview.js`` renders them
live); code fields carry ``data-code-field`` (``static/js/question-builder.js`` turns them into
editors). Without JavaScript both are plain text areas.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.utils import timezone

from courses.authoring import ChoiceData, QuestionData, RubricItemData
from courses.code_questions import CODE_MAX_LENGTH, TIME_LIMIT_MAX, TIME_LIMIT_MIN
from courses.forms import CodeField, parse_number
from courses.models import Course, Question, Questionnaire

SLUG_HELP = "Lowercase letters, digits and hyphens; it appears in the address."


def markdown_widget(preview_id: str, rows: int = 8) -> forms.Textarea:
    return forms.Textarea(
        attrs={"rows": rows, "data-markdown-preview": preview_id, "class": "markdown-input"}
    )


def code_widget(label: str) -> forms.Textarea:
    return forms.Textarea(
        attrs={"rows": 10, "data-code-field": label, "class": "code-input", "spellcheck": "false"}
    )


class CourseForm(forms.Form):
    slug = forms.SlugField(max_length=80, help_text=SLUG_HELP)
    title = forms.CharField(max_length=200)
    description = forms.CharField(
        required=False,
        widget=markdown_widget("description-preview"),
        help_text="Markdown; shown on the course's front page.",
    )
    enrolment = forms.ChoiceField(choices=Course.Enrolment.choices, widget=forms.RadioSelect)
    invite_code = forms.CharField(
        max_length=64,
        required=False,
        help_text="Students type it to enrol when the course is invite-only.",
    )

    def __init__(self, *args: Any, creating: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not creating:
            # Links, course folders and bookmarks name the course by its slug.
            del self.fields["slug"]

    @classmethod
    def for_course(cls, course: Course, data: Any = None) -> CourseForm:
        initial = {
            "title": course.title,
            "description": course.description,
            "enrolment": course.enrolment,
            "invite_code": course.invite_code,
        }
        return cls(data, initial=initial, creating=False)


class ChapterForm(forms.Form):
    title = forms.CharField(max_length=200)
    slug = forms.SlugField(max_length=80, help_text=SLUG_HELP)
    body = forms.CharField(
        required=False,
        strip=False,
        widget=markdown_widget("body-preview", rows=24),
        help_text="Markdown with $maths$; the preview beside it is what students will see.",
    )


class QuestionnaireSettingsForm(forms.ModelForm):
    class Meta:
        model = Questionnaire
        fields = ["title", "max_attempts", "counts", "reveal", "late", "due_at"]
        widgets = {
            "due_at": forms.DateTimeInput(
                attrs={"type": "datetime-local", "class": "input-medium"},
                format="%Y-%m-%dT%H:%M",
            ),
            "max_attempts": forms.NumberInput(attrs={"class": "input-short", "min": 0}),
        }
        labels = {"due_at": "Due", "late": "Late work", "counts": "Score that counts"}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields[
            "due_at"
        ].help_text = f"Optional; in the site's time zone ({timezone.get_current_timezone_name()})."


KIND_HELP: dict[str, str] = {
    Question.Kind.SINGLE: "Students pick one option; exactly one is correct.",
    Question.Kind.MULTIPLE: "Students tick every option that applies; partial credit.",
    Question.Kind.TRUE_FALSE: "A statement students mark true or false.",
    Question.Kind.NUMERIC: "A number, right within a tolerance.",
    Question.Kind.SHORT_TEXT: "A word or phrase matched against accepted answers or a pattern.",
    Question.Kind.FREE_TEXT: "A written answer, self-assessed against a reference and reviewed.",
    Question.Kind.CODE: "Python tested by visible and hidden tests in the sandbox.",
}


class QuestionKindForm(forms.Form):
    kind = forms.ChoiceField(
        choices=Question.Kind.choices, widget=forms.RadioSelect, label="Kind of question"
    )


class QuestionForm(forms.Form):
    """The fields every question has, and those of its kind (the others are removed)."""

    key = forms.SlugField(
        max_length=80,
        help_text="Stable id within the questionnaire (course folders and exports use it).",
    )
    prompt = forms.CharField(strip=False, widget=markdown_widget("prompt-preview"))
    points = forms.DecimalField(
        min_value=Decimal("0"),
        max_digits=6,
        decimal_places=2,
        initial=Decimal("1"),
        widget=forms.NumberInput(attrs={"class": "input-short", "step": "0.25"}),
    )
    explanation = forms.CharField(
        required=False,
        strip=False,
        widget=markdown_widget("explanation-preview", rows=5),
        help_text="Shown with the correct answers, as the questionnaire's reveal policy allows.",
    )
    # true_false
    correct_boolean = forms.TypedChoiceField(
        label="The statement is",
        choices=[("true", "True"), ("false", "False")],
        coerce=lambda value: value == "true",
        widget=forms.RadioSelect,
    )
    # numeric
    numeric_answer = forms.CharField(
        label="Correct answer",
        max_length=64,
        widget=forms.TextInput(attrs={"class": "input-short", "inputmode": "decimal"}),
    )
    tolerance = forms.FloatField(
        min_value=0,
        initial=0,
        widget=forms.NumberInput(attrs={"class": "input-short", "step": "any"}),
        help_text="How far from the answer still counts as right.",
    )
    tolerance_mode = forms.ChoiceField(
        choices=Question.ToleranceMode.choices,
        initial=Question.ToleranceMode.ABSOLUTE,
        help_text="Relative: the tolerance is a fraction of the answer (0.01 is 1 %).",
    )
    # short_text
    accepted_answers = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="One per line; compared ignoring case and surrounding spaces.",
    )
    answer_regex = forms.CharField(
        label="Pattern",
        max_length=500,
        required=False,
        strip=False,
        help_text="Optional Python regular expression an answer may match instead.",
    )
    # free_text
    reference_answer = forms.CharField(
        strip=False,
        widget=markdown_widget("reference-preview", rows=6),
        help_text="Markdown; shown after submitting so students can assess their answer.",
    )
    # code
    starter_code = CodeField(
        required=False,
        max_length=CODE_MAX_LENGTH,
        widget=code_widget("Starter code"),
        help_text="What the answer box starts with (the student's solution.py).",
    )
    visible_tests = CodeField(
        required=False,
        max_length=CODE_MAX_LENGTH,
        widget=code_widget("Visible tests"),
        help_text="def test_...(): functions with asserts; students see them and their results.",
    )
    hidden_tests = CodeField(
        required=False,
        max_length=CODE_MAX_LENGTH,
        widget=code_widget("Hidden tests"),
        help_text="Never shown: students see only how many passed.",
    )
    time_limit_seconds = forms.IntegerField(
        label="Time limit (seconds)",
        min_value=TIME_LIMIT_MIN,
        max_value=TIME_LIMIT_MAX,
        initial=10,
        widget=forms.NumberInput(attrs={"class": "input-short"}),
        help_text="Wall clock for each run of the tests (visible, then hidden).",
    )

    KIND_FIELDS: dict[str, tuple[str, ...]] = {
        Question.Kind.TRUE_FALSE: ("correct_boolean",),
        Question.Kind.NUMERIC: ("numeric_answer", "tolerance", "tolerance_mode"),
        Question.Kind.SHORT_TEXT: ("accepted_answers", "answer_regex"),
        Question.Kind.FREE_TEXT: ("reference_answer",),
        Question.Kind.CODE: ("starter_code", "visible_tests", "hidden_tests", "time_limit_seconds"),
    }
    OPTIONAL_FIELDS = frozenset(name for names in KIND_FIELDS.values() for name in names)

    def __init__(self, *args: Any, kind: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.kind = kind
        keep = set(self.KIND_FIELDS.get(kind, ()))
        for name in self.OPTIONAL_FIELDS - keep:
            del self.fields[name]

    @classmethod
    def for_question(cls, question: Question, data: Any = None) -> QuestionForm:
        initial: dict[str, Any] = {
            "key": question.key,
            "prompt": question.prompt,
            "points": question.points,
            "explanation": question.explanation,
            "correct_boolean": None
            if question.correct_boolean is None
            else ("true" if question.correct_boolean else "false"),
            "numeric_answer": "" if question.numeric_answer is None else question.numeric_answer,
            "tolerance": question.tolerance,
            "tolerance_mode": question.tolerance_mode,
            "accepted_answers": "\n".join(question.accepted_answers),
            "answer_regex": question.answer_regex,
            "reference_answer": question.reference_answer,
            "starter_code": question.starter_code,
            "visible_tests": question.visible_tests,
            "hidden_tests": question.hidden_tests,
            "time_limit_seconds": question.time_limit_seconds,
        }
        return cls(data, initial=initial, kind=question.kind)

    def clean_numeric_answer(self) -> float:
        return parse_number(self.cleaned_data["numeric_answer"])

    def clean_accepted_answers(self) -> list[str]:
        lines = self.cleaned_data["accepted_answers"].splitlines()
        return [line.strip() for line in lines if line.strip()]

    def question_data(
        self, *, choices: list[ChoiceData], rubric: list[RubricItemData]
    ) -> QuestionData:
        values = {
            name: value
            for name, value in self.cleaned_data.items()
            if name in QuestionData.__dataclass_fields__ and value is not None
        }
        return QuestionData(**values, choices=choices, rubric=rubric)


class ChoiceRowForm(forms.Form):
    id = forms.IntegerField(required=False, widget=forms.HiddenInput)
    text = forms.CharField(
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 2, "class": "choice-text"}),
        label="Text",
    )
    is_correct = forms.BooleanField(required=False, label="Correct")


class RubricRowForm(forms.Form):
    id = forms.IntegerField(required=False, widget=forms.HiddenInput)
    text = forms.CharField(max_length=300, required=False, label="Criterion")
    points = forms.DecimalField(
        min_value=Decimal("0"),
        max_digits=6,
        decimal_places=2,
        required=False,
        widget=forms.NumberInput(attrs={"class": "input-short", "step": "0.25"}),
    )


ChoiceFormSet = forms.formset_factory(
    ChoiceRowForm, extra=2, can_delete=True, max_num=50, validate_max=True
)
RubricFormSet = forms.formset_factory(
    RubricRowForm, extra=1, can_delete=True, max_num=30, validate_max=True
)


def _kept_rows(formset: forms.BaseFormSet) -> list[dict[str, Any]]:
    """The rows to save, in order: not ticked for removal, and not left blank."""
    rows = []
    for row in formset.forms:
        data = row.cleaned_data
        if not data or data.get("DELETE"):
            continue
        if not str(data.get("text") or "").strip() and not data.get("id"):
            continue
        rows.append(data)
    return rows


def choice_rows(formset: forms.BaseFormSet) -> list[ChoiceData]:
    return [
        ChoiceData(text=row["text"], is_correct=row["is_correct"], id=row.get("id"))
        for row in _kept_rows(formset)
    ]


def rubric_rows(formset: forms.BaseFormSet) -> list[RubricItemData]:
    return [
        RubricItemData(
            text=row["text"],
            points=row["points"] if row.get("points") is not None else Decimal("0"),
            id=row.get("id"),
        )
        for row in _kept_rows(formset)
    ]


def choice_formset_initial(question: Question | None) -> list[dict[str, Any]]:
    if question is None:
        return []
    return [
        {"id": c.id, "text": c.text, "is_correct": c.is_correct} for c in question.choices.all()
    ]


def rubric_formset_initial(question: Question | None) -> list[dict[str, Any]]:
    if question is None:
        return []
    return [{"id": r.id, "text": r.text, "points": r.points} for r in question.rubric_items.all()]
