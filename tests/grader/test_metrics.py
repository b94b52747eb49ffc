"""Our metrics against scikit-learn's, on random and on awkward inputs."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as sk

from grader.metrics import METRICS, MetricError, confusion_matrix

RNG = np.random.default_rng(1234)


def random_classification(n=500, k=10):
    y = RNG.integers(0, k, size=n)
    scores = RNG.normal(size=(n, k))
    scores[np.arange(n), y] += RNG.normal(1.0, 1.0, size=n)  # better than chance, not perfect
    return y, scores


@pytest.mark.parametrize("seed", range(5))
def test_accuracy_and_macro_f1_match_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, size=300)
    scores = rng.normal(size=(300, 10))
    labels = scores.argmax(axis=1)
    assert METRICS["accuracy"].compute(y, scores) == pytest.approx(sk.accuracy_score(y, labels))
    assert METRICS["accuracy"].compute(y, labels) == pytest.approx(sk.accuracy_score(y, labels))
    assert METRICS["macro_f1"].compute(y, scores) == pytest.approx(
        sk.f1_score(y, labels, average="macro")
    )


def test_macro_f1_with_a_class_never_predicted_and_one_never_true():
    y = np.array([0, 0, 1, 1, 2, 2])
    predicted = np.array([0, 0, 1, 1, 1, 3])
    expected = sk.f1_score(y, predicted, average="macro", zero_division=0)
    assert METRICS["macro_f1"].compute(y, predicted) == pytest.approx(expected)


def test_top5_accuracy_matches_scikit_learn():
    y, scores = random_classification()
    expected = sk.top_k_accuracy_score(y, scores, k=5, labels=np.arange(10))
    assert METRICS["top5_accuracy"].compute(y, scores) == pytest.approx(expected)


def test_top5_needs_scores_not_labels():
    with pytest.raises(MetricError, match="at least 5 class scores"):
        METRICS["top5_accuracy"].compute(np.array([1, 2]), np.array([1, 2]))


@pytest.mark.parametrize("name", ["mse", "rmse", "mae"])
def test_regression_metrics_match_scikit_learn(name):
    y = RNG.normal(size=200)
    predicted = y + RNG.normal(scale=0.3, size=200)
    expected = {
        "mse": sk.mean_squared_error(y, predicted),
        "rmse": np.sqrt(sk.mean_squared_error(y, predicted)),
        "mae": sk.mean_absolute_error(y, predicted),
    }[name]
    assert METRICS[name].compute(y, predicted) == pytest.approx(expected)
    # A column vector of predictions is the same answer.
    assert METRICS[name].compute(y, predicted[:, None]) == pytest.approx(expected)


def test_regression_shape_mismatch_is_explained():
    with pytest.raises(MetricError, match="expected predictions of shape"):
        METRICS["mse"].compute(np.zeros(4), np.zeros(5))


def test_confusion_matrix_matches_scikit_learn():
    y, scores = random_classification(n=200, k=4)
    ours = confusion_matrix(y, scores, 4)
    assert (ours == sk.confusion_matrix(y, scores.argmax(axis=1), labels=range(4))).all()


def test_out_of_range_classes_are_refused():
    with pytest.raises(MetricError, match="between 0 and 2"):
        confusion_matrix(np.array([0, 1]), np.array([0, 7]), 3)


def test_fractional_labels_are_refused():
    with pytest.raises(MetricError, match="whole numbers"):
        METRICS["accuracy"].compute(np.array([0, 1]), np.array([0.5, 1.0]))


def test_direction_decides_what_beats_what():
    assert METRICS["accuracy"].better(0.9, than=0.8)
    assert METRICS["mse"].better(0.1, than=0.2)
    assert not METRICS["mae"].better(0.3, than=0.2)
