"""Course folders in the browser: download a course as a zip, upload a zipped folder to update
it, or upload one to create a new course."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from accounts.models import User
from courses import access
from courses.course_folder import CourseFolderError, ImportReport
from courses.course_zip import course_zip_build, course_zip_import
from courses.folder_forms import CourseZipForm


class AuthenticatedRequest(HttpRequest):
    """What a view behind ``login_required`` gets."""

    user: User


@login_required
@require_http_methods(["GET", "POST"])
def course_folder(request: AuthenticatedRequest, course_slug: str) -> HttpResponse:
    course_access = access.course_get_for_instructor(user=request.user, course_slug=course_slug)
    course = course_access.course
    form = CourseZipForm()
    report: ImportReport | None = None
    errors: list[str] = []
    dry_run = "preview" in request.POST
    if request.method == "POST":
        form = CourseZipForm(request.POST, request.FILES)
        if form.is_valid():
            try:
                course, report = course_zip_import(
                    upload=form.cleaned_data["archive"], course=course, dry_run=dry_run
                )
            except CourseFolderError as error:
                errors = error.errors
    context = {
        "access": course_access,
        "course": course,
        "form": form,
        "report": report,
        "errors": errors,
        "dry_run": dry_run,
    }
    return render(request, "courses/folder.html", context)


@login_required
@require_GET
def course_folder_zip(request: AuthenticatedRequest, course_slug: str) -> HttpResponse:
    course = access.course_get_for_instructor(user=request.user, course_slug=course_slug).course
    response = HttpResponse(course_zip_build(course), content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{course.slug}.zip"'
    response["Cache-Control"] = "private, no-store"
    return response


@login_required
@require_http_methods(["GET", "POST"])
def course_folder_new(request: AuthenticatedRequest) -> HttpResponse:
    access.course_check_can_create(user=request.user)
    form = CourseZipForm()
    errors: list[str] = []
    if request.method == "POST":
        form = CourseZipForm(request.POST, request.FILES)
        if form.is_valid():
            try:
                course, report = course_zip_import(
                    upload=form.cleaned_data["archive"], new=True, instructor=request.user
                )
            except CourseFolderError as error:
                errors = error.errors
            else:
                messages.success(request, f"Created the course {course.title}: {report.summary()}.")
                return redirect("course_detail", course_slug=course.slug)
    return render(request, "courses/folder_new.html", {"form": form, "errors": errors})
