"""Faults during a deadline burst: workers killed, Redis and PostgreSQL restarted; nothing lost.

    .venv/bin/python benchmarks/faults.py [--students 300] [--submissions 1000] [--browsers 200]
        [--duration 60] [--kill-every 10] [--lease 30] [--reap 10] [--reconcile 60] [--no-write]

The burst of ``burst.py`` (same topology on a PostgreSQL cluster and a Redis server of the
benchmark's own, same students, same programs), and meanwhile, on the load's clock:

- every ``--kill-every`` seconds (10), SIGKILL to one worker's whole process group (the worker
  and its sandbox), the two workers in turn, and the worker started again at once, as a
  supervisor would (same hostname);
- once, near 40% of the burst, Redis is stopped and started again on the same port; it keeps
  nothing on disk, so every message in the queue is gone (the reconciler must re-send them);
- once, near 70% of the burst, PostgreSQL restarts (``pg_ctl restart -m fast``: every connection
  is cut).

Before each fault it notes which submissions were running (on the killed worker) or queued, and
afterwards when each was finished. After the burst it waits until no submission is queued or
running (the reaper needs the lease plus its period to give back a killed worker's submission),
then counts as ``burst.py`` does. Writes ``results/faults.json`` and the "faults" section of
``RESULTS.md`` (``--no-write``: neither).

Targets (issue 7): no submission lost, none graded twice (two saved gradings), none stuck after
the reaper's period; the time to recover from each fault is reported. Exit status: 0 when met,
1 when one is missed, 2 when the benchmark broke.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.burst import (
    SETUP_BOUND_S,
    accounting_lines,
    add_common_arguments,
    drain_latency_lines,
    execute,
    latency_table,
    setup_lines,
    size_note,
    write_json,
)
from benchmarks.burst_lib import (
    Interrupted,
    Load,
    PrivateStores,
    Site,
    ignore_stop_signals,
    install_signal_handlers,
    mark,
    seconds_or_dash,
)
from benchmarks.web import REPO, BenchmarkError, Timeout, log, replace_results_section

RESULTS_JSON = Path(__file__).resolve().parent / "results" / "faults.json"


@dataclass
class Fault:
    kind: str  # worker kill, redis restart, postgres restart
    target: str
    at: float  # load clock, s
    done: float = math.nan  # when the restart was over (the worker ready, the server answering)
    running: list[int] = field(default_factory=list)  # on the worker, or anywhere for restarts
    queued: list[int] = field(default_factory=list)
    error: str = ""


def _ids(database_url: str, assignment_id: int, status: str, worker: str = "") -> list[int]:
    import psycopg

    with (
        contextlib.suppress(psycopg.Error),
        psycopg.connect(database_url, connect_timeout=2) as connection,
    ):
        rows = connection.execute(
            "SELECT id FROM grader_submission WHERE assignment_id = %s AND status = %s "
            "AND worker_id LIKE %s",
            (assignment_id, status, f"{worker}%"),
        ).fetchall()
        return [int(r[0]) for r in rows]
    return []


class FaultInjector:
    """Runs the fault schedule in a thread on the load's clock."""

    def __init__(self, *, duration_s: float, kill_every_s: float) -> None:
        self.faults: list[Fault] = []
        schedule: list[tuple[float, str]] = []
        t = kill_every_s
        while kill_every_s > 0 and t < duration_s:
            schedule.append((t, "worker kill"))
            t += kill_every_s
        # Between two kills, so each fault's effects can be told apart.
        step = kill_every_s if kill_every_s > 0 else duration_s / 4
        redis_at = (math.floor(0.4 * duration_s / step) + 0.5) * step
        postgres_at = (math.floor(0.7 * duration_s / step) + 0.5) * step
        if postgres_at <= redis_at:
            postgres_at = redis_at + step
        schedule += [(redis_at, "redis restart"), (postgres_at, "postgres restart")]
        self.schedule = sorted(schedule)
        self.error: BaseException | None = None

    def start(self, load: Load, site: Site, stores: PrivateStores) -> threading.Thread:
        thread = threading.Thread(target=self._run, args=(load, site, stores), daemon=True)
        thread.start()
        return thread

    def _run(self, load: Load, site: Site, stores: PrivateStores) -> None:
        try:
            kills = 0
            assignment = site.seed["assignment_id"]
            url = stores.database_url
            for at, kind in self.schedule:
                delay = at - load.now()
                if delay > 0:
                    time.sleep(delay)
                fault = Fault(kind, "", round(load.now(), 2))
                if kind == "worker kill":
                    worker = site.workers[kills % len(site.workers)]
                    kills += 1
                    fault.target = worker.name
                    fault.running = _ids(url, assignment, "running", worker.name + "@")
                    fault.at = round(load.now(), 2)
                    worker.kill()
                    log(f"fault: SIGKILL {worker.name} (running {fault.running or 'nothing'})")
                    worker.start(wait=True)
                elif kind == "redis restart":
                    fault.target = "redis"
                    fault.queued = _ids(url, assignment, "queued")
                    fault.running = _ids(url, assignment, "running")
                    fault.at = round(load.now(), 2)
                    log(f"fault: restarting Redis ({len(fault.queued)} submissions queued)")
                    stores.redis_restart()
                else:
                    fault.target = "postgresql"
                    fault.queued = _ids(url, assignment, "queued")
                    fault.running = _ids(url, assignment, "running")
                    fault.at = round(load.now(), 2)
                    log(f"fault: restarting PostgreSQL ({len(fault.running)} running)")
                    stores.pg_restart()
                fault.done = round(load.now(), 2)
                log(f"fault: {kind} over after {fault.done - fault.at:.1f} s")
                self.faults.append(fault)
        except BaseException as error:  # reported with the results; the load goes on
            self.error = error
            log(f"fault injection failed: {error!r}")


def recovery(report: dict[str, Any], faults: list[Fault]) -> list[dict[str, Any]]:
    """Per fault: web errors and when they stopped, when grading resumed, when its runs ended."""
    load: Load = report["_load"]
    rows = report["_rows"]
    finished = {
        int(r["id"]): float(r["finished_at"]) - load.t0_wall for r in rows if r["finished_at"]
    }
    attempts = {int(r["id"]): int(r["attempts"] or 0) for r in rows}
    out = []
    for index, fault in enumerate(faults):
        end = faults[index + 1].at if index + 1 < len(faults) else fault.at + 60
        errors = [
            r
            for r in load.records
            if fault.at <= r.start < end and (r.status == 0 or r.status >= 500)
        ]
        web_recovered = max((r.start + r.seconds for r in errors), default=fault.at) - fault.at
        after_done = [t for t in finished.values() if t > fault.done]
        grading_resumed = (min(after_done) - fault.at) if after_done else None
        affected = fault.running if fault.kind == "worker kill" else fault.running + fault.queued
        ends = [finished[i] for i in affected if i in finished]
        out.append(
            {
                **asdict(fault),
                "restart_s": round(fault.done - fault.at, 2),
                "web_errors": len(errors),
                "web_error_statuses": sorted({r.status for r in errors}),
                "web_error_kinds": sorted({r.kind for r in errors}),
                "web_recovered_after_s": round(web_recovered, 2),
                "grading_resumed_after_s": (
                    round(grading_resumed, 2) if grading_resumed is not None else None
                ),
                "affected": len(affected),
                "affected_unfinished": sum(1 for i in affected if i not in finished),
                "affected_all_finished_after_s": (
                    round(max(ends) - fault.at, 2) if ends and len(ends) == len(affected) else None
                ),
                "running_rerun": sum(1 for i in fault.running if attempts.get(i, 0) > 1),
                "recovered_after_s": round(
                    max(
                        web_recovered,
                        fault.done - fault.at,
                        grading_resumed if grading_resumed is not None else math.inf,
                    ),
                    2,
                ),
            }
        )
    return out


def evaluate(report: dict[str, Any]) -> dict[str, Any]:
    a = report["accounting"]
    g = report["grader_settings"]
    rows = [
        {
            "target": "no submission lost",
            "met": a["lost"] == 0,
            "value": f"{a['lost']} lost of {a['accepted']:,} accepted",
        },
        {
            "target": "none graded twice",
            "met": not a["graded_twice"],
            "value": f"{len(a['graded_twice'])}; {len(a['rerun_after_platform_failure'])} re-run "
            "after a worker died or a restart (claimed again, graded once)",
        },
        {
            "target": f"none stuck after the reaper's period (lease {g['lease_s']} s + "
            f"{g['reap_s']:.0f} s)",
            "met": not a["stuck"] and report["queue_empty_after_burst_s"] is not None,
            "value": f"{len(a['stuck'])} stuck",
        },
    ]
    if report.get("injector_error"):
        rows.append({"target": "every fault injected", "met": False, "value": "see the log"})
    return {"rows": rows, "all_met": all(r["met"] for r in rows)}


def recovery_table(faults: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| fault | at | restart took | web errors (statuses) | web answers again after | "
        "a result saved again after | its runs (running / queued) | all of them finished "
        "after | **recovered after** |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for f in faults:
        statuses = ", ".join(str(s) if s else "no answer" for s in f["web_error_statuses"])
        if f["web_error_kinds"]:
            statuses += "; " + ", ".join(f["web_error_kinds"])
        lines.append(
            f"| {f['kind']} ({f['target']}) | {f['at']:.1f} s | {f['restart_s']:.1f} s | "
            f"{f['web_errors']}{f' ({statuses})' if statuses else ''} | "
            f"{f['web_recovered_after_s']:.1f} s | "
            f"{seconds_or_dash(f['grading_resumed_after_s'])} | "
            f"{len(f['running'])} / {len(f['queued'])} | "
            f"{seconds_or_dash(f['affected_all_finished_after_s'])} | "
            f"**{f['recovered_after_s']:.1f} s** |"
        )
    return lines


PRODUCTION = {"lease_s": 30, "reap_s": 10.0, "reconcile_s": 60.0}


def grader_settings_note(report: dict[str, Any]) -> list[str]:
    g = report["grader_settings"]
    if all(float(g[k]) == v for k, v in PRODUCTION.items()):
        return []
    return [
        f"**Shortened grader periods** (`--lease {g['lease_s']} --reap {g['reap_s']:.0f} "
        f"--reconcile {g['reconcile_s']:.0f}`; production: lease 30 s, reaper every 10 s, "
        "reconciler every 60 s): the recovery of a killed worker's submissions is faster here "
        "than it would be in production.",
        "",
    ]


def markdown(report: dict[str, Any], targets: dict[str, Any]) -> str:
    a = report["accounting"]
    lines = [
        "<!-- faults:start (written by benchmarks/faults.py; edits here are overwritten) -->",
        "## Faults during a burst: workers killed, Redis and PostgreSQL restarted",
        "",
        f"Measured {report['date']} by `benchmarks/faults.py`, in {report['seconds']:.0f} s.",
        "",
        *size_note(report, "benchmarks/faults.py"),
        *grader_settings_note(report),
        *setup_lines(report),
        f"- Faults, on the load's clock: SIGKILL to a worker's process group every "
        f"{report['kill_every_s']:.0f} s during the burst, the two in turn, each started again at "
        "once (same hostname); Redis stopped and started on the same port once (it keeps nothing: "
        "the queue's messages are lost); PostgreSQL restarted once (`pg_ctl restart -m fast`)",
        "",
        "Recovery from each fault. *Web answers again*: the end of the last failed request (5xx "
        "or no answer) begun after the fault and before the next one. *A result saved again*: the "
        "first grading saved after the restart was over. *Its runs*: for a kill, the submissions "
        "running under the worker's name in the database (given back by the reaper once their "
        "lease ran out; a row that an earlier fault left running counts again); for a "
        "restart, those running or queued at that moment. *Recovered*: the latest of the restart, "
        "the web's recovery and the first result saved again.",
        "",
        *recovery_table(report["faults"]),
        "",
        f"Web requests during the burst ({report['burst_s']:.1f} s), faults included:",
        "",
        *latency_table(report["latency"]),
        "",
        f"The queue was empty {seconds_or_dash(report['queue_empty_after_burst_s'])} after the "
        f"last submit; the last result came {seconds_or_dash(report['drain_s'])} after it.",
        "",
        *drain_latency_lines(report),
        *accounting_lines(report),
        f"| gradings given back to the queue by a worker (platform failure) | "
        f"{a['requeued_by_worker_infrastructure_failure']} |",
        f"| results discarded because the run had changed hands | "
        f"{a['results_discarded_changed_hands']} |",
        "",
        "| target | result |",
        "|---|---|",
        *[f"| {r['target']} | {mark(r['met'])} ({r['value']}) |" for r in targets["rows"]],
        "",
        "Reproduce with `make bench` or `.venv/bin/python benchmarks/faults.py` (raw figures: "
        "`benchmarks/results/faults.json`).",
        "<!-- faults:end -->",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(parser)
    parser.add_argument("--kill-every", type=float, default=10.0, help="seconds between kills")
    parser.add_argument("--lease", type=int, default=30, help="GRADER_LEASE_SECONDS")
    parser.add_argument("--reap", type=float, default=10.0, help="GRADER_REAP_SECONDS")
    parser.add_argument("--reconcile", type=float, default=60.0, help="GRADER_RECONCILE_SECONDS")
    args = parser.parse_args(argv)
    install_signal_handlers(int(SETUP_BOUND_S + args.duration + args.drain_timeout))
    began = time.monotonic()
    injector = FaultInjector(duration_s=args.duration, kill_every_s=args.kill_every)
    log("fault schedule: " + ", ".join(f"{kind} at {at:.0f} s" for at, kind in injector.schedule))
    try:
        report = execute(
            args,
            name="faults",
            lease_s=args.lease,
            reap_s=args.reap,
            reconcile_s=args.reconcile,
            injector=injector,
        )
        report["seconds"] = time.monotonic() - began
        report["kill_every_s"] = args.kill_every
        report["faults"] = recovery(report, injector.faults)
        report["injector_error"] = repr(injector.error) if injector.error else None
        targets = evaluate(report)
        report["targets"] = targets
        if not args.no_write:
            write_json(RESULTS_JSON, report)
            replace_results_section("faults", markdown(report, targets))
        print()
        for line in recovery_table(report["faults"]):
            print(line)
        print()
        for line in accounting_lines(report):
            print(line)
        for row in targets["rows"]:
            print(f"{row['target']:<62} {mark(row['met'])} ({row['value']})")
        print(f"\nall targets met: {targets['all_met']}")
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
    finally:
        ignore_stop_signals()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
