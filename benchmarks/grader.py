"""Grader benchmark: a submission from ``submission_create`` to ``scored`` through a real worker.

Run by ``make bench``, which passes the servers' addresses:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/topdown REDIS_URL=redis://127.0.0.1:6379/15 \
        .venv/bin/python benchmarks/grader.py

It never touches the database or Redis database named there: it drops and recreates a database
of its own (``topdown_bench_grader``) on the same server and uses Redis database 13 (flushed) as
broker and cache. It loads the demo course, the built-in datasets and the demo assignments,
starts one real Celery worker (``--pool=solo``: jobs run in its main thread, as in production)
and, for each solution of ``mnist-ten-digits`` (the pixel-similarity starter and a small PyTorch
CNN), times ``--runs`` submissions from ``submission_create`` until the database says
``scored`` (polled every 10 ms), each next to a bare ``python main.py`` of the same file (same
public files, same harness, same environment), the order alternating, so the paired difference
is the platform's overhead. Before that, with the machine otherwise idle, it measures the
sandbox start (``sandbox_start.py``) and code-question throughput (``code_jobs.py``). Then it
writes ``benchmarks/RESULTS.md`` (between ``grader:start`` and ``grader:end``) and
``benchmarks/results/grader.json``.

Needs PyTorch in the venv for the CNN (``.venv/bin/pip install -r requirements/worker.txt``) and
bubblewrap (``make system-deps``). Exit status: 0 when every target is met, 1 when one is missed,
2 when the benchmark broke. Bounded to 10 minutes; takes about 6.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import re
import secrets
import shutil
import signal
import string
import subprocess
import sys
import time
import urllib.parse
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import code_jobs, sandbox_start
from benchmarks.engine_timing import (
    BENCH_DIR,
    REPO,
    RESULTS_DIR,
    WORK_DIR,
    cpu_busy_share,
    load_average,
    machine_description,
    machine_line,
    percentile,
    run_timed,
    sandbox_like_environment,
    summary,
)
from benchmarks.web import (
    BenchmarkError,
    Timeout,
    log,
    recreate_database,
    replace_results_section,
    require_loopback,
    run,
)

PYTHON = sys.executable
CELERY = str(Path(sys.executable).parent / "celery")
RESULTS_MD = BENCH_DIR / "RESULTS.md"
RESULTS_JSON = RESULTS_DIR / "grader.json"
GRADER_WORK = WORK_DIR / "grader"

BENCH_DATABASE = "topdown_bench_grader"
BENCH_REDIS_DB = 13
BENCH_CACHE_PREFIX = "topdown-bench-grader"

ASSIGNMENT = "mnist-ten-digits"
STARTER = REPO / "demo" / "course" / "assignments" / ASSIGNMENT / "starter.py"
SOLUTIONS = {
    "pixel": ("pixel similarity (starter.py)", STARTER),
    "cnn": ("small CNN, PyTorch (solutions/small_cnn.py)", BENCH_DIR / "solutions/small_cnn.py"),
}
RUNS = 20
WARMUP = 1  # pairs per solution, not counted: the first job reads torch from disk, and so on
POLL_S = 0.01
RUN_LIMIT_S = 180  # one end-to-end or bare run
OVERALL_TIMEOUT_S = 600

TARGET_OVERHEAD_S = 1.0
WORKER_COMMAND = [
    CELERY,
    "-A",
    "topdown",
    "worker",
    "--pool=solo",
    "--queues=default,cpu,gpu",
    "--without-mingle",
    "--without-gossip",
    "--hostname=bench-grader@%h",
    "--loglevel=INFO",
]


# --- stores and the worker -----------------------------------------------------------------------


def flush_broker(redis_url: str) -> str:
    """Empty Redis database 13 (the benchmark's own); return its URL."""
    import redis

    parts = require_loopback(redis_url, "REDIS_URL")
    bench_url = urllib.parse.urlunsplit(parts._replace(path=f"/{BENCH_REDIS_DB}"))
    redis.Redis.from_url(bench_url, socket_connect_timeout=2).flushdb()
    return bench_url


def bench_environment(database_url: str, redis_url: str) -> dict[str, str]:
    """Production settings (DEBUG off) on the benchmark's own database, broker and folders."""
    alphabet = string.ascii_letters + string.digits + "!@#%^&*(-_=+)"
    var = GRADER_WORK / "var"
    env = {key: value for key, value in os.environ.items() if not key.startswith("CELERY_")}
    return {
        **env,
        "DJANGO_SETTINGS_MODULE": "topdown.settings",
        "DEBUG": "0",
        "SECRET_KEY": "".join(secrets.choice(alphabet) for _ in range(50)),
        "ALLOWED_HOSTS": "127.0.0.1",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "CACHE_KEY_PREFIX": BENCH_CACHE_PREFIX,
        "TOPDOWN_VAR_DIR": str(var),
        "MEDIA_ROOT": str(var / "media"),
        # bubblewrap or nothing: a degraded sandbox would make the figures meaningless.
        "GRADER_SANDBOX": "bwrap",
        "GRADER_ALLOW_DEGRADED": "0",
        "LOG_LEVEL": "INFO",
    }


class Worker:
    """One Celery worker process (pool solo), in its own process group, logging to a file."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env, self.log_path = env, log_path
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Worker:
        with self.log_path.open("wb") as log_file:
            self.process = subprocess.Popen(
                WORKER_COMMAND,
                cwd=REPO,
                env=self.env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            self.wait_until_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_until_ready(self, timeout_s: float = 60) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchmarkError(f"the worker exited at start:\n{self.log_tail()}")
            if re.search(r"bench-grader@\S+ ready\.", self.log_path.read_text(errors="replace")):
                return
            time.sleep(0.2)
        raise BenchmarkError(f"the worker was not ready within {timeout_s} s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


# --- one solution: end to end and bare, in turn ---------------------------------------------


class Solution:
    """A solution file, the bare folder it runs in, and its timings."""

    def __init__(self, key: str, label: str, path: Path, dataset: Any) -> None:
        self.key, self.label, self.path = key, label, path
        self.code = path.read_bytes()
        self.n_test = dataset.n_test
        self.folder = GRADER_WORK / "bare" / key
        shutil.rmtree(self.folder, ignore_errors=True)
        for name in ("work", "task", "output"):
            (self.folder / name).mkdir(parents=True)
        for public in dataset.public_files():  # the files the sandbox gets, as plain copies
            with public.file.storage.open(public.file.name, "rb") as source:
                (self.folder / "task" / public.name).write_bytes(source.read())
        (self.folder / "work" / "main.py").write_bytes(self.code)
        self.env = sandbox_like_environment(
            task_dir=self.folder / "task",
            output_dir=self.folder / "output",
            home=self.folder / "work",
        )

    def bare(self) -> float:
        import numpy as np

        predictions = self.folder / "output" / "predictions.npy"
        predictions.unlink(missing_ok=True)
        seconds = run_timed(
            [PYTHON, "main.py"], cwd=self.folder / "work", env=self.env, limit_s=RUN_LIMIT_S
        )
        rows = len(np.load(predictions, allow_pickle=False))
        if rows != self.n_test:
            raise BenchmarkError(f"{self.label}: the bare run predicted {rows} rows")
        return seconds


def end_to_end(assignment: Any, user: Any, code: bytes) -> dict[str, Any]:
    """``submission_create`` (committed, enqueued) until the row says scored, polled every 10 ms."""
    from grader.models import RunStatus, Submission
    from grader.submissions import submission_create

    start, wall_start, cpu_start = time.perf_counter(), time.time(), time.process_time()
    submission = submission_create(
        user=user, assignment=assignment, filename="main.py", content=code
    )
    created = time.perf_counter()
    rows = Submission.objects.filter(pk=submission.pk)
    while True:
        status = rows.values_list("status", flat=True).get()
        if status in (RunStatus.SCORED, RunStatus.FAILED):
            break
        if time.perf_counter() - start > RUN_LIMIT_S:
            raise BenchmarkError(f"submission {submission.pk} still {status} after {RUN_LIMIT_S} s")
        time.sleep(POLL_S)
    seen, wall_seen, cpu_seen = time.perf_counter(), time.time(), time.process_time()
    row = rows.values(
        "status", "failure_reason", "message", "public_score", "started_at", "finished_at"
    ).get()
    if row["status"] != RunStatus.SCORED:
        raise BenchmarkError(
            f"submission {submission.pk} {row['failure_reason']}: {row['message'][:2000]}"
        )
    started, finished = row["started_at"].timestamp(), row["finished_at"].timestamp()
    return {
        "seconds": seen - start,
        # Where the time went: until a worker claimed it (the create, with its transaction,
        # commit and publish, then the broker), the claim-to-saved run (sandbox, job, scoring,
        # saving), and our poll noticing; the create alone is part of the first.
        "claim_s": started - wall_start,
        "run_s": finished - started,
        "notice_s": wall_seen - finished,
        "create_s": created - start,
        # CPU this process used meanwhile (submitting and polling), a share of one CPU.
        "poller_cpu_share": (cpu_seen - cpu_start) / (seen - start),
        "public_score": row["public_score"],
    }


def measure_solution(solution: Solution, assignment: Any, users: list[Any]) -> dict[str, Any]:
    pairs: list[dict[str, Any]] = []
    for i, user in enumerate(users):
        pair: dict[str, Any] = {"warmup": i < WARMUP}
        if i % 2 == 0:
            pair["bare_s"] = solution.bare()
            pair["e2e"] = end_to_end(assignment, user, solution.code)
        else:
            pair["e2e"] = end_to_end(assignment, user, solution.code)
            pair["bare_s"] = solution.bare()
        pair["overhead_s"] = pair["e2e"]["seconds"] - pair["bare_s"]
        pairs.append(pair)
        if not pair["warmup"]:
            log(
                f"  {solution.key} {i - WARMUP + 1:>2}: end to end {pair['e2e']['seconds']:6.2f} s"
                f"  bare {pair['bare_s']:6.2f} s  overhead {pair['overhead_s']:5.2f} s"
            )
    counted = [p for p in pairs if not p["warmup"]]
    e2e = [p["e2e"]["seconds"] for p in counted]
    bare = [p["bare_s"] for p in counted]
    overhead = [p["overhead_s"] for p in counted]
    parts = {
        key: summary([p["e2e"][f"{key}_s"] for p in counted], 1000, 0)
        for key in ("claim", "run", "notice", "create")
    }
    return {
        "key": solution.key,
        "label": solution.label,
        "file": str(solution.path.relative_to(REPO)),
        "runs": len(counted),
        "end_to_end_s": summary(e2e, 1, 2),
        "bare_s": summary(bare, 1, 2),
        "overhead_s": summary(overhead, 1, 3),
        "e2e_parts_ms": parts,
        "public_score": counted[0]["e2e"]["public_score"] if counted else None,
        "poller_cpu_share": round(
            percentile([p["e2e"]["poller_cpu_share"] for p in counted], 50), 3
        ),
        "pairs": pairs,
        "met": percentile(overhead, 50) <= TARGET_OVERHEAD_S,
    }


# --- the run -------------------------------------------------------------------------------------


def require_torch() -> None:
    if importlib.util.find_spec("torch") is None:
        raise BenchmarkError(
            "PyTorch is not installed in this venv, and the small-CNN solution needs it. Install "
            "the worker requirements: `.venv/bin/pip install -r requirements/worker.txt` "
            "(torch==2.14.1, torchvision==0.29.1), or run with `--solutions pixel`."
        )


def versions(env: dict[str, str]) -> dict[str, str]:
    import psycopg
    import redis

    with psycopg.connect(env["DATABASE_URL"], connect_timeout=5) as connection:
        row = connection.execute("SHOW server_version").fetchone()
    return {
        "postgresql": row[0] if row else "unknown",
        "redis": redis.Redis.from_url(env["REDIS_URL"]).info("server")["redis_version"],
    }


def prepare(env: dict[str, str]) -> None:
    shutil.rmtree(GRADER_WORK / "var", ignore_errors=True)
    (GRADER_WORK / "var").mkdir(parents=True)
    log("migrating, loading the demo course, the built-in datasets and the assignments")
    run([PYTHON, "manage.py", "migrate", "--noinput", "-v0"], env=env, timeout=180)
    # The built-in datasets, then the demo course with its assignment.
    run([PYTHON, "manage.py", "demo_load"], env=env, timeout=180)


def measure_end_to_end(env: dict[str, str], keys: list[str], runs: int) -> dict[str, Any]:
    os.environ.update(env)  # this process submits, as the web process would
    import django

    django.setup()
    from accounts.models import User
    from grader.models import Assignment

    assignment = Assignment.objects.select_related("dataset").get(slug=ASSIGNMENT)
    results = []
    with Worker(env, GRADER_WORK / "worker.log") as worker:
        log(f"worker ready (pid {worker.process.pid if worker.process else '?'})")
        for key in keys:
            label, path = SOLUTIONS[key]
            solution = Solution(key, label, path, assignment.dataset)
            # A student per submission: the daily submission limit is per student.
            users = [
                User.objects.create_user(username=f"bench-{key}-{i}", password=None)
                for i in range(WARMUP + runs)
            ]
            busy = cpu_busy_share()
            log(f"{label}: {runs} pairs after {WARMUP} warm-up (CPUs {busy:.0%} busy before)")
            result = measure_solution(solution, assignment, users)
            result["cpu_busy_before"] = busy
            results.append(result)
            o = result["overhead_s"]
            log(f"{label}: overhead p50 {o['p50']:.2f} s, p95 {o['p95']:.2f} s")
    return {"solutions": results, "worker_command": " ".join(["celery", *WORKER_COMMAND[1:]])}


def evaluate(report: dict[str, Any]) -> dict[str, Any]:
    rows = [
        {
            "target": f"overhead p50 ≤ {TARGET_OVERHEAD_S:.1f} s: {s['label']}",
            "met": s["met"],
            "value": f"{s['overhead_s']['p50']:.2f} s",
        }
        for s in report["end_to_end"]["solutions"]
    ]
    start = report["sandbox_start"]["start"]
    rows.append(
        {
            "target": f"sandbox start ≤ {sandbox_start.TARGET_START_MS:.0f} ms "
            f"({start['default']}, the default)",
            "met": start["met"],
            "value": f"{start['start_ms']:.1f} ms; cold {start['cold']['start_ms']:.1f} ms",
        }
    )
    jobs = report["code_jobs"]["two_processes"]
    rows.append(
        {
            "target": f"code-question jobs ≥ {code_jobs.TARGET_JOBS_PER_S:.0f}/s, two processes",
            "met": jobs["met"],
            "value": f"{jobs['jobs_per_s']:.1f} jobs/s",
        }
    )
    return {"rows": rows, "all_met": all(r["met"] for r in rows)}


# --- reporting -------------------------------------------------------------------------------


def mark(ok: bool) -> str:
    return "pass" if ok else "FAIL"


def results_markdown(report: dict[str, Any]) -> str:
    machine, versions_ = report["machine"], report["versions"]
    start, breakdown = report["sandbox_start"]["start"], report["sandbox_start"]["breakdown"]
    jobs = report["code_jobs"]
    lines = [
        "<!-- grader:start (written by benchmarks/grader.py; edits here are overwritten) -->",
        "## Grader: from submission to score, the sandbox start, code-question jobs",
        "",
        f"Measured {report['date']} by `benchmarks/grader.py` (`make bench`), in "
        f"{report['duration_s']:.0f} s.",
        "",
        f"- Machine: {machine_line(machine)}; the benchmark ran as "
        f"{'root (each job gets a uid of its own)' if machine['running_as_root'] else 'non-root'}",
        f"- Software: Python {machine['python']}, Django {machine['django']}, Celery "
        f"{machine['celery']}, numpy {machine['numpy']}, torch {machine['torch']}, PostgreSQL "
        f"{versions_['postgresql']}, Redis {versions_['redis']}, {machine['bubblewrap']}",
        f"- Worker: `{report['end_to_end']['worker_command']}`, one process, DEBUG off, broker "
        f"Redis db {BENCH_REDIS_DB}, database `{BENCH_DATABASE}`, sandbox bubblewrap (required)",
        f"- Load average (1, 5, 15 min) before: {' '.join(report['load_average']['before'])}, "
        f"after: {' '.join(report['load_average']['after'])}. The machine is shared: other work "
        "on it slows every figure (the `CPUs busy before` column).",
        "",
        "### End to end: `submission_create` until the database says `scored`",
        "",
        f"Each run creates a submission of `{ASSIGNMENT}` (a new student each time), committed "
        "and enqueued, and polls its row every 10 ms; next to it, in turn (the order "
        "alternating), `python main.py` of the same file in a plain folder with copies of the "
        "same public files, the same harness on `PYTHONPATH` and the sandbox's environment "
        "(one thread for numeric libraries). Overhead is each run's end-to-end time minus its "
        f"neighbouring bare run's. {WARMUP} warm-up pair per solution is not counted.",
        "",
        "| solution | runs | end to end p50 / p95 | bare p50 / p95 | overhead p50 / p95 | "
        "score | CPUs busy before |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for s in report["end_to_end"]["solutions"]:
        e, b, o = s["end_to_end_s"], s["bare_s"], s["overhead_s"]
        lines.append(
            f"| {s['label']} | {s['runs']} | {e['p50']:.2f} / {e['p95']:.2f} s | "
            f"{b['p50']:.2f} / {b['p95']:.2f} s | **{o['p50']:.2f}** / {o['p95']:.2f} s | "
            f"{s['public_score']:.3f} | {s['cpu_busy_before']:.0%} |"
        )
    lines += [
        "",
        "Where the end-to-end time goes (p50 of each part, ms; from the row's `started_at` and "
        "`finished_at`): `to claim` from the call until the worker claimed the row (of which "
        "`create`: `submission_create` itself, with its transaction, commit and publish to "
        "Redis); `run` from the claim to the saved result (sandbox, the job, reading and "
        "scoring the predictions, saving); `notice` until the 10 ms poll saw it. The poll used "
        "the share of one CPU in the last column, beside the job; the bare run has no poller.",
        "",
        "| solution | to claim | (create) | run | notice | bare run | poller CPU |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for s in report["end_to_end"]["solutions"]:
        p = s["e2e_parts_ms"]
        lines.append(
            f"| {s['label']} | {p['claim']['p50']:.0f} | {p['create']['p50']:.0f} | "
            f"{p['run']['p50']:.0f} | {p['notice']['p50']:.0f} | "
            f"{s['bare_s']['p50'] * 1000:.0f} | {s['poller_cpu_share']:.0%} |"
        )
    lines += [
        "",
        "### Sandbox start: an empty script",
        "",
        f"`workers.sandbox.run_job` (bubblewrap) of an empty `empty.py`, cold (a sandbox "
        "launched for the job) and warm (the job takes a sandbox launched in the background after "
        "the previous job, its interpreter waiting: the engine's default for CPU jobs), against "
        f"`python empty.py` with the same environment, in turn, {start['runs']} each; the start "
        "is the difference of the medians. A warm start is negative: the interpreter had started "
        "before the job came. CPUs "
        f"{report['sandbox_start']['cpu_busy_before']:.0%} busy before.",
        "",
        "| | p50 ms | p95 ms |",
        "|---|---:|---:|",
        *[
            f"| `run_job`, empty script, {kind} | {start[kind]['run_job_ms']['p50']:.1f} | "
            f"{start[kind]['run_job_ms']['p95']:.1f} |"
            for kind in ("cold", "warm")
        ],
        f"| `python empty.py` | {start['bare_ms']['p50']:.1f} | {start['bare_ms']['p95']:.1f} |",
        *[
            f"| **sandbox start, {kind}** (difference of medians) | "
            f"**{start[kind]['start_ms']:.1f}** | |"
            for kind in ("cold", "warm")
        ],
        "",
        f"Where it goes ({breakdown['runs']} rounds; each step is the difference of medians of "
        "`run_job` with the process chain cut short after it, so steps carry noise of a few ms):",
        "",
        "| step of the process chain | p50 ms |",
        "|---|---:|",
        *[f"| {s['step']} | {s['p50_ms']:.1f} |" for s in breakdown["chain_steps_ms"]],
        "",
        "| parent's stage, per job (included above) | p50 ms |",
        "|---|---:|",
        *[f"| {s['stage']} | {s['p50_ms']:.2f} |" for s in breakdown["parent_stages_ms"]],
        "",
        "Floors on this machine (p50 ms): "
        + ", ".join(
            f"{label} {breakdown['floors_ms'][key]:.1f}"
            for label, key in (
                ("`python empty.py`", "python_empty_py"),
                ("`python -I -S -c pass`", "python_isolated_no_site"),
                ("`bwrap --ro-bind / / --unshare-{pid,net,ipc,uts} true`", "bwrap_minimal_true"),
                ("spawning `/bin/true`", "spawn_true"),
                ("the fallback backend's start (no namespaces)", "fallback_backend_start"),
            )
        )
        + ".",
        "",
        "### Code-question jobs: sustained throughput",
        "",
        "A student's function and a test file with five plain `assert` tests (stdlib only) "
        "through `run_job` (bubblewrap, 256 MB, 10 s); every job's report is checked (5 "
        "passed). Code questions are not in `courses` yet, so this drives the engine directly: "
        "OS processes each calling `run_job` in a loop, like worker processes of concurrency 1, "
        "all starting together after a warm-up.",
        "",
        "| processes | seconds | jobs | jobs/s | job p50 / p95 ms | CPUs busy |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for key in ("one_process", "two_processes"):
        r = jobs.get(key)
        if r:
            lines.append(
                f"| {r['processes']} | {r['duration_s']:.0f} | {r['jobs']} | "
                f"**{r['jobs_per_s']:.1f}** | {r['job_ms']['p50']:.0f} / {r['job_ms']['p95']:.0f}"
                f" | {r['cpu_busy_share']:.0%} |"
            )
    lines += ["", "### Targets", "", "| target | result |", "|---|---|"]
    for row in report["targets"]["rows"]:
        lines.append(f"| {row['target']} | {mark(row['met'])} ({row['value']}) |")
    lines += [
        "",
        "Reproduce with `make bench`, or `DATABASE_URL=postgres://postgres@127.0.0.1:5432/topdown "
        "REDIS_URL=redis://127.0.0.1:6379/15 .venv/bin/python benchmarks/grader.py` (raw figures: "
        "`benchmarks/results/grader.json`).",
        "<!-- grader:end -->",
    ]
    return "\n".join(lines) + "\n"


def write_results(report: dict[str, Any]) -> None:
    replace_results_section("grader", results_markdown(report))
    RESULTS_JSON.parent.mkdir(exist_ok=True)
    RESULTS_JSON.write_text(json.dumps(report, indent=2, default=str) + "\n")


def print_summary(report: dict[str, Any]) -> None:
    print()
    header = ("e2e p50", "p95", "bare p50", "p95", "ovh p50", "p95")
    print(f"{'solution':<46}" + "".join(f"{h:>9}" for h in header))
    for s in report["end_to_end"]["solutions"]:
        e, b, o = s["end_to_end_s"], s["bare_s"], s["overhead_s"]
        print(
            f"{s['label']:<46}"
            + "".join(f"{v:>9.2f}" for v in (e["p50"], e["p95"], b["p50"], b["p95"]))
            + "".join(f"{v:>9.2f}" for v in (o["p50"], o["p95"]))
        )
    for row in report["targets"]["rows"]:
        print(f"{row['target']:<70} {mark(row['met'])} ({row['value']})")
    where = RESULTS_MD.relative_to(REPO)
    print(f"\nall targets met: {report['targets']['all_met']}; written to {where}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=RUNS, help="end-to-end runs per solution")
    parser.add_argument(
        "--solutions", default="pixel,cnn", help="comma-separated: pixel, cnn (default both)"
    )
    parser.add_argument("--start-runs", type=int, default=sandbox_start.RUNS)
    parser.add_argument("--code-jobs-duration", type=float, default=code_jobs.DURATION_S)
    args = parser.parse_args(argv)
    keys = [key.strip() for key in args.solutions.split(",") if key.strip()]
    if not keys or any(key not in SOLUTIONS for key in keys):
        parser.error(f"--solutions takes a list of {', '.join(SOLUTIONS)}")

    def out_of_time(signum: int, frame: FrameType | None) -> None:
        raise Timeout(f"the benchmark ran past its {OVERALL_TIMEOUT_S} s bound")

    signal.signal(signal.SIGALRM, out_of_time)
    signal.alarm(OVERALL_TIMEOUT_S)
    began = time.monotonic()
    try:
        server_url = os.environ.get("DATABASE_URL", "")
        redis_url = os.environ.get("REDIS_URL", "")
        if not server_url or not redis_url:
            raise BenchmarkError("set DATABASE_URL and REDIS_URL (see `make bench`)")
        if "cnn" in keys:
            require_torch()
        if shutil.which("bwrap") is None:
            raise BenchmarkError("bubblewrap is not installed: `make system-deps`")
        GRADER_WORK.mkdir(parents=True, exist_ok=True)
        load_before = load_average()
        date = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")

        # The engine alone first, while nothing of ours runs beside it.
        busy = cpu_busy_share()
        log(f"sandbox start: {args.start_runs} empty jobs and bare runs (CPUs {busy:.0%} busy)")
        start = {
            "cpu_busy_before": busy,
            "start": sandbox_start.measure_start(args.start_runs, log=log),
            "breakdown": sandbox_start.measure_breakdown(log=log),
        }
        log("code-question jobs: one process for 10 s, then two processes")
        jobs = {
            "one_process": code_jobs.measure(1, min(10.0, args.code_jobs_duration)),
            "two_processes": code_jobs.measure(2, args.code_jobs_duration),
        }
        for r in jobs.values():
            log(f"  {r['processes']} process(es): {r['jobs_per_s']:.2f} jobs/s")

        log(f"recreating database {BENCH_DATABASE}, flushing Redis database {BENCH_REDIS_DB}")
        env = bench_environment(
            recreate_database(server_url, BENCH_DATABASE), flush_broker(redis_url)
        )
        prepare(env)
        e2e = measure_end_to_end(env, keys, args.runs)
        report: dict[str, Any] = {
            "date": date,
            "duration_s": round(time.monotonic() - began),
            "machine": machine_description(),
            "versions": versions(env),
            "load_average": {"before": load_before, "after": load_average()},
            "end_to_end": e2e,
            "sandbox_start": start,
            "code_jobs": jobs,
        }
        report["targets"] = evaluate(report)
        write_results(report)
        print_summary(report)
        return 0 if report["targets"]["all_met"] else 1
    except (BenchmarkError, Timeout, RuntimeError, subprocess.SubprocessError) as error:
        print(f"benchmark failed: {error}", file=sys.stderr)
        return 2
    finally:
        signal.alarm(0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
