from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import ForeignKey
from django.forms import ModelChoiceField
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from grader.models import (
    Assignment,
    Baseline,
    BaselineRun,
    Dataset,
    Regrade,
    Submission,
    WorkerHeartbeat,
)


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(admin.ModelAdmin):
    list_display = ("hostname", "queues", "pid", "started_at", "last_seen_at")
    search_fields = ("hostname",)


# Dataset files are shown as stored names, never as links: the hidden labels must not be
# downloadable, and the public files are served to sandboxes, not through the admin.
DATASET_FILE_FIELDS = ("train", "valid", "test_inputs", "test_labels")


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ("slug", "version", "name", "task", "n_classes", "n_train", "n_test")
    list_filter = ("task",)
    search_fields = ("slug", "name")
    ordering = ("slug", "-version")
    fields = (
        ("slug", "version"),
        "name",
        "description",
        "licence",
        ("task", "n_classes"),
        "class_names",
        ("input_shape", "input_dtype"),
        ("n_train", "n_valid", "n_test"),
        "files",
        "content_sha256",
        ("created_by", "created_at", "updated_at"),
    )
    readonly_fields = (
        "slug",
        "version",
        "task",
        "n_classes",
        "input_shape",
        "input_dtype",
        "n_train",
        "n_valid",
        "n_test",
        "files",
        "content_sha256",
        "created_by",
        "created_at",
        "updated_at",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Content is validated and versioned by grader.services.dataset_create_from_npz.
        return False

    @admin.display(description="Files")
    def files(self, dataset: Dataset) -> str:
        rows = []
        for part in DATASET_FILE_FIELDS:
            field = getattr(dataset, f"{part}_file")
            if not field:
                continue
            hidden = " (hidden, not downloadable)" if part == "test_labels" else ""
            rows.append(
                format_html(
                    "{}{}: {} bytes, sha256 {}",
                    part,
                    hidden,
                    getattr(dataset, f"{part}_bytes"),
                    getattr(dataset, f"{part}_sha256"),
                )
            )
        return format_html_join("", "<div>{}</div>", ((row,) for row in rows))


class BaselineInline(admin.StackedInline):
    model = Baseline
    fields = ("name", "filename", "description", "code")
    extra = 0
    show_change_link = True


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ("title", "slug", "chapter", "dataset", "metric", "needs_gpu", "due_at")
    list_filter = ("metric", "needs_gpu", "pass_rule", "chapter__course")
    search_fields = ("title", "slug", "chapter__title")
    list_select_related = ("chapter", "dataset")
    prepopulated_fields = {"slug": ("title",)}
    raw_id_fields = ("chapter",)
    inlines = [BaselineInline]
    fieldsets = (
        (None, {"fields": ("chapter", "position", "title", "slug", "description", "starter_code")}),
        ("Scoring", {"fields": ("dataset", "metric", "public_fraction", "split_seed")}),
        (
            "Passing",
            {"fields": ("pass_rule", "pass_baseline", "pass_threshold", "due_at")},
        ),
        (
            "Limits",
            {"fields": ("wall_seconds", "memory_mb", "needs_gpu", "submissions_per_day")},
        ),
    )

    def formfield_for_foreignkey(
        self, db_field: ForeignKey, request: HttpRequest, **kwargs: Any
    ) -> ModelChoiceField | None:
        if db_field.name == "pass_baseline":
            # Only this assignment's baselines make sense; the id comes from the change URL.
            match = request.resolver_match
            object_id = match.kwargs.get("object_id") if match else None
            kwargs["queryset"] = (
                Baseline.objects.filter(assignment_id=object_id)
                if object_id
                else Baseline.objects.none()
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class BaselineRunInline(admin.TabularInline):
    model = BaselineRun
    fields = ("dataset", "status", "public_score", "private_score", "finished_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Baseline)
class BaselineAdmin(admin.ModelAdmin):
    list_display = ("name", "assignment", "filename", "updated_at")
    search_fields = ("name", "assignment__title", "assignment__slug")
    list_select_related = ("assignment",)
    raw_id_fields = ("assignment",)
    inlines = [BaselineRunInline]


RUN_READONLY = (
    "dataset",
    "filename",
    "code_kind",
    "code",
    "status",
    "failure_reason",
    "message",
    "created_at",
    "queued_at",
    "started_at",
    "finished_at",
    "updated_at",
    "worker_id",
    "device",
    "lease_expires_at",
    "attempts",
    "infrastructure_retries",
    "public_score",
    "private_score",
    "per_class",
    "confusion_matrix",
    "metrics",
    "log",
)


@admin.register(BaselineRun)
class BaselineRunAdmin(admin.ModelAdmin):
    list_display = ("baseline", "dataset", "status", "public_score", "private_score", "finished_at")
    list_filter = ("status", "failure_reason")
    search_fields = ("baseline__name", "baseline__assignment__slug", "worker_id")
    list_select_related = ("baseline", "dataset")
    readonly_fields = ("baseline", "code_sha256", *RUN_READONLY)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(Submission)
class SubmissionAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "user",
        "assignment",
        "status",
        "failure_reason",
        "public_score",
        "private_score",
        "created_at",
        "worker_id",
    )
    list_filter = ("status", "failure_reason", "counts_against_limit", "code_kind")
    search_fields = ("user__username", "user__display_name", "assignment__slug", "worker_id")
    list_select_related = ("user", "assignment")
    date_hierarchy = "created_at"
    # Outcomes are the pipeline's to write; staff may only waive a submission from the limit.
    # Overrides go through the course staff's page (submission_score_override), which keeps
    # score, comment, author and time together.
    readonly_fields = (
        "user",
        "assignment",
        *RUN_READONLY,
        "score_override",
        "override_comment",
        "overridden_by",
        "overridden_at",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(Regrade)
class RegradeAdmin(admin.ModelAdmin):
    """A record of what a submission was before course staff regraded it: read only."""

    list_display = (
        "submission",
        "requested_by",
        "created_at",
        "previous_status",
        "previous_failure_reason",
        "previous_public_score",
        "previous_private_score",
    )
    list_filter = ("previous_status",)
    search_fields = ("submission__user__username", "submission__assignment__slug")
    list_select_related = ("submission__user", "submission__assignment", "requested_by")
    date_hierarchy = "created_at"
    readonly_fields = (
        "submission",
        "requested_by",
        "created_at",
        "previous_status",
        "previous_failure_reason",
        "previous_public_score",
        "previous_private_score",
        "previous_dataset",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
