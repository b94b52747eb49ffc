"""Sandbox start: an empty script through ``workers.sandbox.run_job`` against ``python empty.py``.

    .venv/bin/python benchmarks/sandbox_start.py [--runs 50] [--breakdown-runs 20] [--json FILE]
    .venv/bin/python benchmarks/sandbox_start.py --engine /tmp/engine-copy   # a modified workers/

Three are run in turn (the order rotating through every permutation), ``--runs`` times each:
``run_job`` with the warm start off (a cold start: the whole process chain after the call),
``run_job`` with a warm sandbox waiting (the warm start; before each warm run, and after it
while its successor is launched in the background, the benchmark waits, untimed, so that no run
is timed beside a launch), and the bare ``python empty.py``. The sandbox start of each is the
difference of its median and the bare run's: what a job pays for the sandbox before its own code
runs, and after. The bare run gets the sandbox's environment (``PYTHONPATH`` of the harness,
one-thread settings). The warm figure is the latency of a job that finds a warm sandbox ready;
back to back, a job may have to wait for its predecessor's refill (``code_jobs.py`` measures that).

Then the breakdown: the same empty job started cold through ``run_job`` with the process chain
(``sh`` → ``prlimit`` → ``bwrap`` → ``setpriv`` → the job's interpreter) cut short at each step
(the step's program replaced by ``/bin/true``), round-robin, so each difference of medians is one
step's cost; the parent's own stages for a cold and for a warm job, timed by wrapping
``workers.sandbox``'s methods (never changing them; only calls from the job's thread count); the
time a warm sandbox takes to launch in the background; and some floors measured directly
(``python -I -S``, a minimal ``bwrap ... true``).

Run by ``benchmarks/grader.py`` (which writes the figures to ``RESULTS.md``); alone it prints them
and, with ``--json``, saves them. Needs bubblewrap (``make system-deps``); as root, as the workers
run, the job gets a uid of its own. Bounded to 5 minutes; takes about 30 s.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import itertools
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.engine_timing import (
    cpu_busy_share,
    load_average,
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


def _sandboxed(
    job_id: str,
    *,
    backend: str = "bwrap",
    expect_ok: bool = True,
    warm: bool = False,
    timer: StageTimer | None = None,
) -> float:
    """Seconds for one empty job through ``run_job``, cleanup included. ``warm``: in a warm
    sandbox, which the benchmark waits for (untimed) before the job and after it. ``timer``
    times the parent's stages of the job (not of the waits)."""
    from workers.jobs import Outcome
    from workers.sandbox import run_job

    spec = _empty_spec(job_id)
    if warm:
        _wait_for_warm_sandbox(spec)
    start = time.perf_counter()
    with timer or contextlib.nullcontext():
        result = run_job(spec, backend=backend, warm_start=warm)  # type: ignore[arg-type]
        result.cleanup()
    elapsed = time.perf_counter() - start
    if timer:
        timer.job_done()
    if warm:
        _wait_for_warm_sandbox(spec)  # its successor's launch, before anything else is timed
    if expect_ok and result.outcome is not Outcome.COMPLETED:
        raise RuntimeError(f"the empty job did not complete: {result.outcome}: {result.message}")
    if expect_ok and backend == "bwrap" and result.backend != "bwrap":
        raise RuntimeError(f"asked for bubblewrap, ran with {result.backend}")
    if expect_ok and result.warm_start != warm:
        raise RuntimeError(f"asked for a {'warm' if warm else 'cold'} start, got the other")
    return elapsed


def _wait_for_warm_sandbox(spec: Any) -> float:
    """Seconds until a warm sandbox for ``spec``'s limits waits (launched now if none is)."""
    from workers.sandbox import warm_start_prepare, warm_start_wait

    start = time.perf_counter()
    warm_start_prepare(spec.limits)
    if not warm_start_wait(spec.limits, timeout=30):
        raise RuntimeError("no warm sandbox started (see the log of workers.sandbox)")
    return time.perf_counter() - start


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
    """The cold start's command line with the process chain cut short.

    ``sh -c SCRIPT topdown-launch prlimit LIMITS -- bwrap ... -- setpriv ... -- python -c
    JOB_STARTER - FD empty.py``: the separators are prlimit's, bubblewrap's and setpriv's (a
    worker that is not root has no setpriv step).
    """
    separators = [i for i, arg in enumerate(argv) if arg == "--"]
    if variant == "no_job":  # the last step executes /bin/true instead of the job's python
        return [*argv[: separators[-1] + 1], TRUE]
    if variant == "no_setpriv":  # bubblewrap executes /bin/true: no uid switch, no python
        return [*argv[: separators[1] + 1], TRUE]
    if variant == "no_bwrap":  # prlimit executes /bin/true: no bubblewrap at all
        return [*argv[: separators[0] + 1], TRUE]
    if variant == "no_prlimit":  # sh executes /bin/true after joining the cgroups
        return [*argv[:4], TRUE]
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

    sandbox._Job._launcher_argv = cut  # type: ignore[method-assign, assignment]
    try:
        yield
    finally:
        sandbox._Job._launcher_argv = original  # type: ignore[method-assign]


class StageTimer:
    """Wraps some of ``workers.sandbox``'s functions to add up the time spent in each, per job.

    Only calls from the thread that entered the timer count: the warm start's own thread runs
    the same functions when it launches the next warm sandbox in the background.
    """

    COLD: tuple[tuple[str, str, str], ...] = (
        # (label, owner, attribute) where owner is "module", "job", "pool", "cgroups" or "result"
        ("uid lease: /proc scan", "module", "_uid_has_processes"),
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
    WARM: tuple[tuple[str, str, str], ...] = (
        ("take the warm sandbox (under the lock)", "pool", "_take"),
        ("job files into the work folder", "job", "_write_code"),
        ('"go": entrypoint and environment', "job", "_send_go"),
        ('"go" to exit (the job, its exit, bubblewrap\'s end)', "job", "_watch"),
        ("sweep after exit: cgroup kill", "cgroups", "kill_all"),
        ("read the last output", "job", "_drain"),
        ("verdict", "job", "_conclude"),
        ("cgroups: remove", "cgroups", "remove"),
        ("job folder: remove", "result", "cleanup"),
        ("ask for the next warm sandbox", "pool", "refill"),
    )

    def __init__(self, stages: tuple[tuple[str, str, str], ...] = COLD) -> None:
        self.stages = stages
        self.totals: dict[str, float] = {}
        self.per_job: dict[str, list[float]] = {label: [] for label, _, _ in stages}
        self._restore: list[Callable[[], None]] = []
        self._thread = 0

    def __enter__(self) -> StageTimer:
        from workers import cgroups, jobs, sandbox

        owners = {
            "module": sandbox,
            "job": sandbox._Job,
            "pool": sandbox._WarmPool,
            "cgroups": cgroups.JobCgroups,
            "result": jobs.JobResult,
        }
        self._thread = threading.get_ident()
        for label, owner_name, attribute in self.stages:
            owner = owners[owner_name]
            original = getattr(owner, attribute)
            setattr(owner, attribute, self._timed(label, original))
            self._restore.append(functools.partial(setattr, owner, attribute, original))
        return self

    def __exit__(self, *exc: object) -> None:
        for restore in reversed(self._restore):
            restore()
        self._restore = []

    def _timed(self, label: str, function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def timed(*args: Any, **kwargs: Any) -> Any:
            if threading.get_ident() != self._thread:
                return function(*args, **kwargs)
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

    def medians_ms(self) -> list[tuple[str, float]]:
        return [(label, percentile(v, 50) * 1000) for label, v in self.per_job.items() if v]


def _start_figures(times: list[float], bare: list[float]) -> dict[str, Any]:
    paired = [s - p for s, p in zip(times, bare, strict=True)]
    start_ms = (percentile(times, 50) - percentile(bare, 50)) * 1000
    return {
        "run_job_ms": summary(times, 1000),
        "paired_difference_ms": summary(paired, 1000),
        "start_ms": round(start_ms, 1),
        "met": start_ms <= TARGET_START_MS,
    }


def measure_start(runs: int = RUNS, *, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Empty job through run_job (bubblewrap), cold and warm, and ``python empty.py``, in turn.

    The top-level figures are those of the engine's default (``TOPDOWN_WARM_START``), which
    ``benchmarks/grader.py`` reports; ``cold`` and ``warm`` hold both."""
    from workers.sandbox import warm_start_enabled, warm_start_shutdown

    with tempfile.TemporaryDirectory(prefix="topdown-bench-bare-") as folder:
        bare = Bare(Path(folder))
        kinds: dict[str, Callable[[str], float]] = {
            "bare": lambda job_id: bare.run(),
            "cold": lambda job_id: _sandboxed(job_id, warm=False),
            "warm": lambda job_id: _sandboxed(job_id, warm=True),
        }
        orders = list(itertools.permutations(kinds))
        try:
            for i in range(WARMUP):
                for name, run in kinds.items():
                    run(f"bench-start-warmup-{name}-{i}")
            times: dict[str, list[float]] = {name: [] for name in kinds}
            for i in range(runs):
                for name in orders[i % len(orders)]:
                    times[name].append(kinds[name](f"bench-start-{name}-{i}"))
        finally:
            warm_start_shutdown()
    default = "warm" if warm_start_enabled() else "cold"
    figures = {name: _start_figures(times[name], times["bare"]) for name in ("cold", "warm")}
    bare_p50 = percentile(times["bare"], 50) * 1000
    for name in ("cold", "warm"):
        log(
            f"sandbox start, {name}: run_job p50 {figures[name]['run_job_ms']['p50']:.1f} ms, "
            f"bare p50 {bare_p50:.1f} ms: start {figures[name]['start_ms']:.1f} ms "
            f"(target {TARGET_START_MS:.0f} ms)"
        )
    return {
        "runs": runs,
        "bare_ms": summary(times["bare"], 1000),
        "target_ms": TARGET_START_MS,
        "default": default,
        **figures[default],
        "cold": figures["cold"],
        "warm": figures["warm"],
    }


def measure_breakdown(
    runs: int = BREAKDOWN_RUNS, *, log: Callable[[str], None] = print
) -> dict[str, Any]:
    """Where the start goes: the cold chain cut short step by step, the parent's stages of a
    cold and a warm job, a warm sandbox's launch, floors."""
    from workers.sandbox import warm_start_shutdown

    variants: dict[str, Callable[[int], float]] = {}
    root = os.geteuid() == 0
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
        cold_timer, warm_timer = StageTimer(StageTimer.COLD), StageTimer(StageTimer.WARM)
        warm_launch: list[float] = []

        def full(i: int) -> float:
            return _sandboxed(f"bench-breakdown-{i}", timer=cold_timer)

        def warm(i: int) -> float:
            return _sandboxed(f"bench-breakdown-warm-{i}", warm=True, timer=warm_timer)

        def cut(variant: str) -> Callable[[int], float]:
            def run(i: int) -> float:
                with _cut_chain(variant):
                    # Cut short, the job never says it started: "infrastructure".
                    return _sandboxed(f"bench-{variant}-{i}", expect_ok=False)

            return run

        def launch(i: int) -> float:
            # A warm sandbox's launch from nothing to waiting, as the warm start's thread does
            # it after each job (in the background, off the job's critical path).
            warm_start_shutdown()
            elapsed = _wait_for_warm_sandbox(_empty_spec(f"bench-launch-{i}"))
            warm_launch.append(elapsed)
            warm_start_shutdown()
            return elapsed

        variants = {
            "full": full,
            "no_job": cut("no_job"),
            **({"no_setpriv": cut("no_setpriv")} if root else {}),
            "no_bwrap": cut("no_bwrap"),
            "no_prlimit": cut("no_prlimit"),
            "warm": warm,
            "warm_launch": launch,
            "fallback": lambda i: _sandboxed(f"bench-fallback-{i}", backend="fallback"),
            "python": lambda i: bare.run(),
            "python_isolated": lambda i: bare.run([sys.executable, "-I", "-S", "-c", "pass"]),
            "bwrap_true": lambda i: bare.run(bwrap_alone),
            "true": lambda i: bare.run([TRUE]),
        }
        try:
            for run in variants.values():
                run(-1)  # warm-up
            for timer in (cold_timer, warm_timer):
                timer.per_job = {label: [] for label in timer.per_job}
            warm_launch.clear()
            times: dict[str, list[float]] = {name: [] for name in variants}
            for i in range(runs):
                order = list(variants) if i % 2 == 0 else list(reversed(variants))
                for name in order:
                    times[name].append(variants[name](i))
        finally:
            warm_start_shutdown()
    p50 = {name: percentile(values, 50) * 1000 for name, values in times.items()}
    after_bwrap = p50["no_setpriv"] if root else p50["no_job"]
    steps = [
        ("the job's interpreter (python -c JOB_STARTER, empty.py)", p50["full"] - p50["no_job"])
    ]
    if root:
        steps.append(("`setpriv` (switch to the job's uid)", p50["no_job"] - p50["no_setpriv"]))
    steps += [
        ("bubblewrap (namespaces, mounts, seccomp)", after_bwrap - p50["no_bwrap"]),
        ("`prlimit` (rlimits)", p50["no_bwrap"] - p50["no_prlimit"]),
        ("parent + `sh` (join cgroups, OOM score)", p50["no_prlimit"]),
    ]
    for label, ms in steps:
        log(f"  {label:<52} {ms:7.1f} ms")
    return {
        "runs": runs,
        "variants_ms": {name: summary(values, 1000) for name, values in times.items()},
        "chain_steps_ms": [{"step": label, "p50_ms": round(ms, 1)} for label, ms in steps],
        "parent_stages_ms": [
            {"stage": label, "p50_ms": round(ms, 2)} for label, ms in cold_timer.medians_ms()
        ],
        "warm_parent_stages_ms": [
            {"stage": label, "p50_ms": round(ms, 2)} for label, ms in warm_timer.medians_ms()
        ],
        "warm_launch_ms": summary(warm_launch, 1000),
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
    conditions = report.get("conditions")
    if conditions:
        print(
            f"\nCPUs {conditions['cpu_busy_before']:.0%} busy before; load average "
            f"{' '.join(conditions['load_average_before'])} before, "
            f"{' '.join(conditions['load_average_after'])} after"
        )
    print(f"\n{'':<34}{'p50 ms':>9}{'p95 ms':>9}{'start ms':>10}")
    for label, figures in (
        ("run_job, cold (warm start off)", start["cold"]),
        ("run_job, warm (sandbox waiting)", start["warm"]),
    ):
        run_job = figures["run_job_ms"]
        print(
            f"{label:<34}{run_job['p50']:>9.1f}{run_job['p95']:>9.1f}{figures['start_ms']:>10.1f}"
        )
    print(f"{'python empty.py':<34}{start['bare_ms']['p50']:>9.1f}{start['bare_ms']['p95']:>9.1f}")
    for name in ("cold", "warm"):
        paired = start[name]["paired_difference_ms"]
        label = f"difference, {name} (paired)"
        print(f"{label:<34}{paired['p50']:>9.1f}{paired['p95']:>9.1f}")
    print(
        f"sandbox start (difference of medians): cold {start['cold']['start_ms']:.1f} ms, "
        f"warm {start['warm']['start_ms']:.1f} ms; target {TARGET_START_MS:.0f} ms with the "
        f"default ({start['default']} start): {'pass' if start['met'] else 'FAIL'}"
    )
    breakdown = report.get("breakdown")
    if breakdown:
        print("\ncold start, process chain (differences of medians):")
        for step in breakdown["chain_steps_ms"]:
            print(f"  {step['step']:<56}{step['p50_ms']:>7.1f} ms")
        for key, title in (
            ("parent_stages_ms", "cold start, parent's stages (median per job):"),
            ("warm_parent_stages_ms", "warm start, parent's stages (median per job):"),
        ):
            print(title)
            for stage in breakdown[key]:
                print(f"  {stage['stage']:<56}{stage['p50_ms']:>7.2f} ms")
        launch = breakdown["warm_launch_ms"]
        print(
            f"a warm sandbox's launch, in the background: p50 {launch['p50']:.1f} ms, "
            f"p95 {launch['p95']:.1f} ms"
        )
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

        conditions: dict[str, Any] = {
            "cpu_busy_before": cpu_busy_share(),
            "load_average_before": load_average(),
        }
        report: dict[str, Any] = {
            "engine": str(Path(workers.__file__).resolve().parent),
            "machine": machine_description(),
            "conditions": conditions,
            "start": measure_start(args.runs),
        }
        if not args.no_breakdown:
            report["breakdown"] = measure_breakdown(args.breakdown_runs)
        conditions["load_average_after"] = load_average()
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
