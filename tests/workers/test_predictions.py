"""Hostile predictions files are refused with a message a student understands."""

from __future__ import annotations

import os
import pickle
import threading

import numpy as np
import pytest

from workers.predictions import InvalidOutput, read_predictions


@pytest.fixture
def out(tmp_path):
    return tmp_path / "predictions.npy"


def test_a_good_array_is_read(out):
    np.save(out, np.arange(10, dtype=np.int64))
    assert read_predictions(out, expected_rows=10).tolist() == list(range(10))


def test_class_scores_are_fine_too(out):
    np.save(out, np.zeros((10, 3), dtype=np.float32))
    assert read_predictions(out, expected_rows=10).shape == (10, 3)


def test_missing_file_says_where_to_write(out):
    with pytest.raises(InvalidOutput, match="No predictions were saved"):
        read_predictions(out, expected_rows=3)


def test_a_symlink_to_the_hidden_labels_is_not_followed(out, tmp_path):
    secret = tmp_path / "hidden_labels.npy"
    np.save(secret, np.arange(3))
    os.symlink(secret, out)
    with pytest.raises(InvalidOutput, match="not a symlink"):
        read_predictions(out, expected_rows=3)


def test_a_fifo_does_not_hang_the_reader(out):
    os.mkfifo(out)
    result = {}

    def read():
        try:
            read_predictions(out, expected_rows=3)
        except InvalidOutput as error:
            result["error"] = str(error)

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    thread.join(timeout=5)
    assert not thread.is_alive(), "reading a FIFO blocked"
    assert "regular file" in result["error"]


def test_a_directory_is_refused(out):
    out.mkdir()
    with pytest.raises(InvalidOutput, match="regular file"):
        read_predictions(out, expected_rows=3)


def test_a_pickle_is_refused_and_never_unpickled(out, tmp_path):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    np.save(out, np.array([Exploit()], dtype=object), allow_pickle=True)
    with pytest.raises(InvalidOutput, match="pickle"):
        read_predictions(out, expected_rows=1)
    assert not marker.exists()


def test_a_raw_pickle_file_is_refused(out):
    out.write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(InvalidOutput, match="pickle"):
        read_predictions(out, expected_rows=3)


def test_garbage_bytes_are_refused(out):
    out.write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(InvalidOutput, match=r"not a valid \.npy"):
        read_predictions(out, expected_rows=3)


def test_a_file_over_the_size_cap_is_refused(out):
    np.save(out, np.zeros(1000, dtype=np.float64))
    with pytest.raises(InvalidOutput, match="limit"):
        read_predictions(out, expected_rows=1000, max_bytes=1000)


@pytest.mark.parametrize("rows", [2, 4])
def test_the_wrong_number_of_rows_is_explained(out, rows):
    np.save(out, np.zeros(rows))
    with pytest.raises(InvalidOutput, match=rf"expected 3 predictions.*got {rows}"):
        read_predictions(out, expected_rows=3)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values_are_refused(out, bad):
    np.save(out, np.array([[0.1, 0.2], [bad, 0.3], [0.5, 0.5]]))
    with pytest.raises(InvalidOutput, match="1 prediction row"):
        read_predictions(out, expected_rows=3)


def test_strings_are_not_predictions(out):
    np.save(out, np.array(["cat", "dog"]))
    with pytest.raises(InvalidOutput, match="must be numbers"):
        read_predictions(out, expected_rows=2)


def test_a_scalar_or_3d_array_is_refused(out):
    np.save(out, np.float32(1.0))
    with pytest.raises(InvalidOutput, match="one row per test input"):
        read_predictions(out, expected_rows=1)
    np.save(out, np.zeros((2, 2, 2)))
    with pytest.raises(InvalidOutput, match="one row per test input"):
        read_predictions(out, expected_rows=2)
