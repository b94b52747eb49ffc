from __future__ import annotations

from django.contrib import admin

from grader.models import WorkerHeartbeat


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(admin.ModelAdmin):
    list_display = ("hostname", "queues", "pid", "started_at", "last_seen_at")
    search_fields = ("hostname",)
