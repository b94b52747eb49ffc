"""Deadline burst: 300 students submit 1,000 times within 60 s while 200 others browse.

    .venv/bin/python benchmarks/burst.py [--students 300] [--submissions 1000] [--browsers 200]
        [--duration 60] [--think 10] [--poll 0] [--no-write]

Against the real topology on this machine: gunicorn (production settings, 4 sync workers), two
Celery workers (pool solo, queues ``default,cpu``, bubblewrap required) and beat, on a PostgreSQL
cluster and a Redis server of the benchmark's own (free loopback ports, under
``benchmarks/.work/``; the shared servers are never touched, ``DATABASE_URL`` and ``REDIS_URL``
are ignored). It seeds the demo course, an assignment on the built-in 8x8 digits without a daily
limit, the students and a forum thread, then:

- submitting students POST the assignment page's upload form (multipart, CSRF token) at times
  spread uniformly over ``--duration`` seconds and follow the redirect to the submission's page;
  a submit answered 5xx (or not at all) is tried again, as a student would, up to 3 times;
- browsing students read the chapter, the leaderboard and a forum thread, with think times drawn
  from an exponential distribution (mean ``--think`` seconds, 10), until the last submit; with
  ``--poll S`` the submitters also poll their submission's status endpoint, as its page does;
- small numpy programs, varied (nearest centroid, k nearest neighbours, softmax regression), 3%
  of them crash and 2% save predictions of the wrong shape.

Then it waits for the queue to drain and checks every submission: accepted, in the database with
the code that was sent, finished with the outcome its program calls for, and graded exactly once
(one saved grading per submission across both workers' lines, ``burst_worker.py``). Writes
``results/burst.json`` and the "burst" section of ``RESULTS.md`` (``--no-write``: neither).

Targets (issue 7): every submission accepted, no 5xx; web p99 during the burst at most 500 ms;
every submission scored (or failed by its own code) exactly once. The drain time is reported.
Exit status: 0 when met, 1 when one is missed, 2 when the benchmark broke.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Protocol

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.burst_lib import (
    CpuByGroup,
    Interrupted,
    Load,
    Monitor,
    PrivateStores,
    Site,
    account,
    busy_between,
    cpu_times,
    fetch_rows,
    ignore_stop_signals,
    install_signal_handlers,
    latency_summary,
    mark,
    now_text,
    progress_line,
    read_graded_lines,
    seconds_or_dash,
    student_cookies,
    wait_for_drain,
    warm_up,
)
from benchmarks.engine_timing import (
    cpu_busy_share,
    load_average,
    machine_description,
    machine_line,
    summary,
)
from benchmarks.web import (
    DEFAULT_SERVER,
    REPO,
    WORK_DIR,
    BenchmarkError,
    ServerConfig,
    Timeout,
    log,
    replace_results_section,
)

RESULTS_JSON = Path(__file__).resolve().parent / "results" / "burst.json"
ISSUE_SIZES = {"students": 300, "submissions": 1000, "browsers": 200, "duration": 60}
TARGET_P99_MS = 500.0
SETUP_BOUND_S = 600  # stores, migrations, seeding, starting the processes, the accounting


class Injector(Protocol):
    """Faults to inject during the burst (``faults.py``); the burst alone has none."""

    def start(self, load: Load, site: Site, stores: PrivateStores) -> threading.Thread: ...


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--students", type=int, default=ISSUE_SIZES["students"])
    parser.add_argument("--submissions", type=int, default=ISSUE_SIZES["submissions"])
    parser.add_argument("--browsers", type=int, default=ISSUE_SIZES["browsers"])
    parser.add_argument(
        "--duration", type=float, default=ISSUE_SIZES["duration"], help="seconds of submits"
    )
    parser.add_argument(
        "--think",
        type=float,
        default=10.0,
        help="browsers' mean think time between pages, s (10: reading, not reloading)",
    )
    parser.add_argument(
        "--poll",
        type=float,
        default=0.0,
        help="after a submit, poll its status endpoint every this many seconds until the result "
        "(the page polls every 1 s); 0, the default, does not poll",
    )
    parser.add_argument("--workers", type=int, default=2, help="Celery worker processes")
    parser.add_argument("--web-workers", type=int, default=DEFAULT_SERVER.workers)
    parser.add_argument(
        "--drain-timeout", type=float, default=1200, help="most seconds to wait for the drain"
    )
    parser.add_argument("--no-write", action="store_true", help="write neither RESULTS.md nor json")
    parser.add_argument(
        "--pin-workers",
        action="store_true",
        help="the Celery workers (and their sandboxes) on the last CPU, everything else on the "
        "others: as if the workers ran on a machine of their own",
    )


def sizes_of(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "students": args.students,
        "submissions": args.submissions,
        "browsers": args.browsers,
        "duration": args.duration,
    }


def full_size(args: argparse.Namespace) -> bool:
    return all(float(sizes_of(args)[k]) == float(v) for k, v in ISSUE_SIZES.items())


def execute(
    args: argparse.Namespace,
    *,
    name: str,
    lease_s: int,
    reap_s: float,
    reconcile_s: float,
    injector: Injector | None = None,
) -> dict[str, Any]:
    """Stores, site, load, drain and accounting; everything stopped before it returns."""
    began = time.monotonic()
    load_before = load_average()
    worker_cpus = pin_cpus(args.pin_workers)
    stores = PrivateStores()
    site: Site | None = None
    monitor: Monitor | None = None
    try:
        log(f"starting a private PostgreSQL and Redis under {stores.root.relative_to(REPO)}")
        stores.start()
        site = Site(
            stores,
            WORK_DIR / name,
            workers=args.workers,
            web=ServerConfig("sync", workers=args.web_workers),
            lease_s=lease_s,
            reap_s=reap_s,
            reconcile_s=reconcile_s,
            worker_cpus=worker_cpus,
        )
        site.prepare(args.students, args.browsers)
        site.start()
        seed = site.seed
        site.check_pages(student_cookies(seed["sessions"][seed["browsers"][0]]))
        log("warm-up: every page through every web worker, one grading per worker")
        warm = warm_up(site, stores.database_url, rounds=2 * args.web_workers)
        cpu = CpuByGroup(site, stores)
        load = Load(
            site,
            submitters=args.students,
            submissions=args.submissions,
            browsers=args.browsers,
            duration_s=args.duration,
            think_s=args.think,
            poll_s=args.poll,
        )
        monitor = Monitor(stores.database_url, seed["assignment_id"])
        last = [0.0]

        def on_progress(load: Load) -> None:
            if load.now() - last[0] >= 5:
                last[0] = load.now()
                log(progress_line(load, monitor.sample(load.now()) if monitor else None))

        log(
            f"burst: {args.students} students submit {args.submissions} times over "
            f"{args.duration:.0f} s; {args.browsers} students browse (think {args.think:.0f} s)"
        )
        busy_before = cpu_busy_share(2.0)  # ours idle: what others on the machine use
        log(f"CPUs {busy_before:.0%} busy before the load (our processes idle)")
        cpu_0, snap_0 = cpu_times(), cpu.snapshot()
        threads: list[threading.Thread] = []

        def on_start(load: Load) -> None:
            if injector is not None and site is not None:
                threads.append(injector.start(load, site, stores))

        load.run(on_progress, on_start)
        cpu_1, snap_1 = cpu_times(), cpu.snapshot()
        log(f"burst over after {load.burst_end:.1f} s: " + progress_line(load, monitor.counts()))
        for thread in threads:
            thread.join(timeout=180)
        drained_after = wait_for_drain(load, monitor, args.drain_timeout)
        load.stop_polling.set()
        drain_end = load.now()
        cpu_2, snap_2 = cpu_times(), cpu.snapshot()
        log(
            "drained "
            + (f"{drained_after:.1f} s after the burst" if drained_after is not None else "NOT")
        )
        rows = fetch_rows(stores.database_url, seed["assignment_id"])
        graded = read_graded_lines(site.graded_log)
        accounting = account(load, rows, graded)
        burst_end_wall = load.t0_wall + load.burst_end
        last_finished = accounting["last_finished_wall"]
        first_started = min((float(r["started_at"]) for r in rows if r["started_at"]), default=None)
        finished = accounting["scored"] + accounting["failed_by_student_code"]
        grading_span = last_finished - first_started if last_finished and first_started else None
        report: dict[str, Any] = {
            "date": now_text(),
            "sizes": sizes_of(args),
            "full_size": full_size(args),
            "think_s": args.think,
            "workers": args.workers,
            "worker_cpus": sorted(worker_cpus) if worker_cpus else None,
            "web": ServerConfig("sync", workers=args.web_workers).label(),
            "grader_settings": site.settings,
            "machine": machine_description(),
            "versions": stores.versions(),
            "load_average": {"before": load_before, "after": load_average()},
            "cpu_busy": {
                "before": busy_before,
                "burst": busy_between(cpu_0, cpu_1),
                "drain": busy_between(cpu_1, cpu_2),
            },
            "cpu_by_role": {
                "burst": cpu.between(snap_0, snap_1),
                "drain": cpu.between(snap_1, snap_2),
            },
            "warm_up": warm,
            "burst_s": round(load.burst_end, 2),
            "queue_empty_after_burst_s": (
                round(drained_after, 2) if drained_after is not None else None
            ),
            # The last result after the last submit (0 when the workers kept up with the burst).
            "drain_s": (
                round(max(0.0, last_finished - burst_end_wall), 2) if last_finished else None
            ),
            "queue_wait_s": summary(
                [float(r["started_at"]) - float(r["queued_at"]) for r in rows if r["started_at"]],
                1,
                2,
            ),
            "run_s": summary(
                [
                    float(r["finished_at"]) - float(r["started_at"])
                    for r in rows
                    if r["started_at"] and r["finished_at"]
                ],
                1,
                2,
            ),
            "first_submit_to_last_result_s": (
                round(last_finished - load.t0_wall, 2) if last_finished else None
            ),
            "gradings_per_s": round(finished / grading_span, 2) if grading_span else None,
            "latency": latency_summary(load.records, 0, load.burst_end),
            "latency_drain": latency_summary(load.records, load.burst_end, drain_end),
            "poll_s": args.poll,
            "accounting": accounting,
            "kinds": _histogram(s.kind for s in load.sent),
            "timeline": monitor.timeline,
            "seed": {
                k: v for k, v in seed.items() if k not in ("sessions", "submitters", "browsers")
            },
            "records": len(load.records),
            "_load": load,
            "_rows": rows,
        }
        return report
    finally:
        ignore_stop_signals()
        log("stopping gunicorn, the workers, beat, Redis and PostgreSQL")
        if monitor is not None:
            monitor.close()
        if site is not None:
            site.stop()
        stores.stop()
        log(f"stopped; {time.monotonic() - began:.0f} s in all")


def pin_cpus(pin: bool) -> set[int] | None:
    """With ``--pin-workers``: this process (and so every process it starts: stores, gunicorn,
    beat, the clients' threads) on all CPUs but the last; the workers on the last one."""
    if not pin:
        return None
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        raise BenchmarkError("--pin-workers needs at least 2 CPUs")
    os.sched_setaffinity(0, set(cpus[:-1]))
    return {cpus[-1]}


def _histogram(values: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return dict(sorted(counts.items()))


def evaluate(report: dict[str, Any]) -> dict[str, Any]:
    a, lat = report["accounting"], report["latency"]["all"]
    server_errors = lat["server_errors"] + lat["no_answer"]
    rows = [
        {
            "target": "every submission accepted",
            "met": a["accepted"] == a["sent"],
            "value": f"{a['accepted']:,} of {a['sent']:,}",
        },
        {
            "target": "no 5xx (nor unanswered requests) during the burst",
            "met": server_errors == 0,
            "value": f"{lat['server_errors']} 5xx, {lat['no_answer']} unanswered",
        },
        {
            "target": f"web p99 during the burst ≤ {TARGET_P99_MS:.0f} ms",
            "met": lat["p99_ms"] is not None and lat["p99_ms"] <= TARGET_P99_MS,
            "value": f"{lat['p99_ms']} ms (p50 {lat['p50_ms']} ms)",
        },
        {
            "target": "after the drain every submission scored exactly once",
            "met": not (
                a["stuck"]
                or a["graded_twice"]
                or a["lost"]
                or a["failed_by_platform"]
                or a["unexpected_outcome_count"]
                or a["finished_without_grading_line"]
            )
            and report["queue_empty_after_burst_s"] is not None,
            "value": (
                f"{a['graded_once']:,} graded once; {len(a['graded_twice'])} twice, "
                f"{len(a['stuck'])} stuck, {a['lost']} lost, {len(a['failed_by_platform'])} "
                f"failed by the platform, {a['unexpected_outcome_count']} unexpected outcomes"
            ),
        },
    ]
    return {"rows": rows, "all_met": all(r["met"] for r in rows)}


def size_note(report: dict[str, Any], script: str) -> list[str]:
    if report["full_size"]:
        return []
    s = report["sizes"]
    return [
        f"**Reduced-size development run, not the issue's sizes**: {s['students']} students, "
        f"{s['submissions']} submissions over {s['duration']:.0f} s, {s['browsers']} browsers "
        f"(the issue: 300, 1,000 over 60 s, 200). Run `{script}` without options for the real "
        "figures.",
        "",
    ]


def setup_lines(report: dict[str, Any]) -> list[str]:
    machine, versions, s = report["machine"], report["versions"], report["sizes"]
    g = report["grader_settings"]
    return [
        f"- Machine: {machine_line(machine)}; load average (1, 5, 15 min) before "
        f"{' '.join(report['load_average']['before'])}, after "
        f"{' '.join(report['load_average']['after'])}; CPUs busy "
        f"{report['cpu_busy']['before']:.0%} just before the load (ours idle: others' work), "
        f"{report['cpu_busy']['burst']:.0%} during the burst, {report['cpu_busy']['drain']:.0%} "
        "during the drain (everything below shares these CPUs)",
        f"- Software: Python {machine['python']}, Django {machine['django']}, Celery "
        f"{machine['celery']}, numpy {machine['numpy']}, PostgreSQL {versions['postgresql']} and "
        f"Redis {versions['redis']} (a cluster and a server of the benchmark's own, on loopback), "
        f"{machine['bubblewrap']}",
        f"- Topology, all on this machine: gunicorn {report['web']} (production settings, DEBUG "
        f"off); {report['workers']} Celery workers (`--pool=solo --queues=default,cpu`, "
        "bubblewrap sandbox required) and beat (reaper every "
        f"{g['reap_s']:.0f} s, reconciler every {g['reconcile_s']:.0f} s, lease "
        f"{g['lease_s']} s); sessions in `cached_db` over Redis"
        + (
            f"; **the workers pinned to CPU {report['worker_cpus']}** and everything else to "
            "the other CPUs (`--pin-workers`: as if the workers had a machine of their own)"
            if report.get("worker_cpus")
            else "; nothing pinned: the workers and the web share every CPU"
        ),
        f"- Load: {s['students']} students submit {s['submissions']:,} times at times spread "
        f"uniformly over {s['duration']:.0f} s (the upload form: multipart POST with the CSRF "
        "token, then the redirect to the submission page; a 5xx or no answer is tried again, "
        f"at most 3 tries); {s['browsers']} students read the chapter, the leaderboard and a "
        f"30-post forum thread with exponential think times (mean {report['think_s']:.0f} s). "
        "Clients are threads of the benchmark's process, one connection per request. "
        + (
            f"After each submit the student polls its status endpoint every "
            f"{report['poll_s']:g} s until the result (as the submission page does, every 1 s), "
            "through the drain"
            if report.get("poll_s")
            else "The submission page's polling of the status endpoint (every 1 s in a browser) "
            "is left out (`--poll` adds it)"
        ),
        "- CPU use in CPUs (of "
        f"{machine['nproc']}; from /proc, approximate), during the burst: "
        + ", ".join(f"{k} {v:.2f}" for k, v in report["cpu_by_role"]["burst"].items())
        + "; during the drain: "
        + ", ".join(f"{k} {v:.2f}" for k, v in report["cpu_by_role"]["drain"].items()),
        f"- Before the load, a warm-up ({report['warm_up']['seconds']:.0f} s, not counted): "
        f"every page {report['warm_up']['page_rounds']} times, and one grading per worker (the "
        "instructor's; left out of every figure below)",
        "- Programs: small numpy classifiers of the 8x8 digits (1,437 training, 360 test "
        "images): " + ", ".join(f"{k} {v}" for k, v in report["kinds"].items()),
    ]


def latency_table(latency: dict[str, Any]) -> list[str]:
    lines = [
        "| requests | count | p50 ms | p90 ms | p99 ms | max ms | 5xx | unanswered |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for kind, item in latency.items():
        if not item["requests"]:
            continue
        lines.append(
            f"| {'**all**' if kind == 'all' else kind} | {item['requests']:,} | {item['p50_ms']} | "
            f"{item['p90_ms']} | {'**' if kind == 'all' else ''}{item['p99_ms']}"
            f"{'**' if kind == 'all' else ''} | {item['max_ms']} | {item['server_errors']} | "
            f"{item['no_answer']} |"
        )
    return lines


def drain_latency_lines(report: dict[str, Any]) -> list[str]:
    drain = report.get("latency_drain") or {}
    if not drain.get("all", {}).get("requests"):
        return []
    return [
        "Web requests during the drain (the students polling their results):",
        "",
        *latency_table(drain),
        "",
    ]


def accounting_lines(report: dict[str, Any]) -> list[str]:
    a = report["accounting"]
    return [
        "| after the drain | count |",
        "|---|---:|",
        f"| submissions sent / accepted (302 to the submission) | {a['sent']:,} / "
        f"{a['accepted']:,} |",
        f"| rows in the database (of which saved although the answer was an error) | "
        f"{a['rows']:,} ({a['rows_saved_without_accepted_answer']}) |",
        f"| scored / failed by the student's code (crash, wrong shape) | {a['scored']:,} / "
        f"{a['failed_by_student_code']} |",
        f"| graded exactly once (one saved grading line across the workers) | "
        f"{a['graded_once']:,} |",
        f"| graded twice (two saved gradings of one submission) | {len(a['graded_twice'])} |",
        f"| stuck (queued or running at the end) | {len(a['stuck'])} |",
        f"| lost (accepted, but no row with the code sent) | {a['lost']} |",
        f"| failed by the platform (infrastructure) | {len(a['failed_by_platform'])} |",
        f"| outcome other than its program calls for | {a['unexpected_outcome_count']} |",
        f"| re-run after a worker died or the platform failed (claimed more than once; not "
        f"graded twice) | {len(a['rerun_after_platform_failure'])} |",
    ]


def markdown(report: dict[str, Any], targets: dict[str, Any]) -> str:
    lines = [
        "<!-- burst:start (written by benchmarks/burst.py; edits here are overwritten) -->",
        "## Deadline burst: 300 students submit 1,000 times in 60 s while 200 browse",
        "",
        f"Measured {report['date']} by `benchmarks/burst.py`, in {report['seconds']:.0f} s.",
        "",
        *size_note(report, "benchmarks/burst.py"),
        *setup_lines(report),
        "",
        f"Web requests that began during the burst ({report['burst_s']:.1f} s, "
        f"{report['latency']['all']['requests_per_s']} requests/s), as the clients timed them:",
        "",
        *latency_table(report["latency"]),
        "",
        f"The queue: the last result was saved {seconds_or_dash(report['drain_s'])} after the "
        "last submit (the drain), "
        f"{seconds_or_dash(report['first_submit_to_last_result_s'])} after the first; the two "
        f"workers graded {report['gradings_per_s']} submissions/s. From the rows: the wait in "
        f"the queue (queued to claimed) p50 {report['queue_wait_s'].get('p50', '-')} s, p95 "
        f"{report['queue_wait_s'].get('p95', '-')} s; a grading (claimed to saved: sandbox, the "
        f"program, scoring, saving) p50 {report['run_s'].get('p50', '-')} s, p95 "
        f"{report['run_s'].get('p95', '-')} s.",
        "",
        *drain_latency_lines(report),
        *accounting_lines(report),
        "",
        "| target | result |",
        "|---|---|",
        *[f"| {r['target']} | {mark(r['met'])} ({r['value']}) |" for r in targets["rows"]],
        "",
        "Reproduce with `make bench` or `.venv/bin/python benchmarks/burst.py` (raw figures: "
        "`benchmarks/results/burst.json`).",
        "<!-- burst:end -->",
    ]
    return "\n".join(lines) + "\n"


def write_json(path: Path, report: dict[str, Any]) -> None:
    load: Load = report["_load"]
    data = {k: v for k, v in report.items() if not k.startswith("_")}
    data["submissions"] = [
        {
            "index": s.index,
            "student": s.student,
            "kind": s.kind,
            "expected": s.expected,
            "scheduled_s": round(s.scheduled_s, 3),
            "tries": s.tries,
            "submission_id": s.submission_id,
        }
        for s in load.sent
    ]
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(data, indent=1, default=str) + "\n")


def print_summary(report: dict[str, Any], targets: dict[str, Any]) -> None:
    print()
    for line in [*latency_table(report["latency"]), "", *drain_latency_lines(report)]:
        print(line)
    for line in accounting_lines(report):
        print(line)
    print(
        f"\ndrain {seconds_or_dash(report['drain_s'])} after the burst; "
        f"{report['gradings_per_s']} gradings/s"
    )
    for phase, roles in report["cpu_by_role"].items():
        print(
            f"CPUs used during the {phase}: " + ", ".join(f"{k} {v:.2f}" for k, v in roles.items())
        )
    for row in targets["rows"]:
        print(f"{row['target']:<62} {mark(row['met'])} ({row['value']})")
    print(f"\nall targets met: {targets['all_met']}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(parser)
    args = parser.parse_args(argv)
    install_signal_handlers(int(SETUP_BOUND_S + args.duration + args.drain_timeout))
    began = time.monotonic()
    try:
        report = execute(args, name="burst", lease_s=30, reap_s=10, reconcile_s=60)
        report["seconds"] = time.monotonic() - began
        targets = evaluate(report)
        report["targets"] = targets
        if not args.no_write:
            write_json(RESULTS_JSON, report)
            replace_results_section("burst", markdown(report, targets))
        print_summary(report, targets)
        if not args.no_write:
            print(f"written to benchmarks/RESULTS.md and {RESULTS_JSON.relative_to(REPO)}")
        return 0 if targets["all_met"] else 1
    except (BenchmarkError, Timeout, Interrupted, subprocess.SubprocessError) as error:
        print(f"benchmark failed: {type(error).__name__}: {error}", file=sys.stderr)
        return 2
    except Exception:
        traceback.print_exc()
        print("benchmark failed (see the traceback above)", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
