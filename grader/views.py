from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from grader import access, submissions
from grader.forms import SubmissionForm
from grader.models import RunStatus, Submission


@login_required
@require_http_methods(["GET", "POST"])
def assignment_detail(request: HttpRequest, assignment_slug: str) -> HttpResponse:
    course_access, assignment = access.assignment_get_for_user(
        user=request.user, assignment_slug=assignment_slug
    )
    form = SubmissionForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["code_file"]
        try:
            submission = submissions.submission_create(
                user=request.user,
                assignment=assignment,
                filename=upload.name,
                content=upload.read(),
            )
        except submissions.SubmissionRefused as error:
            form.add_error("code_file", str(error))
        else:
            messages.success(request, "Submitted. Your code is queued for grading.")
            return redirect("submission_detail", submission_id=submission.pk)
    context = {
        "access": course_access,
        "course": course_access.course,
        "assignment": assignment,
        "form": form,
        "baselines": submissions.baseline_scores(assignment=assignment),
        "left_today": submissions.submissions_left_today(
            user=request.user, assignment=assignment, now=timezone.now()
        ),
        "recent": Submission.objects.filter(user=request.user, assignment=assignment)
        .only("id", "status", "public_score", "failure_reason", "created_at", "filename")
        .order_by("-created_at")[:20],
    }
    return render(request, "grader/assignment_detail.html", context)


@login_required
def submission_detail(request: HttpRequest, submission_id: int) -> HttpResponse:
    course_access, submission = access.submission_get_for_user(
        user=request.user, submission_id=submission_id
    )
    assignment = submission.assignment
    metric = assignment.metric_spec
    baselines = [
        {
            "name": name,
            "score": score,
            "margin": submission.public_score - score
            if submission.public_score is not None
            else None,
            "beaten": submission.public_score is not None
            and metric.better(submission.public_score, than=score),
        }
        for name, score in submissions.baseline_scores(assignment=assignment)
    ]
    class_names = [
        assignment.dataset.class_name(i) for i in range(len(submission.confusion_matrix))
    ]
    context = {
        "access": course_access,
        "course": course_access.course,
        "assignment": assignment,
        "submission": submission,
        "metric": metric,
        "baselines": baselines,
        "in_progress": submission.status in (RunStatus.QUEUED, RunStatus.RUNNING),
        "class_names": class_names,
        "confusion_rows": list(zip(class_names, submission.confusion_matrix, strict=True)),
    }
    return render(request, "grader/submission_detail.html", context)
