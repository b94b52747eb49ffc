"""Grader pages benchmark: the leaderboard, the staff's submissions list, the result page and the
live status endpoint under gunicorn on PostgreSQL, with 10,000 students and 200,000 submissions.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/topdown REDIS_URL=redis://127.0.0.1:6379/15 \
        .venv/bin/python benchmarks/pages.py [--duration 15] [--students 10000]

Like ``benchmarks/web.py`` (whose server, load and reporting it reuses): its own database
(``topdown_bench_pages``, dropped and recreated), Redis database 14 under the benchmark's key
prefix, gunicorn with 4 sync workers, wrk at 16 connections over loopback, one endpoint after
another against the same server. The status endpoint is polled as the page polls it in steady
state: a running submission, the log and metrics offsets it already has. Writes the "pages"
section of ``benchmarks/RESULTS.md`` and ``benchmarks/results/pages.json``.

Targets (issue 4): p99 at most 100 ms for the three pages; the status endpoint at least 500
requests/s. Exit status: 0 when met, 1 when one is missed, 2 when the benchmark broke.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.web import (
    CONNECTIONS,
    DEFAULT_SERVER,
    DURATION_S,
    PYTHON,
    REPO,
    WARMUP_S,
    WORK_DIR,
    WRK_THREADS,
    BenchmarkError,
    Endpoint,
    EndpointResult,
    Gunicorn,
    Timeout,
    bench_environment,
    check_page,
    clear_cache,
    ensure_wrk,
    load_average,
    log,
    machine_description,
    measure,
    memory_of,
    recreate_database,
    replace_results_section,
    request_line,
    run,
    student_sessions,
)

DATABASE = "topdown_bench_pages"
RESULTS_JSON = Path(__file__).resolve().parent / "results" / "pages.json"
TARGET_P99_MS = 100.0
TARGET_STATUS_RPS = 500.0
OVERALL_TIMEOUT_S = 900


def endpoints(seed: dict, jars: dict[str, dict[str, str]]) -> list[Endpoint]:
    reader, staff = jars[seed["reader"]], jars[seed["instructor"]]
    slug = seed["assignment_slug"]
    status = f"/submissions/{seed['running_submission']}/status.json"
    poll = f"{status}?log_from={seed['running_log_length']}&metrics_from={seed['running_metrics']}"

    def get(name: str, path: str, jar: dict[str, str], *, is_page: bool = True) -> Endpoint:
        return Endpoint(name, "GET", path, 200, [request_line("GET", path, jar)], is_page=is_page)

    return [
        get("hello, logged in", "/bench/hello-user", reader, is_page=False),
        get("result page", f"/submissions/{seed['result_submission']}/", reader),
        get("leaderboard", f"/assignments/{slug}/leaderboard/", reader),
        get("submissions list", f"/assignments/{slug}/submissions/", staff),
        get("status endpoint", poll, reader, is_page=False),
    ]


def check_pages(server: Gunicorn, seed: dict, jars: dict[str, dict[str, str]]) -> None:
    reader, staff = jars[seed["reader"]], jars[seed["instructor"]]
    slug = seed["assignment_slug"]
    check_page(server, f"/submissions/{seed['result_submission']}/", reader, "Confusion matrix")
    check_page(server, f"/assignments/{slug}/leaderboard/", reader, "Student 0")
    check_page(server, f"/assignments/{slug}/submissions/", staff, "bstudent")
    check_page(server, f"/submissions/{seed['running_submission']}/status.json", reader, "running")


def evaluate(results: list[EndpointResult]) -> dict[str, object]:
    checks: dict[str, dict[str, bool]] = {}
    for result in results:
        errors = result.measured.unexpected == 0 and result.warmup.unexpected == 0
        if result.is_page:
            checks[result.name] = {"p99": result.measured.p99_ms <= TARGET_P99_MS, "errors": errors}
        elif result.name == "status endpoint":
            checks[result.name] = {
                "rps": result.measured.rps >= TARGET_STATUS_RPS,
                "errors": errors,
            }
    return {"checks": checks, "all_met": all(all(c.values()) for c in checks.values())}


def markdown(report: dict) -> str:
    machine = report["machine"]
    lines = [
        "<!-- pages:start (written by benchmarks/pages.py; edits here are overwritten) -->",
        "## Grader pages: leaderboard, submissions list, result page, live status",
        "",
        f"Measured {report['date']} by `benchmarks/pages.py`, in {report['seconds']:.0f} s.",
        "",
        f"- Machine: {machine['nproc']} CPUs ({machine['cpu_model']}, {machine['cpu_mhz']} MHz), "
        f"{machine['memory_gib']} GiB memory, Linux {machine['kernel']}",
        f"- Software: Python {machine['python']}, Django {machine['django']}, "
        f"gunicorn {machine['gunicorn']}, PostgreSQL {machine['postgresql']}, "
        f"Redis {machine['redis']}, {machine['wrk']}",
        f"- Server: gunicorn {DEFAULT_SERVER.label()}, DEBUG off; wrk on the same machine, "
        f"{CONNECTIONS} connections, {WRK_THREADS} threads, {report['warmup_s']} s warm-up then "
        f"{report['duration_s']} s per endpoint, over loopback",
        f"- Data: {report['counts']['students']:,} students, "
        f"{report['counts']['submissions']:,} submissions of one assignment "
        f"({report['counts']['scored']:,} scored), each scored one with a 10x10 confusion "
        "matrix, per-class figures, ten metric points and a log",
        f"- Load average before: {' '.join(report['load_average']['before'])}, after: "
        f"{' '.join(report['load_average']['after'])}",
        "- The result page and the leaderboard as one student; the submissions list (first page "
        "of 50, all students) as the instructor; the status endpoint as the page polls a running "
        "submission with nothing new (offsets at the end of its log and metrics).",
        "",
        "| endpoint | request | req/s | p50 ms | p99 ms | max ms | requests | errors "
        "| CPU idle before |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["results"]:
        m = r.measured
        lines.append(
            f"| {r.name}{'' if r.is_page or r.name == 'status endpoint' else ' (floor)'} | "
            f"`{r.method} {r.path}` | {m.rps:,.0f} | {m.p50_ms:.1f} | {m.p99_ms:.1f} | "
            f"{m.max_ms:.0f} | {m.requests:,} | {m.unexpected} | {r.idle_before:.0%} |"
        )
    lines += [
        "",
        "Web worker memory after the load (VmRSS): "
        + ", ".join(f"{m['rss_mb']:.0f} MB" for m in report["memory"])
        + ".",
        "",
        "| target | result |",
        "|---|---|",
    ]
    results = {r.name: r for r in report["results"]}
    for name, checks in report["targets"]["checks"].items():
        m = results[name].measured
        if "p99" in checks:
            verdict = "pass" if checks["p99"] else "FAIL"
            lines.append(
                f"| {name}: p99 ≤ {TARGET_P99_MS:.0f} ms | {verdict} ({m.p99_ms:.1f} ms) |"
            )
        if "rps" in checks:
            verdict = "pass" if checks["rps"] else "FAIL"
            lines.append(
                f"| {name}: ≥ {TARGET_STATUS_RPS:.0f} req/s | {verdict} ({m.rps:,.0f} req/s) |"
            )
        lines.append(f"| {name}: no errors | {'pass' if checks['errors'] else 'FAIL'} |")
    lines += [
        "",
        "Reproduce with `make bench`, or `DATABASE_URL=postgres://postgres@127.0.0.1:5432/topdown "
        "REDIS_URL=redis://127.0.0.1:6379/15 .venv/bin/python benchmarks/pages.py` (raw figures: "
        "`benchmarks/results/pages.json`).",
        "<!-- pages:end -->",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    import os

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=DURATION_S)
    parser.add_argument("--warmup", type=int, default=WARMUP_S)
    parser.add_argument("--students", type=int, default=10_000)
    parser.add_argument("--per-student", type=int, default=20)
    args = parser.parse_args(argv)

    def out_of_time(signum: int, frame: FrameType | None) -> None:
        raise Timeout(f"the benchmark ran past its {OVERALL_TIMEOUT_S} s bound")

    signal.signal(signal.SIGALRM, out_of_time)
    signal.alarm(OVERALL_TIMEOUT_S)
    began = time.monotonic()
    try:
        server_url, redis_url = os.environ.get("DATABASE_URL", ""), os.environ.get("REDIS_URL", "")
        if not server_url or not redis_url:
            raise BenchmarkError("set DATABASE_URL and REDIS_URL (see `make bench`)")
        load_before = load_average()
        wrk = ensure_wrk()
        WORK_DIR.mkdir(exist_ok=True)
        log(f"recreating database {DATABASE}")
        env = bench_environment(recreate_database(server_url, DATABASE), clear_cache(redis_url))
        run([PYTHON, "manage.py", "migrate", "--noinput", "-v0"], env=env, timeout=180)
        run([PYTHON, "manage.py", "collectstatic", "--noinput", "-v0"], env=env, timeout=120)
        log(f"seeding {args.students:,} students with {args.per_student} submissions each")
        seed_file = WORK_DIR / "seed-pages.json"
        run(
            [
                PYTHON,
                "-m",
                "benchmarks.seed_grader",
                f"--out={seed_file}",
                f"--students={args.students}",
                f"--per-student={args.per_student}",
            ],
            env=env,
            timeout=600,
        )
        seed = json.loads(seed_file.read_text())
        log(f"seeded: {seed['counts']}")
        jars = student_sessions([seed["reader"], seed["instructor"]], env)
        with Gunicorn(DEFAULT_SERVER, env, WORK_DIR / "gunicorn-pages.log") as server:
            check_pages(server, seed, jars)
            results = [
                measure(wrk, server.port, endpoint, args.warmup, args.duration)
                for endpoint in endpoints(seed, jars)
            ]
            memory = [memory_of(pid) for pid in server.worker_pids()]
        report = {
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "seconds": time.monotonic() - began,
            "machine": machine_description(env),
            "warmup_s": args.warmup,
            "duration_s": args.duration,
            "counts": seed["counts"],
            "load_average": {"before": load_before, "after": load_average()},
            "results": results,
            "memory": memory,
            "targets": evaluate(results),
        }
        replace_results_section("pages", markdown(report))
        RESULTS_JSON.parent.mkdir(exist_ok=True)
        serialisable = {**report, "results": [asdict(r) for r in results]}
        RESULTS_JSON.write_text(json.dumps(serialisable, indent=2) + "\n")
        for name, checks in report["targets"]["checks"].items():
            log(
                f"{name}: " + ", ".join(f"{k} {'pass' if v else 'FAIL'}" for k, v in checks.items())
            )
        log(f"written to {(REPO / 'benchmarks' / 'RESULTS.md').relative_to(REPO)}")
        return 0 if report["targets"]["all_met"] else 1
    except (BenchmarkError, Timeout, subprocess.TimeoutExpired) as error:
        print(f"benchmark failed: {error}", file=sys.stderr)
        return 2
    finally:
        signal.alarm(0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
