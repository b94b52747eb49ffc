from __future__ import annotations

from django.urls import path

from courses import folder_views

# Included before courses.urls, so "import" is not taken for a course slug.
urlpatterns = [
    path("courses/import/", folder_views.course_folder_new, name="course_folder_new"),
    path("courses/<slug:course_slug>/folder/", folder_views.course_folder, name="course_folder"),
    path(
        "courses/<slug:course_slug>/folder.zip",
        folder_views.course_folder_zip,
        name="course_folder_zip",
    ),
]
