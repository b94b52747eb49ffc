"""GPU check for a machine with an NVIDIA GPU: `make gpu-check` (needs numpy and torch).

Runs the MNIST ten-digit assignment's small CNN in the sandbox on CUDA and the containment cases
that matter on a GPU host, through ``workers`` alone (no database, no broker), and prints figures.
Exit status 0 when every check passed.

    python scripts/gpu_check.py [--backend auto|bwrap|fallback]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from workers.gpu import list_gpus  # noqa: E402
from workers.jobs import JobSpec, Limits, Outcome  # noqa: E402
from workers.predictions import read_predictions  # noqa: E402
from workers.sandbox import detect_backend, run_job  # noqa: E402

CNN = ROOT / "demo" / "course" / "assignments" / "mnist-ten-digits" / "solutions" / "small_cnn.py"

PROBES = {
    "only its GPU's device nodes": (
        "import os; print(sorted(n for n in os.listdir('/dev') if n.startswith('nvidia')))"
    ),
    "CUDA works inside": (
        "import os, torch; print(os.environ.get('TOPDOWN_DEVICE'), torch.cuda.is_available(), "
        "torch.cuda.device_count()); x = torch.ones(1024, 1024, device='cuda'); "
        "print(float((x @ x).sum()))"
    ),
    "no network": (
        "import socket\ntry:\n    socket.create_connection(('1.1.1.1', 53), timeout=2)\n"
        "    print('CONNECTED')\nexcept OSError as e:\n    print('refused', type(e).__name__)"
    ),
    "kill(-1) spares the worker": (
        "import os\ntry:\n    os.kill(-1, 9)\nexcept OSError as e:\n    print(e)"
    ),
}


def task_files(folder: Path) -> tuple[dict[str, Path], np.ndarray]:
    data = np.load(ROOT / "demo" / "datasets" / "mnist10k.npz")
    np.savez(folder / "train.npz", x=data["x_train"], y=data["y_train"])
    np.savez(folder / "test_inputs.npz", x=data["x_test"])
    return {
        "train.npz": folder / "train.npz",
        "test_inputs.npz": folder / "test_inputs.npz",
    }, data["y_test"]


def job(name: str, code: str, files: dict[str, Path], backend: str, **limits: float) -> object:
    spec = JobSpec(
        job_id=f"gpu-check-{name}",
        files={"main.py": code.encode()},
        task_files=files,
        limits=Limits(**{"wall_seconds": 120, "memory_mb": 16384, **limits}),
        device="cuda",
        gpu_index=list_gpus()[0].index if list_gpus() else None,
    )
    return run_job(spec, backend=backend, allow_degraded=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="auto")
    args = parser.parse_args()
    figures: dict[str, object] = {
        "gpus": [gpu.__dict__ for gpu in list_gpus()],
        "backend": str(detect_backend()),
    }
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        files, labels = task_files(Path(tmp))
        started = time.monotonic()
        result = job("cnn", CNN.read_text(), files, args.backend)
        figures["cnn_wall_s"] = round(time.monotonic() - started, 2)
        figures["cnn"] = {
            "outcome": str(result.outcome),
            "device": result.device,
            "duration_s": round(result.duration_s, 2),
            "message": result.message,
            "warnings": list(result.warnings),
            "metrics_tail": result.metrics[-2:],
        }
        if result.outcome == Outcome.COMPLETED:
            predictions = read_predictions(
                result.output_dir / "predictions.npy", expected_rows=len(labels)
            )
            labels_hat = predictions.argmax(axis=1) if predictions.ndim == 2 else predictions
            figures["cnn"]["test_accuracy"] = float((labels_hat == labels).mean())
        ok &= result.outcome == Outcome.COMPLETED and result.device == "cuda"
        print(result.log[-1500:])
        result.cleanup()

        for name, code in PROBES.items():
            probe = job(
                name.replace(" ", "-").replace("(", "").replace(")", ""),
                code,
                {},
                args.backend,
                wall_seconds=60,
            )
            figures[name] = {"outcome": str(probe.outcome), "output": probe.log.strip()[-400:]}
            probe.cleanup()
        ok &= "CONNECTED" not in figures["no network"]["output"]  # type: ignore[index]
        ok &= "True" in figures["CUDA works inside"]["output"]  # type: ignore[index]
    figures["all_passed"] = ok
    print(json.dumps(figures, indent=2, default=str))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
