"""The instructors' notebook import page: upload, preview (a dry run), import."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from accounts.models import User
from courses import access
from courses.notebook_forms import (
    NotebookImportForm,
    NotebookUploadForm,
    notebooks_preview_token,
)
from courses.notebook_import import NotebookImportResult, chapters_import_from_notebooks


class AuthenticatedRequest(HttpRequest):
    """What a view behind ``login_required`` gets."""

    user: User


def _summary(results: list[NotebookImportResult]) -> str:
    created = sum(r.created for r in results if not r.error)
    updated = sum(r.updated for r in results if not r.error)
    questions = sum(r.questions for r in results if not r.error)
    return (
        f"Imported {len(results)} notebook{'s' if len(results) != 1 else ''}: "
        f"{created} chapter{'s' if created != 1 else ''} created, {updated} updated, "
        f"{questions} question{'s' if questions != 1 else ''}."
    )


@login_required
@require_http_methods(["GET", "POST"])
def notebooks_import(request: AuthenticatedRequest, course_slug: str) -> HttpResponse:
    course_access = access.course_get_for_instructor(user=request.user, course_slug=course_slug)
    course = course_access.course
    upload_form = NotebookUploadForm()
    results: list[NotebookImportResult] = []
    import_form = None
    if request.method == "POST" and "confirm" in request.POST:
        confirm = NotebookImportForm(request.POST, course_id=course.pk, user_id=request.user.pk)
        if confirm.is_valid():
            results = chapters_import_from_notebooks(
                course=course, notebooks=confirm.cleaned_data["preview"]
            )
            done = [r for r in results if not r.error]
            if done:
                messages.success(request, _summary(done))
            for failed in (r for r in results if r.error):
                messages.error(request, f"{failed.notebook} not imported: {failed.error}")
            return redirect("course_detail", course_slug=course.slug)
        for error in confirm.errors.get("preview", []):
            messages.error(request, str(error))
    elif request.method == "POST":
        upload_form = NotebookUploadForm(request.POST, request.FILES)
        if upload_form.is_valid():
            notebooks = upload_form.cleaned_data["notebooks"]
            results = chapters_import_from_notebooks(
                course=course, notebooks=notebooks, dry_run=True
            )
            importable = [n for n, r in zip(notebooks, results, strict=True) if not r.error]
            if importable:
                import_form = NotebookImportForm(
                    initial={
                        "preview": notebooks_preview_token(
                            notebooks=importable, course_id=course.pk, user_id=request.user.pk
                        )
                    },
                    course_id=course.pk,
                    user_id=request.user.pk,
                )
    context = {
        "access": course_access,
        "course": course,
        "upload_form": upload_form,
        "import_form": import_form,
        "results": results,
    }
    return render(request, "courses/notebooks_import.html", context)
