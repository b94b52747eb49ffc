"""Instructors' authoring of further-research assignments, baselines and datasets."""

from __future__ import annotations

from django.urls import URLPattern, path

from grader import authoring_views as views

urlpatterns: list[URLPattern] = [
    path(
        "courses/<slug:course_slug>/chapters/<slug:chapter_slug>/assignments/new/",
        views.assignment_create,
        name="assignment_create",
    ),
    path("assignments/<slug:assignment_slug>/edit/", views.assignment_edit, name="assignment_edit"),
    path(
        "assignments/<slug:assignment_slug>/publish/",
        views.assignment_publish,
        name="assignment_publish",
    ),
    path(
        "assignments/<slug:assignment_slug>/baselines/new/",
        views.baseline_create,
        name="baseline_create",
    ),
    path(
        "assignments/<slug:assignment_slug>/baselines/<int:baseline_id>/edit/",
        views.baseline_edit,
        name="baseline_edit",
    ),
    path(
        "assignments/<slug:assignment_slug>/baselines/<int:baseline_id>/delete/",
        views.baseline_delete,
        name="baseline_delete",
    ),
    path(
        "assignments/<slug:assignment_slug>/baselines/run/",
        views.baselines_run,
        name="assignment_baselines_run",
    ),
    path(
        "assignments/<slug:assignment_slug>/baselines/status.json",
        views.baselines_status,
        name="assignment_baselines_status",
    ),
    path(
        "assignments/<slug:assignment_slug>/baselines/runs/<int:run_id>/",
        views.baseline_run_detail,
        name="baseline_run_detail",
    ),
    path("courses/<slug:course_slug>/datasets/", views.course_datasets, name="course_datasets"),
    path(
        "courses/<slug:course_slug>/datasets/upload/",
        views.dataset_upload,
        name="dataset_upload",
    ),
    path(
        "courses/<slug:course_slug>/datasets/<int:dataset_id>/",
        views.dataset_detail,
        name="dataset_detail",
    ),
    path(
        "courses/<slug:course_slug>/datasets/<int:dataset_id>/samples.png",
        views.dataset_samples,
        name="dataset_samples",
    ),
]
