from __future__ import annotations

import hashlib
import json
from urllib.parse import quote

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import get_conditional_response
from django.utils.formats import date_format
from django.utils.safestring import SafeString
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from courses import preview
from courses import services as course_services
from grader import (
    access,
    assignment_overview,
    forms,
    history,
    leaderboards,
    live,
    page_parts,
    results,
    submissions,
)
from grader.forms import EditorSubmissionForm, SubmissionForm, SubmittedCode
from grader.metrics import Direction
from grader.models import Assignment, Dataset, RunStatus, Submission
from grader.pipeline import CodeInvalid, script_for
from topdown import charts, fragments
from topdown.http import next_or


@login_required
@require_http_methods(["GET", "POST"])
def assignment_detail(request: HttpRequest, assignment_slug: str) -> HttpResponse:
    course_access, assignment = access.assignment_get_for_user(
        user=request.user, assignment_slug=assignment_slug
    )
    # Staff previewing the course as a student see the student's page (what it shows only).
    course_access = preview.viewer_access(request, course_access)
    if assignment.dataset is None:  # a draft (only staff get here): nothing to submit to yet
        context = {
            "access": course_access,
            "course": course_access.course,
            "assignment": assignment,
        }
        return render(request, "grader/authoring/assignment_draft.html", context)
    posted = request.method == "POST"
    via_editor = posted and request.POST.get("via") == "editor"
    upload_form = SubmissionForm(
        request.POST if posted and not via_editor else None,
        request.FILES if posted and not via_editor else None,
    )
    editor_form = EditorSubmissionForm(
        request.POST if via_editor else None, initial={"code": assignment.starter_code}
    )
    form, field = (editor_form, "code") if via_editor else (upload_form, "code_file")
    if posted and form.is_valid():
        code: SubmittedCode = form.cleaned_data[field]
        try:
            submission = submissions.submission_create(
                user=request.user,
                assignment=assignment,
                filename=code.filename,
                content=code.content,
                token=form.cleaned_data.get("token"),
            )
        except submissions.SubmissionRefused as error:
            form.add_error(field, str(error))
        else:
            messages.success(request, "Submitted. Your code is queued for grading.")
            return redirect("submission_detail", submission_id=submission.pk)
    now = timezone.now()
    dataset = assignment.dataset
    left_today = submissions.submissions_left_today(
        user=request.user, assignment=assignment, now=now
    )
    is_closed = assignment.due_at is not None and now > assignment.due_at
    metric = assignment.metric_spec
    best = assignment_overview.submission_best_for_user(user=request.user, assignment=assignment)
    public_test_rows = int(assignment.public_test_mask().sum())
    recent = assignment_overview.submissions_recent_for_user(
        user=request.user, assignment=assignment
    )
    context = {
        "access": course_access,
        "course": course_access.course,
        "assignment": assignment,
        "metric": metric,
        "higher_is_better": metric.direction == Direction.HIGHER_IS_BETTER,
        "pass_threshold_text": results.format_score(metric, assignment.pass_threshold),
        "dataset": dataset,
        "summary": assignment_overview.dataset_summary(dataset=dataset),
        "sample_grid": assignment_overview.dataset_sample_grid(dataset=dataset),
        "public_test_rows": public_test_rows,
        "private_test_rows": dataset.n_test - public_test_rows,
        "upload_form": upload_form,
        "editor_form": editor_form,
        "baselines": [
            (name, results.format_score(metric, score))
            for name, score in submissions.baseline_scores(assignment=assignment)
        ],
        "left_today": left_today,
        "is_closed": is_closed,
        "can_submit": course_access.enrolment is not None and not is_closed and left_today != 0,
        "best": best,
        "best_score_text": results.format_score(metric, best.public_score if best else None),
        "recent": [
            (submission, results.format_score(metric, submission.public_score))
            for submission in recent
        ],
        "draft_key": f"topdown:draft:{request.user.pk}:{assignment.pk}",
    }
    return render(request, "grader/assignment_detail.html", context)


@login_required
@require_GET
def assignment_samples(request: HttpRequest, assignment_slug: str) -> HttpResponse:
    """The dataset's sample picture (public training images), for the course's members."""
    _, assignment = access.assignment_get_for_user(
        user=request.user, assignment_slug=assignment_slug, with_dataset=True
    )
    return dataset_samples_response(request, dataset=assignment.live_dataset)


def dataset_samples_response(request: HttpRequest, *, dataset: Dataset) -> HttpResponse:
    """A grid of the dataset's training images as a PNG; the caller has checked access."""
    grid = assignment_overview.dataset_sample_grid(dataset=dataset)
    if grid is None:
        raise Http404("This dataset's inputs are not images.")
    etag = f'"{grid.etag}"'
    # Private: only members may see it. A day's max-age, then the ETag makes revalidation cheap.
    headers = {"ETag": etag, "Cache-Control": "private, max-age=86400"}
    not_modified = get_conditional_response(request, etag=etag)
    if not_modified is not None:
        for name, value in headers.items():
            not_modified[name] = value
        return not_modified
    png = assignment_overview.dataset_sample_grid_png(dataset=dataset, grid=grid)
    return HttpResponse(png, content_type="image/png", headers=headers)


@login_required
def submission_detail(request: HttpRequest, submission_id: int) -> HttpResponse:
    page = access.submission_page_get_for_user(user=request.user, submission_id=submission_id)
    course_access, submission, baselines = page.access, page.submission, page.baseline_scores
    assignment = submission.assignment
    metric = assignment.metric_spec
    parts = fragments.Renderer()
    traceback = results.last_traceback(f"{submission.log}\n{submission.message}")
    exception = results.exception_line(traceback)
    margins = tuple(
        results.baseline_margins(metric=metric, score=submission.public_score, baselines=baselines)
    )
    duration = results.format_duration(submission.started_at, submission.finished_at)
    student = submission.user
    # The page's parts that follow from the run alone are fragments (topdown.fragments).
    header = parts.fragment(
        "grader/includes/submission_header.html",
        filename=submission.filename,
        student_name=student.public_name,
        created_at=submission.created_at,
        status=submission.status,
        status_label=submission.get_status_display(),
        failure_label=submission.get_failure_reason_display() if submission.failure_reason else "",
        assignment_slug=assignment.slug,
        student_query=""
        if submission.user_id == request.user.pk
        else f"?student={quote(student.username, safe='/')}",
    )
    outcome = SafeString("")
    if submission.is_finished:
        outcome = parts.fragment(
            "grader/includes/submission_outcome.html",
            status=submission.status,
            finished=True,
            score_text=results.format_score(metric, submission.public_score),
            metric_label=metric.label,
            verdict=results.pass_verdict(
                assignment=assignment, score=submission.public_score, baselines=baselines
            ),
            margins=margins,
            device=submission.device,
            duration=duration,
            message=submission.message.split(results.TRACEBACK_START)[0].strip(),
            hint=results.failure_hint(
                run=submission,
                exception=exception,
                memory_mb=assignment.memory_mb,
                wall_seconds=assignment.wall_seconds,
            ),
            traceback=tuple(traceback),
        )
    context = {
        "access": course_access,
        "course": course_access.course,
        "assignment": assignment,
        "submission": submission,
        "breadcrumbs": page_parts.breadcrumbs(
            assignment, current=f"Submission {submission.pk}", renderer=parts
        ),
        "header": header,
        "outcome": outcome,
        "margins": parts.fragment("grader/includes/submission_margins.html", margins=margins)
        if margins
        else "",
        "in_progress": not submission.is_finished,
        "can_cancel": submission.status in (RunStatus.QUEUED, RunStatus.RUNNING),
        "result_details": _result_details(submission),
        "status_url": reverse("submission_status", args=[submission.pk]),
        "code_script": _script_or_code(submission),
        "latest_regrade": page.latest_regrade,
    }
    return render(request, "grader/submission_detail.html", context)


@login_required
@require_GET
def submission_status(request: HttpRequest, submission_id: int) -> HttpResponse:
    """What the submission page polls while a run is queued or running (see grader.live)."""
    log_from, metrics_from = _poll_offsets(request)
    row = access.submission_live_row_for_user(
        user=request.user, submission_id=submission_id, log_from=log_from, metrics_from=metrics_from
    )
    data = live.submission_live_status(
        row=row, log_from=log_from, metrics_from=metrics_from, now=timezone.now()
    )
    # Plain JSON values only (the row's, and the points as stored): no encoder class needed.
    return HttpResponse(json.dumps(data), content_type="application/json", headers=NO_STORE)


NO_STORE = {"Cache-Control": "no-store"}


def _poll_offsets(request: HttpRequest) -> tuple[int, int]:
    """``log_from`` and ``metrics_from`` as ``request.GET`` gives them (the last of each), read
    without building it: the page polls every second with exactly these two numbers."""
    query = request.META.get("QUERY_STRING", "")
    if not query.isascii() or "%" in query or "+" in query:  # encoded: Django decodes it
        return _offset(request.GET.get("log_from")), _offset(request.GET.get("metrics_from"))
    values = dict(pair.partition("=")[::2] for pair in query.split("&"))
    return _offset(values.get("log_from")), _offset(values.get("metrics_from"))


def _result_details(submission: Submission) -> SafeString:
    """The charts and tables drawn from the run's figures: from memory when this process has
    drawn the same figures (they change only when the run is graded again)."""
    class_names = [
        submission.assignment.dataset.class_name(i) for i in range(len(submission.confusion_matrix))
    ]
    show_curves = submission.is_finished
    drawn = [
        submission.confusion_matrix,
        class_names,
        submission.per_class,
        submission.metrics,
        show_curves,
    ]
    key = hashlib.blake2b(json.dumps(drawn).encode(), digest_size=16).digest()

    def context() -> dict[str, object]:
        return {
            "per_class": submission.per_class,
            "confusion_chart": charts.heatmap(
                submission.confusion_matrix, row_labels=class_names, column_labels=class_names
            ),
            "confused_pairs": results.most_confused_pairs(submission.confusion_matrix, class_names),
            "curves": [
                (
                    curve,
                    charts.line_chart(
                        [charts.Series(curve.name, curve.points)],
                        x_label=curve.x_name,
                        y_label=curve.name,
                    ),
                )
                for curve in results.metric_curves(submission.metrics)
            ],
            "show_curves": show_curves,
        }

    return fragments.render_memoised(
        "grader/includes/submission_result_details.html", key=key, context=context
    )


def _script_or_code(submission: Submission) -> str:
    """A notebook as the script the grader ran; the file as it is if it does not convert."""
    try:
        script, _ = script_for(code=submission.code, kind=submission.code_kind)
    except CodeInvalid:
        return submission.code
    return script


def _offset(value: str | None) -> int:
    try:
        return max(0, int(value or 0))
    except ValueError:
        return 0


@login_required
@require_POST
def submission_cancel(request: HttpRequest, submission_id: int) -> HttpResponse:
    _, submission = access.submission_get_for_user(user=request.user, submission_id=submission_id)
    try:
        submissions.submission_cancel(submission=submission, user=request.user)
    except submissions.SubmissionRefused as error:
        messages.error(request, str(error))
    else:
        messages.success(request, "Cancelled.")
    return redirect(next_or(request, reverse("submission_detail", args=[submission.pk])))


# --- Leaderboard, history and diff -------------------------------------------------------------

LEADERBOARD_ROW = "grader/includes/leaderboard_row.html"


def _leaderboard_chart(board: leaderboards.Leaderboard) -> str:
    split = "private" if board.revealed else "public"
    highlight = board.viewer_row.score if board.viewer_row else None
    label = board.metric.label
    # Drawn from the whole ranking: once per ranking for each place marked.
    return board.ranking.memo(
        ("chart", label, highlight),
        lambda: charts.histogram(
            board.scores,
            x_label=f"{label} ({split} split)",
            markers=[charts.Marker(name, score) for name, score in board.baselines],
            highlight=highlight,
            title=f"Distribution of students' {label.lower()} on the {split} split",
        ),
    )


def _leaderboard_anonymity_form(assignment: Assignment, *, anonymous: bool) -> SafeString:
    return fragments.render_memoised(
        "grader/includes/leaderboard_anonymity_form.html",
        key=(assignment.slug, anonymous),
        context=lambda: {
            "anonymity_form": forms.LeaderboardAnonymityForm(initial={"anonymous": anonymous}),
            "assignment_slug": assignment.slug,
            "csrf_slot": fragments.CSRF_SLOT,
        },
    )


@login_required
@require_GET
def assignment_leaderboard(request: HttpRequest, assignment_slug: str) -> HttpResponse:
    course_access, assignment = access.assignment_get_for_user(
        user=request.user, assignment_slug=assignment_slug, with_dataset=True
    )
    board = leaderboards.leaderboard_for_assignment(
        assignment=assignment, viewer=request.user, now=timezone.now(), page=request.GET.get("page")
    )
    metric = board.metric
    viewer_row = board.viewer_row
    parts = fragments.Renderer()
    anonymity_form = None
    if board.viewer_anonymous is not None:
        anonymity_form = fragments.fill_csrf_slots(
            _leaderboard_anonymity_form(assignment, anonymous=board.viewer_anonymous), request
        )
    context = {
        "access": course_access,
        "course": course_access.course,
        "assignment": assignment,
        "board": board,
        "page_obj": board.page,
        "breadcrumbs": page_parts.breadcrumbs(assignment, current="Leaderboard", renderer=parts),
        "header": parts.fragment(
            "grader/includes/leaderboard_header.html",
            metric_label=metric.label,
            higher_is_better=metric.direction == Direction.HIGHER_IS_BETTER,
            assignment_slug=assignment.slug,
            viewer_is_staff=board.viewer_is_staff,
            revealed=board.revealed,
            due_at=assignment.due_at,
        ),
        "summary": parts.fragment(
            "grader/includes/leaderboard_summary.html",
            student_count=board.student_count,
            viewer_row=viewer_row,
            revealed=board.revealed,
            chart=_leaderboard_chart(board),
            distribution=board.distribution,
        ),
        "rows": parts.fragments(
            LEADERBOARD_ROW,
            ({"row": row, "revealed": board.revealed, "pinned": False} for row in board.page),
        ),
        "pinned_row": parts.fragment(
            LEADERBOARD_ROW, row=viewer_row, revealed=board.revealed, pinned=True
        )
        if viewer_row and not board.viewer_row_on_page
        else "",
        "pagination": page_parts.pagination(board.page, renderer=parts),
        "anonymity_form": anonymity_form,
    }
    return render(request, "grader/leaderboard.html", context)


@login_required
@require_POST
def assignment_leaderboard_anonymity(request: HttpRequest, assignment_slug: str) -> HttpResponse:
    _, assignment, enrolment = access.leaderboard_enrolment_get_for_user(
        user=request.user, assignment_slug=assignment_slug
    )
    form = forms.LeaderboardAnonymityForm(request.POST)
    if form.is_valid():
        anonymous = form.cleaned_data["anonymous"]
        course_services.enrolment_anonymity_set(enrolment=enrolment, anonymous=anonymous)
        messages.success(
            request,
            "Other students now see you as an anonymous student."
            if anonymous
            else "Other students now see your name.",
        )
    return redirect("assignment_leaderboard", assignment_slug=assignment.slug)


def _history_chart(
    numbered: list[tuple[int, Submission]], baselines: list[tuple[str, float]], label: str
) -> str:
    points = [
        (number, submission.public_score)
        for number, submission in numbered
        if submission.public_score is not None
    ]
    return charts.line_chart(
        [charts.Series("public split", points)],
        x_label="submission",
        y_label=label,
        title=f"{label} on the public split, submission by submission",
        markers=[charts.Marker(name, score) for name, score in baselines],
    )


@login_required
@require_GET
def assignment_history(request: HttpRequest, assignment_slug: str) -> HttpResponse:
    course_access, assignment, student = access.assignment_student_get_for_user(
        user=request.user,
        assignment_slug=assignment_slug,
        student_username=request.GET.get("student"),
    )
    now = timezone.now()
    runs = history.submissions_for_history(assignment=assignment, student=student, now=now)
    numbered = list(zip(range(len(runs), 0, -1), runs, strict=True))
    choices = [
        (
            submission.pk,
            f"No. {number} · {date_format(timezone.localtime(submission.created_at), 'j M, H:i')}"
            f" · {submission.filename}",
        )
        for number, submission in numbered
    ]
    form = forms.SubmissionPairForm(request.GET if "old" in request.GET else None, choices=choices)
    if form.is_bound and form.is_valid():
        return redirect(
            "submission_diff",
            submission_id=form.cleaned_data["old"],
            other_id=form.cleaned_data["new"],
        )
    baselines = [
        (name, public) for name, public, _ in leaderboards.baseline_results(assignment=assignment)
    ]
    context = {
        "access": course_access,
        "course": course_access.course,
        "assignment": assignment,
        "student": student,
        "is_own": student.pk == request.user.pk,
        "numbered": numbered,
        "revealed": leaderboards.private_split_revealed(assignment=assignment, now=now),
        "baselines": baselines,
        "chart": _history_chart(numbered, baselines, assignment.metric_spec.label),
        "form": form,
    }
    return render(request, "grader/history.html", context)


@login_required
@require_GET
def submission_diff(request: HttpRequest, submission_id: int, other_id: int) -> HttpResponse:
    course_access, old, new = access.submission_pair_get_for_user(
        user=request.user, submission_id=submission_id, other_id=other_id
    )
    context = {
        "access": course_access,
        "course": course_access.course,
        "assignment": old.assignment,
        "student": old.user,
        "is_own": old.user_id == request.user.pk,
        "old": old,
        "new": new,
        "diff": history.code_diff(old=old, new=new),
        "layout": "split" if request.GET.get("layout") == "split" else "unified",
    }
    return render(request, "grader/submission_diff.html", context)
