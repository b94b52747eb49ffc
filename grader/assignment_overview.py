"""Selectors for a student's assignment page: the dataset's summary and sample picture, and the
student's own best and recent submissions.

Anything derived from a dataset's files is cached under the files' digests: a dataset version's
files never change, so these entries never go stale and need no invalidation.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass

import numpy as np
from django.core.cache import cache
from django.db.models.fields.files import FieldFile

from accounts.models import User
from grader.datasets import npz_headers
from grader.images import (
    GAP,
    MAX_CLASSES,
    ImageLayout,
    grid_geometry,
    image_layout,
    pick_samples,
    png_bytes,
    sample_grid,
)
from grader.metrics import Direction
from grader.models import Assignment, Dataset, RunStatus, Submission
from grader.services import dataset_file_load

# Bump when the cached shapes below change, so old entries are not read back.
CACHE_VERSION = 1
# Room for the class names left of the sample picture, in the picture's pixels.
SAMPLE_LABEL_WIDTH = 120


@dataclass(frozen=True)
class ArrayInfo:
    key: str
    shape: tuple[int, ...]
    dtype: str


@dataclass(frozen=True)
class PublicFileInfo:
    name: str
    size_bytes: int
    arrays: tuple[ArrayInfo, ...]


@dataclass(frozen=True)
class ClassInfo:
    index: int
    name: str
    train_count: int


@dataclass(frozen=True)
class DatasetSummary:
    """What a student may know about a dataset's public files, for the assignment page."""

    files: tuple[PublicFileInfo, ...]
    classes: tuple[ClassInfo, ...]


@dataclass(frozen=True)
class SampleGrid:
    """Where the sample picture's rows are, so a page can label them without loading it."""

    layout: ImageLayout
    class_names: tuple[str, ...]
    total_classes: int
    row_pitch: int
    width: int
    height: int
    etag: str

    @property
    def cache_key(self) -> str:
        return f"grader:sample-grid:{self.etag}"

    @property
    def label_width(self) -> int:
        return SAMPLE_LABEL_WIDTH

    @property
    def view_width(self) -> int:
        """Width of the labelled picture (labels left of the PNG), in the PNG's pixels."""
        return SAMPLE_LABEL_WIDTH + self.width

    @property
    def rows(self) -> list[tuple[str, float]]:
        """Each row's class name and the vertical middle of its images."""
        cell = self.row_pitch - GAP
        return [
            (name, GAP + index * self.row_pitch + cell / 2)
            for index, name in enumerate(self.class_names)
        ]


@dataclass(frozen=True)
class _FilesSummary:
    files: tuple[PublicFileInfo, ...]
    train_class_counts: tuple[int, ...]


def _train_class_counts(field: FieldFile, n_classes: int) -> tuple[int, ...]:
    # Only the label array is read: the inputs may be hundreds of megabytes.
    assert field.name, "a registered dataset always has a training file"
    with (
        field.storage.open(field.name, "rb") as handle,
        zipfile.ZipFile(handle) as archive,
        archive.open("y.npy") as member,
    ):
        labels = np.lib.format.read_array(member, allow_pickle=False)
    counts = np.bincount(labels.astype(np.int64).ravel(), minlength=n_classes)
    return tuple(int(count) for count in counts[:n_classes])


def _files_summary(dataset: Dataset) -> _FilesSummary:
    key = f"grader:dataset-summary:v{CACHE_VERSION}:{dataset.content_sha256}"
    summary = cache.get(key)
    if isinstance(summary, _FilesSummary):
        return summary
    files = []
    for public in dataset.public_files():
        assert public.file.name, f"{dataset} lists {public.name} without a file"
        with public.file.storage.open(public.file.name, "rb") as handle:
            headers = npz_headers(handle)
        arrays = tuple(
            ArrayInfo(key=name, shape=shape, dtype=dtype)
            for name, (shape, dtype) in sorted(headers.items())
        )
        files.append(PublicFileInfo(name=public.name, size_bytes=public.size, arrays=arrays))
    counts: tuple[int, ...] = ()
    if dataset.task == Dataset.Task.CLASSIFICATION and dataset.n_classes:
        counts = _train_class_counts(dataset.train_file, dataset.n_classes)
    summary = _FilesSummary(files=tuple(files), train_class_counts=counts)
    cache.set(key, summary, timeout=None)
    return summary


def dataset_summary(*, dataset: Dataset) -> DatasetSummary:
    """The public files' arrays (shape, dtype) and the classes with their training counts.

    Reads array headers and the training labels once per dataset version (then the cache);
    never the inputs' data and never the hidden test labels. Class names come from the row, so
    renaming a class shows at once.
    """
    files = _files_summary(dataset)
    classes = tuple(
        ClassInfo(index=index, name=dataset.class_name(index), train_count=count)
        for index, count in enumerate(files.train_class_counts)
    )
    return DatasetSummary(files=files.files, classes=classes)


def dataset_sample_grid(*, dataset: Dataset) -> SampleGrid | None:
    """The layout of the dataset's sample picture, or None when its inputs are not images.

    Costs no file access: everything comes from the dataset's row.
    """
    layout = image_layout(dataset.input_shape)
    if layout is None:
        return None
    is_classification = dataset.task == Dataset.Task.CLASSIFICATION and bool(dataset.n_classes)
    total = int(dataset.n_classes or 0) if is_classification else 1
    shown = min(total, MAX_CLASSES)
    pitch, width, height = grid_geometry(layout, rows=shown)
    names = (
        tuple(dataset.class_name(index) for index in range(shown))
        if is_classification
        else ("Samples",)
    )
    return SampleGrid(
        layout=layout,
        class_names=names,
        total_classes=total,
        row_pitch=pitch,
        width=width,
        height=height,
        etag=f"v{CACHE_VERSION}-{dataset.train_sha256}-{shown}",
    )


def dataset_sample_grid_png(*, dataset: Dataset, grid: SampleGrid) -> bytes:
    """The PNG of ``grid``: up to 8 training images per class, drawn once per dataset version.

    Made from the public training split only.
    """
    png = cache.get(grid.cache_key)
    if isinstance(png, bytes):
        return png
    arrays = dataset_file_load(dataset=dataset, part="train")
    x, y = arrays["x"], arrays["y"]
    if dataset.task == Dataset.Task.CLASSIFICATION:
        labels = y.astype(np.int64)
    else:
        labels = np.zeros(len(x), dtype=np.int64)  # one row of samples, whatever their targets
    chosen = pick_samples(labels, n_classes=len(grid.class_names))
    png = png_bytes(sample_grid(x, chosen, grid.layout))
    cache.set(grid.cache_key, png, timeout=None)
    return png


def submission_best_for_user(*, user: User, assignment: Assignment) -> Submission | None:
    """The student's best scored submission on the assignment's current dataset version.

    Scores on an older version are not comparable with the baselines shown beside them.
    """
    if assignment.dataset_id is None:
        return None
    higher = assignment.direction == Direction.HIGHER_IS_BETTER
    return (
        Submission.objects.filter(
            user=user,
            assignment=assignment,
            dataset_id=assignment.dataset_id,
            status=RunStatus.SCORED,
            public_score__isnull=False,
        )
        .only("id", "public_score", "created_at", "filename", "assignment_id", "user_id")
        .order_by("-public_score" if higher else "public_score", "created_at", "id")
        .first()
    )


def submissions_recent_for_user(
    *, user: User, assignment: Assignment, limit: int = 20
) -> list[Submission]:
    return list(
        Submission.objects.filter(user=user, assignment=assignment)
        .only("id", "status", "public_score", "failure_reason", "created_at", "filename")
        .order_by("-created_at", "-id")[:limit]
    )
