from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.storage import Storage, default_storage, storages
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Exists, F, Func, IntegerField, OuterRef, Q
from django.db.models.fields.files import FieldFile
from django.db.models.functions import Length
from django.utils import timezone
from numpy.typing import NDArray

from courses.models import Chapter
from grader.datasets import public_test_mask
from grader.metrics import METRICS, Direction, Metric


class WorkerHeartbeat(models.Model):
    """One row per Celery worker, touched every few seconds while it runs (see grader.heartbeat).

    Kept in the database, not the broker, so /healthz can count live workers whatever broker
    transport is in use.
    """

    hostname = models.CharField(max_length=255, unique=True)
    queues = models.CharField(max_length=255, blank=True)
    pid = models.PositiveIntegerField(null=True)
    started_at = models.DateTimeField()
    last_seen_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["hostname"]

    def __str__(self) -> str:
        return self.hostname


# --- Datasets -----------------------------------------------------------------------------------

HIDDEN_STORAGE_ALIAS = "grader_hidden"


def hidden_storage() -> Storage:
    """Where hidden test labels live: ``STORAGES["grader_hidden"]`` when the operator configures
    one (a private bucket, a folder no web server serves), else the default storage under
    ``datasets/hidden/``. Nothing in Topdown serves either through a URL.
    """
    if HIDDEN_STORAGE_ALIAS in settings.STORAGES:
        return storages[HIDDEN_STORAGE_ALIAS]
    return default_storage


def dataset_public_path(instance: Dataset, filename: str) -> str:
    return f"datasets/public/{instance.slug}/v{instance.version}/{filename}"


def dataset_hidden_path(instance: Dataset, filename: str) -> str:
    # The random part keeps the path unguessable should a deployment ever serve the storage.
    return f"datasets/hidden/{instance.slug}/v{instance.version}-{secrets.token_hex(8)}/{filename}"


@dataclass(frozen=True)
class DatasetFile:
    """One file a submission may see, as the job spec needs it (name inside the task folder)."""

    name: str
    file: FieldFile
    sha256: str
    size: int


class Dataset(models.Model):
    """One version of a dataset. Files never change once written: new content is a new version.

    Public files (what the sandbox gets): ``train.npz`` (x, y), optional ``valid.npz`` (x, y),
    ``test_inputs.npz`` (x). Hidden: ``test_labels.npz`` (y), in its own storage and prefix,
    read only by the trusted scoring side.
    """

    class Task(models.TextChoices):
        CLASSIFICATION = "classification", "Classification"
        REGRESSION = "regression", "Regression"

    slug = models.SlugField(max_length=80)
    version = models.PositiveIntegerField(default=1)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, help_text="Markdown.")
    licence = models.TextField(
        blank=True, help_text="Markdown: where the data comes from and on which terms."
    )
    task = models.CharField(max_length=16, choices=Task.choices, default=Task.CLASSIFICATION)
    n_classes = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Classification only: labels are 0 to n_classes - 1."
    )
    class_names = models.JSONField(
        default=list, blank=True, help_text="Display names of classes 0, 1, ...; empty: numbers."
    )
    input_shape = models.JSONField(default=list, blank=True, help_text="Shape of one input.")
    input_dtype = models.CharField(max_length=16, blank=True)
    n_train = models.PositiveIntegerField()
    n_valid = models.PositiveIntegerField(default=0)
    n_test = models.PositiveIntegerField()

    train_file = models.FileField(upload_to=dataset_public_path, max_length=255)
    train_sha256 = models.CharField(max_length=64)
    train_bytes = models.PositiveBigIntegerField()
    valid_file = models.FileField(upload_to=dataset_public_path, max_length=255, blank=True)
    valid_sha256 = models.CharField(max_length=64, blank=True)
    valid_bytes = models.PositiveBigIntegerField(default=0)
    test_inputs_file = models.FileField(upload_to=dataset_public_path, max_length=255)
    test_inputs_sha256 = models.CharField(max_length=64)
    test_inputs_bytes = models.PositiveBigIntegerField()
    test_labels_file = models.FileField(
        upload_to=dataset_hidden_path, storage=hidden_storage, max_length=255
    )
    test_labels_sha256 = models.CharField(max_length=64)
    test_labels_bytes = models.PositiveBigIntegerField()
    # Digest of the arrays themselves (not of the compressed files): same content, same version.
    content_sha256 = models.CharField(max_length=64)

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["slug", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["slug", "version"], name="dataset_unique_version"),
            models.CheckConstraint(condition=Q(version__gte=1), name="dataset_version_positive"),
            models.CheckConstraint(
                condition=Q(task="classification", n_classes__gte=2)
                | Q(task="regression", n_classes__isnull=True),
                name="dataset_classes_match_task",
            ),
            models.CheckConstraint(
                condition=Q(n_train__gt=0, n_test__gt=0), name="dataset_has_train_and_test"
            ),
            models.CheckConstraint(
                condition=Q(n_valid=0, valid_file="", valid_sha256="")
                | (Q(n_valid__gt=0) & ~Q(valid_file="") & ~Q(valid_sha256="")),
                name="dataset_valid_split_complete",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} (v{self.version})"

    def public_files(self) -> list[DatasetFile]:
        """The files a submission's sandbox receives. Never the hidden test labels."""
        files = [DatasetFile("train.npz", self.train_file, self.train_sha256, self.train_bytes)]
        if self.valid_file:
            files.append(
                DatasetFile("valid.npz", self.valid_file, self.valid_sha256, self.valid_bytes)
            )
        files.append(
            DatasetFile(
                "test_inputs.npz",
                self.test_inputs_file,
                self.test_inputs_sha256,
                self.test_inputs_bytes,
            )
        )
        return files

    def class_name(self, index: int) -> str:
        if 0 <= index < len(self.class_names):
            return str(self.class_names[index])
        return str(index)


# --- Assignments and baselines ------------------------------------------------------------------

METRIC_CHOICES = [(name, metric.label) for name, metric in METRICS.items()]


def new_split_seed() -> int:
    return secrets.randbelow(2**31)


class Assignment(models.Model):
    """A further-research assignment: code runs on ``dataset`` and is scored with ``metric``."""

    class PassRule(models.TextChoices):
        NONE = "none", "No pass mark"
        BEAT_BASELINE = "beat_baseline", "Beat a baseline"
        THRESHOLD = "threshold", "Reach a threshold"

    chapter = models.ForeignKey(Chapter, on_delete=models.CASCADE, related_name="assignments")
    slug = models.SlugField(max_length=80, unique=True)
    uid = models.SlugField(
        max_length=80,
        blank=True,
        help_text="Stable id in course folders; survives renaming the slug. Defaults to the slug.",
    )
    title = models.CharField(max_length=200)
    position = models.PositiveIntegerField(default=0)
    published = models.BooleanField(
        default=True,
        help_text="Students see and submit to published assignments only. A draft may lack a "
        "dataset.",
    )
    description = models.TextField(blank=True, help_text="Markdown.")
    starter_code = models.TextField(blank=True)
    dataset = models.ForeignKey(
        Dataset,
        on_delete=models.PROTECT,
        related_name="assignments",
        null=True,
        blank=True,
        help_text="The dataset version new submissions run on. Required to publish.",
    )
    metric = models.CharField(max_length=32, choices=METRIC_CHOICES, default="accuracy")
    public_fraction = models.FloatField(
        default=0.5,
        validators=[MinValueValidator(0.01), MaxValueValidator(0.99)],
        help_text="Share of the test set scored on the public leaderboard; the rest is private.",
    )
    split_seed = models.PositiveIntegerField(
        default=new_split_seed, help_text="Fixes which test rows are public."
    )
    wall_seconds = models.PositiveIntegerField(default=600)
    memory_mb = models.PositiveIntegerField(default=4096)
    needs_gpu = models.BooleanField(default=False)
    submissions_per_day = models.PositiveSmallIntegerField(
        default=5, help_text="Per student; 0 means unlimited."
    )
    gpu_seconds_per_day = models.PositiveIntegerField(
        default=0,
        help_text="GPU assignments: each student's GPU time on this assignment over the last 24 "
        "hours; 0 means unlimited. A run never gets more wall time than the student has left.",
    )
    pass_rule = models.CharField(max_length=16, choices=PassRule.choices, default=PassRule.NONE)
    pass_baseline = models.ForeignKey(
        "Baseline",
        # RESTRICT, not PROTECT: deleting the whole assignment (and so its baselines) still works.
        on_delete=models.RESTRICT,
        null=True,
        blank=True,
        related_name="+",
    )
    pass_threshold = models.FloatField(null=True, blank=True)
    due_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["chapter", "position", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(metric__in=list(METRICS)), name="assignment_metric_known"
            ),
            models.CheckConstraint(
                condition=Q(public_fraction__gt=0, public_fraction__lt=1),
                name="assignment_public_fraction_between_0_and_1",
            ),
            models.CheckConstraint(
                condition=Q(wall_seconds__gt=0, memory_mb__gt=0),
                name="assignment_limits_positive",
            ),
            models.CheckConstraint(
                condition=Q(pass_rule="none")  # noqa: S106 - a rule, not a password
                | Q(pass_rule="beat_baseline", pass_baseline__isnull=False)  # noqa: S106
                | Q(pass_rule="threshold", pass_threshold__isnull=False),  # noqa: S106
                name="assignment_pass_rule_complete",
            ),
            models.CheckConstraint(
                condition=Q(published=False) | Q(dataset__isnull=False),
                name="assignment_published_has_dataset",
            ),
            models.UniqueConstraint(
                fields=["uid"], condition=~Q(uid=""), name="assignment_unique_uid"
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

    @property
    def metric_spec(self) -> Metric:
        return METRICS[self.metric]

    @property
    def direction(self) -> Direction:
        return self.metric_spec.direction

    @property
    def live_dataset(self) -> Dataset:
        """The dataset of an assignment that takes work (published ones always have one)."""
        if self.dataset is None:
            raise ValueError(f"Assignment {self.slug!r} has no dataset yet; it is a draft.")
        return self.dataset

    def public_test_mask(self) -> NDArray[np.bool_]:
        """True for the test rows of the public split (same rows for every submission)."""
        return public_test_mask(
            self.live_dataset.n_test, fraction=self.public_fraction, seed=self.split_seed
        )

    def clean(self) -> None:
        errors: dict[str, str] = {}
        dataset = self.dataset if self.dataset_id is not None else None
        if self.metric in METRICS and dataset is not None:
            is_classification = dataset.task == Dataset.Task.CLASSIFICATION
            if METRICS[self.metric].classification != is_classification:
                errors["metric"] = (
                    f"{METRICS[self.metric].label} does not suit a "
                    f"{dataset.get_task_display().lower()} dataset."
                )
        if self.published and self.dataset_id is None:
            errors["published"] = "Choose a dataset before publishing this assignment."
        pass_baseline = self.pass_baseline
        if pass_baseline is not None and pass_baseline.assignment_id != self.pk:
            errors["pass_baseline"] = "Choose one of this assignment's baselines."  # noqa: S105
        if errors:
            raise ValidationError(errors)


class BaselineQuerySet(models.QuerySet["Baseline"]):
    def needing_run(self) -> BaselineQuerySet:
        """Baselines with no run of their current code on their assignment's current dataset.

        A queued, running, scored or failed run counts (a crashing baseline is not retried until
        its code or the dataset changes); a cancelled one does not.
        """
        runs = BaselineRun.objects.filter(
            baseline=OuterRef("pk"),
            dataset=OuterRef("assignment__dataset"),
            code=OuterRef("code"),
            filename=OuterRef("filename"),
        ).exclude(status=RunStatus.CANCELLED)
        return self.exclude(Exists(runs))


class Baseline(models.Model):
    """Reference code by the instructor, run through exactly the same pipeline as a student's.

    Its results live in ``BaselineRun`` rows, one per (dataset version, code) it ran on.
    """

    assignment = models.ForeignKey(Assignment, on_delete=models.CASCADE, related_name="baselines")
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True, help_text="Markdown: what this baseline does.")
    code = models.TextField()
    filename = models.CharField(max_length=255, default="baseline.py")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = BaselineQuerySet.as_manager()

    class Meta:
        ordering = ["assignment", "name"]
        constraints = [
            models.UniqueConstraint(fields=["assignment", "name"], name="baseline_unique_name")
        ]

    def __str__(self) -> str:
        return self.name


# --- Runs: student submissions and baseline runs --------------------------------------------

LOG_MAX_CHARS = 256 * 1024
METRIC_LINES_MAX = 10_000


def log_cap(text: str, limit: int = LOG_MAX_CHARS) -> str:
    """``text`` cut to ``limit`` characters, keeping the start and, mostly, the end (where the
    traceback is)."""
    if len(text) <= limit:
        return text
    marker = f"\n[... {len(text) - limit} characters cut ...]\n"
    head = max((limit - len(marker)) // 5, 0)
    tail = max(limit - len(marker) - head, 0)
    return text[:head] + marker + text[len(text) - tail :]


class JSONArrayLength(Func):
    """The length of a JSON array column, in the database (not the array over the wire)."""

    function = "jsonb_array_length"
    output_field = IntegerField()

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(compiler, connection, function="json_array_length", **extra)


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SCORED = "scored", "Scored"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class FailureReason(models.TextChoices):
    TIMEOUT = "timeout", "Ran out of time"
    MEMORY = "memory", "Ran out of memory"
    CRASHED = "crashed", "Crashed"
    INVALID_OUTPUT = "invalid_output", "Invalid predictions"
    INFRASTRUCTURE = "infrastructure", "Infrastructure problem"


class CodeKind(models.TextChoices):
    PY = "py", "Python script"
    IPYNB = "ipynb", "Jupyter notebook"


class GradedRun(models.Model):
    """One run of code on one dataset version, as the grading pipeline records it.

    Student submissions and baseline runs share these fields so one pipeline (claim with a
    lease, run, score, reap) handles both.
    """

    Status = RunStatus
    FailureReason = FailureReason
    CodeKind = CodeKind

    dataset = models.ForeignKey(
        Dataset,
        on_delete=models.PROTECT,
        related_name="%(class)ss",
        help_text="The dataset version this run was (or will be) scored on.",
    )
    # As uploaded: Python source, or the notebook's JSON for ipynb.
    code = models.TextField()
    filename = models.CharField(max_length=255)
    code_kind = models.CharField(max_length=8, choices=CodeKind.choices, default=CodeKind.PY)
    status = models.CharField(max_length=12, choices=RunStatus.choices, default=RunStatus.QUEUED)
    failure_reason = models.CharField(max_length=16, choices=FailureReason.choices, blank=True)
    message = models.TextField(blank=True, help_text="What happened, in words for the student.")

    created_at = models.DateTimeField(auto_now_add=True)
    queued_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    worker_id = models.CharField(max_length=255, blank=True)
    device = models.CharField(max_length=120, blank=True, help_text="E.g. cpu or cuda:0 (H100).")
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0, help_text="Times a worker claimed it.")
    infrastructure_retries = models.PositiveSmallIntegerField(default=0)

    public_score = models.FloatField(null=True, blank=True)
    private_score = models.FloatField(null=True, blank=True)
    per_class = models.JSONField(default=list, blank=True)
    confusion_matrix = models.JSONField(
        default=list, blank=True, help_text="Rows: true classes; columns: predicted classes."
    )
    log = models.TextField(blank=True, help_text=f"Capped at {LOG_MAX_CHARS} characters.")
    metrics = models.JSONField(
        default=list, blank=True, help_text="The metric lines the code logged, in order."
    )

    class Meta:
        abstract = True
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=RunStatus.values), name="%(class)s_status_known"
            ),
            models.CheckConstraint(
                condition=Q(failure_reason__in=[*FailureReason.values, ""]),
                name="%(class)s_failure_reason_known",
            ),
            models.CheckConstraint(
                condition=~Q(status=RunStatus.SCORED)
                | Q(public_score__isnull=False, finished_at__isnull=False),
                name="%(class)s_scored_has_score",
            ),
            models.CheckConstraint(
                condition=~Q(status=RunStatus.FAILED)
                | (~Q(failure_reason="") & ~Q(message="") & Q(finished_at__isnull=False)),
                name="%(class)s_failed_has_reason",
            ),
            models.CheckConstraint(
                condition=Q(status=RunStatus.FAILED) | Q(failure_reason=""),
                name="%(class)s_reason_only_if_failed",
            ),
            models.CheckConstraint(
                condition=~Q(status=RunStatus.RUNNING)
                | (~Q(worker_id="") & Q(lease_expires_at__isnull=False, started_at__isnull=False)),
                name="%(class)s_running_has_lease",
            ),
        ]
        # The reaper's query: running rows whose lease has expired.
        indexes = [models.Index(fields=["status", "lease_expires_at"], name="%(class)s_lease")]

    @property
    def is_finished(self) -> bool:
        return self.status in (RunStatus.SCORED, RunStatus.FAILED, RunStatus.CANCELLED)


class Submission(GradedRun):
    """A student's code for an assignment, and everything the grader found out about it."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="submissions"
    )
    assignment = models.ForeignKey(Assignment, on_delete=models.CASCADE, related_name="submissions")
    client_token = models.UUIDField(
        null=True,
        blank=True,
        editable=False,
        help_text="The submit form's token: sending the same form twice makes one submission.",
    )
    counts_against_limit = models.BooleanField(
        default=True, help_text="Counts towards the student's submissions per day."
    )
    # Course staff's word on the score: it counts in the grade export; leaderboards keep the
    # measured score (see docs/decisions.md).
    score_override = models.FloatField(
        null=True, blank=True, help_text="Replaces the public score in the grade export."
    )
    override_comment = models.TextField(blank=True, help_text="Why; the student sees it.")
    overridden_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    overridden_at = models.DateTimeField(null=True, blank=True)
    # Kept by the database on every write of the log or the metrics, whoever writes them (the
    # run keeper's flush, the result, a re-queue): the status poll reads these two integers each
    # second instead of measuring a TOASTed log of up to 256 K characters and a JSON array.
    log_chars = models.GeneratedField(
        expression=Length("log"), output_field=models.IntegerField(), db_persist=True
    )
    metrics_count = models.GeneratedField(
        expression=JSONArrayLength("metrics"), output_field=models.IntegerField(), db_persist=True
    )

    class Meta(GradedRun.Meta):
        ordering = ["-created_at", "-id"]
        constraints = [
            *GradedRun.Meta.constraints,
            models.UniqueConstraint(
                fields=["user", "client_token"],
                condition=Q(client_token__isnull=False),
                name="submission_unique_client_token",
            ),
            models.CheckConstraint(
                condition=Q(
                    score_override__isnull=True, override_comment="", overridden_at__isnull=True
                )
                | (
                    Q(score_override__isnull=False, overridden_at__isnull=False)
                    & ~Q(override_comment="")
                ),
                name="submission_override_has_comment",
            ),
            # Our failures never cost the student a submission.
            models.CheckConstraint(
                condition=~Q(failure_reason=FailureReason.INFRASTRUCTURE)
                | Q(counts_against_limit=False),
                name="submission_infrastructure_free",
            ),
        ]
        indexes = [
            *GradedRun.Meta.indexes,
            # The daily limit and a student's history on one assignment.
            models.Index(fields=["assignment", "user", "created_at"], name="submission_history"),
            # The staff's list, newest first, read from the top of the index.
            models.Index(fields=["assignment", "-created_at", "-id"], name="submission_newest"),
            # The leaderboard: each student's best scored submission, found from the index alone.
            models.Index(
                fields=["assignment", "user", "public_score", "created_at", "id"],
                include=["private_score"],
                condition=Q(status=RunStatus.SCORED),
                name="submission_leaderboard",
            ),
            # /metrics: the last hour's finished runs, at every scrape.
            models.Index(fields=["finished_at"], name="submission_finished"),
        ]

    def __str__(self) -> str:
        return f"Submission {self.pk} by {self.user} on {self.assignment}"


class Regrade(models.Model):
    """A submission sent back to the queue by course staff, and what it was before.

    The submission row itself holds the new result; this keeps the old one beside it.
    """

    submission = models.ForeignKey(Submission, on_delete=models.CASCADE, related_name="regrades")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(default=timezone.now)
    previous_status = models.CharField(max_length=12, choices=RunStatus.choices)
    previous_failure_reason = models.CharField(
        max_length=16, choices=FailureReason.choices, blank=True
    )
    previous_public_score = models.FloatField(null=True, blank=True)
    previous_private_score = models.FloatField(null=True, blank=True)
    previous_dataset = models.ForeignKey(
        Dataset, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(previous_status__in=RunStatus.values),
                name="regrade_previous_status_known",
            ),
            models.CheckConstraint(
                condition=Q(previous_failure_reason__in=[*FailureReason.values, ""]),
                name="regrade_previous_failure_reason_known",
            ),
        ]
        indexes = [
            models.Index(fields=["submission", "-created_at"], name="regrade_latest"),
        ]

    def __str__(self) -> str:
        return f"Regrade of submission {self.submission_id} at {self.created_at:%Y-%m-%d %H:%M}"


class BaselineRunQuerySet(models.QuerySet["BaselineRun"]):
    def current(self) -> BaselineRunQuerySet:
        """Runs of a baseline's current code on its assignment's current dataset version."""
        return self.filter(
            code=F("baseline__code"),
            filename=F("baseline__filename"),
            dataset=F("baseline__assignment__dataset"),
        )


class BaselineRun(GradedRun):
    """One run of a baseline's code (copied here as it was) on one dataset version."""

    baseline = models.ForeignKey(Baseline, on_delete=models.CASCADE, related_name="runs")
    code_sha256 = models.CharField(max_length=64)

    objects = BaselineRunQuerySet.as_manager()

    class Meta(GradedRun.Meta):
        ordering = ["-created_at", "-id"]
        indexes = [
            *GradedRun.Meta.indexes,
            models.Index(fields=["baseline", "dataset", "status"], name="baselinerun_results"),
        ]

    def __str__(self) -> str:
        return f"{self.baseline} on {self.dataset} ({self.get_status_display()})"
