"""Instructors author further-research assignments: services that write, selectors that read.

An assignment starts as a draft (``published=False``, perhaps without a dataset); publishing
checks that students could actually work on it. Baselines are reference code run through the
same pipeline as students' work (``grader.submissions``). Datasets are registered from an
uploaded ``.npz`` by ``grader.services`` (which validates and versions them); a course sees the
built-in datasets and those its own instructors registered (see docs/decisions.md).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max, OuterRef, Q, QuerySet, Subquery
from django.utils.safestring import SafeString
from django.utils.text import slugify

from accounts.models import User
from courses.models import Chapter, Course, Enrolment, Role
from grader import results, submissions
from grader.assignment_overview import (
    DatasetSummary,
    SampleGrid,
    dataset_sample_grid,
    dataset_summary,
)
from grader.datasets import DEFAULT_MAX_BYTES, Task, npz_headers, sha256_file
from grader.metrics import METRICS
from grader.models import Assignment, Baseline, BaselineRun, Dataset, FailureReason, RunStatus
from grader.services import dataset_create_from_npz
from topdown import charts

# --- Datasets -----------------------------------------------------------------------------------


def datasets_for_course(*, course: Course) -> QuerySet[Dataset]:
    """The datasets a course's instructors may see and use: the built-in ones (registered by a
    command or a site administrator) and those registered by an instructor of this course."""
    instructors = Enrolment.objects.filter(course=course, role=Role.INSTRUCTOR).values("user_id")
    return Dataset.objects.filter(
        Q(created_by__isnull=True)
        | Q(created_by__is_superuser=True)
        | Q(created_by__in=instructors)
    ).order_by("slug", "-version")


@dataclass(frozen=True)
class StoredFile:
    """One file of a registered dataset, as the instructor checks it."""

    name: str
    hidden: bool
    size_bytes: int
    sha256: str
    arrays: tuple[tuple[str, tuple[int, ...], str], ...]  # (key, shape, dtype)


@dataclass(frozen=True)
class DatasetReport:
    """What registering a dataset found: for the instructor, so the hidden part is included."""

    dataset: Dataset
    files: tuple[StoredFile, ...]
    summary: DatasetSummary
    class_chart: SafeString
    sample_grid: SampleGrid | None
    versions: tuple[Dataset, ...]  # every version of the slug, newest first
    same_content: tuple[Dataset, ...]  # other datasets (any slug) holding exactly these arrays


def dataset_report(*, dataset: Dataset) -> DatasetReport:
    """Arrays (shape, dtype) of every stored file, hidden labels included, with sizes and
    digests; class counts in the training split and their chart; the sample picture's layout;
    the slug's other versions. Reads array headers and training labels, never the inputs."""
    summary = dataset_summary(dataset=dataset)
    public = {file.name: file for file in summary.files}
    files = [
        StoredFile(
            name=file.name,
            hidden=False,
            size_bytes=file.size,
            sha256=file.sha256,
            arrays=tuple(
                (array.key, array.shape, array.dtype) for array in public[file.name].arrays
            ),
        )
        for file in dataset.public_files()
    ]
    labels = dataset.test_labels_file
    assert labels.name, f"{dataset} has no hidden labels"
    with labels.storage.open(labels.name, "rb") as handle:
        headers = npz_headers(handle)
    files.append(
        StoredFile(
            name="test_labels.npz",
            hidden=True,
            size_bytes=dataset.test_labels_bytes,
            sha256=dataset.test_labels_sha256,
            arrays=tuple((key, shape, dtype) for key, (shape, dtype) in sorted(headers.items())),
        )
    )
    chart = charts.bar_chart(
        [c.train_count for c in summary.classes],
        labels=[c.name for c in summary.classes],
        x_label="class",
        y_label="training examples",
        title="Training examples per class",
    )
    return DatasetReport(
        dataset=dataset,
        files=tuple(files),
        summary=summary,
        class_chart=chart,
        sample_grid=dataset_sample_grid(dataset=dataset),
        versions=tuple(Dataset.objects.filter(slug=dataset.slug).order_by("-version")),
        same_content=tuple(
            Dataset.objects.filter(content_sha256=dataset.content_sha256)
            .exclude(pk=dataset.pk)
            .order_by("slug", "version")
        ),
    )


@dataclass(frozen=True)
class DatasetUpload:
    """The outcome of an upload: the version that holds the data, and whether it is new."""

    dataset: Dataset
    created: bool
    previous: Dataset | None  # the slug's latest version before this upload
    upload_bytes: int
    upload_sha256: str
    report: DatasetReport

    @property
    def outcome(self) -> str:
        dataset = self.dataset
        if not self.created:
            return (
                f"The file holds exactly the data of {dataset.name} version {dataset.version}: "
                "nothing new was stored (names and descriptions were updated)."
            )
        if self.previous is None:
            return f"Registered {dataset.name} as a new dataset (version 1)."
        return (
            f"Registered {dataset.name} version {dataset.version}: the data differ from "
            f"version {self.previous.version}. Assignments keep their version until you choose "
            "the new one."
        )


def dataset_register_upload(
    *,
    course: Course,
    user: User,
    file: IO[bytes],
    slug: str,
    name: str,
    task: Task,
    n_classes: int | None = None,
    class_names: Sequence[str] = (),
    description: str = "",
    licence: str = "",
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> DatasetUpload:
    """Validate and register an instructor's ``.npz`` (``grader.services.dataset_create_from_npz``).

    A slug names one dataset across the site: new versions may be added only to a slug whose
    versions all belong to this course's instructors; a built-in slug or another course's is
    refused (``ValidationError`` on ``slug``). Raises ``DatasetInvalid`` (what is wrong with the
    file; nothing is stored) or ``DatasetError``.
    """
    existing = list(Dataset.objects.filter(slug=slug).order_by("-version"))
    instructors = set(
        Enrolment.objects.filter(course=course, role=Role.INSTRUCTOR).values_list(
            "user_id", flat=True
        )
    )
    if any(dataset.created_by_id not in instructors for dataset in existing):
        raise ValidationError(
            {
                "slug": f"{slug!r} is taken by another dataset (built in, or of another course); "
                "choose another short name."
            }
        )
    file.seek(0)
    upload_sha256 = sha256_file(file)
    upload_bytes = file.tell()
    file.seek(0)
    dataset = dataset_create_from_npz(
        slug=slug,
        name=name,
        file=file,
        task=task,
        n_classes=n_classes,
        class_names=class_names,
        description=description,
        licence=licence,
        created_by=user,
        max_bytes=max_bytes,
    )
    previous = existing[0] if existing else None
    created = previous is None or dataset.pk != previous.pk
    return DatasetUpload(
        dataset=dataset,
        created=created,
        previous=previous if created else None,
        upload_bytes=upload_bytes,
        upload_sha256=upload_sha256,
        report=dataset_report(dataset=dataset),
    )


# --- Assignments --------------------------------------------------------------------------------

# What the editor may change; everything else (chapter, uid, split seed) stays put.
EDITABLE_FIELDS = (
    "title",
    "slug",
    "description",
    "starter_code",
    "dataset",
    "metric",
    "public_fraction",
    "wall_seconds",
    "memory_mb",
    "needs_gpu",
    "submissions_per_day",
    "gpu_seconds_per_day",
    "pass_rule",
    "pass_baseline",
    "pass_threshold",
    "due_at",
)


def _free_slug(base: str) -> str:
    base = (slugify(base) or "assignment")[:72].strip("-") or "assignment"
    taken = set(
        Assignment.objects.filter(Q(slug__startswith=base) | Q(uid__startswith=base)).values_list(
            "slug", "uid"
        )
    )
    used = {value for pair in taken for value in pair}
    candidate, n = base, 1
    while candidate in used:
        n += 1
        candidate = f"{base}-{n}"
    return candidate


@transaction.atomic
def assignment_create(
    *,
    chapter: Chapter,
    title: str,
    slug: str = "",
    description: str = "",
    starter_code: str = "",
    dataset: Dataset | None = None,
    uid: str = "",
) -> Assignment:
    """A new draft at the end of the chapter. ``slug`` empty: one made from the title.

    Metric, limits and pass rule start at their defaults; set them with ``assignment_update``.
    """
    title = title.strip()
    slug = slug.strip() or _free_slug(title)
    if not uid and Assignment.objects.filter(uid=slug).exists():
        # An older assignment renamed away from this slug keeps it as its stable id.
        uid = f"{slug[:70]}-{secrets.token_hex(4)}"
    last = chapter.assignments.aggregate(last=Max("position"))["last"]
    metric = "accuracy"
    if dataset is not None and dataset.task == Dataset.Task.REGRESSION:
        metric = "mse"
    assignment = Assignment(
        chapter=chapter,
        title=title,
        slug=slug,
        uid=uid or slug,
        position=(last or 0) + 1,
        published=False,
        description=description,
        starter_code=starter_code,
        dataset=dataset,
        metric=metric,
    )
    assignment.full_clean()
    assignment.save()
    return assignment


@transaction.atomic
def assignment_update(*, assignment: Assignment, changes: Mapping[str, Any]) -> Assignment:
    """Change the fields named in ``changes`` (only ``EDITABLE_FIELDS``); all rules are checked
    together, so a published assignment cannot lose its dataset or get an unsuitable metric."""
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValueError(f"not editable here: {', '.join(sorted(unknown))}")
    rule = changes.get("pass_rule", assignment.pass_rule)
    normalised = dict(changes)
    if rule != Assignment.PassRule.BEAT_BASELINE:
        normalised["pass_baseline"] = None
    if rule != Assignment.PassRule.THRESHOLD:
        normalised["pass_threshold"] = None
    changed = [field for field, value in normalised.items() if getattr(assignment, field) != value]
    for field in changed:
        setattr(assignment, field, normalised[field])
    if not changed:
        return assignment
    assignment.full_clean()
    assignment.save(update_fields=[*changed, "updated_at"])
    return assignment


def assignment_publish_problems(*, assignment: Assignment) -> list[str]:
    """Why the assignment may not be published yet, in words for its instructor (empty: it may)."""
    problems = []
    dataset = assignment.dataset if assignment.dataset_id is not None else None
    if dataset is None:
        problems.append("Choose a dataset before publishing this assignment.")
    elif METRICS[assignment.metric].classification != (dataset.task == Dataset.Task.CLASSIFICATION):
        problems.append(
            f"{METRICS[assignment.metric].label} does not suit a "
            f"{dataset.get_task_display().lower()} dataset: choose another metric."
        )
    if assignment.pass_rule == Assignment.PassRule.BEAT_BASELINE:
        baseline = assignment.pass_baseline
        if baseline is None:
            problems.append("The pass rule names no baseline: choose the baseline to beat.")
        elif dataset is not None and not (
            BaselineRun.objects.current()
            .filter(baseline=baseline, status=RunStatus.SCORED)
            .exists()
        ):
            problems.append(
                f"The pass rule asks students to beat {baseline.name}, which has no score on "
                "this dataset yet: run the baselines and wait for it to be scored."
            )
    return problems


@transaction.atomic
def assignment_publish(*, assignment: Assignment, published: bool) -> Assignment:
    """Open the assignment to students (``published=True``) or take it back as a draft.

    Publishing is refused, with every reason at once (``ValidationError``), without a dataset,
    with a metric that does not suit it, or with a pass rule whose baseline has no score.
    Unpublishing hides it from students; their submissions are kept.
    """
    if published:
        problems = assignment_publish_problems(assignment=assignment)
        if problems:
            raise ValidationError(problems)
    if assignment.published == published:
        return assignment
    assignment.published = published
    assignment.full_clean()
    assignment.save(update_fields=["published", "updated_at"])
    return assignment


# --- Baselines ----------------------------------------------------------------------------------


def _baseline_check(baseline: Baseline) -> None:
    errors: dict[str, list[str]] = {}
    try:
        submissions.code_kind_for(baseline.filename)
    except submissions.SubmissionRefused:
        errors["filename"] = ["A baseline is a Python file (.py) or a notebook (.ipynb)."]
    else:
        try:
            submissions.submission_code_validate(
                filename=baseline.filename, content=baseline.code.encode()
            )
        except submissions.SubmissionRefused as error:
            errors["code"] = [str(error)]
    try:
        baseline.full_clean()
    except ValidationError as error:
        for field, messages in error.message_dict.items():
            errors.setdefault(field, []).extend(messages)
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def baseline_create(
    *,
    assignment: Assignment,
    name: str,
    code: str,
    filename: str = "baseline.py",
    description: str = "",
) -> Baseline:
    """A new baseline. It runs when the instructor asks (``baselines_run``), not at once."""
    baseline = Baseline(
        assignment=assignment,
        name=name.strip(),
        code=code,
        filename=filename or "baseline.py",
        description=description,
    )
    _baseline_check(baseline)
    baseline.save()
    return baseline


@transaction.atomic
def baseline_update(
    *, baseline: Baseline, name: str, code: str, filename: str, description: str
) -> Baseline:
    """Changed code runs again with the next "Run baselines"; old runs are kept as history."""
    baseline.name = name.strip()
    baseline.code = code
    baseline.filename = filename or "baseline.py"
    baseline.description = description
    _baseline_check(baseline)
    baseline.save()
    return baseline


@transaction.atomic
def baseline_delete(*, baseline: Baseline) -> None:
    """Delete a baseline and its runs. Refused while it is the pass rule's baseline, or while one
    of its runs is running (its worker would lose the row under it)."""
    assignment = Assignment.objects.select_for_update().get(pk=baseline.assignment_id)
    if assignment.pass_baseline_id == baseline.pk:
        raise ValidationError(
            f"{baseline.name} is the baseline students must beat to pass: change the pass rule "
            "first."
        )
    if baseline.runs.filter(status=RunStatus.RUNNING).exists():
        raise ValidationError(
            f"{baseline.name} is running right now; delete it once the run has finished."
        )
    baseline.delete()


@transaction.atomic
def baselines_run(*, assignment: Assignment, everything: bool = False) -> list[BaselineRun]:
    """Queue runs: of each baseline whose current code has no run on the current dataset, or
    (``everything``) a fresh run of each baseline not already queued or running.

    The runs go through the grading queue after commit, like students' submissions.
    """
    if assignment.dataset_id is None:
        raise ValidationError("Choose a dataset first: baselines run on the assignment's dataset.")
    if everything:
        return submissions.baselines_rerun(assignment=assignment)
    # Locked, so that a double click does not queue each missing baseline twice.
    list(Baseline.objects.select_for_update().filter(assignment=assignment).values_list("pk"))
    return submissions.baselines_run_missing(assignment=assignment)


@dataclass(frozen=True)
class BaselineRow:
    """A baseline with its latest run of its current code on the current dataset, if any."""

    baseline: Baseline
    run_id: int | None
    status: str  # a RunStatus, or "" when the current code has not run on the current dataset
    failure_reason: str
    message: str
    public_score: float | None
    score_text: str  # the public score as students see it (``results.format_score``)
    finished_at: datetime | None
    older_runs: bool  # runs of earlier code or of another dataset exist

    @property
    def is_active(self) -> bool:
        return self.status in (RunStatus.QUEUED, RunStatus.RUNNING)

    @property
    def status_label(self) -> str:
        return RunStatus(self.status).label if self.status else "Not run yet"

    @property
    def failure_label(self) -> str:
        return FailureReason(self.failure_reason).label if self.failure_reason else ""


def baselines_for_authoring(*, assignment: Assignment) -> list[BaselineRow]:
    """The assignment's baselines by name, each with its current run's status (one query)."""
    current = BaselineRun.objects.filter(
        Q(dataset_id=assignment.dataset_id),
        baseline=OuterRef("pk"),
        code=OuterRef("code"),
        filename=OuterRef("filename"),
    ).order_by("-created_at", "-id")
    any_run = BaselineRun.objects.filter(baseline=OuterRef("pk")).values("pk")[:1]
    rows = (
        Baseline.objects.filter(assignment=assignment)
        .defer("code", "description")
        .annotate(
            run_id=Subquery(current.values("pk")[:1]),
            run_status=Subquery(current.values("status")[:1]),
            run_failure_reason=Subquery(current.values("failure_reason")[:1]),
            run_message=Subquery(current.values("message")[:1]),
            run_public_score=Subquery(current.values("public_score")[:1]),
            run_finished_at=Subquery(current.values("finished_at")[:1]),
            any_run_id=Subquery(any_run),
        )
        .order_by("name")
    )
    result = []
    for baseline in rows:
        baseline.assignment = assignment
        result.append(
            BaselineRow(
                baseline=baseline,
                run_id=baseline.run_id,
                status=baseline.run_status or "",
                failure_reason=baseline.run_failure_reason or "",
                message=baseline.run_message or "",
                public_score=baseline.run_public_score,
                score_text=results.format_score(assignment.metric_spec, baseline.run_public_score),
                finished_at=baseline.run_finished_at,
                older_runs=baseline.run_id is None and baseline.any_run_id is not None,
            )
        )
    return result
