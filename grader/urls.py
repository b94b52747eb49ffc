from __future__ import annotations

from django.urls import path

from grader import views

urlpatterns = [
    path("assignments/<slug:assignment_slug>/", views.assignment_detail, name="assignment_detail"),
    path("submissions/<int:submission_id>/", views.submission_detail, name="submission_detail"),
]
