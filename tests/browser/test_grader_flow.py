"""A real browser against a real worker: a student's further research from upload to leaderboard,
a failure that explains itself, and an instructor's regrade.

The demo course, datasets and the `mnist-ten-digits` assignment are loaded with their commands,
the baselines run in the real sandbox, and a real Celery worker grades what the browser submits.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection

from grader.models import Assignment, RunStatus, Submission
from tests.browser.conftest import VIEWPORT, log_in, shot
from tests.processes import celery_worker_args, running

pytestmark = [pytest.mark.browser, pytest.mark.slow]

DEMO_PASSWORD = "topdown-demo"
SLUG = "mnist-ten-digits"
STARTER = (
    Path(__file__).resolve().parents[2] / "demo" / "course" / "assignments" / SLUG / "starter.py"
).read_text()
# The starter, printing and logging as it goes, slowly enough to be watched.
WATCHED = (
    "import time\nimport topdown_task as tt\n"
    "for epoch in range(1, 4):\n"
    "    print(f'warming up, epoch {epoch}', flush=True)\n"
    "    tt.log(epoch=epoch, loss=1.0 / epoch)\n"
    "    time.sleep(1.5)\n" + STARTER
)
FAILING = "import numpy as np\nimport tensorflow as tf\n"


def notebook(source: str) -> str:
    cells = [
        {"cell_type": "markdown", "metadata": {}, "source": ["# My digits notebook"]},
        {
            "cell_type": "code",
            "metadata": {},
            "execution_count": 1,
            "outputs": [],
            "source": source.splitlines(keepends=True),
        },
    ]
    return json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5})


@pytest.fixture
def grader_worker(settings, tmp_path):
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
    }
    with running(
        [*celery_worker_args("browser@%h"), "--queues=default,cpu,gpu"],
        env=env,
        log=tmp_path / "worker.log",
    ) as process:
        yield process


@pytest.fixture
def demo(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    call_command("demo_load")  # the built-in datasets, the demo course and its assignment
    call_command("baselines_run", "--now")
    return Assignment.objects.get(slug=SLUG)


def upload(page, base: str, filename: str, content: str) -> None:
    page.goto(f"{base}/assignments/{SLUG}/")
    page.set_input_files(
        "form[enctype='multipart/form-data'] input[type=file]",
        files=[{"name": filename, "mimeType": "text/plain", "buffer": content.encode()}],
    )
    page.click("text=Submit file for grading")
    page.wait_for_url("**/submissions/**")


def watch_until_finished(page, timeout_s: float = 90) -> list[str]:
    """The statuses the page showed, in order, until it reloaded with a finished result."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = page.locator("#run-status").get_attribute("data-status") or ""
        label = page.locator("#run-status").inner_text()
        if not seen or seen[-1] != label:
            seen.append(label)
        if status in ("scored", "failed", "cancelled"):  # as the server drew it after the reload
            return seen
        page.wait_for_timeout(100)
    raise AssertionError(f"the page never showed a result; it showed {seen}")


@pytest.mark.django_db(transaction=True)
def test_a_student_submits_watches_and_climbs_and_an_instructor_regrades(
    browser, live_server, demo, grader_worker
):
    base = live_server.url
    student = browser.new_context(viewport=VIEWPORT).new_page()
    log_in(student, base, "student", DEMO_PASSWORD)

    # A .py that prints and logs: the page shows it queued or running, then the log and curve.
    upload(student, base, "watched.py", WATCHED)
    assert student.locator("[data-live-run]").count() == 1
    student.wait_for_selector("[data-live-log]:has-text('warming up, epoch 1')", timeout=30_000)
    student.wait_for_selector("[data-live-chart]:not([hidden]) svg polyline", timeout=10_000)
    shot(student, "grader-1-running")
    seen = watch_until_finished(student)
    assert seen[-1] == "Scored", seen
    assert any(label in ("Queued", "Running") for label in seen), seen
    shot(student, "grader-2-scored")
    assert student.locator(".confusion-figure svg rect.chart-cell-off").count() > 0
    margins = student.locator(".margin-list li").all_inner_texts()
    assert any("Pixel similarity" in text for text in margins), margins
    assert any("Linear model" in text for text in margins), margins
    assert student.locator(".curve-grid svg").count() == 1  # the loss it logged

    # The same code as a notebook.
    upload(student, base, "digits.ipynb", notebook(STARTER))
    assert watch_until_finished(student)[-1] == "Scored"
    assert student.locator("text=the notebook as the grader ran it").count() == 1

    # On the leaderboard, beside the baselines.
    student.goto(f"{base}/assignments/{SLUG}/leaderboard/")
    shot(student, "grader-3-leaderboard")
    board = student.locator("table.leaderboard").inner_text()
    assert "Demo Student" in board and "Pixel similarity" in board and "Linear model" in board

    # A failure explains itself: the student's own line, and what to do.
    upload(student, base, "broken.py", FAILING)
    assert watch_until_finished(student)[-1] == "Failed: crashed"
    shot(student, "grader-4-failed")
    assert "import tensorflow as tf" in student.locator(".traceback .tb-mine").all_inner_texts()[-1]
    assert "'tensorflow' is not installed" in student.locator(".hint").inner_text()

    # The instructor changes the public split (as after fixing a dataset) and regrades the
    # first submission: its page shows the score before and after.
    first = Submission.objects.filter(user__username="student").order_by("created_at").first()
    before = first.public_score
    Assignment.objects.filter(slug=SLUG).update(split_seed=demo.split_seed + 1)
    instructor = browser.new_context(viewport=VIEWPORT).new_page()
    log_in(instructor, base, "instructor", DEMO_PASSWORD)
    instructor.goto(f"{base}/assignments/{SLUG}/submissions/")
    shot(instructor, "grader-5-submissions")
    instructor.goto(f"{base}/submissions/{first.pk}/")
    instructor.click("#staff-heading ~ .cluster button:has-text('Regrade')")
    instructor.wait_for_url(f"**/submissions/{first.pk}/")
    assert watch_until_finished(instructor)[-1] == "Scored"
    first.refresh_from_db()
    assert first.status == RunStatus.SCORED and first.public_score != before
    cells = instructor.locator("#staff-heading ~ .table-wrap tr:has(th:text-is('Score')) td")
    assert cells.all_inner_texts() == [f"{before:.4f}", f"{first.public_score:.4f}"]
    shot(instructor, "grader-6-regraded")
