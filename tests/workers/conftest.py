"""Running real jobs through the real sandbox, with small limits."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from workers.cgroups import create_job_cgroups
from workers.jobs import JobResult, JobSpec, Limits
from workers.sandbox import run_job, warm_start_prepare, warm_start_shutdown, warm_start_wait

SMALL = {"wall_seconds": 10, "memory_mb": 256, "processes": 16, "disk_mb": 64}


@pytest.fixture(scope="session")
def jobs_root() -> Iterator[Path]:
    # Not under pytest's tmp_path: its parents are 0700, which a fallback job's uid cannot cross.
    root = Path(tempfile.mkdtemp(prefix="topdown-test-jobs-"))
    root.chmod(0o711)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def task_files(tmp_path: Path) -> dict[str, Path]:
    np.savez(tmp_path / "train.npz", x=np.arange(8.0).reshape(4, 2), y=np.array([0, 1, 0, 1]))
    np.savez(tmp_path / "test_inputs.npz", x=np.zeros((3, 2)))
    return {"train.npz": tmp_path / "train.npz", "test_inputs.npz": tmp_path / "test_inputs.npz"}


def processes_are_capped() -> bool:
    """Whether a fork bomb would meet a limit here: a pids cgroup, or root's per-job uid."""
    if os.geteuid() == 0:
        return True
    groups, _ = create_job_cgroups(f"probe-{uuid.uuid4().hex[:8]}", memory_bytes=None, pids_max=8)
    if groups is None:
        return False
    groups.remove()
    return groups.pids is not None


def job_processes(marker: str, uid: int | None = None) -> list[int]:
    """Pids of live processes (not zombies) whose command line mentions ``marker``, or that run
    as ``uid``. A warm job's interpreter was started before its entrypoint was known, so only
    its uid finds it."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        real_uid = int(status.split("\nUid:", 1)[1].split()[0])
        if (marker.encode() in cmdline or real_uid == uid) and state != "Z":
            found.append(int(entry))
    return found


@pytest.fixture
def no_warm_sandbox() -> Iterator[None]:
    """No warm sandbox of an earlier test waits (or is being started) in the jobs folder."""
    warm_start_shutdown()
    yield


@pytest.fixture
def run(jobs_root: Path) -> Iterator[Callable[..., JobResult]]:
    """``run(code, backend=..., **limits)``: the job's entrypoint has a unique name, so that
    ``job_processes(result.job_id)`` finds anything of it left running."""
    results: list[JobResult] = []

    def run_code(
        code: str,
        *,
        backend: str = "auto",
        files: dict[str, bytes] | None = None,
        task: dict[str, Path] | None = None,
        device: str = "cpu",
        gpu_index: int | None = None,
        on_log: Callable[[str], None] | None = None,
        on_metric: Callable[[dict[str, Any]], None] | None = None,
        warm_start: bool | None = None,
        **limits: Any,
    ) -> JobResult:
        """``warm_start=True`` first has a warm sandbox for these limits wait for the job, and
        checks the job ran in it; ``False`` starts it cold; ``None`` leaves it to the engine."""
        job_id = f"job_{uuid.uuid4().hex[:12]}"
        entrypoint = f"{job_id}.py"
        spec = JobSpec(
            job_id=job_id,
            files={entrypoint: code.encode(), **(files or {})},
            entrypoint=entrypoint,
            task_files=task or {},
            limits=Limits(**{**SMALL, **limits}),
            device=device,  # type: ignore[arg-type]
            gpu_index=gpu_index,
        )
        if warm_start:
            warm_start_prepare(spec.limits, jobs_root=jobs_root)
            assert warm_start_wait(spec.limits, jobs_root=jobs_root), "no warm sandbox started"
        result = run_job(
            spec,
            backend=backend,  # type: ignore[arg-type]
            jobs_root=jobs_root,
            on_log=on_log,
            on_metric=on_metric,
            warm_start=warm_start,
        )
        results.append(result)
        if warm_start is not None:
            assert result.warm_start is warm_start, result.message
        return result

    yield run_code
    for result in results:
        result.cleanup()
