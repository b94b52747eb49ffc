"""Helpers for code running inside a Topdown sandbox (standard library and numpy only).

    import topdown_task as tt
    x, y = tt.load("train")
    x_test = tt.load("test_inputs")
    tt.log(epoch=1, loss=0.31, accuracy=0.91)   # one point on the live training curve
    tt.save_predictions(model_predictions)      # one row per test input

Everything here is a convenience: the contract is the environment variables and file names
(``$TOPDOWN_TASK_DIR/train.npz`` ..., ``$TOPDOWN_OUTPUT_DIR/predictions.npy``).
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

METRIC_PREFIX = "@@topdown-metric "
SPLITS = ("train", "valid", "test_inputs")


def task_dir() -> Path:
    return Path(os.environ.get("TOPDOWN_TASK_DIR", "."))


def output_dir() -> Path:
    return Path(os.environ.get("TOPDOWN_OUTPUT_DIR", "."))


def device() -> str:
    """``"cuda"`` when this job has a GPU, else ``"cpu"``: pass it to ``torch.device``."""
    return os.environ.get("TOPDOWN_DEVICE", "cpu")


def load(split: str = "train") -> Any:
    """``(x, y)`` for "train" and "valid", ``x`` alone for "test_inputs" (its labels are hidden)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, not {split!r}")
    path = task_dir() / f"{split}.npz"
    if not path.exists():
        raise FileNotFoundError(f"this task has no {split!r} split ({path} is missing)")
    with np.load(path, allow_pickle=False) as data:
        if split == "test_inputs":
            return data["x"]
        return data["x"], data["y"]


def log(**metrics: float) -> None:
    """Record numbers (loss, accuracy, epoch...) as one point of the live training curve."""
    clean = {}
    for name, value in metrics.items():
        number = float(value)
        if math.isfinite(number):
            clean[name] = number
    line = json.dumps({"t": round(time.time(), 3), **clean}, separators=(",", ":"))
    sys.stdout.write(f"{METRIC_PREFIX}{line}\n")
    sys.stdout.flush()


def save_predictions(predictions: Any) -> Path:
    """Save one prediction (a label, or a row of class scores) per test input."""
    if hasattr(predictions, "detach"):  # a torch tensor, possibly on the GPU
        predictions = predictions.detach().cpu().numpy()
    array = np.asarray(predictions)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"predictions must be numbers, not {array.dtype}")
    path = output_dir() / "predictions.npy"
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, array, allow_pickle=False)
    return path
