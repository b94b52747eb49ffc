"""Registering datasets: validation of uploads, stored files, versions and the built-in sets."""

from __future__ import annotations

import hashlib
import io
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
from django.core.management import call_command
from django.db import transaction

from grader.datasets import (
    DatasetInvalid,
    load_npz,
    npz_bytes,
    public_test_mask,
    validate_npz_splits,
)
from grader.models import Dataset
from grader.services import (
    DatasetError,
    dataset_create_from_arrays,
    dataset_create_from_npz,
    dataset_file_load,
)
from tests.grader.factories import small_arrays


def npz_file(**arrays) -> io.BytesIO:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    buffer.seek(0)
    return buffer


def problems_of(file, **kwargs) -> str:
    kwargs.setdefault("task", "classification")
    kwargs.setdefault("n_classes", 3)
    with pytest.raises(DatasetInvalid) as caught:
        validate_npz_splits(file, **kwargs)
    return str(caught.value)


# --- Validation --------------------------------------------------------------------------------


def test_a_valid_upload_gives_its_splits():
    arrays = small_arrays(n_valid=6)
    splits = validate_npz_splits(npz_file(**arrays), task="classification", n_classes=3)
    assert splits.has_valid
    assert np.array_equal(splits.y_test, arrays["y_test"])


def test_missing_arrays_are_named():
    arrays = small_arrays()
    del arrays["y_test"], arrays["x_train"]
    message = problems_of(npz_file(**arrays))
    assert "missing arrays: x_train, y_test" in message


def test_unexpected_arrays_are_refused():
    message = problems_of(npz_file(**small_arrays(), labels=np.arange(3)))
    assert "unexpected array 'labels'" in message


def test_valid_split_needs_both_inputs_and_labels():
    arrays = small_arrays()
    arrays["x_valid"] = arrays["x_train"][:5]
    assert "x_valid and y_valid must be given together" in problems_of(npz_file(**arrays))


def test_inputs_and_labels_of_different_lengths_are_refused():
    arrays = small_arrays()
    arrays["y_train"] = arrays["y_train"][:-1]
    message = problems_of(npz_file(**arrays))
    assert "x_train has 30 rows but y_train has 29" in message


def test_inputs_of_different_row_shapes_are_refused():
    arrays = small_arrays()
    arrays["x_test"] = np.zeros((12, 5, 5), dtype=np.uint8)
    assert "inputs must share one row shape" in problems_of(npz_file(**arrays))


def test_object_arrays_are_refused_without_unpickling(monkeypatch):
    arrays = small_arrays()
    arrays["x_train"] = np.array([{"a": 1}] * 30, dtype=object)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # numpy pickles object arrays
    buffer.seek(0)

    def never(*args, **kwargs):
        raise AssertionError("a pickle was loaded")

    monkeypatch.setattr(pickle, "loads", never)
    monkeypatch.setattr(pickle, "load", never)
    assert "x_train holds Python objects (pickled data)" in problems_of(buffer)


def test_a_pickle_instead_of_an_archive_is_refused():
    file = io.BytesIO(pickle.dumps({"x_train": [1, 2, 3]}))
    assert "not an .npz archive" in problems_of(file)


def test_a_single_npy_instead_of_an_archive_is_refused():
    buffer = io.BytesIO()
    np.save(buffer, np.arange(10))
    buffer.seek(0)
    assert "not an .npz archive" in problems_of(buffer)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_infinite_inputs_are_refused(bad):
    arrays = small_arrays()
    x = arrays["x_train"].astype(np.float32)
    x[3, 1, 2] = bad
    arrays["x_train"] = x
    assert "x_train contains NaN or infinite values" in problems_of(npz_file(**arrays))


def test_string_and_complex_arrays_are_refused():
    arrays = small_arrays()
    arrays["x_train"] = np.array(["a"] * 30)
    arrays["x_test"] = np.ones((12, 4, 4), dtype=np.complex64)
    message = problems_of(npz_file(**arrays))
    assert "x_train has dtype <U1" in message
    assert "x_test has dtype complex64" in message


def test_labels_out_of_range_are_refused():
    arrays = small_arrays()
    arrays["y_test"] = arrays["y_test"].copy()
    arrays["y_test"][0] = 3
    arrays["y_train"] = arrays["y_train"].copy()
    arrays["y_train"][0] = -1
    message = problems_of(npz_file(**arrays), n_classes=3)
    assert "y_test has labels from 0 to 3; they must lie between 0 and 2" in message
    assert "y_train has labels from -1 to 2" in message


def test_float_labels_are_refused_for_classification():
    arrays = small_arrays()
    arrays["y_train"] = arrays["y_train"].astype(np.float64)
    assert "class labels must be integers" in problems_of(npz_file(**arrays))


def test_float_labels_are_named_when_the_classes_are_inferred():
    arrays = small_arrays()
    arrays["y_test"] = arrays["y_test"].astype(np.float32)
    message = problems_of(npz_file(**arrays), n_classes=None)
    assert "y_test has dtype float32; class labels must be integers" in message


@pytest.mark.django_db
def test_the_number_of_classes_is_inferred_from_the_labels():
    dataset = dataset_create_from_npz(
        slug="four", name="Four", file=npz_file(**small_arrays(n_classes=4))
    )
    assert dataset.n_classes == 4


def test_labels_of_a_single_class_are_refused():
    arrays = small_arrays(n_classes=1)
    assert "needs at least 2 classes" in problems_of(npz_file(**arrays), n_classes=None)


def test_regression_accepts_float_targets_and_refuses_classes():
    arrays = small_arrays()
    arrays["y_train"] = np.linspace(0, 1, 30)
    arrays["y_test"] = np.linspace(0, 1, 12)
    splits = validate_npz_splits(npz_file(**arrays), task="regression", n_classes=None)
    assert splits.y_train.dtype == np.float64
    assert "a regression dataset has no classes" in problems_of(
        npz_file(**arrays), task="regression", n_classes=10
    )


def test_a_file_over_the_size_cap_is_refused():
    file = npz_file(**small_arrays())
    assert "the limit is" in problems_of(file, max_bytes=100)


def test_arrays_that_expand_beyond_the_cap_are_refused_before_loading():
    arrays = small_arrays()
    arrays["x_train"] = np.zeros((30, 200, 200), dtype=np.float64)  # 9.6 MB of zeros
    file = npz_file(**arrays)
    assert len(file.getvalue()) < 100_000
    assert "once uncompressed" in problems_of(file, max_bytes=1_000_000)


def test_a_forged_header_claiming_terabytes_is_refused_without_allocating():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        member = io.BytesIO()
        header = {"descr": "<f8", "fortran_order": False, "shape": (10**12,)}
        np.lib.format.write_array_header_1_0(member, header)
        member.write(b"\0" * 64)
        archive.writestr("x_train.npy", member.getvalue())
    buffer.seek(0)
    with pytest.raises(DatasetInvalid, match="once uncompressed"):
        load_npz(buffer)


def test_the_default_cap_is_200_megabytes():
    assert validate_npz_splits.__kwdefaults__["max_bytes"] == 200 * 1024 * 1024


def test_every_problem_is_reported_at_once():
    arrays = small_arrays()
    arrays["y_train"] = arrays["y_train"][:-2]
    arrays["x_test"] = arrays["x_test"].astype(np.float64)
    arrays["x_test"][0, 0, 0] = np.nan
    with pytest.raises(DatasetInvalid) as caught:
        validate_npz_splits(npz_file(**arrays), task="classification", n_classes=3)
    assert len(caught.value.problems) == 2


def test_npz_bytes_is_reproducible_and_readable_by_numpy():
    arrays = small_arrays()
    assert npz_bytes(arrays) == npz_bytes(dict(reversed(arrays.items())))
    loaded = np.load(io.BytesIO(npz_bytes(arrays)), allow_pickle=False)
    assert np.array_equal(loaded["x_train"], arrays["x_train"])


def test_public_test_mask_is_deterministic_and_splits_by_fraction():
    mask = public_test_mask(1000, fraction=0.3, seed=7)
    assert mask.sum() == 300
    assert np.array_equal(mask, public_test_mask(1000, fraction=0.3, seed=7))
    assert not np.array_equal(mask, public_test_mask(1000, fraction=0.3, seed=8))
    assert public_test_mask(2, fraction=0.01, seed=1).sum() == 1


# --- Registration ------------------------------------------------------------------------------


def stored_bytes(field) -> bytes:
    with field.storage.open(field.name, "rb") as handle:
        return handle.read()


@pytest.mark.django_db
def test_registering_stores_each_file_with_its_sha256(_media_root):
    dataset = dataset_create_from_npz(
        slug="tiny", name="Tiny", file=npz_file(**small_arrays(n_valid=6)), n_classes=3
    )

    assert dataset.version == 1
    assert (dataset.n_train, dataset.n_valid, dataset.n_test) == (30, 6, 12)
    assert dataset.input_shape == [4, 4]
    for part in ("train", "valid", "test_inputs", "test_labels"):
        field = getattr(dataset, f"{part}_file")
        data = stored_bytes(field)
        assert hashlib.sha256(data).hexdigest() == getattr(dataset, f"{part}_sha256")
        assert len(data) == getattr(dataset, f"{part}_bytes")
        assert Path(field.path).is_relative_to(_media_root)


@pytest.mark.django_db
def test_hidden_labels_are_stored_apart_and_never_among_the_public_files():
    arrays = small_arrays()
    dataset = dataset_create_from_arrays(slug="tiny", name="Tiny", **arrays)

    assert dataset.test_labels_file.name.startswith("datasets/hidden/")
    public = dataset.public_files()
    assert [f.name for f in public] == ["train.npz", "test_inputs.npz"]
    for public_file in public:
        assert public_file.file.name.startswith("datasets/public/")
        assert public_file.file.name != dataset.test_labels_file.name
    test_inputs = dataset_file_load(dataset=dataset, part="test_inputs")
    assert list(test_inputs) == ["x"]
    labels = dataset_file_load(dataset=dataset, part="test_labels")
    assert np.array_equal(labels["y"], arrays["y_test"])


@pytest.mark.django_db
def test_registering_the_same_content_again_keeps_the_version(_media_root):
    first = dataset_create_from_npz(slug="tiny", name="Tiny", file=npz_file(**small_arrays()))
    files_before = sorted(_media_root.rglob("*.npz"))

    # Same arrays, written differently (uncompressed archive, through the other service).
    again = dataset_create_from_npz(
        slug="tiny", name="Tiny", file=io.BytesIO(npz_bytes(small_arrays()))
    )
    from_arrays = dataset_create_from_arrays(slug="tiny", name="Tiny", **small_arrays())

    assert again.pk == first.pk == from_arrays.pk
    assert Dataset.objects.filter(slug="tiny").count() == 1
    assert sorted(_media_root.rglob("*.npz")) == files_before


@pytest.mark.django_db
def test_registering_different_content_makes_the_next_version():
    first = dataset_create_from_arrays(slug="tiny", name="Tiny", **small_arrays(seed=1))
    second = dataset_create_from_arrays(slug="tiny", name="Tiny", **small_arrays(seed=2))

    assert (first.version, second.version) == (1, 2)
    assert second.train_file.name != first.train_file.name
    assert second.content_sha256 != first.content_sha256
    # The old version's files stay: submissions scored on it can still be explained.
    assert first.train_file.storage.exists(first.train_file.name)


@pytest.mark.django_db
def test_same_content_with_new_wording_updates_the_wording_only():
    first = dataset_create_from_arrays(slug="tiny", name="Tiny", **small_arrays())
    renamed = dataset_create_from_arrays(
        slug="tiny", name="Tiny digits", description="Now *described*.", **small_arrays()
    )
    assert renamed.pk == first.pk
    assert renamed.version == 1
    renamed.refresh_from_db()
    assert renamed.name == "Tiny digits"


@pytest.mark.django_db
def test_changing_the_number_of_classes_is_a_new_version():
    first = dataset_create_from_arrays(slug="tiny", name="Tiny", **small_arrays())
    wider = dataset_create_from_arrays(slug="tiny", name="Tiny", n_classes=5, **small_arrays())
    assert (first.n_classes, wider.n_classes, wider.version) == (3, 5, 2)


@pytest.mark.django_db
def test_class_names_must_match_the_classes():
    with pytest.raises(DatasetInvalid, match="2 class names given for 3 classes"):
        dataset_create_from_arrays(
            slug="tiny", name="Tiny", class_names=["a", "b"], **small_arrays()
        )


@pytest.mark.django_db
def test_a_bad_slug_is_refused():
    with pytest.raises(DatasetError, match="not a valid slug"):
        dataset_create_from_arrays(slug="no spaces please", name="Tiny", **small_arrays())


@pytest.mark.django_db
def test_a_failed_registration_leaves_no_files(monkeypatch, _media_root):
    def broken_save(self, *args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(Dataset, "save", broken_save)
    with pytest.raises(RuntimeError), transaction.atomic():
        dataset_create_from_arrays(slug="tiny", name="Tiny", **small_arrays())
    assert list(_media_root.rglob("*.npz")) == []


@pytest.mark.django_db
def test_a_tampered_file_is_detected_when_loaded():
    dataset = dataset_create_from_arrays(slug="tiny", name="Tiny", **small_arrays())
    Path(dataset.test_labels_file.path).write_bytes(npz_bytes({"y": np.zeros(12, np.int64)}))
    with pytest.raises(DatasetError, match="does not match its checksum"):
        dataset_file_load(dataset=dataset, part="test_labels")


# --- Built-in datasets -------------------------------------------------------------------------


@pytest.mark.django_db
def test_builtin_datasets_load_with_the_expected_shapes():
    call_command("datasets_load_builtin", stdout=io.StringIO())

    mnist = Dataset.objects.get(slug="mnist10k")
    assert mnist.n_train + mnist.n_test == 10_000
    assert (mnist.n_classes, mnist.input_shape, mnist.input_dtype) == (10, [28, 28], "uint8")
    three_seven = Dataset.objects.get(slug="mnist-3-7")
    assert three_seven.n_classes == 2
    assert three_seven.class_names == ["3", "7"]
    train = dataset_file_load(dataset=three_seven, part="train")
    assert set(np.unique(train["y"])) == {0, 1}
    mnist_train = dataset_file_load(dataset=mnist, part="train")
    assert len(train["y"]) == np.isin(mnist_train["y"], [3, 7]).sum()
    digits = Dataset.objects.get(slug="digits8x8")
    assert digits.n_train + digits.n_test == 1_797
    assert digits.input_shape == [8, 8]


@pytest.mark.django_db
def test_loading_the_builtin_datasets_twice_changes_nothing(_media_root):
    call_command("datasets_load_builtin", stdout=io.StringIO())
    before = list(Dataset.objects.order_by("slug").values())
    files_before = sorted(_media_root.rglob("*.npz"))

    output = io.StringIO()
    call_command("datasets_load_builtin", stdout=output)

    assert list(Dataset.objects.order_by("slug").values()) == before
    assert sorted(_media_root.rglob("*.npz")) == files_before
    assert output.getvalue().count("unchanged") == 3
