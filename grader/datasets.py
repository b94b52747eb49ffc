"""Dataset arrays: safe .npz reading, validation, deterministic .npz writing and digests.

numpy only, no Django, so that ``demo/datasets/build.py`` and the workers can use it too.

An uploaded archive is hostile until proven otherwise: it may hold pickles, object arrays, a
header that claims a terabyte of data, NaN, or labels the metric cannot score. Every problem
becomes a ``DatasetInvalid`` whose message an instructor can act on.
"""

from __future__ import annotations

import hashlib
import io
import math
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO, Literal

import numpy as np
from numpy.typing import NDArray

DEFAULT_MAX_BYTES = 200 * 1024 * 1024
MAX_MEMBERS = 16

Task = Literal["classification", "regression"]
CLASSIFICATION: Task = "classification"
REGRESSION: Task = "regression"

REQUIRED_KEYS = ("x_train", "y_train", "x_test", "y_test")
OPTIONAL_KEYS = ("x_valid", "y_valid")
ALLOWED_KEYS = REQUIRED_KEYS + OPTIONAL_KEYS

# Booleans, signed and unsigned integers, floats. Complex, strings, datetimes, structured
# and object dtypes have no meaning to the metrics (and object means pickle).
_NUMERIC_KINDS = frozenset("biuf")
_KEY_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class DatasetInvalid(ValueError):
    """The arrays cannot be a dataset; ``problems`` lists every reason found, for instructors."""

    def __init__(self, problems: list[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("; ".join(self.problems))


@dataclass(frozen=True)
class Splits:
    """The validated arrays of a dataset. ``x_valid``/``y_valid`` are both set or both None."""

    x_train: NDArray[np.generic]
    y_train: NDArray[np.generic]
    x_test: NDArray[np.generic]
    y_test: NDArray[np.generic]
    x_valid: NDArray[np.generic] | None = None
    y_valid: NDArray[np.generic] | None = None

    @property
    def has_valid(self) -> bool:
        return self.x_valid is not None

    def as_dict(self) -> dict[str, NDArray[np.generic]]:
        arrays = {key: getattr(self, key) for key in ALLOWED_KEYS}
        return {key: value for key, value in arrays.items() if value is not None}


def _human(n_bytes: int) -> str:
    return f"{n_bytes / 1e6:.1f} MB"


def _read_header(member: IO[bytes]) -> tuple[tuple[int, ...], np.dtype]:
    version = np.lib.format.read_magic(member)
    if version == (1, 0):
        shape, _fortran, dtype = np.lib.format.read_array_header_1_0(member)
    elif version == (2, 0):
        shape, _fortran, dtype = np.lib.format.read_array_header_2_0(member)
    else:
        raise ValueError(f"unsupported .npy format version {version}")
    return shape, dtype


def load_npz(
    file: IO[bytes], *, max_bytes: int = DEFAULT_MAX_BYTES, allowed_keys: tuple[str, ...] = ()
) -> dict[str, NDArray[np.generic]]:
    """Read the arrays of an .npz archive without trusting it.

    Each member's header is read first, so a header claiming more data than ``max_bytes``
    is refused before anything is allocated; pickles and object arrays are refused
    (``allow_pickle=False``). ``allowed_keys``, when given, refuses any other array name.
    """
    start = file.tell() if file.seekable() else 0
    file.seek(0, io.SEEK_END)
    size = file.tell() - start
    file.seek(start)
    if size > max_bytes:
        raise DatasetInvalid(f"the file is {_human(size)}; the limit is {_human(max_bytes)}")
    try:
        archive = zipfile.ZipFile(file)
    except zipfile.BadZipFile:
        raise DatasetInvalid(
            "the file is not an .npz archive (save it with numpy.savez or numpy.savez_compressed)"
        ) from None
    arrays: dict[str, NDArray[np.generic]] = {}
    with archive:
        members = archive.infolist()
        if len(members) > MAX_MEMBERS:
            raise DatasetInvalid(
                f"the archive holds {len(members)} files; expected at most {MAX_MEMBERS}"
            )
        problems: list[str] = []
        total = 0
        for info in members:
            key = info.filename.removesuffix(".npy")
            if not info.filename.endswith(".npy") or not _KEY_PATTERN.match(key):
                problems.append(f"unexpected file {info.filename!r} in the archive")
                continue
            if allowed_keys and key not in allowed_keys:
                problems.append(f"unexpected array {key!r} (allowed: {', '.join(allowed_keys)})")
                continue
            try:
                with archive.open(info) as member:
                    shape, dtype = _read_header(member)
            except (ValueError, OSError, zipfile.BadZipFile) as error:
                problems.append(f"{key} is not a valid .npy array ({error})")
                continue
            if dtype.hasobject:
                problems.append(
                    f"{key} holds Python objects (pickled data), which are never loaded; "
                    "store numbers only"
                )
                continue
            # Python ints: a forged shape must not overflow into a small number.
            total += math.prod(shape) * dtype.itemsize
            if total > max_bytes:
                raise DatasetInvalid(
                    f"the arrays take more than {_human(max_bytes)} once uncompressed; "
                    f"the limit is {_human(max_bytes)}"
                )
            try:
                with archive.open(info) as member:
                    arrays[key] = np.lib.format.read_array(member, allow_pickle=False)
            except (ValueError, OSError, zipfile.BadZipFile) as error:
                problems.append(f"{key} could not be read ({error})")
        if problems:
            raise DatasetInvalid(problems)
    return arrays


def _check_numeric(key: str, array: NDArray[np.generic], problems: list[str]) -> bool:
    if array.dtype.hasobject:
        problems.append(f"{key} holds Python objects; store numbers only")
        return False
    if array.dtype.kind not in _NUMERIC_KINDS:
        problems.append(f"{key} has dtype {array.dtype}; expected integers, floats or booleans")
        return False
    if array.ndim == 0:
        problems.append(f"{key} is a single number; expected one row per example")
        return False
    if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
        problems.append(f"{key} contains NaN or infinite values")
        return False
    return True


def validate_splits(
    arrays: Mapping[str, NDArray[np.generic] | None],
    *,
    task: Task,
    n_classes: int | None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Splits:
    """Check that ``arrays`` make a dataset the grader can use, and return them as ``Splits``.

    Required: ``x_train``, ``y_train``, ``x_test``, ``y_test``; optional together: ``x_valid``,
    ``y_valid``. Every x and its y have the same number of rows; all x share one row shape;
    everything is numeric and finite. For classification, labels are integers in
    ``[0, n_classes)``, one per row. All problems found are reported at once.
    """
    present = {key: value for key, value in arrays.items() if value is not None}
    problems: list[str] = []
    unknown = sorted(set(present) - set(ALLOWED_KEYS))
    if unknown:
        problems.append(f"unexpected arrays: {', '.join(unknown)}")
    missing = [key for key in REQUIRED_KEYS if key not in present]
    if missing:
        problems.append(f"missing arrays: {', '.join(missing)}")
    if ("x_valid" in present) != ("y_valid" in present):
        problems.append("x_valid and y_valid must be given together")
    if task == CLASSIFICATION and n_classes is not None and n_classes < 2:
        problems.append("a classification dataset needs at least 2 classes")
    if task == REGRESSION and n_classes:
        problems.append("a regression dataset has no classes")
    if task not in (CLASSIFICATION, REGRESSION):
        problems.append(f"unknown task {task!r}")
    if problems:
        raise DatasetInvalid(problems)

    splits = ["train", "test"] + (["valid"] if "x_valid" in present else [])
    good = {key: _check_numeric(key, np.asarray(present[key]), problems) for key in present}
    total = sum(np.asarray(value).nbytes for value in present.values())
    if total > max_bytes:
        problems.append(f"the arrays take {_human(total)}; the limit is {_human(max_bytes)}")

    row_shapes = {}
    for split in splits:
        x = np.asarray(present[f"x_{split}"])
        y = np.asarray(present[f"y_{split}"])
        if not (good[f"x_{split}"] and good[f"y_{split}"]):
            continue
        if len(x) == 0:
            problems.append(f"x_{split} has no rows")
        if len(x) != len(y):
            problems.append(
                f"x_{split} has {len(x)} rows but y_{split} has {len(y)}; "
                "they need one label per input"
            )
        row_shapes[split] = x.shape[1:]
        if task == CLASSIFICATION:
            if y.dtype.kind not in "iu":
                problems.append(
                    f"y_{split} has dtype {y.dtype}; class labels must be integers "
                    "(for example y.astype(np.int64))"
                )
            elif y.ndim != 1:
                problems.append(f"y_{split} must hold one class label per row (shape (n,))")
            elif y.size and (y.min() < 0 or y.max() >= (n_classes or 0)):
                problems.append(
                    f"y_{split} has labels from {y.min()} to {y.max()}; "
                    f"they must lie between 0 and {(n_classes or 0) - 1}"
                )
        elif y.ndim > 2:
            problems.append(f"y_{split} must have shape (n,) or (n, d) for regression")
    if task == CLASSIFICATION and n_classes is None and not problems:
        problems.append("give the number of classes (it cannot be inferred from these labels)")
    if len(set(row_shapes.values())) > 1:
        shapes = ", ".join(f"x_{split} rows {shape}" for split, shape in row_shapes.items())
        problems.append(f"inputs must share one row shape: {shapes}")
    if problems:
        raise DatasetInvalid(problems)

    def array(key: str) -> NDArray[np.generic] | None:
        value = present.get(key)
        return None if value is None else np.ascontiguousarray(value)

    return Splits(
        x_train=np.ascontiguousarray(present["x_train"]),
        y_train=np.ascontiguousarray(present["y_train"]),
        x_test=np.ascontiguousarray(present["x_test"]),
        y_test=np.ascontiguousarray(present["y_test"]),
        x_valid=array("x_valid"),
        y_valid=array("y_valid"),
    )


def validate_npz_splits(
    file: IO[bytes],
    *,
    task: Task,
    n_classes: int | None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Splits:
    """Load an instructor's .npz (see ``load_npz``) and validate it (see ``validate_splits``).

    ``n_classes`` None for classification means "one more than the largest label".
    """
    arrays = load_npz(file, max_bytes=max_bytes, allowed_keys=ALLOWED_KEYS)
    if task == CLASSIFICATION and n_classes is None:
        n_classes = infer_n_classes(arrays)
    return validate_splits(arrays, task=task, n_classes=n_classes, max_bytes=max_bytes)


def infer_n_classes(arrays: Mapping[str, NDArray[np.generic] | None]) -> int | None:
    """One more than the largest integer label, or None when labels are not integers."""
    largest = -1
    for key in ("y_train", "y_valid", "y_test"):
        y = arrays.get(key)
        if y is None:
            continue
        y = np.asarray(y)
        if y.dtype.kind not in "iu" or y.size == 0:
            return None
        largest = max(largest, int(y.max()))
    return largest + 1 if largest >= 0 else None


# A fixed timestamp makes the same arrays produce the same bytes, so file digests (and the
# committed demo files) do not change when nothing changed.
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def npz_bytes(arrays: Mapping[str, NDArray[np.generic]], *, compresslevel: int = 6) -> bytes:
    """A compressed .npz holding ``arrays``, byte-for-byte reproducible (readable by np.load).

    Level 6 is zlib's default: level 9 takes ten times as long for about 2% less.
    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for key in sorted(arrays):
            info = zipfile.ZipInfo(f"{key}.npy", date_time=_ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            member = io.BytesIO()
            np.lib.format.write_array(
                member, np.ascontiguousarray(arrays[key]), version=(1, 0), allow_pickle=False
            )
            archive.writestr(info, member.getvalue(), compresslevel=compresslevel)
    return buffer.getvalue()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(file: IO[bytes], chunk_size: int = 1024 * 1024) -> str:
    digest = hashlib.sha256()
    while chunk := file.read(chunk_size):
        digest.update(chunk)
    return digest.hexdigest()


def content_sha256(splits: Splits, *, task: str, n_classes: int | None) -> str:
    """A digest of what the dataset *is*: task, classes and every array's dtype, shape and data.

    Independent of how the arrays were compressed, so re-registering the same data from a
    differently written archive is recognised as the same dataset.
    """
    digest = hashlib.sha256()
    digest.update(f"task={task};n_classes={n_classes};".encode())
    for key, array in sorted(splits.as_dict().items()):
        contiguous = np.ascontiguousarray(array)
        digest.update(f"{key}:{contiguous.dtype.str}:{contiguous.shape};".encode())
        digest.update(contiguous.tobytes())
    return digest.hexdigest()


def public_test_mask(n_rows: int, *, fraction: float, seed: int) -> NDArray[np.bool_]:
    """Which test rows count for the public leaderboard (True) and which are private (False).

    Deterministic for a given seed, so every submission and baseline of an assignment is
    scored on the same rows. With two rows or more, both parts get at least one.
    """
    n_public = round(n_rows * fraction)
    if n_rows >= 2:
        n_public = min(max(n_public, 1), n_rows - 1)
    order = np.random.default_rng(seed).permutation(n_rows)
    mask = np.zeros(n_rows, dtype=bool)
    mask[order[:n_public]] = True
    return mask


def npz_headers(file: IO[bytes]) -> dict[str, tuple[tuple[int, ...], str]]:
    """The shape and dtype of every array of a trusted .npz, from the headers alone.

    For display: reads no array data, so it costs the same for a 10 KB file as for 1 GB.
    """
    headers: dict[str, tuple[tuple[int, ...], str]] = {}
    with zipfile.ZipFile(file) as archive:
        for info in archive.infolist():
            with archive.open(info) as member:
                shape, dtype = _read_header(member)
            headers[info.filename.removesuffix(".npy")] = (tuple(shape), str(dtype))
    return headers
