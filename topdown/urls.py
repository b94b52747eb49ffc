from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from topdown import health, markdown_views
from topdown.metrics import metrics_view

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("metrics", metrics_view, name="metrics"),
    path("markdown/preview/", markdown_views.markdown_preview, name="markdown_preview"),
    path("admin/", admin.site.urls),
    path("accounts/", include("accounts.urls")),
    path("", include("grader.authoring_urls")),
    path("", include("courses.authoring_urls")),
    path("", include("courses.folder_urls")),
    path("", include("grader.urls")),
    path("", include("forum.urls")),
    path("", include("courses.urls")),
]
