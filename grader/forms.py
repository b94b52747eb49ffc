from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from django import forms

from grader.pipeline import MAX_CODE_BYTES
from grader.submissions import SubmissionRefused, code_file_check, submission_code_validate

EDITOR_FILENAME = "editor.py"


@dataclass(frozen=True)
class SubmittedCode:
    """What a submit form hands to ``submission_create``."""

    filename: str
    content: bytes


class SubmitTokenMixin(forms.Form):
    """A fresh token per rendered form: a double click, or a retry after an error page, sends
    the same token, and ``submission_create`` answers with the submission it already made."""

    token = forms.UUIDField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["token"].initial = uuid.uuid4()


class SubmissionForm(SubmitTokenMixin):
    """Upload a .py or .ipynb. ``cleaned_data["code_file"]`` is a ``SubmittedCode``."""

    code_file = forms.FileField(
        label="Your code (.py or .ipynb)",
        help_text=f"At most {MAX_CODE_BYTES // 1024} KB.",
        widget=forms.ClearableFileInput(attrs={"accept": ".py,.ipynb"}),
        error_messages={
            "required": "Choose a .py or .ipynb file to upload.",
            "empty": "The file is empty: there is no code to run.",
        },
    )

    def clean_code_file(self) -> SubmittedCode:
        upload = self.cleaned_data["code_file"]
        try:
            # Type and size first, so a large file of the wrong kind is never read into memory.
            code_file_check(filename=upload.name, size=upload.size)
            content = upload.read()
            submission_code_validate(filename=upload.name, content=content)
        except SubmissionRefused as error:
            raise forms.ValidationError(str(error)) from None
        return SubmittedCode(filename=upload.name, content=content)


class EditorSubmissionForm(SubmitTokenMixin):
    """Code written in the page's editor (or its plain textarea), submitted as ``editor.py``."""

    code = forms.CharField(
        label="Your code",
        strip=False,
        error_messages={"required": "The editor is empty: write some code before submitting."},
        widget=forms.Textarea(
            attrs={
                "rows": 22,
                "spellcheck": "false",
                "autocapitalize": "off",
                "autocomplete": "off",
                "data-code-input": "",
                "data-code-editor": "",
                "class": "code-input",
            }
        ),
    )

    def clean_code(self) -> SubmittedCode:
        # Browsers post a textarea's line breaks as CRLF; the code is stored as the editor shows it.
        code = self.cleaned_data["code"].replace("\r\n", "\n")
        if not code.strip():
            raise forms.ValidationError("The editor is empty: write some code before submitting.")
        try:
            submission_code_validate(filename=EDITOR_FILENAME, content=code.encode())
        except SubmissionRefused as error:
            raise forms.ValidationError(str(error)) from None
        return SubmittedCode(filename=EDITOR_FILENAME, content=code.encode())


class LeaderboardAnonymityForm(forms.Form):
    anonymous = forms.BooleanField(
        required=False,
        label="Appear as an anonymous student on this course's leaderboards",
        help_text="Other students see a number instead of your name; the course staff still "
        "see who you are.",
    )


class SubmissionPairForm(forms.Form):
    """Pick two of a student's submissions to compare (``choices``: their ids and labels)."""

    old = forms.TypedChoiceField(label="From", coerce=int)
    new = forms.TypedChoiceField(label="To", coerce=int)

    def __init__(self, *args: Any, choices: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in ("old", "new"):
            field = self.fields[name]
            assert isinstance(field, forms.TypedChoiceField)
            field.choices = choices
        if len(choices) >= 2:  # newest first: compare the latest with the one before
            self.fields["old"].initial = choices[1][0]
            self.fields["new"].initial = choices[0][0]
