from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from courses.code_questions import TIME_LIMIT_MAX, TIME_LIMIT_MIN, code_problem, tests_problem


class Course(models.Model):
    class Enrolment(models.TextChoices):
        OPEN = "open", "Open: anyone may enrol"
        INVITE = "invite", "Invite code required"

    slug = models.SlugField(max_length=80, unique=True)
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True, help_text="Markdown.")
    enrolment = models.CharField(max_length=10, choices=Enrolment.choices, default=Enrolment.OPEN)
    invite_code = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["title"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(enrolment="invite") | ~Q(invite_code=""),
                name="course_invite_needs_code",
            )
        ]

    def __str__(self) -> str:
        return self.title


class Role(models.TextChoices):
    STUDENT = "student", "Student"
    TA = "ta", "Teaching assistant"
    INSTRUCTOR = "instructor", "Instructor"


STAFF_ROLES = (Role.TA, Role.INSTRUCTOR)


class Enrolment(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="enrolments"
    )
    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="enrolments")
    role = models.CharField(max_length=12, choices=Role.choices, default=Role.STUDENT)
    leaderboard_anonymous = models.BooleanField(
        default=False,
        help_text="Shown to other students as an anonymous student on leaderboards.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "course"], name="enrolment_unique_user_course")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.course} ({self.get_role_display()})"

    @property
    def is_staff_role(self) -> bool:
        return self.role in STAFF_ROLES


class Chapter(models.Model):
    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="chapters")
    slug = models.SlugField(max_length=80)
    uid = models.SlugField(
        max_length=80,
        blank=True,
        help_text="Stable id in course folders; survives renaming the slug. Defaults to the slug.",
    )
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True, help_text="Markdown.")
    position = models.PositiveIntegerField(default=0)
    published = models.BooleanField(
        default=True, help_text="Students see only published chapters; staff see drafts too."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["course", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["course", "slug"], name="chapter_unique_slug"),
            models.UniqueConstraint(
                fields=["course", "uid"], condition=~Q(uid=""), name="chapter_unique_uid"
            ),
        ]

    def __str__(self) -> str:
        return self.title

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self.uid:
            self.uid = self.slug
            if kwargs.get("update_fields") is not None:
                kwargs["update_fields"] = {*kwargs["update_fields"], "uid"}
        super().save(*args, **kwargs)


class Questionnaire(models.Model):
    class Counts(models.TextChoices):
        BEST = "best", "Best attempt"
        LAST = "last", "Last attempt"

    class Reveal(models.TextChoices):
        AFTER_EACH_ATTEMPT = "after_each_attempt", "After each attempt"
        AFTER_LAST_ATTEMPT = "after_last_attempt", "After the last attempt"
        AFTER_DUE_DATE = "after_due_date", "After the due date"

    class Late(models.TextChoices):
        REFUSE = "refuse", "Refuse late submissions"
        ACCEPT = "accept", "Accept and mark late"

    chapter = models.OneToOneField(Chapter, on_delete=models.CASCADE, related_name="questionnaire")
    title = models.CharField(max_length=200, default="Check your understanding")
    max_attempts = models.PositiveIntegerField(default=0, help_text="0 means unlimited.")
    counts = models.CharField(max_length=8, choices=Counts.choices, default=Counts.BEST)
    reveal = models.CharField(
        max_length=24, choices=Reveal.choices, default=Reveal.AFTER_EACH_ATTEMPT
    )
    due_at = models.DateTimeField(null=True, blank=True)
    late = models.CharField(max_length=8, choices=Late.choices, default=Late.REFUSE)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.chapter}: {self.title}"


class Question(models.Model):
    class Kind(models.TextChoices):
        SINGLE = "single", "Single choice"
        MULTIPLE = "multiple", "Multiple choice"
        TRUE_FALSE = "true_false", "True or false"
        NUMERIC = "numeric", "Numeric"
        SHORT_TEXT = "short_text", "Short text"
        FREE_TEXT = "free_text", "Free text"
        CODE = "code", "Code"

    class ToleranceMode(models.TextChoices):
        ABSOLUTE = "absolute", "Absolute"
        RELATIVE = "relative", "Relative"

    questionnaire = models.ForeignKey(
        Questionnaire, on_delete=models.CASCADE, related_name="questions"
    )
    key = models.SlugField(max_length=80, help_text="Stable identifier within the questionnaire.")
    position = models.PositiveIntegerField(default=0)
    archived = models.BooleanField(
        default=False,
        help_text="Removed from the questionnaire; kept because students answered it.",
    )
    kind = models.CharField(max_length=12, choices=Kind.choices)
    prompt = models.TextField(help_text="Markdown.")
    explanation = models.TextField(blank=True, help_text="Markdown, shown when answers reveal.")
    points = models.DecimalField(
        max_digits=6, decimal_places=2, default=Decimal("1"), validators=[MinValueValidator(0)]
    )
    # true_false
    correct_boolean = models.BooleanField(null=True, blank=True)
    # numeric
    numeric_answer = models.FloatField(null=True, blank=True)
    tolerance = models.FloatField(default=0, validators=[MinValueValidator(0)])
    tolerance_mode = models.CharField(
        max_length=10, choices=ToleranceMode.choices, default=ToleranceMode.ABSOLUTE
    )
    # short_text
    accepted_answers = models.JSONField(default=list, blank=True)
    answer_regex = models.CharField(max_length=500, blank=True)
    # free_text
    reference_answer = models.TextField(blank=True, help_text="Markdown.")
    # code: the student writes solution.py; the tests see its public names
    starter_code = models.TextField(blank=True, help_text="Python the answer box starts with.")
    visible_tests = models.TextField(
        blank=True, help_text="Python test functions (def test_...(): with asserts), shown."
    )
    hidden_tests = models.TextField(
        blank=True, help_text="Python test functions never shown: students see only a count."
    )
    time_limit_seconds = models.PositiveIntegerField(
        default=10,
        validators=[MinValueValidator(TIME_LIMIT_MIN), MaxValueValidator(TIME_LIMIT_MAX)],
        help_text="Wall-clock limit of each run of the tests (visible, then hidden).",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["questionnaire", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["questionnaire", "key"], name="question_unique_key"),
            models.CheckConstraint(
                condition=~Q(kind="true_false") | Q(correct_boolean__isnull=False),
                name="question_true_false_has_answer",
            ),
            models.CheckConstraint(
                condition=~Q(kind="numeric") | Q(numeric_answer__isnull=False),
                name="question_numeric_has_answer",
            ),
            models.CheckConstraint(
                condition=~Q(kind="code")
                | Q(visible_tests__contains="def test_")
                | Q(hidden_tests__contains="def test_"),
                name="question_code_has_tests",
            ),
            models.CheckConstraint(
                condition=Q(
                    time_limit_seconds__gte=TIME_LIMIT_MIN, time_limit_seconds__lte=TIME_LIMIT_MAX
                ),
                name="question_time_limit_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.key} ({self.get_kind_display()})"

    @property
    def has_choices(self) -> bool:
        return self.kind in (self.Kind.SINGLE, self.Kind.MULTIPLE)

    @property
    def has_hidden_tests(self) -> bool:
        """Whether hidden tests run (what they are is never shown to students)."""
        return "def test_" in self.hidden_tests

    def clean(self) -> None:
        super().clean()
        if self.kind != self.Kind.CODE:
            return
        errors = {}
        for name in ("visible_tests", "hidden_tests"):
            source = getattr(self, name)
            problem = tests_problem(source) if source.strip() else ""
            if problem:
                errors[name] = f"These tests {problem}."
        if not errors and not (self.visible_tests.strip() or self.hidden_tests.strip()):
            errors["visible_tests"] = "A code question needs visible or hidden tests."
        problem = code_problem(self.starter_code)
        if problem:
            errors["starter_code"] = problem[0].upper() + problem[1:] + "."
        if errors:
            raise ValidationError(errors)


class Choice(models.Model):
    question = models.ForeignKey(Question, on_delete=models.CASCADE, related_name="choices")
    position = models.PositiveIntegerField(default=0)
    text = models.TextField(help_text="Markdown.")
    is_correct = models.BooleanField(default=False)

    class Meta:
        ordering = ["question", "position", "id"]

    def __str__(self) -> str:
        return self.text[:60]


class RubricItem(models.Model):
    """One criterion a reviewer ticks on a free-text answer; ticked points add up to the score."""

    question = models.ForeignKey(Question, on_delete=models.CASCADE, related_name="rubric_items")
    position = models.PositiveIntegerField(default=0)
    text = models.CharField(max_length=300)
    points = models.DecimalField(
        max_digits=6, decimal_places=2, default=Decimal("1"), validators=[MinValueValidator(0)]
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["question", "position", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(points__gte=0), name="rubric_item_points_not_negative"
            )
        ]

    def __str__(self) -> str:
        return f"{self.text[:60]} ({self.points})"


class Attempt(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SUBMITTED = "submitted", "Submitted"

    questionnaire = models.ForeignKey(
        Questionnaire, on_delete=models.CASCADE, related_name="attempts"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="attempts"
    )
    # Minted by the form the student saw, so a double-clicked submit finds the same attempt.
    token = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    number = models.PositiveIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    is_late = models.BooleanField(default=False)
    score = models.DecimalField(max_digits=8, decimal_places=2, null=True, blank=True)
    max_score = models.DecimalField(max_digits=8, decimal_places=2, default=Decimal("0"))
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    submitted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["questionnaire", "user", "number"]
        constraints = [
            models.UniqueConstraint(
                fields=["questionnaire", "user", "number"], name="attempt_unique_number"
            ),
            models.UniqueConstraint(
                fields=["questionnaire", "user"],
                condition=Q(status="draft"),
                name="attempt_one_draft",
            ),
            models.CheckConstraint(
                condition=Q(status="draft") | Q(submitted_at__isnull=False),
                name="attempt_submitted_has_time",
            ),
        ]
        indexes = [models.Index(fields=["user", "questionnaire", "status"])]

    def __str__(self) -> str:
        return f"Attempt {self.number} by {self.user} on {self.questionnaire}"

    @property
    def fraction(self) -> float:
        if not self.max_score or self.score is None:
            return 0.0
        return float(self.score / self.max_score)


class Answer(models.Model):
    class SelfAssessment(models.TextChoices):
        GOT_IT = "got_it", "Got it"
        PARTLY = "partly", "Partly"
        MISSED = "missed", "Missed it"

    attempt = models.ForeignKey(Attempt, on_delete=models.CASCADE, related_name="answers")
    question = models.ForeignKey(Question, on_delete=models.CASCADE, related_name="answers")
    # What the student gave, as the form cleaned it: a list of choice ids, a bool, a number or text.
    response = models.JSONField(null=True, blank=True)
    score = models.DecimalField(max_digits=6, decimal_places=2, null=True, blank=True)
    is_correct = models.BooleanField(null=True)
    feedback = models.TextField(blank=True)
    # Code answers: {"visible": [{name, passed, message}], "hidden": {passed, total}, "message"}
    details = models.JSONField(default=dict, blank=True)
    self_assessment = models.CharField(max_length=8, choices=SelfAssessment.choices, blank=True)
    review_score = models.DecimalField(max_digits=6, decimal_places=2, null=True, blank=True)
    review_feedback = models.TextField(blank=True)
    # The rubric items the reviewer ticked, as they read then: [{"id", "text", "points"}].
    review_rubric = models.JSONField(default=list, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["attempt", "question__position"]
        constraints = [
            models.UniqueConstraint(fields=["attempt", "question"], name="answer_unique_question")
        ]

    def __str__(self) -> str:
        return f"Answer to {self.question.key} in {self.attempt}"

    @property
    def is_running(self) -> bool:
        """A code answer whose tests have not reported yet."""
        return (
            self.question.kind == Question.Kind.CODE
            and self.score is None
            and not self.details.get("unavailable")
        )

    @property
    def outcome(self) -> str:
        """How the answer was marked: pending, correct, partial or incorrect."""
        if self.score is None:
            return "pending"
        if self.is_correct or (self.score > 0 and self.score >= self.question.points):
            return "correct"
        return "partial" if self.score > 0 else "incorrect"


class GradeWeight(models.Model):
    """How much one questionnaire or assignment counts in the course grade (default 1).

    Keyed by kind and id rather than a foreign key: assignments live in ``grader``, which
    depends on ``courses``, so a foreign key from here would make the two apps' migrations
    depend on each other. The gradebook ignores weights whose object no longer exists.
    """

    class Kind(models.TextChoices):
        QUESTIONNAIRE = "questionnaire", "Questionnaire"
        ASSIGNMENT = "assignment", "Assignment"

    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="grade_weights")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    object_id = models.PositiveIntegerField()
    weight = models.DecimalField(
        max_digits=6, decimal_places=2, default=Decimal("1"), validators=[MinValueValidator(0)]
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["course", "kind", "object_id"], name="grade_weight_unique_object"
            ),
            models.CheckConstraint(condition=Q(weight__gte=0), name="grade_weight_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.object_id} in {self.course}: {self.weight}"
