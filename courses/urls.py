from __future__ import annotations

from django.urls import path

from courses import gradebook_views, notebook_views, views

urlpatterns = [
    path("", views.home, name="home"),
    path("courses/<slug:course_slug>/", views.course_detail, name="course_detail"),
    path("courses/<slug:course_slug>/enrol/", views.course_enrol, name="course_enrol"),
    path("courses/<slug:course_slug>/progress/", views.class_progress, name="class_progress"),
    path("courses/<slug:course_slug>/gradebook/", gradebook_views.gradebook, name="gradebook"),
    path(
        "courses/<slug:course_slug>/gradebook.csv",
        gradebook_views.gradebook_csv,
        name="gradebook_csv",
    ),
    path(
        "courses/<slug:course_slug>/chapters/<slug:chapter_slug>/questionnaire/stats/",
        gradebook_views.questionnaire_stats,
        name="questionnaire_stats",
    ),
    path(
        "courses/<slug:course_slug>/students/<int:user_id>/",
        views.student_progress,
        name="student_progress",
    ),
    path("courses/<slug:course_slug>/review/", views.review_queue, name="review_queue"),
    path(
        "courses/<slug:course_slug>/review/<int:answer_id>/",
        views.answer_review,
        name="answer_review",
    ),
    path(
        "courses/<slug:course_slug>/attempts/<int:attempt_id>/",
        views.attempt_detail,
        name="attempt_detail",
    ),
    path(
        "courses/<slug:course_slug>/answers/<int:answer_id>/assess/",
        views.answer_self_assess,
        name="answer_self_assess",
    ),
    path(
        "courses/<slug:course_slug>/chapters/<slug:chapter_slug>/",
        views.chapter_detail,
        name="chapter_detail",
    ),
    path(
        "courses/<slug:course_slug>/chapters/<slug:chapter_slug>/questionnaire/",
        views.questionnaire_detail,
        name="questionnaire_detail",
    ),
    path(
        "courses/<slug:course_slug>/import-notebooks/",
        notebook_views.notebooks_import,
        name="notebooks_import",
    ),
]
