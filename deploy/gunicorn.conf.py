"""gunicorn's settings for the web container (docker-compose.yml). Every value can be
overridden from the environment: WEB_CONCURRENCY (worker processes), GUNICORN_THREADS,
GUNICORN_TIMEOUT."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

bind = "0.0.0.0:8000"
workers = int(os.environ.get("WEB_CONCURRENCY", "3"))
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = 30
# Requests bigger than a notebook upload are refused by Django; this only bounds header abuse.
limit_request_line = 8190
# The access log is the proxy's job; errors go to stderr for `docker compose logs`.
accesslog = None
errorlog = "-"
# Restart workers now and then, so a slow leak never grows for weeks.
max_requests = 2000
max_requests_jitter = 200


def on_starting(server: Any) -> None:
    """prometheus_client's multiprocess mode: an empty folder at each start (topdown.metrics)."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        shutil.rmtree(folder, ignore_errors=True)
        Path(folder).mkdir(parents=True, exist_ok=True)


def child_exit(server: Any, worker: Any) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
