"""Services that register and read datasets.

A dataset version is immutable once written: registering different content under a slug makes
the next version, registering the same content again returns the version that holds it.
"""

from __future__ import annotations

import contextlib
import io
import sys
from collections.abc import Mapping, Sequence
from typing import IO, Literal

import numpy as np
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.validators import validate_slug
from django.db import IntegrityError, transaction
from django.db.models.fields.files import FieldFile
from numpy.typing import NDArray

from accounts.models import User
from grader.datasets import (
    CLASSIFICATION,
    DEFAULT_MAX_BYTES,
    DatasetInvalid,
    Splits,
    Task,
    content_sha256,
    infer_n_classes,
    load_npz,
    npz_bytes,
    sha256_bytes,
    validate_npz_splits,
    validate_splits,
)
from grader.models import Dataset

DatasetPart = Literal["train", "valid", "test_inputs", "test_labels"]
_PART_KEYS: dict[str, tuple[str, ...]] = {
    "train": ("x", "y"),
    "valid": ("x", "y"),
    "test_inputs": ("x",),
    "test_labels": ("y",),
}


class DatasetError(Exception):
    """A dataset request the rules refuse; the message is shown to the instructor as is."""


def dataset_create_from_npz(
    *,
    slug: str,
    name: str,
    file: IO[bytes],
    task: Task = CLASSIFICATION,
    n_classes: int | None = None,
    class_names: Sequence[str] = (),
    description: str = "",
    licence: str = "",
    created_by: User | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Dataset:
    """Register an instructor's .npz holding ``x_train``, ``y_train``, optional ``x_valid`` and
    ``y_valid``, ``x_test`` and ``y_test``.

    ``y_test`` becomes the hidden labels; the rest becomes the public files. ``n_classes`` None
    (classification) means one more than the largest label. Raises ``DatasetInvalid`` listing
    what is wrong with the file, ``DatasetError`` for anything else refused.
    """
    splits = validate_npz_splits(file, task=task, n_classes=n_classes, max_bytes=max_bytes)
    return _dataset_register(
        slug=slug,
        name=name,
        splits=splits,
        task=task,
        n_classes=n_classes,
        class_names=class_names,
        description=description,
        licence=licence,
        created_by=created_by,
    )


def dataset_create_from_arrays(
    *,
    slug: str,
    name: str,
    x_train: NDArray[np.generic],
    y_train: NDArray[np.generic],
    x_test: NDArray[np.generic],
    y_test: NDArray[np.generic],
    x_valid: NDArray[np.generic] | None = None,
    y_valid: NDArray[np.generic] | None = None,
    task: Task = CLASSIFICATION,
    n_classes: int | None = None,
    class_names: Sequence[str] = (),
    description: str = "",
    licence: str = "",
    created_by: User | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Dataset:
    """Register a dataset from arrays in memory; the same rules as ``dataset_create_from_npz``."""
    arrays = {
        "x_train": x_train,
        "y_train": y_train,
        "x_valid": x_valid,
        "y_valid": y_valid,
        "x_test": x_test,
        "y_test": y_test,
    }
    if task == CLASSIFICATION and n_classes is None:
        n_classes = infer_n_classes(arrays)
    splits = validate_splits(arrays, task=task, n_classes=n_classes, max_bytes=max_bytes)
    return _dataset_register(
        slug=slug,
        name=name,
        splits=splits,
        task=task,
        n_classes=n_classes,
        class_names=class_names,
        description=description,
        licence=licence,
        created_by=created_by,
    )


def _dataset_register(
    *,
    slug: str,
    name: str,
    splits: Splits,
    task: Task,
    n_classes: int | None,
    class_names: Sequence[str],
    description: str,
    licence: str,
    created_by: User | None,
) -> Dataset:
    if task == CLASSIFICATION and n_classes is None:
        n_classes = infer_n_classes(splits.as_dict())
    try:
        validate_slug(slug)
    except ValidationError:
        raise DatasetError(
            f"{slug!r} is not a valid slug (letters, digits, hyphens, underscores)."
        ) from None
    if not name.strip():
        raise DatasetError("A dataset needs a name.")
    class_names = [str(class_name) for class_name in class_names]
    if class_names and len(class_names) != n_classes:
        raise DatasetInvalid(
            f"{len(class_names)} class names given for {n_classes or 0} classes; "
            "give one name per class or none"
        )

    digest = content_sha256(splits, task=task, n_classes=n_classes)
    metadata = {
        "name": name.strip(),
        "description": description,
        "licence": licence,
        "class_names": class_names,
    }
    written: list[FieldFile] = []
    try:
        with transaction.atomic():
            # Serialises registrations of an existing slug; a first registration racing
            # another is caught by the unique (slug, version) constraint below.
            latest = (
                Dataset.objects.select_for_update().filter(slug=slug).order_by("-version").first()
            )
            if latest is not None and latest.content_sha256 == digest:
                return _dataset_metadata_update(dataset=latest, metadata=metadata)
            # Compressed only now: the common case (loading the same data again) skips it.
            contents = {
                "train": npz_bytes({"x": splits.x_train, "y": splits.y_train}),
                "test_inputs": npz_bytes({"x": splits.x_test}),
                "test_labels": npz_bytes({"y": splits.y_test}),
            }
            if splits.x_valid is not None and splits.y_valid is not None:
                contents["valid"] = npz_bytes({"x": splits.x_valid, "y": splits.y_valid})
            dataset = Dataset(
                slug=slug,
                version=latest.version + 1 if latest is not None else 1,
                task=task,
                n_classes=n_classes,
                input_shape=list(splits.x_train.shape[1:]),
                input_dtype=str(splits.x_train.dtype),
                n_train=len(splits.x_train),
                n_valid=len(splits.x_valid) if splits.x_valid is not None else 0,
                n_test=len(splits.x_test),
                content_sha256=digest,
                created_by=created_by,
                **metadata,
            )
            for part, data in contents.items():
                field: FieldFile = getattr(dataset, f"{part}_file")
                field.save(f"{part}.npz", ContentFile(data), save=False)
                written.append(field)
                setattr(dataset, f"{part}_sha256", sha256_bytes(data))
                setattr(dataset, f"{part}_bytes", len(data))
            dataset.save()
    except IntegrityError:
        _delete_files(written)
        raise DatasetError(
            f"Dataset {slug!r} was registered by someone else at the same time; try again."
        ) from None
    except BaseException:
        _delete_files(written)
        raise
    return dataset


def _dataset_metadata_update(*, dataset: Dataset, metadata: Mapping[str, object]) -> Dataset:
    """Same content: keep the version; update only what does not affect scoring."""
    changed = [field for field, value in metadata.items() if getattr(dataset, field) != value]
    if changed:
        for field in changed:
            setattr(dataset, field, metadata[field])
        dataset.save(update_fields=[*changed, "updated_at"])
    return dataset


def _delete_files(fields: list[FieldFile]) -> None:
    for field in fields:
        # Best effort: an orphaned file is harmless, a masked original error is not.
        with contextlib.suppress(OSError):
            if field.name:
                field.storage.delete(field.name)


def dataset_file_load(*, dataset: Dataset, part: DatasetPart) -> dict[str, NDArray[np.generic]]:
    """The arrays of one of a dataset's files, checked against the sha256 recorded for it.

    ``test_labels`` is for the trusted scoring side only; never hand it to the sandbox.
    """
    if part not in _PART_KEYS:
        raise ValueError(f"unknown dataset part {part!r}")
    field: FieldFile = getattr(dataset, f"{part}_file")
    if not field or not field.name:
        raise DatasetError(f"{dataset} has no {part} split.")
    with field.storage.open(field.name, "rb") as handle:
        data = handle.read()
    if sha256_bytes(data) != getattr(dataset, f"{part}_sha256"):
        raise DatasetError(
            f"The stored {part} file of {dataset} does not match its checksum; it was changed "
            "or damaged after registration."
        )
    # The checksum proves this is the file validated at registration, so no size cap here.
    return load_npz(io.BytesIO(data), max_bytes=sys.maxsize, allowed_keys=_PART_KEYS[part])
