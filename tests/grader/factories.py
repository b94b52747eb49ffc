"""Factories for the grader's models. Datasets go through the real registration service."""

from __future__ import annotations

import factory
import numpy as np
from django.utils import timezone

from grader.models import Assignment, Baseline, BaselineRun, Dataset, RunStatus, Submission
from grader.services import dataset_create_from_arrays
from tests.factories import ChapterFactory, UserFactory


def small_arrays(
    *, n_train: int = 30, n_valid: int = 0, n_test: int = 12, n_classes: int = 3, seed: int = 0
) -> dict[str, np.ndarray]:
    """Tiny 4x4 "images" with labels 0..n_classes-1, every class present in every split."""
    rng = np.random.default_rng(seed)
    arrays: dict[str, np.ndarray] = {}
    for split, n in (("train", n_train), ("valid", n_valid), ("test", n_test)):
        if n == 0:
            continue
        arrays[f"x_{split}"] = rng.integers(0, 256, size=(n, 4, 4), dtype=np.uint8)
        arrays[f"y_{split}"] = np.arange(n, dtype=np.int64) % n_classes
    return arrays


class DatasetFactory(factory.django.DjangoModelFactory):
    """``DatasetFactory(seed=1)`` registers different content; extra keywords go to the service."""

    class Meta:
        model = Dataset

    slug = factory.Sequence(lambda n: f"dataset-{n}")
    name = factory.Sequence(lambda n: f"Dataset {n}")

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        shape = {
            key: kwargs.pop(key)
            for key in ("n_train", "n_valid", "n_test", "seed")
            if key in kwargs
        }
        n_classes = kwargs.pop("n_classes", 3)
        arrays = small_arrays(n_classes=n_classes, **shape)
        return dataset_create_from_arrays(n_classes=n_classes, **arrays, **kwargs)


class AssignmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Assignment

    chapter = factory.SubFactory(ChapterFactory)
    slug = factory.Sequence(lambda n: f"assignment-{n}")
    title = factory.Sequence(lambda n: f"Assignment {n}")
    description = "Beat the baseline on *digits*."
    starter_code = "import topdown_task\n"
    dataset = factory.SubFactory(DatasetFactory)
    metric = "accuracy"


class BaselineFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Baseline

    assignment = factory.SubFactory(AssignmentFactory)
    name = factory.Sequence(lambda n: f"Baseline {n}")
    code = "import numpy as np\nprint('majority class')\n"
    filename = "baseline.py"


class SubmissionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Submission

    user = factory.SubFactory(UserFactory)
    assignment = factory.SubFactory(AssignmentFactory)
    dataset = factory.SelfAttribute("assignment.dataset")
    code = "print('hello')\n"
    filename = "main.py"

    class Params:
        scored = factory.Trait(
            status=RunStatus.SCORED,
            public_score=0.9,
            private_score=0.88,
            finished_at=factory.LazyFunction(timezone.now),
        )


class BaselineRunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = BaselineRun

    baseline = factory.SubFactory(BaselineFactory)
    dataset = factory.SelfAttribute("baseline.assignment.dataset")
    code = factory.SelfAttribute("baseline.code")
    filename = factory.SelfAttribute("baseline.filename")
    code_sha256 = "0" * 64
