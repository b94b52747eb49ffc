"""Container health checks (docker-compose.yml): ``python deploy/healthcheck.py web|worker|beat``.

- web: ``GET /healthz`` on this container answers 200 (database and broker reachable).
- worker: this container's Celery worker wrote its heartbeat row (grader.heartbeat) within
  ``WORKER_ALIVE_SECONDS``: the worker is up, its thread runs and it reaches the database. The
  same row ``/healthz`` and ``/metrics`` count, so the three never disagree.
- beat: the process in ``--pidfile`` is alive and has written its schedule file within
  ``BEAT_STALE_SECONDS`` (Celery writes it every few minutes while it sends tasks).

Exit status 0 when healthy, 1 otherwise, with one line saying why.
"""

from __future__ import annotations

import os
import socket
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def check_web() -> str | None:
    hosts = [h.strip() for h in os.environ.get("ALLOWED_HOSTS", "").split(",") if h.strip()]
    # /healthz must pass ALLOWED_HOSTS like any request: ask with the first allowed name.
    host = next((h.lstrip(".") for h in hosts if h != "*"), "localhost")
    request = urllib.request.Request("http://127.0.0.1:8000/healthz", headers={"Host": host})
    try:
        with urllib.request.urlopen(request, timeout=4) as response:  # noqa: S310
            return None if response.status == 200 else f"/healthz answered {response.status}"
    except urllib.error.HTTPError as error:
        return f"/healthz answered {error.code}: {error.read()[:200]!r}"
    except OSError as error:
        return f"/healthz unreachable: {error}"


def check_worker() -> str | None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "topdown.settings")
    import django

    django.setup()
    from datetime import timedelta

    from django.conf import settings
    from django.utils import timezone

    from grader.models import WorkerHeartbeat

    # Celery names a worker PREFIX@HOSTNAME (--hostname cpu@%h): any prefix on this container.
    suffix = "@" + socket.gethostname()
    since = timezone.now() - timedelta(seconds=settings.WORKER_ALIVE_SECONDS)
    fresh = WorkerHeartbeat.objects.filter(hostname__endswith=suffix, last_seen_at__gte=since)
    if fresh.exists():
        return None
    return f"no worker heartbeat from *{suffix} in the last {settings.WORKER_ALIVE_SECONDS} s"


def check_beat(
    pidfile: Path = Path("/tmp/celerybeat.pid"),  # noqa: S108 - the container's own /tmp
    schedule: Path | None = None,
) -> str | None:
    schedule = schedule or Path(
        os.environ.get("BEAT_SCHEDULE_FILE", "/data/var/celerybeat-schedule")
    )
    stale_after = float(os.environ.get("BEAT_STALE_SECONDS", "600"))
    try:
        pid = int(pidfile.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError) as error:
        return f"beat is not running (pidfile {pidfile}: {error})"
    # The shelve module may add a suffix (.db, .dat) to the name it was given.
    candidates = [schedule, *schedule.parent.glob(schedule.name + ".*")]
    mtimes = [path.stat().st_mtime for path in candidates if path.exists()]
    if not mtimes:
        return f"beat has written no schedule at {schedule}"
    age = time.time() - max(mtimes)
    if age > stale_after:
        return f"beat's schedule was last written {age:.0f} s ago"
    return None


CHECKS = {"web": check_web, "worker": check_worker, "beat": check_beat}


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[1] not in CHECKS:
        print(f"usage: {argv[0]} {'|'.join(CHECKS)}", file=sys.stderr)
        return 2
    problem = CHECKS[argv[1]]()
    if problem:
        print(f"unhealthy: {problem}")
        return 1
    print("healthy")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
