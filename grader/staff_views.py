"""Course staff's pages for an assignment's submissions, and the grading queue dashboard.

Every view starts with an access function from ``grader.access``; none checks a role itself.
"""

from __future__ import annotations

import csv
from datetime import datetime
from typing import TYPE_CHECKING

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from grader import access, page_parts, staff_selectors, submissions
from grader.leaderboards import private_split_revealed
from grader.metrics import Direction
from grader.models import Assignment, RunStatus
from grader.staff_forms import RegradeForm, ScoreOverrideForm, SubmissionFilterForm
from topdown import charts, fragments
from topdown.http import next_or, safe_target

if TYPE_CHECKING:
    from _csv import Writer

PAGE_SIZE = 50


def _query_without_page(request: HttpRequest) -> str:
    """The list's query string minus ``page``, ending in ``&`` when not empty (for links)."""
    query = request.GET.copy()
    query.pop("page", None)
    encoded = query.urlencode()
    return f"{encoded}&" if encoded else ""


@login_required
@require_GET
def assignment_submissions(request: HttpRequest, assignment_slug: str) -> HttpResponse:
    course_access, assignment, baselines = access.assignment_list_get_for_staff(
        user=request.user, assignment_slug=assignment_slug
    )
    form = SubmissionFilterForm(request.GET or None)
    page_obj = staff_selectors.submission_list_page(
        assignment=assignment, page=request.GET.get("page"), per_page=PAGE_SIZE, **form.filters()
    )
    query = _query_without_page(request)
    next_path = request.get_full_path()
    parts = fragments.Renderer()
    controls = parts.fragment(
        "grader/includes/submission_list_controls.html",
        baselines=tuple(baselines),
        assignment_slug=assignment.slug,
        filter_fields=fragments.render_form(
            "grader/includes/submission_filter_fields.html",
            SubmissionFilterForm,
            request.GET or None,
        ),
        has_rows=bool(page_obj.object_list),
        count=page_obj.paginator.count,
        next_path=next_path,
    )
    # The page's parts are fragments (topdown.fragments); its forms get the request's token.
    context = {
        "access": course_access,
        "course": course_access.course,
        "assignment": assignment,
        "form": form,
        "breadcrumbs": page_parts.breadcrumbs(assignment, current="Submissions", renderer=parts),
        "header": parts.fragment(
            "grader/includes/submissions_header.html",
            metric_label=assignment.metric_spec.label,
            higher_is_better=assignment.direction == Direction.HIGHER_IS_BETTER,
            assignment_title=assignment.title,
            assignment_slug=assignment.slug,
            csv_rows_query=query.rstrip("&"),
        ),
        "controls": fragments.fill_csrf_slots(controls, request),
        "page_obj": page_obj,
        "rows": parts.fragments(
            "grader/includes/submission_list_row.html",
            ({"row": row, "next_path": next_path} for row in page_obj),
        ),
        "pagination": page_parts.pagination(page_obj, query=query, renderer=parts),
    }
    return render(request, "grader/assignment_submissions.html", context)


@login_required
@require_POST
def assignment_submissions_regrade(request: HttpRequest, assignment_slug: str) -> HttpResponse:
    _, assignment = access.assignment_get_for_staff(
        user=request.user, assignment_slug=assignment_slug
    )
    form = RegradeForm(request.POST)
    if form.is_valid():
        selected = form.cleaned_data["scope"] == "selected"
        outcome = submissions.submissions_regrade(
            assignment=assignment,
            submission_ids=form.cleaned_data["submission"] if selected else None,
            requested_by=request.user,
        )
        count = len(outcome.regrades)
        messages.success(
            request,
            f"{count} submission{'s' if count != 1 else ''} sent back to the queue to be graded "
            "again; the list shows the old score beside the new one.",
        )
        if outcome.skipped_running:
            n = outcome.skipped_running
            messages.warning(
                request,
                f"{n} running submission{'s were' if n != 1 else ' was'} not regraded: "
                "let it finish or cancel it, then regrade.",
            )
        if outcome.skipped_cancelled:
            n = outcome.skipped_cancelled
            messages.info(
                request,
                f"{n} cancelled submission{'s were' if n != 1 else ' was'} left alone; select "
                "one to regrade it.",
            )
    else:
        for error in form.non_field_errors() or ["Choose what to regrade."]:
            messages.error(request, error)
    return redirect(next_or(request, reverse("assignment_submissions", args=[assignment.slug])))


@login_required
@require_POST
def assignment_baselines_rerun(request: HttpRequest, assignment_slug: str) -> HttpResponse:
    _, assignment = access.assignment_get_for_staff(
        user=request.user, assignment_slug=assignment_slug
    )
    runs = submissions.baselines_rerun(assignment=assignment)
    if runs:
        names = ", ".join(run.baseline.name for run in runs)
        messages.success(request, f"Queued a new run of {len(runs)} baseline(s): {names}.")
    else:
        messages.info(request, "Every baseline already has a run queued or running.")
    return redirect(next_or(request, reverse("assignment_submissions", args=[assignment.slug])))


@login_required
@require_http_methods(["GET", "POST"])
def submission_override(request: HttpRequest, submission_id: int) -> HttpResponse:
    course_access, submission = access.submission_get_for_staff(
        user=request.user, submission_id=submission_id
    )
    detail_url = reverse("submission_detail", args=[submission.pk])
    if request.method == "POST" and request.POST.get("action") == "clear":
        submissions.submission_score_override_clear(submission=submission)
        messages.success(request, "The override is cleared: the measured score counts again.")
        return redirect(next_or(request, detail_url))
    initial = {}
    if submission.score_override is not None:
        initial = {"score": submission.score_override, "comment": submission.override_comment}
    form = ScoreOverrideForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            submissions.submission_score_override(
                submission=submission,
                score=form.cleaned_data["score"],
                comment=form.cleaned_data["comment"],
                user=request.user,
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, "Score overridden. It counts in the grade export.")
            return redirect(next_or(request, detail_url))
    context = {
        "access": course_access,
        "course": course_access.course,
        "assignment": submission.assignment,
        "submission": submission,
        "metric": submission.assignment.metric_spec,
        "form": form,
        "next": safe_target(request, request.POST.get("next") or request.GET.get("next", "")),
    }
    return render(request, "grader/submission_override.html", context)


# --- CSV export ---------------------------------------------------------------------------------

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: object) -> object:
    """A cell a spreadsheet will not run: text starting like a formula gets a leading quote.

    Numbers are written as numbers (a negative score stays a number).
    """
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _iso(value: datetime | None) -> str:
    return timezone.localtime(value).isoformat(timespec="seconds") if value else ""


@login_required
@require_GET
def assignment_submissions_csv(request: HttpRequest, assignment_slug: str) -> HttpResponse:
    """Grades, one line per student (best score, override applied); with ``rows=submissions``,
    the submissions the list's current filters show, one line each."""
    _, assignment = access.assignment_get_for_staff(
        user=request.user, assignment_slug=assignment_slug
    )
    with_private = private_split_revealed(assignment=assignment, now=timezone.now())
    per_submission = request.GET.get("rows") == "submissions"
    filename = f"{assignment.slug}-{'submissions' if per_submission else 'grades'}.csv"
    response = HttpResponse(
        content_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "private, no-store",
        },
    )
    writer = csv.writer(response)
    if per_submission:
        _write_submission_rows(writer, request, assignment, with_private=with_private)
    else:
        _write_grade_rows(writer, assignment, with_private=with_private)
    return response


def _write_grade_rows(writer: Writer, assignment: Assignment, *, with_private: bool) -> None:
    header = [
        "username",
        "display_name",
        "submissions",
        "scored",
        "overridden",
        "last_submitted_at",
        "best_score",
    ]
    if with_private:
        header.append("best_private_score")
    writer.writerow(header)
    for grade in staff_selectors.assignment_grades(
        assignment=assignment, with_private=with_private
    ):
        row: list[object] = [
            grade.username,
            grade.display_name,
            grade.submissions,
            grade.scored,
            grade.overridden,
            _iso(grade.last_submitted_at),
            "" if grade.best_score is None else grade.best_score,
        ]
        if with_private:
            row.append("" if grade.best_private_score is None else grade.best_private_score)
        writer.writerow([csv_safe(cell) for cell in row])


def _write_submission_rows(
    writer: Writer, request: HttpRequest, assignment: Assignment, *, with_private: bool
) -> None:
    form = SubmissionFilterForm(request.GET or None)
    rows = staff_selectors.submissions_for_staff(assignment=assignment, **form.filters())
    header = [
        "submission_id",
        "username",
        "display_name",
        "submitted_at",
        "filename",
        "status",
        "failure_reason",
        "public_score",
        "score_override",
        "override_comment",
        "score_before_last_regrade",
    ]
    if with_private:
        header.insert(8, "private_score")
    writer.writerow(header)
    for submission in rows.iterator(chunk_size=2000):
        row: list[object] = [
            submission.pk,
            submission.user.username,
            submission.user.display_name,
            _iso(submission.created_at),
            submission.filename,
            submission.status,
            submission.failure_reason,
            _blank_if_none(submission.public_score),
            _blank_if_none(submission.score_override),
            submission.override_comment,
            _blank_if_none(submission.previous_score),  # type: ignore[attr-defined]
        ]
        if with_private:
            row.insert(8, _blank_if_none(submission.private_score))
        writer.writerow([csv_safe(cell) for cell in row])


def _blank_if_none(value: float | None) -> object:
    return "" if value is None else value


# --- The queue ----------------------------------------------------------------------------------


@login_required
@require_GET
def grader_queue(request: HttpRequest) -> HttpResponse:
    course_ids = access.queue_courses_for_staff(user=request.user)
    now = timezone.now()
    rows, truncated = staff_selectors.runs_in_progress(course_ids=course_ids)
    failures = staff_selectors.failures_by_reason(course_ids=course_ids, now=now)
    workers = staff_selectors.workers_live(now=now)
    hours = len(failures[0].hourly) if failures else 0
    chart = charts.line_chart(
        [
            charts.Series(failure.label, [(i - hours + 1, n) for i, n in enumerate(failure.hourly)])
            for failure in failures
        ],
        x_label="hours ago (0: this hour)",
        y_label="failures",
        title="Failures per hour over the last 24 hours, by reason",
    )
    total_failures = sum(failure.count for failure in failures)
    by_worker = staff_selectors.running_by_worker(rows)
    context = {
        "now": now,
        "running": [row for row in rows if row.status == RunStatus.RUNNING],
        "queued": [row for row in rows if row.status == RunStatus.QUEUED],
        "truncated": truncated,
        "failures": failures,
        "failure_total": total_failures,
        "failure_chart": chart,
        "workers": [(worker, by_worker.get(worker.hostname, 0)) for worker in workers],
        "all_courses": course_ids is None,
    }
    return render(request, "grader/queue.html", context)
