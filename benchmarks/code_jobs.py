"""Code-question throughput: small stdlib-only jobs through ``run_job``, in parallel OS processes.

    .venv/bin/python benchmarks/code_jobs.py [--processes 2] [--duration 20] [--json FILE]
    .venv/bin/python benchmarks/code_jobs.py --warm-start off   # cold starts only (on: default)
    .venv/bin/python benchmarks/code_jobs.py --engine /tmp/engine-copy   # a modified workers/

The workload a code question gives the engine: a student's function (``solution.py``) and a test
file (``main.py``) with five plain ``assert`` tests, stdlib only, run in the bubblewrap sandbox
with small limits; the test file prints one JSON line with the passed and failed tests, which is
checked after every job. Code questions are being added to ``courses`` as this is written, so
this drives the engine directly, not through Celery: ``--processes`` OS processes (two by
default, like two worker processes of concurrency 1), each calling ``run_job`` in a loop, all
starting at the same instant after a warm-up. Throughput is the number of jobs that finished
within ``--duration`` seconds, divided by it: a sustained rate, not a burst. With the engine's
warm start (on by default), each job finds the sandbox its process launched after the previous
job, ready or still starting; the report counts the jobs that ran warm.

Run by ``benchmarks/grader.py`` (which writes the figures to ``RESULTS.md``); alone it prints them
and, with ``--json``, saves them. Bounded to ``--duration`` plus a minute.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.engine_timing import percentile, summary, use_engine

TARGET_JOBS_PER_S = 4.0
PROCESSES = 2
DURATION_S = 20.0
START_DELAY_S = 4.0  # time for every process to import the engine and warm up before the start
WARMUP_JOBS = 2

SOLUTION = b'''\
def running_mean(values):
    """The mean of the first 1, 2, ... n values."""
    means, total = [], 0.0
    for count, value in enumerate(values, start=1):
        total += value
        means.append(total / count)
    return means
'''

TESTS = b"""\
import json

from solution import running_mean


def test_empty():
    assert running_mean([]) == []


def test_one_value():
    assert running_mean([4]) == [4.0]


def test_constant():
    assert running_mean([2, 2, 2]) == [2.0, 2.0, 2.0]


def test_increasing():
    assert running_mean([1, 2, 3, 4]) == [1.0, 1.5, 2.0, 2.5]


def test_negative():
    assert running_mean([-1, 1]) == [-1.0, 0.0]


passed, failed = [], {}
for name, test in list(globals().items()):
    if name.startswith("test_") and callable(test):
        try:
            test()
            passed.append(name)
        except Exception as error:  # an AssertionError or the student's own crash
            failed[name] = f"{type(error).__name__}: {error}"
print(json.dumps({"passed": passed, "failed": failed}))
"""


def code_question_spec(job_id: str) -> Any:
    from workers.jobs import JobSpec, Limits

    return JobSpec(
        job_id=job_id,
        files={"solution.py": SOLUTION, "main.py": TESTS},
        entrypoint="main.py",
        limits=Limits(wall_seconds=10, memory_mb=256, processes=16, disk_mb=16, log_bytes=64_000),
    )


def run_one(job_id: str, warm_start: bool | None = None) -> tuple[float, str, bool]:
    """Run one code-question job; seconds taken, "" if all five tests passed (else why not), and
    whether it ran in a warm sandbox."""
    from workers.jobs import Outcome
    from workers.sandbox import run_job

    start = time.perf_counter()
    result = run_job(code_question_spec(job_id), backend="bwrap", warm_start=warm_start)
    result.cleanup()
    elapsed = time.perf_counter() - start
    if result.outcome is not Outcome.COMPLETED:
        return elapsed, f"{result.outcome}: {result.message}", result.warm_start
    try:
        report = json.loads(result.log.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return elapsed, f"no test report in the output: {result.log[-500:]!r}", result.warm_start
    if len(report["passed"]) != 5 or report["failed"]:
        return elapsed, f"expected 5 tests passed: {report}", result.warm_start
    return elapsed, "", result.warm_start


def child(start_at: float, duration: float, out: Path, warm_start: bool | None = None) -> int:
    """One worker-like process: warm up, wait for the common start, loop until the end."""
    for i in range(WARMUP_JOBS):
        _, problem, _ = run_one(f"code-warmup-{os.getpid()}-{i}", warm_start)
        if problem:
            out.write_text(json.dumps({"error": problem}))
            return 2
    late = time.time() - start_at
    if late < 0:
        time.sleep(-late)
    end_at = start_at + duration
    jobs: list[dict[str, Any]] = []
    while time.time() < end_at:
        elapsed, problem, warm = run_one(f"code-{os.getpid()}-{len(jobs)}", warm_start)
        jobs.append(
            {"finished_at": time.time(), "seconds": elapsed, "problem": problem, "warm": warm}
        )
    out.write_text(json.dumps({"late_s": max(late, 0.0), "jobs": jobs}))
    return 0


def cpu_times() -> tuple[int, int]:
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return values[3] + values[4], sum(values)


def measure(
    processes: int = PROCESSES,
    duration: float = DURATION_S,
    engine: Path | None = None,
    warm_start: bool | None = None,
) -> dict[str, Any]:
    """Start ``processes`` children at a common instant; count jobs finished within ``duration``.
    ``warm_start``: the engine's warm start on or off (None: the engine's default)."""
    start_at = time.time() + START_DELAY_S
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    with tempfile.TemporaryDirectory(prefix="topdown-bench-code-jobs-") as folder:
        outs = [Path(folder) / f"child-{i}.json" for i in range(processes)]
        command = [sys.executable, str(Path(__file__).resolve()), "--child"]
        command += [f"--start-at={start_at}", f"--duration={duration}"]
        if engine:
            command.append(f"--engine={engine}")
        if warm_start is not None:
            command.append(f"--warm-start={'on' if warm_start else 'off'}")
        children = [
            subprocess.Popen([*command, f"--out={out}"], env=env, start_new_session=True)
            for out in outs
        ]
        try:
            time.sleep(max(0.0, start_at - time.time()))
            idle_0, total_0 = cpu_times()
            time.sleep(duration)
            idle_1, total_1 = cpu_times()
            for process in children:
                process.wait(timeout=duration + 60)
        finally:
            for process in children:
                if process.poll() is None:
                    process.kill()
                    process.wait()
        reports = [json.loads(out.read_text()) if out.exists() else {} for out in outs]
    errors = [r.get("error", "no report") for r in reports if "jobs" not in r]
    if errors:
        raise RuntimeError(f"a code-job process failed: {errors[0]}")
    end_at = start_at + duration
    per_process = [sum(1 for j in r["jobs"] if j["finished_at"] <= end_at) for r in reports]
    warm_jobs = sum(
        1 for r in reports for j in r["jobs"] if j["finished_at"] <= end_at and j["warm"]
    )
    seconds = [j["seconds"] for r in reports for j in r["jobs"]]
    problems = [j["problem"] for r in reports for j in r["jobs"] if j["problem"]]
    if problems:
        raise RuntimeError(f"{len(problems)} code jobs went wrong, first: {problems[0]}")
    rate = sum(per_process) / duration
    return {
        "processes": processes,
        "duration_s": duration,
        "jobs": sum(per_process),
        "jobs_per_s": round(rate, 2),
        "warm_start": "default" if warm_start is None else ("on" if warm_start else "off"),
        "warm_jobs": warm_jobs,
        "per_process_jobs": per_process,
        "latest_start_s": round(max(r["late_s"] for r in reports), 3),
        "job_ms": summary(seconds, 1000),
        "job_p50_ms": round(percentile(seconds, 50) * 1000, 1),
        "cpu_busy_share": round(1 - (idle_1 - idle_0) / max(total_1 - total_0, 1), 3),
        "target_jobs_per_s": TARGET_JOBS_PER_S,
        "met": rate >= TARGET_JOBS_PER_S,
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=PROCESSES)
    parser.add_argument("--duration", type=float, default=DURATION_S)
    parser.add_argument("--engine", type=Path, help="a folder holding a modified workers/")
    parser.add_argument("--json", type=Path, help="save the figures here")
    parser.add_argument(
        "--warm-start", choices=("on", "off"), help="the engine's warm start (default: its own)"
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--start-at", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    use_engine(args.engine)
    warm_start = None if args.warm_start is None else args.warm_start == "on"
    if args.child:
        return child(args.start_at, args.duration, args.out, warm_start)
    try:
        result = measure(args.processes, args.duration, args.engine, warm_start)
    except (RuntimeError, OSError, subprocess.SubprocessError) as error:
        print(f"benchmark failed: {error}", file=sys.stderr)
        return 2
    print(
        f"{result['processes']} processes x {result['duration_s']:.0f} s: {result['jobs']} jobs, "
        f"{result['jobs_per_s']:.2f} jobs/s (target {TARGET_JOBS_PER_S:.0f}/s: "
        f"{'pass' if result['met'] else 'FAIL'}); job p50 {result['job_ms']['p50']:.0f} ms, "
        f"p95 {result['job_ms']['p95']:.0f} ms; CPUs {result['cpu_busy_share']:.0%} busy; "
        f"warm start {result['warm_start']}: {result['warm_jobs']} jobs ran warm"
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if result["met"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
