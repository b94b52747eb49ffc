"""Shared helpers of the grader benchmarks (``grader.py``, ``sandbox_start.py``, ``code_jobs.py``).

Statistics over repeated timings, the machine's description, the environment a job sees in the
sandbox (so that a bare ``python`` run gets the same one), and loading the execution engine from
another folder (``--engine``: a copy of ``workers/`` with a proposed change, to measure it with
the same script).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
WORK_DIR = BENCH_DIR / ".work"  # git-ignored
RESULTS_DIR = BENCH_DIR / "results"
HARNESS_DIR = REPO / "workers" / "harness"


def use_engine(engine: Path | None) -> None:
    """Import ``workers`` from ``engine`` (a folder holding a ``workers`` package) if given,
    else from this repository. Call before anything imports ``workers``."""
    for path in (str(REPO), *([str(engine.resolve())] if engine else [])):
        if path in sys.path:
            sys.path.remove(path)
        sys.path.insert(0, path)
    if "workers" in sys.modules:
        raise RuntimeError("workers was imported before use_engine()")


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100), linear between closest ranks (numpy's default)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summary(values: list[float], scale: float = 1.0, digits: int = 1) -> dict[str, float]:
    """n, p50, p95, mean, min and max of ``values`` times ``scale`` (e.g. 1000 for ms)."""
    scaled = [v * scale for v in values]
    if not scaled:
        return {"n": 0}
    return {
        "n": len(scaled),
        "p50": round(percentile(scaled, 50), digits),
        "p95": round(percentile(scaled, 95), digits),
        "mean": round(statistics.fmean(scaled), digits),
        "min": round(min(scaled), digits),
        "max": round(max(scaled), digits),
    }


def sandbox_like_environment(*, task_dir: Path, output_dir: Path, home: Path) -> dict[str, str]:
    """What ``workers.sandbox`` gives a CPU job (see ``_Job._environment``), for a bare run:
    the same harness on ``PYTHONPATH`` and the same one-thread settings for numeric libraries,
    so a bare run differs from a sandboxed one by the sandbox alone."""
    return {
        "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "PYTHONPATH": str(HARNESS_DIR),
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "TOPDOWN_TASK_DIR": str(task_dir),
        "TOPDOWN_OUTPUT_DIR": str(output_dir),
        "TOPDOWN_DEVICE": "cpu",
    }


def run_timed(
    argv: list[str], *, cwd: Path, env: dict[str, str], limit_s: float, quiet: bool = True
) -> float:
    """Seconds from start to exit of a command that must succeed.

    Not ``subprocess.run(timeout=...)``: its wait polls with growing sleeps (up to 50 ms), which
    would add up to half a process's run time to the measurement. This waits in ``waitpid`` and
    kills the command from a timer thread if it runs past ``limit_s``.
    """
    output = subprocess.DEVNULL if quiet else None
    start = time.perf_counter()
    process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=output, stderr=subprocess.PIPE)
    timer = threading.Timer(limit_s, process.kill)
    timer.start()
    try:
        _, stderr = process.communicate()  # no timeout: a blocking wait, woken at exit
    finally:
        timer.cancel()
    elapsed = time.perf_counter() - start
    if process.returncode != 0:
        tail = stderr.decode(errors="replace")[-2000:]
        raise RuntimeError(f"{' '.join(argv)} exited with {process.returncode}:\n{tail}")
    return elapsed


def load_average() -> list[str]:
    return Path("/proc/loadavg").read_text().split()[:3]


def cpu_busy_share(seconds: float = 1.0) -> float:
    """Share of all CPUs busy over ``seconds`` (anything of ours should be idle meanwhile)."""

    def sample() -> tuple[int, int]:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return values[3] + values[4], sum(values)  # idle + iowait, total

    idle_0, total_0 = sample()
    time.sleep(seconds)
    idle_1, total_1 = sample()
    return round(1 - (idle_1 - idle_0) / max(total_1 - total_0, 1), 3)


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def cgroup_setup() -> str:
    """ "v1", "v2" or "hybrid": which cgroup hierarchy the jobs' limits live in."""
    mounts = Path("/proc/self/mounts").read_text()
    v1 = re.search(r" cgroup (?!2)", mounts) is not None
    v2 = " cgroup2 " in mounts
    return "hybrid" if v1 and v2 else "v2" if v2 else "v1" if v1 else "none"


def machine_description() -> dict[str, object]:
    """CPUs, memory, kernel and the versions that matter for the grader's timings."""
    cpuinfo = {
        key.strip(): value.strip()
        for key, _, value in (
            line.partition(":") for line in Path("/proc/cpuinfo").read_text().splitlines()
        )
        if value
    }
    meminfo = re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text())
    bwrap = shutil.which("bwrap")
    bwrap_version = ""
    if bwrap:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            bwrap_version = subprocess.run(
                [bwrap, "--version"], capture_output=True, text=True, timeout=10, check=False
            ).stdout.strip()
    return {
        "nproc": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "cpu_model": cpuinfo.get("model name", "unknown"),
        "cpu_mhz": round(float(cpuinfo.get("cpu MHz", "0"))),
        "memory_gib": round(int(meminfo.group(1)) / 1024 / 1024, 1) if meminfo else None,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "bubblewrap": bwrap_version or "not installed",
        "cgroups": cgroup_setup(),
        "running_as_root": os.geteuid() == 0,
        "processes": sum(1 for p in Path("/proc").iterdir() if p.name.isdigit()),
        "numpy": _version("numpy"),
        "torch": _version("torch"),
        "celery": _version("celery"),
        "django": _version("Django"),
    }


def machine_line(machine: dict[str, object]) -> str:
    return (
        f"{machine['nproc']} CPUs ({machine['cpu_model']}, {machine['cpu_mhz']} MHz), "
        f"{machine['memory_gib']} GiB memory, Linux {machine['kernel']}, cgroups "
        f"{machine['cgroups']}, {machine['processes']} processes running"
    )
