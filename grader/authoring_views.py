"""Instructors' pages for further-research assignments: the editor, publishing, baselines (add,
edit, run, watch) and datasets (upload with a report of what was found).

Every view starts with an ``*_get_for_instructor`` access function: TAs review and grade, they
do not change course content (403).
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.forms import Form
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.defaultfilters import filesizeformat
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.models import User
from grader import access, authoring, results
from grader.authoring_forms import (
    DESCRIPTION_PREVIEW_ID,
    AssignmentCreateForm,
    AssignmentForm,
    BaselineForm,
    DatasetUploadForm,
    dataset_upload_max_bytes,
)
from grader.datasets import DatasetInvalid
from grader.models import Assignment, BaselineRun
from grader.services import DatasetError
from grader.views import dataset_samples_response
from topdown.http import safe_target


class AuthenticatedRequest(HttpRequest):
    """What a view behind ``login_required`` gets."""

    user: User


def _errors_to_form(form: Form, error: ValidationError) -> None:
    """A service's ``ValidationError`` shown on the form: by field where the form has one."""
    if hasattr(error, "error_dict"):
        for field, errors in error.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, error.messages)


def _edit_url(assignment: Assignment) -> str:
    return reverse("assignment_edit", args=[assignment.slug])


# --- Assignments --------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def assignment_create(
    request: AuthenticatedRequest, course_slug: str, chapter_slug: str
) -> HttpResponse:
    course_access, chapter = access.chapter_get_for_instructor(
        user=request.user, course_slug=course_slug, chapter_slug=chapter_slug
    )
    form = AssignmentCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            assignment = authoring.assignment_create(
                chapter=chapter,
                title=form.cleaned_data["title"],
                slug=form.cleaned_data["slug"],
                description=form.cleaned_data["description"].replace("\r\n", "\n"),
            )
        except ValidationError as error:
            _errors_to_form(form, error)
        else:
            messages.success(
                request,
                f"Draft “{assignment.title}” created. Students will not see it until you "
                "publish it.",
            )
            return redirect(_edit_url(assignment))
    context = {
        "access": course_access,
        "course": course_access.course,
        "chapter": chapter,
        "form": form,
        "preview_id": DESCRIPTION_PREVIEW_ID,
    }
    return render(request, "grader/authoring/assignment_create.html", context)


def _editor_context(assignment: Assignment, form: AssignmentForm) -> dict[str, Any]:
    course = assignment.chapter.course
    rows = authoring.baselines_for_authoring(assignment=assignment)
    return {
        "course": course,
        "chapter": assignment.chapter,
        "assignment": assignment,
        "form": form,
        "preview_id": DESCRIPTION_PREVIEW_ID,
        "publish_problems": (
            []
            if assignment.published
            else authoring.assignment_publish_problems(assignment=assignment)
        ),
        "rows": rows,
        "any_active": any(row.is_active for row in rows),
        "status_url": reverse("assignment_baselines_status", args=[assignment.slug]),
        "metric": assignment.metric_spec,
    }


@login_required
@require_http_methods(["GET", "POST"])
def assignment_edit(request: AuthenticatedRequest, assignment_slug: str) -> HttpResponse:
    course_access, assignment = access.assignment_get_for_instructor(
        user=request.user, assignment_slug=assignment_slug
    )
    datasets = authoring.datasets_for_course(course=course_access.course)
    form = AssignmentForm(request.POST or None, assignment=assignment, datasets=datasets)
    if request.method == "POST" and form.is_valid():
        try:
            with_changes = authoring.assignment_update(
                assignment=assignment, changes=form.changes()
            )
        except ValidationError as error:
            _errors_to_form(form, error)
            # The form shows what was posted; the page's other parts what is saved.
            assignment.refresh_from_db()
        else:
            messages.success(request, "Saved.")
            return redirect(_edit_url(with_changes))
    return render(
        request,
        "grader/authoring/assignment_edit.html",
        _editor_context(assignment, form),
    )


@login_required
@require_POST
def assignment_publish(request: AuthenticatedRequest, assignment_slug: str) -> HttpResponse:
    _, assignment = access.assignment_get_for_instructor(
        user=request.user, assignment_slug=assignment_slug
    )
    publish = request.POST.get("published") == "1"
    try:
        authoring.assignment_publish(assignment=assignment, published=publish)
    except ValidationError as error:
        for problem in error.messages:
            messages.error(request, f"Not published: {problem}")
    else:
        if publish and not assignment.chapter.published:
            messages.warning(
                request,
                "Published, but its chapter is a draft: students will see the assignment once "
                "the chapter is published.",
            )
        elif publish:
            messages.success(request, "Published: the course's students can see it and submit.")
        else:
            messages.success(
                request, "Back to a draft: students no longer see it. Their work is kept."
            )
    return redirect(_edit_url(assignment))


# --- Baselines ----------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def baseline_create(request: AuthenticatedRequest, assignment_slug: str) -> HttpResponse:
    course_access, assignment = access.assignment_get_for_instructor(
        user=request.user, assignment_slug=assignment_slug
    )
    form = BaselineForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            baseline = authoring.baseline_create(
                assignment=assignment,
                name=data["name"],
                description=data["description"],
                code=data["code"],
                filename=data["filename"],
            )
        except ValidationError as error:
            _errors_to_form(form, error)
        else:
            messages.success(
                request, f"Baseline “{baseline.name}” added. Run the baselines to score it."
            )
            return redirect(_edit_url(assignment) + "#baselines-heading")
    context = {
        "course": course_access.course,
        "assignment": assignment,
        "form": form,
        "baseline": None,
    }
    return render(request, "grader/authoring/baseline_form.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def baseline_edit(
    request: AuthenticatedRequest, assignment_slug: str, baseline_id: int
) -> HttpResponse:
    course_access, baseline = access.baseline_get_for_instructor(
        user=request.user, assignment_slug=assignment_slug, baseline_id=baseline_id
    )
    assignment = baseline.assignment
    form = BaselineForm(request.POST or None, request.FILES or None, baseline=baseline)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            authoring.baseline_update(
                baseline=baseline,
                name=data["name"],
                description=data["description"],
                code=data["code"],
                filename=data["filename"],
            )
        except ValidationError as error:
            _errors_to_form(form, error)
        else:
            messages.success(request, f"Baseline “{baseline.name}” saved.")
            return redirect(_edit_url(assignment) + "#baselines-heading")
    context = {
        "course": course_access.course,
        "assignment": assignment,
        "form": form,
        "baseline": baseline,
    }
    return render(request, "grader/authoring/baseline_form.html", context)


@login_required
@require_POST
def baseline_delete(
    request: AuthenticatedRequest, assignment_slug: str, baseline_id: int
) -> HttpResponse:
    _, baseline = access.baseline_get_for_instructor(
        user=request.user, assignment_slug=assignment_slug, baseline_id=baseline_id
    )
    try:
        authoring.baseline_delete(baseline=baseline)
    except ValidationError as error:
        for problem in error.messages:
            messages.error(request, f"Not deleted: {problem}")
    else:
        messages.success(request, f"Baseline “{baseline.name}” deleted, with its runs.")
    return redirect(_edit_url(baseline.assignment) + "#baselines-heading")


@login_required
@require_POST
def baselines_run(request: AuthenticatedRequest, assignment_slug: str) -> HttpResponse:
    _, assignment = access.assignment_get_for_instructor(
        user=request.user, assignment_slug=assignment_slug
    )
    everything = request.POST.get("scope") == "all"
    try:
        runs = authoring.baselines_run(assignment=assignment, everything=everything)
    except ValidationError as error:
        for problem in error.messages:
            messages.error(request, problem)
    else:
        if runs:
            names = ", ".join(run.baseline.name for run in runs)
            messages.success(request, f"Queued {len(runs)} baseline run(s): {names}.")
        elif everything:
            messages.info(request, "Every baseline already has a run queued or running.")
        else:
            messages.info(
                request,
                "Every baseline's current code has already run on this dataset; use “Rerun "
                "all” to run them again.",
            )
    return redirect(_edit_url(assignment) + "#baselines-heading")


def _row_html(row: authoring.BaselineRow, assignment: Assignment) -> str:
    return render_to_string(
        "grader/authoring/includes/baseline_row.html",
        {"row": row, "assignment": assignment},
    )


@login_required
@require_GET
def baselines_status(request: AuthenticatedRequest, assignment_slug: str) -> JsonResponse:
    """What ``static/js/baseline-status.js`` polls every 2 s while a baseline run is active: each
    row's status and its HTML, drawn by the same partial as the page."""
    _, assignment = access.assignment_get_for_instructor(
        user=request.user, assignment_slug=assignment_slug
    )
    rows = authoring.baselines_for_authoring(assignment=assignment)
    data = {
        "active": any(row.is_active for row in rows),
        "baselines": [
            {
                "id": row.baseline.pk,
                "name": row.baseline.name,
                "status": row.status or "not_run",
                "status_label": row.status_label,
                "failure_reason": row.failure_reason,
                "score": row.public_score,
                "run_id": row.run_id,
                "html": _row_html(row, assignment),
            }
            for row in rows
        ],
    }
    response = JsonResponse(data)
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_GET
def baseline_run_detail(
    request: AuthenticatedRequest, assignment_slug: str, run_id: int
) -> HttpResponse:
    course_access, run = access.baseline_run_get_for_instructor(
        user=request.user, assignment_slug=assignment_slug, run_id=run_id
    )
    assignment = run.baseline.assignment
    context = {
        "course": course_access.course,
        "assignment": assignment,
        "run": run,
        "score_text": results.format_score(assignment.metric_spec, run.public_score),
        "duration": results.format_duration(run.started_at, run.finished_at),
        "other_runs": BaselineRun.objects.filter(baseline=run.baseline)
        .exclude(pk=run.pk)
        .only("id", "status", "public_score", "created_at", "dataset_id", "failure_reason")
        .order_by("-created_at", "-id")[:20],
    }
    return render(request, "grader/authoring/baseline_run.html", context)


# --- Datasets -----------------------------------------------------------------------------------


@login_required
@require_GET
def course_datasets(request: AuthenticatedRequest, course_slug: str) -> HttpResponse:
    course_access = access.course_get_for_instructor(user=request.user, course_slug=course_slug)
    datasets = authoring.datasets_for_course(course=course_access.course).select_related(
        "created_by"
    )
    context = {
        "course": course_access.course,
        "datasets": datasets,
        "next": safe_target(request, request.GET.get("next", "")),
    }
    return render(request, "grader/authoring/datasets.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def dataset_upload(request: AuthenticatedRequest, course_slug: str) -> HttpResponse:
    course_access = access.course_get_for_instructor(user=request.user, course_slug=course_slug)
    course = course_access.course
    form = DatasetUploadForm(request.POST or None, request.FILES or None)
    next_url = safe_target(request, request.POST.get("next") or request.GET.get("next", ""))
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            upload = authoring.dataset_register_upload(
                course=course,
                user=request.user,
                file=data["file"],
                slug=data["slug"],
                name=data["name"],
                task=data["task"],
                n_classes=data["n_classes"],
                class_names=data["class_names"],
                description=data["description"].replace("\r\n", "\n"),
                licence=data["licence"].replace("\r\n", "\n"),
                max_bytes=dataset_upload_max_bytes(),
            )
        except DatasetInvalid as error:
            form.add_error("file", [f"The file cannot be used: {p}." for p in error.problems])
        except ValidationError as error:
            _errors_to_form(form, error)
        except DatasetError as error:
            form.add_error(None, str(error))
        else:
            messages.success(
                request,
                f"{upload.outcome} The file: {filesizeformat(upload.upload_bytes)}, sha256 "
                f"{upload.upload_sha256}.",
            )
            url = reverse("dataset_detail", args=[course.slug, upload.dataset.pk])
            if next_url:
                url += "?" + urlencode({"next": next_url})
            return redirect(url)
    context = {
        "course": course,
        "form": form,
        "max_bytes": dataset_upload_max_bytes(),
        "next": next_url,
    }
    return render(request, "grader/authoring/dataset_upload.html", context)


@login_required
@require_GET
def dataset_detail(
    request: AuthenticatedRequest, course_slug: str, dataset_id: int
) -> HttpResponse:
    course_access, dataset = access.dataset_get_for_instructor(
        user=request.user, course_slug=course_slug, dataset_id=dataset_id
    )
    context = {
        "course": course_access.course,
        "dataset": dataset,
        "report": authoring.dataset_report(dataset=dataset),
        "next": safe_target(request, request.GET.get("next", "")),
    }
    return render(request, "grader/authoring/dataset_detail.html", context)


@login_required
@require_GET
def dataset_samples(
    request: AuthenticatedRequest, course_slug: str, dataset_id: int
) -> HttpResponse:
    """The sample picture of a dataset, for the course's instructors (it may not be in use yet)."""
    _, dataset = access.dataset_get_for_instructor(
        user=request.user, course_slug=course_slug, dataset_id=dataset_id
    )
    return dataset_samples_response(request, dataset=dataset)
