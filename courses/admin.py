from __future__ import annotations

from django.contrib import admin

from courses.models import (
    Answer,
    Attempt,
    Chapter,
    Choice,
    Course,
    Enrolment,
    GradeWeight,
    Question,
    Questionnaire,
    RubricItem,
)


class ChapterInline(admin.TabularInline):
    model = Chapter
    fields = ("position", "slug", "title")
    extra = 0


class EnrolmentInline(admin.TabularInline):
    model = Enrolment
    fields = ("user", "role", "created_at")
    readonly_fields = ("created_at",)
    raw_id_fields = ("user",)
    extra = 0


@admin.register(Course)
class CourseAdmin(admin.ModelAdmin):
    list_display = ("title", "slug", "enrolment", "created_at")
    list_filter = ("enrolment",)
    search_fields = ("title", "slug")
    prepopulated_fields = {"slug": ("title",)}
    inlines = [ChapterInline]


@admin.register(Enrolment)
class EnrolmentAdmin(admin.ModelAdmin):
    list_display = ("user", "course", "role", "created_at")
    list_filter = ("role", "course")
    search_fields = ("user__username", "user__display_name", "course__title")
    raw_id_fields = ("user",)


@admin.register(Chapter)
class ChapterAdmin(admin.ModelAdmin):
    list_display = ("title", "course", "position", "updated_at")
    list_filter = ("course",)
    search_fields = ("title", "slug")
    ordering = ("course", "position")


class QuestionInline(admin.StackedInline):
    model = Question
    fields = ("position", "key", "kind", "points", "prompt")
    extra = 0
    show_change_link = True


@admin.register(Questionnaire)
class QuestionnaireAdmin(admin.ModelAdmin):
    list_display = ("title", "chapter", "max_attempts", "counts", "reveal", "due_at", "late")
    list_filter = ("counts", "reveal", "late", "chapter__course")
    inlines = [QuestionInline]


class ChoiceInline(admin.TabularInline):
    model = Choice
    fields = ("position", "text", "is_correct")
    extra = 0


class RubricItemInline(admin.TabularInline):
    model = RubricItem
    fields = ("position", "text", "points")
    extra = 0


@admin.register(Question)
class QuestionAdmin(admin.ModelAdmin):
    list_display = ("key", "kind", "questionnaire", "position", "points")
    list_filter = ("kind", "questionnaire__chapter__course")
    search_fields = ("key", "prompt")
    inlines = [ChoiceInline, RubricItemInline]


class AnswerInline(admin.TabularInline):
    model = Answer
    fields = ("question", "response", "score", "is_correct", "self_assessment", "review_score")
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(Attempt)
class AttemptAdmin(admin.ModelAdmin):
    list_display = ("user", "questionnaire", "number", "status", "score", "max_score", "is_late")
    list_filter = ("status", "is_late", "questionnaire__chapter__course")
    search_fields = ("user__username", "user__display_name")
    raw_id_fields = ("user",)
    date_hierarchy = "created_at"
    inlines = [AnswerInline]


@admin.register(Answer)
class AnswerAdmin(admin.ModelAdmin):
    list_display = ("attempt", "question", "score", "is_correct", "self_assessment", "reviewed_at")
    list_filter = ("is_correct", "self_assessment", "question__kind")
    search_fields = ("attempt__user__username", "question__key")
    raw_id_fields = ("attempt", "question", "reviewed_by")


@admin.register(Choice)
class ChoiceAdmin(admin.ModelAdmin):
    list_display = ("text", "question", "position", "is_correct")
    list_filter = ("is_correct", "question__questionnaire__chapter__course")
    search_fields = ("text", "question__key")
    raw_id_fields = ("question",)


@admin.register(GradeWeight)
class GradeWeightAdmin(admin.ModelAdmin):
    list_display = ("course", "kind", "object_id", "weight", "updated_at")
    list_filter = ("kind", "course")


@admin.register(RubricItem)
class RubricItemAdmin(admin.ModelAdmin):
    list_display = ("text", "question", "position", "points")
    search_fields = ("text", "question__key")
    raw_id_fields = ("question",)
