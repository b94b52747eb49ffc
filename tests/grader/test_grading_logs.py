"""Every log line written while a run is graded names the run, whichever thread writes it."""

from __future__ import annotations

import json
import logging

import pytest

from grader import live, pipeline, submissions
from grader.models import RunStatus
from tests.factories import UserFactory
from tests.grader.factories import AssignmentFactory, BaselineFactory, BaselineRunFactory
from topdown.logs import JsonFormatter, PlainFormatter, grading_log_context

pytestmark = pytest.mark.django_db

# Prints, waits long enough for the run keeper's thread to write the log to the row, and
# predicts the factories' 12 test labels (0, 1, 2, 0, 1, 2, ...).
SLOW_PERFECT = (
    "import time, numpy as np, topdown_task as tt\n"
    "print('training', flush=True)\n"
    "time.sleep(1.5)\n"
    "tt.save_predictions(np.arange(12) % 3)\n"
)


@pytest.fixture
def logged_everywhere(monkeypatch):
    """Log a line from the sandbox's side and from the run keeper's own thread."""
    real_run_job, real_write = pipeline.run_job, live.RunKeeper._write

    def run_job(*args, **kwargs):
        logging.getLogger("workers.sandbox").info("starting the job")
        return real_run_job(*args, **kwargs)

    def write(self):
        logging.getLogger("grader.live").debug("keeper writes the log")
        return real_write(self)

    monkeypatch.setattr(pipeline, "run_job", run_job)
    monkeypatch.setattr(live.RunKeeper, "_write", write)


def grading_records(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith(("grader", "workers", "topdown"))]


def test_every_line_of_a_submissions_grading_carries_its_id(caplog, logged_everywhere):
    assignment = AssignmentFactory(wall_seconds=30, memory_mb=512)
    submission = submissions.submission_create(
        user=UserFactory(), assignment=assignment, filename="main.py", content=SLOW_PERFECT.encode()
    )
    caplog.set_level(logging.DEBUG)

    graded = submissions.submission_grade(submission_id=submission.pk, worker_id="test-worker")
    logging.getLogger("grader").info("after the grading")

    assert graded.status == RunStatus.SCORED, graded.message
    during = grading_records(caplog)[:-1]
    messages = {record.getMessage() for record in during}
    assert {"starting the job", "keeper writes the log"} <= messages
    threads = {record.threadName for record in during}
    assert len(threads) >= 2  # the job's thread and the keeper's
    assert all(getattr(record, "submission_id", None) == submission.pk for record in during)
    assert not hasattr(caplog.records[-1], "submission_id")


def test_a_platform_failure_is_logged_with_the_submission_id(caplog, monkeypatch):
    assignment = AssignmentFactory(wall_seconds=30, memory_mb=512)
    submission = submissions.submission_create(
        user=UserFactory(), assignment=assignment, filename="main.py", content=b"print(1)\n"
    )

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(pipeline, "run_job", broken)
    caplog.set_level(logging.INFO)

    submissions.submission_grade(submission_id=submission.pk, worker_id="test-worker")

    failure = next(r for r in caplog.records if "failed on the platform side" in r.getMessage())
    assert failure.submission_id == submission.pk
    line = json.loads(JsonFormatter().format(failure))
    assert line["submission_id"] == submission.pk
    assert line["level"] == "ERROR" and "OSError: disk full" in line["exception"]


def test_a_baseline_runs_lines_carry_the_baseline_run_id(caplog, logged_everywhere):
    baseline = BaselineFactory(
        assignment=AssignmentFactory(wall_seconds=30, memory_mb=512), code=SLOW_PERFECT
    )
    run = BaselineRunFactory(baseline=baseline)
    caplog.set_level(logging.DEBUG)

    submissions.baseline_run_grade(baseline_run_id=run.pk, worker_id="test-worker")

    during = grading_records(caplog)
    assert during
    assert all(getattr(record, "baseline_run_id", None) == run.pk for record in during)
    assert not any(hasattr(record, "submission_id") for record in during)


def test_formatters_show_the_ids():
    with grading_log_context(submission_id=12):
        record = logging.getLogger("grader.pipeline").makeRecord(
            "grader.pipeline", logging.WARNING, __file__, 1, "lease lost", (), None
        )

    plain = PlainFormatter("%(levelname)s %(name)s: %(message)s").format(record)
    entry = json.loads(JsonFormatter().format(record))

    assert plain == "WARNING grader.pipeline: lease lost [submission 12]"
    assert entry["submission_id"] == 12 and entry["message"] == "lease lost"
    assert entry["logger"] == "grader.pipeline" and entry["time"].endswith("+00:00")


def test_the_context_ends_with_the_grading():
    with grading_log_context(baseline_run_id=3):
        inside = logging.getLogRecordFactory()("x", logging.INFO, __file__, 1, "m", (), None)
    outside = logging.getLogRecordFactory()("x", logging.INFO, __file__, 1, "m", (), None)

    assert inside.baseline_run_id == 3
    assert not hasattr(outside, "baseline_run_id")
    with (
        pytest.raises(ValueError, match="unknown grading log field"),
        grading_log_context(user_id=1),
    ):
        pass
