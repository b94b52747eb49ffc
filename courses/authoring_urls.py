"""The course editor's addresses (instructors), and the "preview as a student" switch (staff).

Included before ``courses.urls``, so ``courses/new/`` and ``chapters/new/`` win over the course
and chapter pages; the services refuse "new" as a slug for that reason.
"""

from __future__ import annotations

from django.urls import path

from courses import authoring_views as views

CHAPTER = "courses/<slug:course_slug>/chapters/<slug:chapter_slug>/"
QUESTION = f"{CHAPTER}questionnaire/questions/<int:question_id>/"

urlpatterns = [
    path("courses/new/", views.course_create, name="course_create"),
    path("courses/<slug:course_slug>/edit/", views.course_authoring, name="course_authoring"),
    path(
        "courses/<slug:course_slug>/edit/settings/",
        views.course_settings,
        name="course_settings",
    ),
    path("courses/<slug:course_slug>/preview/", views.course_preview, name="course_preview"),
    path("courses/<slug:course_slug>/chapters/new/", views.chapter_create, name="chapter_create"),
    path(f"{CHAPTER}edit/", views.chapter_edit, name="chapter_edit"),
    path(f"{CHAPTER}move/", views.chapter_move, name="chapter_move"),
    path(f"{CHAPTER}publish/", views.chapter_publish, name="chapter_publish"),
    path(f"{CHAPTER}delete/", views.chapter_delete, name="chapter_delete"),
    path(f"{CHAPTER}questionnaire/edit/", views.questionnaire_edit, name="questionnaire_edit"),
    path(
        f"{CHAPTER}questionnaire/delete/", views.questionnaire_delete, name="questionnaire_delete"
    ),
    path(f"{CHAPTER}questionnaire/questions/new/", views.question_create, name="question_create"),
    path(f"{QUESTION}edit/", views.question_edit, name="question_edit"),
    path(f"{QUESTION}move/", views.question_move, name="question_move"),
    path(f"{QUESTION}duplicate/", views.question_duplicate, name="question_duplicate"),
    path(f"{QUESTION}remove/", views.question_remove, name="question_remove"),
    path(f"{QUESTION}restore/", views.question_restore, name="question_restore"),
]
