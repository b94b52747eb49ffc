from __future__ import annotations

from django import forms

from grader.pipeline import MAX_CODE_BYTES


class SubmissionForm(forms.Form):
    code_file = forms.FileField(
        label="Your code (.py or .ipynb)",
        help_text=f"At most {MAX_CODE_BYTES // 1024} KB.",
        widget=forms.ClearableFileInput(attrs={"accept": ".py,.ipynb"}),
    )

    def clean_code_file(self) -> object:
        upload = self.cleaned_data["code_file"]
        if upload.size > MAX_CODE_BYTES:
            raise forms.ValidationError(
                f"The file is {upload.size // 1024} KB; the limit is {MAX_CODE_BYTES // 1024} KB."
            )
        return upload
