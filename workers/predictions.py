"""Reading a submission's ``predictions.npy`` on the trusted side. Treat the file as hostile.

The file was written by untrusted code: it may be a symlink to the hidden labels, a FIFO that
blocks forever, a huge file, a pickle, or an array of the wrong shape or full of NaN. Every way it
can be wrong becomes an ``InvalidOutput`` whose message a student can act on.
"""

from __future__ import annotations

import errno
import io
import os
import stat
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

DEFAULT_MAX_BYTES = 256 * 1024 * 1024


class InvalidOutput(Exception):
    """The predictions cannot be used; the message explains why, in a student's terms."""


def _read_regular_file(path: Path, max_bytes: int) -> bytes:
    try:
        # O_NOFOLLOW: a symlink is refused, not followed; O_NONBLOCK: a FIFO cannot hang us.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise InvalidOutput(
            "No predictions were saved. Write them to $TOPDOWN_OUTPUT_DIR/predictions.npy "
            "(or call topdown_task.save_predictions(array))."
        ) from None
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise InvalidOutput("predictions.npy must be a regular file, not a symlink.") from None
        raise InvalidOutput(f"predictions.npy could not be opened ({error.strerror}).") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise InvalidOutput("predictions.npy must be a regular file.")
    with os.fdopen(fd, "rb") as handle:
        if info.st_size > max_bytes:
            raise InvalidOutput(
                f"predictions.npy is {info.st_size / 1e6:.1f} MB; "
                f"the limit is {max_bytes / 1e6:.0f} MB."
            )
        # Read one byte more than allowed: the file may still be growing.
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise InvalidOutput(f"predictions.npy is larger than {max_bytes / 1e6:.0f} MB.")
    return data


def read_predictions(
    path: Path, *, expected_rows: int, max_bytes: int = DEFAULT_MAX_BYTES
) -> NDArray[np.generic]:
    """Load and validate predictions: a numeric, finite array with one row per test input."""
    data = _read_regular_file(path, max_bytes)
    try:
        array = np.load(io.BytesIO(data), allow_pickle=False)
    except ValueError as error:
        if "pickle" in str(error).lower():
            raise InvalidOutput(
                "predictions.npy holds Python objects (a pickle); save a plain numeric array, "
                "e.g. np.save(path, np.asarray(preds, dtype=np.float32))."
            ) from None
        raise InvalidOutput(f"predictions.npy is not a valid .npy file ({error}).") from None
    except Exception:
        raise InvalidOutput(
            "predictions.npy is not a valid .npy file; save it with np.save."
        ) from None
    if not isinstance(array, np.ndarray):
        raise InvalidOutput("predictions.npy must hold one array (np.save, not np.savez).")
    if array.dtype.kind not in "biuf":
        raise InvalidOutput(
            f"predictions must be numbers (integers or floats), not {array.dtype} values."
        )
    if array.ndim == 0 or array.ndim > 2:
        raise InvalidOutput(
            f"predictions must have one row per test input (1 or 2 dimensions); got shape "
            f"{array.shape}."
        )
    if array.shape[0] != expected_rows:
        raise InvalidOutput(
            f"expected {expected_rows} predictions, one per test input, but got {array.shape[0]}."
        )
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        bad = int((~np.isfinite(array)).any(axis=tuple(range(1, array.ndim))).sum())
        raise InvalidOutput(f"{bad} prediction row(s) contain NaN or infinity.")
    return array
