"""The upload form of the course folder pages: one zipped course folder."""

from __future__ import annotations

from django import forms
from django.core.files.uploadedfile import UploadedFile

from courses.course_zip import ZIP_MAX_UPLOAD_BYTES

ZIP_MAX_UPLOAD_MEGABYTES = ZIP_MAX_UPLOAD_BYTES // (1024 * 1024)


class CourseZipForm(forms.Form):
    archive = forms.FileField(
        label="Zipped course folder",
        help_text=(
            f"A .zip of a course folder (course.yaml at the top, or inside one folder), "
            f"at most {ZIP_MAX_UPLOAD_MEGABYTES} MB."
        ),
        widget=forms.ClearableFileInput(attrs={"accept": ".zip,application/zip"}),
    )

    def clean_archive(self) -> UploadedFile:
        upload: UploadedFile = self.cleaned_data["archive"]
        if not (upload.name or "").lower().endswith(".zip"):
            raise forms.ValidationError("Upload a .zip file.")
        if (upload.size or 0) > ZIP_MAX_UPLOAD_BYTES:
            raise forms.ValidationError(f"The zip is over the {ZIP_MAX_UPLOAD_MEGABYTES} MB limit.")
        return upload
