"""Forms of the course staff's pages: the submissions list's filters, regrades, overrides."""

from __future__ import annotations

from typing import Any

from django import forms

from grader.models import RunStatus

SORT_CHOICES = [
    ("newest", "Newest first"),
    ("oldest", "Oldest first"),
    ("score_high", "Highest score first"),
    ("score_low", "Lowest score first"),
]


class SubmissionFilterForm(forms.Form):
    """The submissions list's filters, from the query string. Every field is optional."""

    status = forms.ChoiceField(
        choices=[("", "Any status"), *RunStatus.choices], required=False, label="Status"
    )
    student = forms.CharField(
        required=False,
        max_length=80,
        label="Student",
        widget=forms.TextInput(attrs={"placeholder": "username or name"}),
    )
    score_min = forms.FloatField(required=False, label="Score from")
    score_max = forms.FloatField(required=False, label="Score to")
    sort = forms.ChoiceField(choices=SORT_CHOICES, required=False, label="Sort")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        low, high = data.get("score_min"), data.get("score_max")
        if low is not None and high is not None and low > high:
            raise forms.ValidationError("The lowest score is above the highest.")
        return data

    def filters(self) -> dict[str, Any]:
        """Keyword arguments for ``submissions_for_staff``; none if the form is not valid."""
        if not self.is_bound or not self.is_valid():
            return {}
        data = self.cleaned_data
        return {
            "status": data["status"],
            "student": data["student"].strip(),
            "score_min": data["score_min"],
            "score_max": data["score_max"],
            "sort": data["sort"] or "newest",
        }


class IdListField(forms.Field):
    """Every value posted under the field's name, as whole numbers (checkboxes)."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value: Any) -> list[int]:
        if not value:
            return []
        try:
            return sorted({int(item) for item in value})
        except (TypeError, ValueError):
            raise forms.ValidationError("Pick submissions from the list.") from None


class RegradeForm(forms.Form):
    scope = forms.ChoiceField(
        choices=[("selected", "The selected submissions"), ("all", "Every submission")]
    )
    submission = IdListField(required=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("scope") == "selected" and not data.get("submission"):
            raise forms.ValidationError("Select at least one submission to regrade.")
        return data


class ScoreOverrideForm(forms.Form):
    score = forms.FloatField(
        label="Score that counts",
        help_text="In the metric's own units, as measured scores are (0.85, not 85%).",
    )
    comment = forms.CharField(
        label="Why",
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="The student sees this beside the score.",
        error_messages={"required": "Say why the score is overridden: the student sees it."},
    )
