"""The forum in the admin: for looking things up. Posts' text is read-only here, because the
services render it and keep the search index (moderate on the site, where the services run)."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest

from forum.models import (
    Category,
    CategoryVisit,
    ErrorOccurrence,
    Flag,
    Notification,
    NotificationPreference,
    Post,
    PostLike,
    PostRevision,
    SubmissionReport,
    Thread,
    ThreadRead,
    Watch,
)
from forum.services import category_thread_counts_refresh


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ("__str__", "course", "kind", "thread_count", "created_at")
    list_filter = ("kind", "course")
    raw_id_fields = ("chapter",)


@admin.register(Thread)
class ThreadAdmin(admin.ModelAdmin):
    list_display = ("title", "course", "category", "author", "post_count", "last_posted_at")
    list_filter = ("is_pinned", "is_locked", "is_hidden", "course")
    search_fields = ("title", "author__username")
    raw_id_fields = (
        "category",
        "author",
        "question",
        "assignment",
        "accepted_post",
        "last_poster",
    )
    readonly_fields = ("post_count", "last_posted_at", "error_signature", "created_at")

    # The categories' thread counts are the services' to keep: what changes here is counted
    # again.
    def save_model(self, request: HttpRequest, obj: Thread, form: ModelForm, change: bool) -> None:
        before = form.initial.get("category")
        super().save_model(request, obj, form, change)
        category_thread_counts_refresh(
            category_ids=[obj.category_id, *([before] if before else [])]
        )

    def delete_model(self, request: HttpRequest, obj: Thread) -> None:
        super().delete_model(request, obj)
        category_thread_counts_refresh(category_ids=[obj.category_id])

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Thread]) -> None:
        category_ids = list(queryset.values_list("category_id", flat=True).distinct())
        super().delete_queryset(request, queryset)
        category_thread_counts_refresh(category_ids=category_ids)


@admin.register(Post)
class PostAdmin(admin.ModelAdmin):
    list_display = ("__str__", "author", "created_at", "is_hidden", "contains_answer")
    list_filter = ("is_hidden", "contains_answer")
    search_fields = ("body", "author__username", "thread__title")
    raw_id_fields = ("thread", "author", "hidden_by")
    readonly_fields = ("number", "body", "like_count", "edit_count", "edited_at", "created_at")
    exclude = ("body_html",)


@admin.register(PostRevision)
class PostRevisionAdmin(admin.ModelAdmin):
    list_display = ("__str__", "editor", "created_at")
    raw_id_fields = ("post", "editor")


@admin.register(PostLike)
class PostLikeAdmin(admin.ModelAdmin):
    list_display = ("post", "user", "created_at")
    raw_id_fields = ("post", "user")


@admin.register(Watch)
class WatchAdmin(admin.ModelAdmin):
    list_display = ("user", "thread", "category", "created_at")
    raw_id_fields = ("user", "thread", "category")


@admin.register(ThreadRead)
class ThreadReadAdmin(admin.ModelAdmin):
    list_display = ("user", "thread", "last_read_number", "updated_at")
    raw_id_fields = ("user", "thread")


@admin.register(CategoryVisit)
class CategoryVisitAdmin(admin.ModelAdmin):
    list_display = ("user", "category", "visited_at", "previous_visited_at")
    raw_id_fields = ("user", "category")


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ("user", "kind", "thread", "actor", "created_at", "read_at", "emailed_at")
    list_filter = ("kind",)
    raw_id_fields = ("user", "thread", "post", "actor")


@admin.register(NotificationPreference)
class NotificationPreferenceAdmin(admin.ModelAdmin):
    list_display = ("user", "email_each", "email_digest", "last_digest_at")
    raw_id_fields = ("user",)


@admin.register(Flag)
class FlagAdmin(admin.ModelAdmin):
    list_display = ("post", "user", "reason", "status", "created_at", "resolved_at")
    list_filter = ("status", "reason")
    raw_id_fields = ("post", "user", "resolved_by")


@admin.register(SubmissionReport)
class SubmissionReportAdmin(admin.ModelAdmin):
    list_display = ("post", "assignment", "status", "failure_reason", "signature", "created_at")
    list_filter = ("status", "failure_reason")
    raw_id_fields = ("post", "submission", "assignment")


@admin.register(ErrorOccurrence)
class ErrorOccurrenceAdmin(admin.ModelAdmin):
    list_display = ("submission", "assignment", "user", "signature", "exception", "finished_at")
    search_fields = ("signature", "exception")
    raw_id_fields = ("submission", "assignment", "user")
