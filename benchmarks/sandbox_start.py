"""Sandbox start: an empty script through ``workers.sandbox.run_job`` against ``python empty.py``.

    .venv/bin/python benchmarks/sandbox_start.py [--runs 50] [--breakdown-runs 20] [--json FILE]
    .venv/bin/python benchmarks/sandbox_start.py --engine /tmp/engine-copy   # a modified workers/

The two are run in turn (the order alternating), ``--runs`` times each; the sandbox start is the
difference of their medians: what a job pays for the sandbox before its own code runs, and after.
The bare run gets the sandbox's environment (``PYTHONPATH`` of the harness, one-thread settings).

Then the breakdown: the same empty job through ``run_job`` with the process chain cut short at
each step (the job's interpreter replaced by ``/bin/true``; then the in-sandbox ``launcher.py
drop`` step; then bubblewrap), round-robin, so each difference of medians is one step's cost; plus
the parent's own stages, timed by wrapping ``workers.sandbox``'s methods (never changing them),
and some floors measured directly (``python -I -S``, a minimal ``bwrap ... true``).

Run by ``benchmarks/grader.py`` (which writes the figures to ``RESULTS.md``); alone it prints them
and, with ``--json``, saves them. Needs bubblewrap (``make system-deps``); as root, as the workers
run, the job gets a uid of its own. Bounded to 5 minutes; takes about 30 s.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.engine_timing import (
    machine_description,
    percentile,
    run_timed,
    sandbox_like_environment,
    summary,
    use_engine,
)

TARGET_START_MS = 20.0
RUNS = 50
BREAKDOWN_RUNS = 20
WARMUP = 3
OVERALL_TIMEOUT_S = 300
TRUE = "/bin/true"


class Timeout(BaseException):
    """The overall time bound ran out."""


def _empty_spec(job_id: str) -> Any:
    from workers.jobs import JobSpec, Limits

    return JobSpec(
        job_id=job_id,
        files={"empty.py": b""},
        entrypoint="empty.py",
        limits=Limits(wall_seconds=30, memory_mb=256, processes=16, disk_mb=16, log_bytes=10_000),
    )


def _sandboxed(job_id: str, *, backend: str = "bwrap", expect_ok: bool = True) -> float:
    """Seconds for one empty job through ``run_job``, cleanup included."""
    from workers.jobs import Outcome
    from workers.sandbox import run_job

    spec = _empty_spec(job_id)
    start = time.perf_counter()
    result = run_job(spec, backend=backend)  # type: ignore[arg-type]
    result.cleanup()
    elapsed = time.perf_counter() - start
    if expect_ok and result.outcome is not Outcome.COMPLETED:
        raise RuntimeError(f"the empty job did not complete: {result.outcome}: {result.message}")
    if expect_ok and backend == "bwrap" and result.backend != "bwrap":
        raise RuntimeError(f"asked for bubblewrap, ran with {result.backend}")
    return elapsed


class Bare:
    """``python empty.py`` in a folder of its own, with the sandbox's environment."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        for name in ("work", "task", "output"):
            (folder / name).mkdir(exist_ok=True)
        (folder / "work" / "empty.py").write_bytes(b"")
        self.env = sandbox_like_environment(
            task_dir=folder / "task", output_dir=folder / "output", home=folder / "work"
        )

    def run(self, argv: list[str] | None = None) -> float:
        command = argv or [sys.executable, "empty.py"]
        return run_timed(command, cwd=self.folder / "work", env=self.env, limit_s=30)


# --- the breakdown ------------------------------------------------------------------------------


def _cut(argv: list[str], variant: str) -> list[str]:
    """The launcher's command line with the process chain cut short.

    bubblewrap backend: ``python launcher.py launch ... -- bwrap ... -- python launcher.py drop
    ... -- python empty.py``: the separators are the launcher's, bubblewrap's and the drop step's.
    """
    separators = [i for i, arg in enumerate(argv) if arg == "--"]
    if variant == "no_job":  # the drop step executes /bin/true instead of the job's python
        return [*argv[: separators[2] + 1], TRUE]
    if variant == "no_drop":  # bubblewrap executes /bin/true: no in-sandbox launcher step
        return [*argv[: separators[1] + 1], TRUE]
    if variant == "no_bwrap":  # the launcher executes /bin/true: no bubblewrap at all
        return [*argv[: separators[0] + 1], TRUE]
    raise ValueError(variant)


@contextlib.contextmanager
def _cut_chain(variant: str | None) -> Iterator[None]:
    from workers import sandbox

    if variant is None:
        yield
        return
    original = sandbox._Job._launcher_argv

    def cut(self: Any, *args: Any) -> list[str]:
        return _cut(original(self, *args), variant)

    sandbox._Job._launcher_argv = cut  # type: ignore[method-assign]
    try:
        yield
    finally:
        sandbox._Job._launcher_argv = original  # type: ignore[method-assign]


class StageTimer:
    """Wraps some of ``workers.sandbox``'s functions to add up the time spent in each, per job."""

    STAGES: tuple[tuple[str, str, str], ...] = (
        # (label, owner, attribute) where owner is "module", "job", "cgroups" or "result"
        ("uid lease and sweep: /proc scans", "module", "_uid_has_processes"),
        ("job folder: files, seccomp, passwd", "job", "_prepare_folder"),
        ("cgroups: create", "module", "create_job_cgroups"),
        ("command line", "job", "_launcher_argv"),
        ("launch to exit (the processes)", "job", "_watch"),
        ("sweep after exit: cgroup kill", "cgroups", "kill_all"),
        ("read the last output", "job", "_drain"),
        ("verdict", "job", "_conclude"),
        ("cgroups: remove", "cgroups", "remove"),
        ("job folder: remove", "result", "cleanup"),
    )

    def __init__(self) -> None:
        self.totals: dict[str, float] = {}
        self.per_job: dict[str, list[float]] = {label: [] for label, _, _ in self.STAGES}
        self._restore: list[Callable[[], None]] = []

    def __enter__(self) -> StageTimer:
        from workers import cgroups, jobs, sandbox

        owners = {
            "module": sandbox,
            "job": sandbox._Job,
            "cgroups": cgroups.JobCgroups,
            "result": jobs.JobResult,
        }
        for label, owner_name, attribute in self.STAGES:
            owner = owners[owner_name]
            original = getattr(owner, attribute)
            setattr(owner, attribute, self._timed(label, original))
            self._restore.append(functools.partial(setattr, owner, attribute, original))
        return self

    def __exit__(self, *exc: object) -> None:
        for restore in reversed(self._restore):
            restore()

    def _timed(self, label: str, function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.totals[label] = self.totals.get(label, 0.0) + time.perf_counter() - start

        return timed

    def job_done(self) -> None:
        for label in self.per_job:
            self.per_job[label].append(self.totals.get(label, 0.0))
        self.totals = {}


def measure_start(runs: int = RUNS, *, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Empty job through run_job (bubblewrap) and ``python empty.py``, interleaved."""
    with tempfile.TemporaryDirectory(prefix="topdown-bench-bare-") as folder:
        bare = Bare(Path(folder))
        for i in range(WARMUP):
            _sandboxed(f"bench-start-warmup-{i}")
            bare.run()
        sandboxed: list[float] = []
        plain: list[float] = []
        for i in range(runs):
            if i % 2 == 0:
                plain.append(bare.run())
                sandboxed.append(_sandboxed(f"bench-start-{i}"))
            else:
                sandboxed.append(_sandboxed(f"bench-start-{i}"))
                plain.append(bare.run())
    paired = [s - p for s, p in zip(sandboxed, plain, strict=True)]
    start_ms = (percentile(sandboxed, 50) - percentile(plain, 50)) * 1000
    log(
        f"sandbox start: run_job p50 {percentile(sandboxed, 50) * 1000:.1f} ms, "
        f"bare p50 {percentile(plain, 50) * 1000:.1f} ms: start {start_ms:.1f} ms "
        f"(target {TARGET_START_MS:.0f} ms)"
    )
    return {
        "runs": runs,
        "run_job_ms": summary(sandboxed, 1000),
        "bare_ms": summary(plain, 1000),
        "paired_difference_ms": summary(paired, 1000),
        "start_ms": round(start_ms, 1),
        "target_ms": TARGET_START_MS,
        "met": start_ms <= TARGET_START_MS,
    }


def measure_breakdown(
    runs: int = BREAKDOWN_RUNS, *, log: Callable[[str], None] = print
) -> dict[str, Any]:
    """Where the start goes: the chain cut short step by step, the parent's stages, floors."""
    variants: dict[str, Callable[[int], float]] = {}
    with tempfile.TemporaryDirectory(prefix="topdown-bench-bare-") as folder:
        bare = Bare(Path(folder))
        bwrap_alone = [
            "bwrap",
            "--ro-bind",
            "/",
            "/",
            "--unshare-pid",
            "--unshare-net",
            "--unshare-ipc",
            "--unshare-uts",
            TRUE,
        ]
        timer = StageTimer()

        def full(i: int) -> float:
            with timer:
                elapsed = _sandboxed(f"bench-breakdown-{i}")
            timer.job_done()
            return elapsed

        def cut(variant: str) -> Callable[[int], float]:
            def run(i: int) -> float:
                with _cut_chain(variant):
                    # Cut at bubblewrap, the parent finds no bubblewrap status: "infrastructure".
                    return _sandboxed(f"bench-{variant}-{i}", expect_ok=variant != "no_bwrap")

            return run

        variants = {
            "full": full,
            "no_job": cut("no_job"),
            "no_drop": cut("no_drop"),
            "no_bwrap": cut("no_bwrap"),
            "fallback": lambda i: _sandboxed(f"bench-fallback-{i}", backend="fallback"),
            "python": lambda i: bare.run(),
            "python_isolated": lambda i: bare.run([sys.executable, "-I", "-S", "-c", "pass"]),
            "bwrap_true": lambda i: bare.run(bwrap_alone),
            "true": lambda i: bare.run([TRUE]),
        }
        for name, run in variants.items():
            run(-1)  # warm-up
            if name == "full":
                timer.per_job = {label: [] for label in timer.per_job}
        times: dict[str, list[float]] = {name: [] for name in variants}
        for i in range(runs):
            order = list(variants) if i % 2 == 0 else list(reversed(variants))
            for name in order:
                times[name].append(variants[name](i))
    p50 = {name: percentile(values, 50) * 1000 for name, values in times.items()}
    steps = [
        ("the job's interpreter (python empty.py, inside)", p50["full"] - p50["no_job"]),
        ("in-sandbox `launcher.py drop` (python -I -S)", p50["no_job"] - p50["no_drop"]),
        ("bubblewrap (namespaces, mounts, seccomp)", p50["no_drop"] - p50["no_bwrap"]),
        ("parent + outer `launcher.py launch` (python -I -S)", p50["no_bwrap"]),
    ]
    stages = [
        (label, percentile(values, 50) * 1000) for label, values in timer.per_job.items() if values
    ]
    for label, ms in steps:
        log(f"  {label:<52} {ms:7.1f} ms")
    return {
        "runs": runs,
        "variants_ms": {name: summary(values, 1000) for name, values in times.items()},
        "chain_steps_ms": [{"step": label, "p50_ms": round(ms, 1)} for label, ms in steps],
        "parent_stages_ms": [{"stage": label, "p50_ms": round(ms, 2)} for label, ms in stages],
        "floors_ms": {
            "python_empty_py": round(p50["python"], 1),
            "python_isolated_no_site": round(p50["python_isolated"], 1),
            "bwrap_minimal_true": round(p50["bwrap_true"], 1),
            "spawn_true": round(p50["true"], 1),
            "fallback_backend_start": round(p50["fallback"] - p50["python"], 1),
        },
    }


def print_report(report: dict[str, Any]) -> None:
    start = report["start"]
    print()
    print(f"{'':<28}{'p50 ms':>9}{'p95 ms':>9}")
    for label, key in (("run_job, empty script", "run_job_ms"), ("python empty.py", "bare_ms")):
        print(f"{label:<28}{start[key]['p50']:>9.1f}{start[key]['p95']:>9.1f}")
    paired = start["paired_difference_ms"]
    print(f"{'difference (paired)':<28}{paired['p50']:>9.1f}{paired['p95']:>9.1f}")
    verdict = "pass" if start["met"] else "FAIL"
    print(f"sandbox start {start['start_ms']:.1f} ms, target {TARGET_START_MS:.0f} ms: {verdict}")
    breakdown = report.get("breakdown")
    if breakdown:
        print("\nprocess chain (differences of medians):")
        for step in breakdown["chain_steps_ms"]:
            print(f"  {step['step']:<52}{step['p50_ms']:>7.1f} ms")
        print("parent stages (median per job):")
        for stage in breakdown["parent_stages_ms"]:
            print(f"  {stage['stage']:<52}{stage['p50_ms']:>7.2f} ms")
        print("floors:", ", ".join(f"{k} {v} ms" for k, v in breakdown["floors_ms"].items()))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=RUNS)
    parser.add_argument("--breakdown-runs", type=int, default=BREAKDOWN_RUNS)
    parser.add_argument("--no-breakdown", action="store_true")
    parser.add_argument("--engine", type=Path, help="a folder holding a modified workers/")
    parser.add_argument("--json", type=Path, help="save the figures here")
    args = parser.parse_args(argv)
    use_engine(args.engine)

    def out_of_time(signum: int, frame: FrameType | None) -> None:
        raise Timeout(f"ran past its {OVERALL_TIMEOUT_S} s bound")

    signal.signal(signal.SIGALRM, out_of_time)
    signal.alarm(OVERALL_TIMEOUT_S)
    try:
        import workers

        report: dict[str, Any] = {
            "engine": str(Path(workers.__file__).resolve().parent),
            "machine": machine_description(),
            "start": measure_start(args.runs),
        }
        if not args.no_breakdown:
            report["breakdown"] = measure_breakdown(args.breakdown_runs)
    except (Timeout, RuntimeError, subprocess.SubprocessError, OSError) as error:
        print(f"benchmark failed: {error}", file=sys.stderr)
        return 2
    finally:
        signal.alarm(0)
    print_report(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0 if report["start"]["met"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
