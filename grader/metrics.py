"""Scoring metrics for further-research assignments: numpy only, run on the trusted side.

Classification metrics take integer labels ``y_true`` (n,) and either predicted labels (n,) or
per-class scores (n, k) from which the arg-max is taken; top-5 accuracy needs the scores.
Regression metrics take (n,) or (n, d) arrays of floats.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from numpy.typing import NDArray


class MetricError(ValueError):
    """The predictions cannot be scored with this metric; the message says why, for students."""


class Direction(StrEnum):
    HIGHER_IS_BETTER = "higher"
    LOWER_IS_BETTER = "lower"


def _labels(predictions: NDArray[np.generic]) -> NDArray[np.int64]:
    if predictions.ndim == 2:
        return np.asarray(predictions.argmax(axis=1), dtype=np.int64)
    if predictions.ndim == 1:
        if not np.all(np.equal(np.mod(predictions, 1), 0)):
            raise MetricError("class predictions must be whole numbers (class indices)")
        return predictions.astype(np.int64)
    raise MetricError(
        "expected one label or one row of class scores per input, "
        f"got an array with {predictions.ndim} dimensions"
    )


def accuracy(y_true: NDArray[np.generic], predictions: NDArray[np.generic]) -> float:
    return float(np.mean(_labels(predictions) == y_true.astype(np.int64)))


def top5_accuracy(y_true: NDArray[np.generic], predictions: NDArray[np.generic]) -> float:
    if predictions.ndim != 2 or predictions.shape[1] < 5:
        raise MetricError("top-5 accuracy needs one row of at least 5 class scores per input")
    # argpartition finds the five largest without sorting each row fully.
    top5 = np.argpartition(np.negative(predictions), 4, axis=1)[:, :5]
    return float(np.mean(np.any(top5 == y_true.astype(np.int64)[:, None], axis=1)))


def confusion_matrix(
    y_true: NDArray[np.generic], predictions: NDArray[np.generic], n_classes: int
) -> NDArray[np.int64]:
    """Rows are true classes, columns predicted classes."""
    labels = _labels(predictions)
    truth = y_true.astype(np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise MetricError(f"predicted classes must lie between 0 and {n_classes - 1}")
    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(matrix, (truth, labels), 1)
    return matrix


def per_class_f1(matrix: NDArray[np.int64]) -> NDArray[np.float64]:
    true_positives = np.diag(matrix).astype(np.float64)
    predicted = matrix.sum(axis=0).astype(np.float64)
    actual = matrix.sum(axis=1).astype(np.float64)
    denominator = predicted + actual
    # F1 = 2TP / (2TP + FP + FN) = 2TP / (predicted + actual); 0 where a class never appears.
    return np.divide(
        2 * true_positives, denominator, out=np.zeros_like(true_positives), where=denominator > 0
    )


def macro_f1(y_true: NDArray[np.generic], predictions: NDArray[np.generic]) -> float:
    truth = y_true.astype(np.int64)
    labels = _labels(predictions)
    present = np.union1d(truth, labels)
    n_classes = int(max(present.max(initial=0), 0)) + 1
    if labels.size and labels.min() < 0:
        raise MetricError("predicted classes cannot be negative")
    f1 = per_class_f1(confusion_matrix(truth, labels, n_classes))
    # Like scikit-learn: average over the classes that occur in the truth or the predictions.
    return float(f1[present].mean()) if present.size else 0.0


def _regression_pair(
    y_true: NDArray[np.generic], predictions: NDArray[np.generic]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    truth = y_true.astype(np.float64)
    predicted = predictions.astype(np.float64)
    if predicted.shape != truth.shape:
        if predicted.size == truth.size:
            predicted = predicted.reshape(truth.shape)
        else:
            raise MetricError(f"expected predictions of shape {truth.shape}, got {predicted.shape}")
    return truth, predicted


def mse(y_true: NDArray[np.generic], predictions: NDArray[np.generic]) -> float:
    truth, predicted = _regression_pair(y_true, predictions)
    return float(np.mean((truth - predicted) ** 2))


def rmse(y_true: NDArray[np.generic], predictions: NDArray[np.generic]) -> float:
    return float(np.sqrt(mse(y_true, predictions)))


def mae(y_true: NDArray[np.generic], predictions: NDArray[np.generic]) -> float:
    truth, predicted = _regression_pair(y_true, predictions)
    return float(np.mean(np.abs(truth - predicted)))


@dataclass(frozen=True)
class Metric:
    name: str
    label: str
    direction: Direction
    compute: Callable[[NDArray[np.generic], NDArray[np.generic]], float]
    classification: bool

    def better(self, score: float, than: float) -> bool:
        if self.direction == Direction.HIGHER_IS_BETTER:
            return score > than
        return score < than


METRICS: dict[str, Metric] = {
    metric.name: metric
    for metric in [
        Metric("accuracy", "Accuracy", Direction.HIGHER_IS_BETTER, accuracy, True),
        Metric("top5_accuracy", "Top-5 accuracy", Direction.HIGHER_IS_BETTER, top5_accuracy, True),
        Metric("macro_f1", "Macro F1", Direction.HIGHER_IS_BETTER, macro_f1, True),
        Metric("mse", "Mean squared error", Direction.LOWER_IS_BETTER, mse, False),
        Metric("rmse", "Root mean squared error", Direction.LOWER_IS_BETTER, rmse, False),
        Metric("mae", "Mean absolute error", Direction.LOWER_IS_BETTER, mae, False),
    ]
}
