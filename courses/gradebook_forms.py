"""The instructor's weights form: a non-negative number per graded questionnaire and assignment."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms

from courses.gradebook import GradeColumn


class GradeWeightsForm(forms.Form):
    def __init__(self, *args: Any, columns: list[GradeColumn], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.columns = columns
        for column in columns:
            self.fields[column.key] = forms.DecimalField(
                label=f"{column.chapter.title}: {column.title}",
                min_value=Decimal(0),
                max_digits=6,
                decimal_places=2,
                initial=column.weight,
            )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        values = [cleaned.get(column.key) for column in self.columns]
        if values and all(value is not None for value in values) and not any(values):
            raise forms.ValidationError("At least one weight must be above zero.")
        return cleaned

    def weights(self) -> dict[tuple[str, int], Decimal]:
        return {
            (column.kind, column.object_id): self.cleaned_data[column.key]
            for column in self.columns
        }
