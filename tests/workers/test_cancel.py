"""Stopping a job from another thread: the sandbox kills all of it and says it was cancelled."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

from tests.workers.conftest import SMALL, job_processes
from workers.jobs import JobSpec, Limits, Outcome
from workers.sandbox import run_job

CODE = """
import subprocess, sys, time
print("started", flush=True)
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", sys.argv[0]])
time.sleep(60)
print("not reached")
"""


def test_setting_cancel_kills_the_job_and_its_children_and_keeps_its_log(jobs_root: Path):
    job_id = f"job_{uuid.uuid4().hex[:12]}"
    spec = JobSpec(
        job_id=job_id,
        files={f"{job_id}.py": CODE.encode()},
        entrypoint=f"{job_id}.py",
        limits=Limits(**{**SMALL, "wall_seconds": 30}),
    )
    cancel = threading.Event()
    lines: list[str] = []

    def on_log(line: str) -> None:
        lines.append(line)
        if line == "started":
            threading.Timer(0.3, cancel.set).start()

    began = time.monotonic()
    result = run_job(spec, jobs_root=jobs_root, on_log=on_log, cancel=cancel)
    elapsed = time.monotonic() - began
    try:
        assert result.outcome is Outcome.CANCELLED, result.message
        assert result.message == "Cancelled while running."
        assert "started" in result.log and "not reached" not in result.log
        # Stopped long before its own 60 s sleep or the 30 s wall clock.
        assert elapsed < 15
        assert job_processes(job_id, uid=result.uid) == []
    finally:
        result.cleanup()


def test_an_unset_cancel_event_changes_nothing(jobs_root: Path):
    job_id = f"job_{uuid.uuid4().hex[:12]}"
    spec = JobSpec(
        job_id=job_id,
        files={f"{job_id}.py": b"print('done')\n"},
        entrypoint=f"{job_id}.py",
        limits=Limits(**SMALL),
    )
    result = run_job(spec, jobs_root=jobs_root, cancel=threading.Event())
    try:
        assert result.outcome is Outcome.COMPLETED
        assert result.log == "done\n"
    finally:
        result.cleanup()
