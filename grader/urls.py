from __future__ import annotations

from django.urls import path

from grader import staff_views, views

urlpatterns = [
    path("assignments/<slug:assignment_slug>/", views.assignment_detail, name="assignment_detail"),
    path("submissions/<int:submission_id>/", views.submission_detail, name="submission_detail"),
    path(
        "submissions/<int:submission_id>/status.json",
        views.submission_status,
        name="submission_status",
    ),
    path(
        "submissions/<int:submission_id>/cancel/",
        views.submission_cancel,
        name="submission_cancel",
    ),
    path(
        "assignments/<slug:assignment_slug>/samples.png",
        views.assignment_samples,
        name="assignment_samples",
    ),
    path(
        "assignments/<slug:assignment_slug>/leaderboard/",
        views.assignment_leaderboard,
        name="assignment_leaderboard",
    ),
    path(
        "assignments/<slug:assignment_slug>/leaderboard/anonymity/",
        views.assignment_leaderboard_anonymity,
        name="assignment_leaderboard_anonymity",
    ),
    path(
        "assignments/<slug:assignment_slug>/history/",
        views.assignment_history,
        name="assignment_history",
    ),
    path(
        "submissions/<int:submission_id>/diff/<int:other_id>/",
        views.submission_diff,
        name="submission_diff",
    ),
]

# Course staff: every submission of an assignment, regrades, overrides, grades; the queue.
urlpatterns += [
    path(
        "assignments/<slug:assignment_slug>/submissions/",
        staff_views.assignment_submissions,
        name="assignment_submissions",
    ),
    path(
        "assignments/<slug:assignment_slug>/submissions.csv",
        staff_views.assignment_submissions_csv,
        name="assignment_submissions_csv",
    ),
    path(
        "assignments/<slug:assignment_slug>/submissions/regrade/",
        staff_views.assignment_submissions_regrade,
        name="assignment_submissions_regrade",
    ),
    path(
        "assignments/<slug:assignment_slug>/baselines/rerun/",
        staff_views.assignment_baselines_rerun,
        name="assignment_baselines_rerun",
    ),
    path(
        "submissions/<int:submission_id>/override/",
        staff_views.submission_override,
        name="submission_override",
    ),
    path("grader/queue/", staff_views.grader_queue, name="grader_queue"),
]
