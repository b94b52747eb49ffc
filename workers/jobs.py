"""What a sandboxed job is (``JobSpec`` with its ``Limits``) and what came of it (``JobResult``).

These are plain data: the grader builds a ``JobSpec``, ``workers.sandbox.run_job`` returns a
``JobResult``, and ``JobResult.to_dict()`` is what gets stored or sent over the broker.
"""

from __future__ import annotations

import contextlib
import enum
import os
import shutil
import signal as signals
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Literal

Device = Literal["cpu", "cuda"]
Backend = Literal["bwrap", "fallback"]

MB = 1024 * 1024


class Outcome(enum.StrEnum):
    COMPLETED = "completed"
    TIMEOUT = "timeout"
    MEMORY = "memory"
    CRASHED = "crashed"
    INFRASTRUCTURE = "infrastructure"
    CANCELLED = "cancelled"  # the caller asked to stop it


@dataclass(frozen=True)
class Limits:
    """Resource limits of one job. ``cpu_seconds=None`` means twice the wall-clock limit.

    ``log_bytes`` caps the log that is kept (and streamed); the rest is counted and dropped.
    ``disk_mb`` caps what the job stores in its work and output folders; ``/tmp`` and
    ``/dev/shm`` are RAM and count against ``memory_mb``.
    """

    wall_seconds: float = 300
    cpu_seconds: float | None = None
    memory_mb: int = 2048
    processes: int = 64
    file_size_mb: int = 256
    open_files: int = 256
    log_bytes: int = 1_000_000
    disk_mb: int = 1024

    def __post_init__(self) -> None:
        if self.wall_seconds <= 0:
            raise ValueError("wall_seconds must be positive")
        if self.cpu_seconds is not None and self.cpu_seconds <= 0:
            raise ValueError("cpu_seconds must be positive (or None for twice the wall clock)")
        if self.memory_mb < 32:
            raise ValueError("memory_mb must be at least 32 (the interpreter alone needs that)")
        if self.processes < 1:
            raise ValueError("processes must be at least 1")
        if self.file_size_mb < 1 or self.disk_mb < 1:
            raise ValueError("file_size_mb and disk_mb must be at least 1")
        if self.open_files < 16:
            raise ValueError("open_files must be at least 16 (the interpreter needs a few)")
        if self.log_bytes < 0:
            raise ValueError("log_bytes cannot be negative")

    @property
    def cpu_limit_seconds(self) -> float:
        return self.cpu_seconds if self.cpu_seconds is not None else 2 * self.wall_seconds

    def to_dict(self) -> dict[str, Any]:
        return {
            "wall_seconds": self.wall_seconds,
            "cpu_seconds": self.cpu_limit_seconds,
            "memory_mb": self.memory_mb,
            "processes": self.processes,
            "file_size_mb": self.file_size_mb,
            "open_files": self.open_files,
            "log_bytes": self.log_bytes,
            "disk_mb": self.disk_mb,
        }


def _check_relative_name(name: str, what: str) -> None:
    path = PurePosixPath(name)
    if (
        not name
        or "\x00" in name
        or "\\" in name
        or path.is_absolute()
        or any(part in ("", ".", "..") for part in name.split("/"))
    ):
        raise ValueError(f"{what} {name!r} must be a plain relative path (no '..', not absolute)")


@dataclass(frozen=True)
class JobSpec:
    """One job: code files written into the writable work folder, run with the worker's Python.

    ``task_files`` maps a name (``"train.npz"``) to a file on the worker's disk; the job sees it
    read-only as ``$TOPDOWN_TASK_DIR/<name>``. ``gpu_index`` is the GPU's device number
    (``/dev/nvidia<N>``), see ``workers.gpu``.
    """

    job_id: str
    files: dict[str, bytes]
    entrypoint: str = "main.py"
    task_files: dict[str, Path] = field(default_factory=dict)
    limits: Limits = field(default_factory=Limits)
    device: Device = "cpu"
    gpu_index: int | None = None

    def __post_init__(self) -> None:
        for name in self.files:
            _check_relative_name(name, "file name")
        _check_relative_name(self.entrypoint, "entrypoint")
        if self.entrypoint not in self.files:
            raise ValueError(f"the entrypoint {self.entrypoint!r} is not one of the files")
        for name in self.task_files:
            _check_relative_name(name, "task file name")
            if "/" in name:
                raise ValueError(f"task file name {name!r} must not contain '/'")
        if self.device not in ("cpu", "cuda"):
            raise ValueError(f"device must be 'cpu' or 'cuda', not {self.device!r}")
        if self.gpu_index is not None and self.gpu_index < 0:
            raise ValueError("gpu_index cannot be negative")


def remove_tree(path: Path) -> None:
    """Remove a job folder whatever the job did to its permissions; never follows symlinks."""

    def make_writable_and_retry(function: Callable[..., Any], failed: str, _exc: Any) -> None:
        parent = os.path.dirname(failed)
        for target in (parent, failed):
            try:
                if not os.path.islink(target):
                    os.chmod(target, stat.S_IRWXU)
            except OSError:
                pass
        with contextlib.suppress(FileNotFoundError):
            function(failed)

    if path.is_symlink():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path, onerror=make_writable_and_retry)


@dataclass
class JobResult:
    """What a student (``message``, ``log``, ``metrics``) and the grader (the rest) need.

    ``output_dir`` holds what the job saved (``predictions.npy``); it stays until ``cleanup()``.
    ``degraded`` is true when the job ran without the namespace sandbox; ``warnings`` lists,
    for the operator, every limit that was weaker than asked. ``warm_start`` is true when the
    job ran in a sandbox launched before it came (``workers.sandbox``, "Warm start").
    """

    job_id: str
    outcome: Outcome
    exit_code: int | None
    signal: int | None
    duration_s: float
    log: str
    log_dropped_bytes: int
    metrics: list[dict[str, Any]]
    output_dir: Path
    device: str
    backend: Backend
    degraded: bool
    message: str
    metrics_dropped: int = 0
    cpu_s: float | None = None
    peak_memory_mb: float | None = None
    uid: int | None = None
    warnings: list[str] = field(default_factory=list)
    job_dir: Path | None = None
    warm_start: bool = False

    @property
    def signal_name(self) -> str | None:
        if self.signal is None:
            return None
        try:
            return signals.Signals(self.signal).name
        except ValueError:
            return f"signal {self.signal}"

    def cleanup(self) -> None:
        """Delete the job folder (code, work files, outputs). Safe to call twice."""
        if self.job_dir is not None:
            remove_tree(self.job_dir)

    def to_dict(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "outcome": self.outcome.value,
            "exit_code": self.exit_code,
            "signal": self.signal,
            "signal_name": self.signal_name,
            "duration_s": round(self.duration_s, 3),
            "cpu_s": None if self.cpu_s is None else round(self.cpu_s, 3),
            "peak_memory_mb": self.peak_memory_mb,
            "log": self.log,
            "log_dropped_bytes": self.log_dropped_bytes,
            "metrics": self.metrics,
            "metrics_dropped": self.metrics_dropped,
            "output_dir": str(self.output_dir),
            "device": self.device,
            "backend": self.backend,
            "degraded": self.degraded,
            "message": self.message,
            "uid": self.uid,
            "warnings": list(self.warnings),
            "warm_start": self.warm_start,
        }
