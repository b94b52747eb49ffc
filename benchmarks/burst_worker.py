"""A Celery worker, as in production, that also writes one line per grading it saved.

    BURST_GRADED_LOG=FILE python -m benchmarks.burst_worker -A topdown worker --pool=solo ...

The same as ``celery -A topdown worker ...`` (the arguments are Celery's), except that
``grader.submissions._save_evaluation`` is wrapped: after each save it appends one line to
``BURST_GRADED_LOG`` (opened ``O_APPEND``, one ``write`` per line, so several workers can share
the file) saying which submission, whether the save took (only the lease holder's does), the
outcome, the attempt and the worker. ``benchmarks/burst.py`` and ``faults.py`` count these lines
per submission across every worker to prove that no submission was graded twice. The grading
itself is untouched: the wrapper calls the real function and returns what it returns.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _install(path: str) -> None:
    from grader import submissions
    from grader.models import Submission

    original = submissions._save_evaluation
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def save_and_record(model: Any, run: Any, worker_id: str, ev: Any) -> bool:
        saved = original(model, run, worker_id, ev)
        if model is Submission:
            line = {
                "submission": run.pk,
                "saved": bool(saved),
                "status": str(ev.status),
                "reason": str(ev.failure_reason or ""),
                "attempt": run.attempts,
                "worker": worker_id,
                "pid": os.getpid(),
                "at": time.time(),
            }
            os.write(fd, (json.dumps(line) + "\n").encode())
        return saved

    submissions._save_evaluation = save_and_record


def main() -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "topdown.settings")
    django.setup()
    path = os.environ.get("BURST_GRADED_LOG")
    if path:
        _install(path)
    from celery.__main__ import main as celery_main

    sys.argv = ["celery", *sys.argv[1:]]
    celery_main()


if __name__ == "__main__":
    main()
