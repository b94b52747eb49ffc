"""Forms of the notebook import page: upload and preview, then confirm the previewed import."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core import signing
from django.core.files.uploadedfile import UploadedFile

from courses.notebooks import NotebookError, ParsedNotebook, notebook_parse

NOTEBOOK_MAX_BYTES = 5 * 1024 * 1024
NOTEBOOK_MAX_MEGABYTES = NOTEBOOK_MAX_BYTES // (1024 * 1024)
NOTEBOOKS_MAX_FILES = 30
# The confirm form carries what the preview showed, signed, so the import is exactly that.
PREVIEW_MAX_AGE_SECONDS = 60 * 60


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("widget", MultipleFileInput(attrs={"accept": ".ipynb"}))
        super().__init__(**kwargs)

    def clean(self, data: Any, initial: Any = None) -> list[UploadedFile]:
        files = [f for f in (data if isinstance(data, list | tuple) else [data]) if f]
        if not files:
            super().clean(None, initial)  # raises "required"
        return [super(MultipleFileField, self).clean(f, initial) for f in files]


def _preview_salt(*, course_id: int, user_id: int) -> str:
    return f"courses.notebook_import:{course_id}:{user_id}"


class NotebookUploadForm(forms.Form):
    notebooks = MultipleFileField(
        label="Notebooks",
        help_text=f"One or more .ipynb files, at most {NOTEBOOK_MAX_MEGABYTES} MB each.",
    )

    def clean_notebooks(self) -> list[ParsedNotebook]:
        files: list[UploadedFile] = self.cleaned_data["notebooks"]
        if len(files) > NOTEBOOKS_MAX_FILES:
            raise forms.ValidationError(f"Upload at most {NOTEBOOKS_MAX_FILES} notebooks at once.")
        parsed, errors = [], []
        for upload in files:
            name = upload.name or "notebook"
            if not name.lower().endswith(".ipynb"):
                errors.append(f"{name}: not an .ipynb file.")
            elif (size := upload.size or 0) > NOTEBOOK_MAX_BYTES:
                errors.append(
                    f"{name}: {size / (1024 * 1024):.1f} MB is over the "
                    f"{NOTEBOOK_MAX_MEGABYTES} MB limit."
                )
            else:
                try:
                    parsed.append(notebook_parse(upload.read(), name=name))
                except NotebookError as error:
                    errors.append(f"{name}: {error}.")
        if errors:
            raise forms.ValidationError(errors)
        return parsed


def notebooks_preview_token(
    *, notebooks: list[ParsedNotebook], course_id: int, user_id: int
) -> str:
    return signing.dumps(
        [n.as_dict() for n in notebooks],
        salt=_preview_salt(course_id=course_id, user_id=user_id),
        compress=True,
    )


class NotebookImportForm(forms.Form):
    preview = forms.CharField(widget=forms.HiddenInput)

    def __init__(self, *args: Any, course_id: int, user_id: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.salt = _preview_salt(course_id=course_id, user_id=user_id)

    def clean_preview(self) -> list[ParsedNotebook]:
        try:
            data = signing.loads(
                self.cleaned_data["preview"], salt=self.salt, max_age=PREVIEW_MAX_AGE_SECONDS
            )
            return [ParsedNotebook.from_dict(item) for item in data]
        except signing.SignatureExpired:
            raise forms.ValidationError("This preview is over an hour old; upload again.") from None
        except (signing.BadSignature, KeyError, TypeError):
            raise forms.ValidationError("This preview is not valid; upload again.") from None
