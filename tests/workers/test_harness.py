"""The in-sandbox helper module, exercised the way a submission uses it: in its own process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

HARNESS = Path(__file__).resolve().parents[2] / "workers" / "harness"


@pytest.fixture
def task(tmp_path):
    task_dir, out = tmp_path / "task", tmp_path / "out"
    task_dir.mkdir()
    out.mkdir()
    np.savez(task_dir / "train.npz", x=np.ones((4, 2)), y=np.array([0, 1, 0, 1]))
    np.savez(task_dir / "test_inputs.npz", x=np.zeros((3, 2)))
    return task_dir, out


def run(code: str, task_dir: Path, out: Path, device: str = "cpu") -> subprocess.CompletedProcess:
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(HARNESS),
        "TOPDOWN_TASK_DIR": str(task_dir),
        "TOPDOWN_OUTPUT_DIR": str(out),
        "TOPDOWN_DEVICE": device,
    }
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )


def test_a_submission_loads_data_logs_metrics_and_saves_predictions(task):
    task_dir, out = task
    result = run(
        "import topdown_task as tt\n"
        "x, y = tt.load('train')\n"
        "test = tt.load('test_inputs')\n"
        "print('device', tt.device())\n"
        "tt.log(epoch=1, loss=0.5, bad=float('nan'))\n"
        "tt.save_predictions([int(v) for v in test.sum(axis=1)])\n",
        task_dir,
        out,
        device="cuda",
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "device cuda"
    metric = json.loads(lines[1].removeprefix("@@topdown-metric "))
    assert metric["epoch"] == 1 and metric["loss"] == 0.5 and "bad" not in metric
    assert np.load(out / "predictions.npy").tolist() == [0, 0, 0]


def test_asking_for_a_missing_split_says_so(task):
    task_dir, out = task
    result = run("import topdown_task as tt; tt.load('valid')", task_dir, out)
    assert result.returncode != 0
    assert "has no 'valid' split" in result.stderr


def test_hidden_labels_are_not_offered(task):
    task_dir, out = task
    result = run("import topdown_task as tt; tt.load('test_labels')", task_dir, out)
    assert "split must be one of" in result.stderr


def test_a_tensor_on_the_gpu_is_copied_to_the_host_before_saving(task):
    task_dir, out = task
    # A stand-in for a CUDA tensor: numpy cannot read it directly, only after .cpu().
    result = run(
        "import numpy as np, topdown_task as tt\n"
        "class CudaTensor:\n"
        "    def __array__(self, *a, **k):\n"
        '        raise TypeError("can\'t convert cuda:0 device type tensor to numpy")\n'
        "    def detach(self): return self\n"
        "    def cpu(self): return HostTensor()\n"
        "class HostTensor:\n"
        "    def numpy(self): return np.array([2, 1, 0])\n"
        "tt.save_predictions(CudaTensor())\n",
        task_dir,
        out,
    )
    assert result.returncode == 0, result.stderr
    assert np.load(out / "predictions.npy").tolist() == [2, 1, 0]
