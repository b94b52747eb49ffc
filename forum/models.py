"""The forum: categories beside a course's chapters, threads and posts, and what people do with
them (likes, watching, reading, notifications, flags), plus what ties a post to a failed run.

Counters on ``Category``, ``Thread`` and ``Post`` (threads, post count, last post, likes) are kept
by the services in ``forum.services``, in the same transaction as the rows they count; nothing here
updates them.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.search import SearchVectorField
from django.db import models
from django.db.models import Q
from django.utils import timezone

from courses.models import Chapter, Course, Question
from grader.models import Assignment, FailureReason, RunStatus, Submission


class Category(models.Model):
    """One per course (``general``) and one per chapter, created by ``categories_sync``."""

    class Kind(models.TextChoices):
        GENERAL = "general", "General"
        CHAPTER = "chapter", "Chapter"

    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="forum_categories")
    chapter = models.OneToOneField(
        Chapter,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="forum_category",
    )
    kind = models.CharField(max_length=10, choices=Kind.choices)
    title = models.CharField(max_length=200, help_text="Chapter categories show the chapter's.")
    description = models.TextField(blank=True, help_text="Markdown.")
    # Kept by the services (forum.services), so the category page does not count tens of
    # thousands of threads to paginate them.
    thread_count = models.PositiveIntegerField(default=0, editable=False, help_text="Not hidden.")
    hidden_thread_count = models.PositiveIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["course", "kind", "id"]
        verbose_name_plural = "categories"
        constraints = [
            models.UniqueConstraint(
                fields=["course"],
                condition=Q(kind="general"),
                name="forum_category_one_general_per_course",
            ),
            models.CheckConstraint(
                condition=Q(kind="general", chapter__isnull=True)
                | Q(kind="chapter", chapter__isnull=False),
                name="forum_category_chapter_matches_kind",
            ),
        ]

    def __str__(self) -> str:
        return self.display_title

    @property
    def display_title(self) -> str:
        # The chapter's own title, so renaming a chapter renames its category.
        if self.chapter_id is not None and self.chapter is not None:
            return self.chapter.title
        return self.title


class Thread(models.Model):
    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="forum_threads")
    category = models.ForeignKey(Category, on_delete=models.CASCADE, related_name="threads")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="forum_threads",
    )
    title = models.CharField(max_length=200)
    # What the thread is about, when it is about one thing: a question or an assignment.
    question = models.ForeignKey(
        Question,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="forum_threads",
    )
    assignment = models.ForeignKey(
        Assignment,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="forum_threads",
    )
    # The first post's run error, so "threads about this error" is one indexed lookup.
    error_signature = models.CharField(max_length=40, blank=True)
    is_pinned = models.BooleanField(default=False)
    is_locked = models.BooleanField(default=False)
    is_hidden = models.BooleanField(default=False)
    accepted_post = models.ForeignKey(
        "Post",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    post_count = models.PositiveIntegerField(default=0)
    last_posted_at = models.DateTimeField(default=timezone.now)
    last_poster = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-is_pinned", "-last_posted_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(question__isnull=True) | Q(assignment__isnull=True),
                name="forum_thread_one_anchor",
            ),
        ]
        indexes = [
            # The category page: pinned first, then the latest activity.
            models.Index(
                fields=["category", "-is_pinned", "-last_posted_at", "-id"],
                condition=Q(is_hidden=False),
                name="forum_thread_listing",
            ),
            models.Index(
                fields=["category", "-is_pinned", "-last_posted_at", "-id"],
                name="forum_thread_listing_staff",
            ),
            models.Index(
                fields=["assignment", "error_signature"],
                condition=~Q(error_signature=""),
                name="forum_thread_error",
            ),
            # Search leaves out the posts of a course's hidden threads: a handful of rows.
            models.Index(
                fields=["course"], condition=Q(is_hidden=True), name="forum_thread_hidden"
            ),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def anchor(self) -> Question | Assignment | None:
        return self.question or self.assignment


class Post(models.Model):
    thread = models.ForeignKey(Thread, on_delete=models.CASCADE, related_name="posts")
    # 1 for the thread's opening post; contiguous within a thread (pages are ranges of numbers).
    number = models.PositiveIntegerField()
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="forum_posts",
    )
    body = models.TextField(help_text="Markdown.")
    # Rendered and sanitised when written (topdown.markdown plus @mentions), shown as is.
    body_html = models.TextField(editable=False)
    contains_answer = models.BooleanField(
        default=False,
        help_text="Hidden from students who have not yet submitted the question or assignment.",
    )
    is_hidden = models.BooleanField(default=False)
    hidden_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    hidden_at = models.DateTimeField(null=True, blank=True)
    like_count = models.PositiveIntegerField(default=0)
    edit_count = models.PositiveIntegerField(default=0)
    edited_at = models.DateTimeField(null=True, blank=True)
    # PostgreSQL full-text search: the title (weight A, opening posts only), the body (B), and
    # markers of the course and the id's bucket (see forum.indexing).
    search_vector = SearchVectorField(null=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["thread", "number"]
        constraints = [
            models.UniqueConstraint(fields=["thread", "number"], name="forum_post_unique_number"),
            models.CheckConstraint(condition=Q(number__gte=1), name="forum_post_number_positive"),
        ]
        indexes = [
            # The rate limit: an author's posts in the last minute.
            models.Index(fields=["author", "created_at"], name="forum_post_author_recent"),
        ]

    def __str__(self) -> str:
        return f"#{self.number} in {self.thread}"


class PostRevision(models.Model):
    """What a post said before an edit. The post itself holds the current version."""

    post = models.ForeignKey(Post, on_delete=models.CASCADE, related_name="revisions")
    number = models.PositiveIntegerField(help_text="1 for the original version.")
    title = models.CharField(max_length=200, blank=True, help_text="Opening posts only.")
    body = models.TextField()
    editor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="Who replaced this version.",
    )
    created_at = models.DateTimeField(default=timezone.now, help_text="When it was replaced.")

    class Meta:
        ordering = ["post", "number"]
        constraints = [
            models.UniqueConstraint(fields=["post", "number"], name="forum_revision_unique")
        ]

    def __str__(self) -> str:
        return f"Version {self.number} of {self.post}"


class PostLike(models.Model):
    post = models.ForeignKey(Post, on_delete=models.CASCADE, related_name="likes")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="forum_likes"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["post", "user"], name="forum_like_once"),
        ]
        indexes = [models.Index(fields=["user", "post"], name="forum_like_by_user")]

    def __str__(self) -> str:
        return f"{self.user} likes {self.post}"


class Watch(models.Model):
    """A user follows a thread or a whole category: they hear of new posts there."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="forum_watches"
    )
    thread = models.ForeignKey(
        Thread, on_delete=models.CASCADE, null=True, blank=True, related_name="watches"
    )
    category = models.ForeignKey(
        Category, on_delete=models.CASCADE, null=True, blank=True, related_name="watches"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(thread__isnull=False, category__isnull=True)
                | Q(thread__isnull=True, category__isnull=False),
                name="forum_watch_one_target",
            ),
            models.UniqueConstraint(
                fields=["user", "thread"],
                condition=Q(thread__isnull=False),
                name="forum_watch_thread_once",
            ),
            models.UniqueConstraint(
                fields=["user", "category"],
                condition=Q(category__isnull=False),
                name="forum_watch_category_once",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} watches {self.thread or self.category}"


class ThreadRead(models.Model):
    """How far a user has read a thread: posts numbered above ``last_read_number`` are new."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="forum_reads"
    )
    thread = models.ForeignKey(Thread, on_delete=models.CASCADE, related_name="reads")
    last_read_number = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "thread"], name="forum_read_once"),
        ]

    def __str__(self) -> str:
        return f"{self.user} read {self.thread} to #{self.last_read_number}"


class CategoryVisit(models.Model):
    """When a user last looked at a category. Views within ``VISIT_GAP`` of each other are one
    visit, so "new since your last visit" stays put while the user moves between threads."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="forum_visits"
    )
    category = models.ForeignKey(Category, on_delete=models.CASCADE, related_name="visits")
    visited_at = models.DateTimeField(help_text="Start of the current visit.")
    previous_visited_at = models.DateTimeField(
        null=True, blank=True, help_text="Start of the visit before: what is new is newer."
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "category"], name="forum_visit_once"),
        ]

    def __str__(self) -> str:
        return f"{self.user} visited {self.category} at {self.visited_at:%Y-%m-%d %H:%M}"


class Notification(models.Model):
    class Kind(models.TextChoices):
        REPLY = "reply", "replied in your thread"
        MENTION = "mention", "mentioned you"
        ACCEPTED = "accepted", "accepted your answer"
        WATCHED = "watched", "posted in a thread you watch"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="forum_notifications"
    )
    kind = models.CharField(max_length=10, choices=Kind.choices)
    thread = models.ForeignKey(Thread, on_delete=models.CASCADE, related_name="notifications")
    post = models.ForeignKey(
        Post, on_delete=models.CASCADE, null=True, blank=True, related_name="notifications"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["user", "-created_at"], name="forum_notification_list"),
            models.Index(
                fields=["user"], condition=Q(read_at__isnull=True), name="forum_notification_unread"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.actor} {self.get_kind_display()} ({self.thread})"


class NotificationPreference(models.Model):
    """Email is opt-in: in-site notifications are always on."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="forum_preference"
    )
    email_each = models.BooleanField(
        default=False, help_text="Send me an email for each notification."
    )
    email_digest = models.BooleanField(
        default=False, help_text="Send me a daily digest of unread notifications."
    )
    last_digest_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Forum email for {self.user}"


class Flag(models.Model):
    class Reason(models.TextChoices):
        SPAM = "spam", "Spam or advertising"
        OFFENSIVE = "offensive", "Rude or offensive"
        OFF_TOPIC = "off_topic", "Off topic"
        SPOILER = "spoiler", "Gives away an answer"
        OTHER = "other", "Something else"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        ACTIONED = "actioned", "Post hidden"
        DISMISSED = "dismissed", "Dismissed"

    post = models.ForeignKey(Post, on_delete=models.CASCADE, related_name="flags")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="forum_flags"
    )
    reason = models.CharField(max_length=12, choices=Reason.choices)
    comment = models.TextField(blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["post", "user"],
                condition=Q(status="open"),
                name="forum_flag_one_open_per_user",
            ),
            models.CheckConstraint(
                condition=Q(status="open", resolved_at__isnull=True)
                | (~Q(status="open") & Q(resolved_at__isnull=False)),
                name="forum_flag_resolved_has_time",
            ),
        ]
        indexes = [models.Index(fields=["status", "post"], name="forum_flag_queue")]

    def __str__(self) -> str:
        return f"{self.get_reason_display()} on {self.post}"


class SubmissionReport(models.Model):
    """A run attached to a post by "Ask on the forum": what failed and where, never the code.

    Copied from the submission when the post is written, so the post reads the same if the run
    is regraded. The code itself stays on the submission; staff see it only if the author chose
    ``show_code_to_staff``.
    """

    post = models.OneToOneField(Post, on_delete=models.CASCADE, related_name="submission_report")
    submission = models.ForeignKey(
        Submission,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="forum_reports",
    )
    assignment = models.ForeignKey(
        Assignment, on_delete=models.CASCADE, related_name="forum_reports"
    )
    status = models.CharField(max_length=12, choices=RunStatus.choices)
    failure_reason = models.CharField(max_length=16, choices=FailureReason.choices, blank=True)
    summary = models.TextField(blank=True, help_text="What happened, in words, without the log.")
    traceback = models.TextField(blank=True)
    exception = models.CharField(max_length=500, blank=True)
    signature = models.CharField(max_length=40, blank=True)
    device = models.CharField(max_length=120, blank=True)
    libraries = models.JSONField(default=dict, blank=True)
    show_code_to_staff = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"Run report on {self.post}"

    @property
    def failure_label(self) -> str:
        return self.get_failure_reason_display() if self.failure_reason else ""


class ErrorOccurrence(models.Model):
    """A failed submission's error signature, so "N others hit this error" is one count.

    Filled by ``error_occurrences_index`` (beat) and whenever a failed run's page is shown.
    """

    submission = models.OneToOneField(
        Submission, on_delete=models.CASCADE, related_name="forum_error"
    )
    assignment = models.ForeignKey(
        Assignment, on_delete=models.CASCADE, related_name="forum_errors"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="forum_errors"
    )
    signature = models.CharField(max_length=40)
    exception = models.CharField(max_length=500, blank=True)
    # The run's finished_at when indexed: a regraded run has another and is indexed again.
    finished_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["assignment", "signature"], name="forum_error_group"),
        ]

    def __str__(self) -> str:
        return f"{self.signature} on submission {self.submission_id}"
