"""A run while it runs: the status endpoint streams its log and metrics, and cancelling stops it.

The first test drives a real Celery worker and the real sandbox: a line the job prints reaches
the endpoint while the job still runs, and a cancel from the page stops the job on the worker.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from grader import live, submissions
from grader.models import RunStatus, Submission, WorkerHeartbeat
from tests.grader.factories import AssignmentFactory, SubmissionFactory
from tests.grader.test_reliability import worker, worker_env  # noqa: F401 - a fixture
from tests.processes import wait_for

STREAMING = """
import time, topdown_task as tt
print("epoch 1 done", flush=True)
tt.log(epoch=1, loss=0.75, accuracy=0.5)
tt.log(epoch=2, loss=0.5, accuracy=0.625)
time.sleep(25)
print("not reached")
"""


def status(client, submission, **offsets):
    response = client.get(reverse("submission_status", args=[submission.pk]), offsets)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    return json.loads(response.content)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_running_job_streams_to_the_page_and_a_cancel_stops_it_on_the_worker(
    worker_env,  # noqa: F811 - the fixture
    cast,
    client,
    tmp_path,
):
    assignment = AssignmentFactory(chapter__course=cast.course, wall_seconds=40, memory_mb=512)
    client.force_login(cast.student)
    with worker(worker_env, tmp_path, "live"):
        submission = submissions.submission_create(
            user=cast.student, assignment=assignment, filename="main.py", content=STREAMING.encode()
        )

        def streamed():
            data = status(client, submission)
            return data if "epoch 1 done" in data["log"] and data["metrics_length"] == 2 else None

        data = wait_for(streamed, timeout=60, what="the log line and metrics on the endpoint")
        assert data["status"] == "running" and not data["finished"]
        assert data["metrics"][1]["loss"] == 0.5 and data["metrics"][1]["epoch"] == 2
        assert data["elapsed_s"] is not None and data["elapsed_s"] < 25
        # The page asks only for what it does not have yet.
        later = status(client, submission, log_from=data["log_length"], metrics_from=2)
        assert later["log"] == "" and later["metrics"] == []

        response = client.post(reverse("submission_cancel", args=[submission.pk]))
        assert response.status_code == 302
        submission.refresh_from_db()
        assert submission.status == RunStatus.CANCELLED

        # The worker notices, kills the job and keeps what it printed; it never gets to the end.
        def log_kept():
            submission.refresh_from_db()
            return "epoch 1 done" in submission.log and submission.device

        wait_for(log_kept, timeout=20, what="the worker to stop the job and keep its log")
    assert "not reached" not in submission.log
    assert submission.status == RunStatus.CANCELLED
    assert submission.finished_at - submission.started_at < timedelta(seconds=20)
    assert "while it ran" in submission.message


@pytest.mark.django_db
def test_cancelling_a_queued_submission_gives_the_days_submission_back(cast, client):
    assignment = AssignmentFactory(chapter__course=cast.course, submissions_per_day=2)
    submission = SubmissionFactory(user=cast.student, assignment=assignment)
    now = timezone.now()
    left = submissions.submissions_left_today(user=cast.student, assignment=assignment, now=now)
    assert left == 1
    client.force_login(cast.student)
    response = client.post(reverse("submission_cancel", args=[submission.pk]), follow=True)
    assert b"Cancelled." in response.content
    submission.refresh_from_db()
    assert submission.status == RunStatus.CANCELLED
    assert submission.message == "Cancelled by you before it ran."
    assert not submission.counts_against_limit
    assert (
        submissions.submissions_left_today(user=cast.student, assignment=assignment, now=now) == 2
    )
    # A worker that gets the message later finds nothing to claim.
    assert submissions.submission_grade(submission_id=submission.pk, worker_id="late") is None


@pytest.mark.django_db
def test_who_may_cancel(cast, client):
    assignment = AssignmentFactory(chapter__course=cast.course)
    submission = SubmissionFactory(user=cast.student, assignment=assignment)
    url = reverse("submission_cancel", args=[submission.pk])
    for user, refused in ((cast.other_student, 404), (cast.outsider, 403)):
        client.force_login(user)
        assert client.post(url).status_code == refused
    submission.refresh_from_db()
    assert submission.status == RunStatus.QUEUED
    client.force_login(cast.ta)
    client.post(url)
    submission.refresh_from_db()
    assert submission.status == RunStatus.CANCELLED
    assert submission.message == f"Cancelled by {cast.ta.public_name} before it ran."
    client.force_login(cast.student)
    assert client.get(url).status_code == 405


@pytest.mark.django_db
def test_a_finished_submission_cannot_be_cancelled(cast, client):
    assignment = AssignmentFactory(chapter__course=cast.course)
    submission = SubmissionFactory(user=cast.student, assignment=assignment, scored=True)
    client.force_login(cast.student)
    response = client.post(reverse("submission_cancel", args=[submission.pk]), follow=True)
    assert b"already scored" in response.content
    submission.refresh_from_db()
    assert submission.status == RunStatus.SCORED


@pytest.mark.django_db
def test_the_status_endpoint_is_for_the_student_and_staff_only(cast, client):
    submission = SubmissionFactory(
        user=cast.student, assignment=AssignmentFactory(chapter__course=cast.course)
    )
    url = reverse("submission_status", args=[submission.pk])
    assert client.get(url).status_code == 302  # to the login page
    for user, expected in (
        (cast.other_student, 404),
        (cast.outsider, 403),
        (cast.ta, 200),
        (cast.student, 200),
    ):
        client.force_login(user)
        assert client.get(url).status_code == expected


@pytest.mark.django_db
def test_a_queued_submission_knows_its_place_and_a_rough_wait(cast, client):
    assignment = AssignmentFactory(chapter__course=cast.course)
    now = timezone.now()
    for minutes in (5, 4, 3):
        SubmissionFactory(assignment=assignment, queued_at=now - timedelta(minutes=minutes))
    mine = SubmissionFactory(user=cast.student, assignment=assignment, queued_at=now)
    SubmissionFactory(assignment=assignment, queued_at=now + timedelta(seconds=1))  # behind me
    gpu_work = AssignmentFactory(chapter__course=cast.course, needs_gpu=True)
    SubmissionFactory(assignment=gpu_work, queued_at=now - timedelta(minutes=9))  # other queue
    for seconds in (10, 20, 30):
        SubmissionFactory(
            assignment=assignment,
            status=RunStatus.SCORED,
            public_score=0.5,
            started_at=now - timedelta(hours=1, seconds=seconds),
            finished_at=now - timedelta(hours=1),
        )
    for name in ("a", "b"):
        WorkerHeartbeat.objects.create(
            hostname=name, queues="default,cpu", started_at=now, last_seen_at=now
        )
    client.force_login(cast.student)
    data = status(client, mine)
    assert data["queue_position"] == 4
    assert data["live_workers"] == 2
    # Two rounds of work ahead on two workers, 20 s each (the median).
    assert data["estimated_wait_s"] == 40
    assert data["elapsed_s"] is None


def test_no_estimate_without_workers_or_history():
    assert live.estimated_wait_s(position=3, typical_s=None, workers=2) is None
    assert live.estimated_wait_s(position=3, typical_s=10.0, workers=0) is None
    assert live.estimated_wait_s(position=3, typical_s=10.0, workers=1) == 30


@pytest.mark.django_db
def test_the_endpoint_pages_through_a_long_log(cast, client):
    text = "".join(f"line {i}\n" for i in range(20_000))  # about 190 KB
    submission = SubmissionFactory(
        user=cast.student,
        assignment=AssignmentFactory(chapter__course=cast.course),
        status=RunStatus.RUNNING,
        worker_id="w",
        started_at=timezone.now(),
        lease_expires_at=timezone.now() + timedelta(minutes=1),
        log=text,
        metrics=[{"step": i, "loss": 1 / (i + 1)} for i in range(2500)],
    )
    client.force_login(cast.student)
    received, offset, points = "", 0, []
    while True:
        data = status(client, submission, log_from=offset, metrics_from=len(points))
        received += data["log"]
        points += data["metrics"]
        offset = data["log_from"] + len(data["log"])
        if offset >= data["log_length"] and len(points) >= data["metrics_length"]:
            break
    assert received == text
    assert len(points) == 2500 and points[-1]["step"] == 2499
    assert len(status(client, submission)["log"]) == live.LOG_CHUNK_CHARS


@pytest.mark.django_db
def test_the_stored_lengths_follow_every_write_of_the_log_and_metrics(cast, client):
    # log_chars and metrics_count are generated columns: the run keeper's conditional update
    # (not a model save) keeps them right, and a poll with nothing new carries no log.
    submission = SubmissionFactory(
        user=cast.student,
        assignment=AssignmentFactory(chapter__course=cast.course),
        status=RunStatus.RUNNING,
        worker_id="w",
        started_at=timezone.now(),
        lease_expires_at=timezone.now() + timedelta(minutes=1),
    )
    client.force_login(cast.student)
    assert status(client, submission)["log_length"] == 0

    Submission.objects.filter(pk=submission.pk).update(
        log="époque 1\nepoch 2\n", metrics=[{"loss": 1.0}, {"loss": 0.5}]
    )

    data = status(client, submission, log_from=9, metrics_from=1)
    assert (data["log"], data["log_length"], data["metrics_length"]) == ("epoch 2\n", 17, 2)
    assert data["metrics"] == [{"loss": 0.5}]
    quiet = status(client, submission, log_from=17, metrics_from=2)
    assert (quiet["log"], quiet["log_length"], quiet["metrics"]) == ("", 17, [])


@pytest.mark.django_db
def test_the_status_endpoint_queries(cast, client, django_assert_num_queries):
    submission = SubmissionFactory(
        user=cast.student,
        assignment=AssignmentFactory(chapter__course=cast.course),
        status=RunStatus.RUNNING,
        worker_id="w",
        started_at=timezone.now(),
        lease_expires_at=timezone.now() + timedelta(minutes=1),
        metrics=[{"loss": 1.0}],
    )
    url = reverse("submission_status", args=[submission.pk])
    client.force_login(cast.student)
    client.get(url)  # warm the session
    # The steady poll of one's own run: the user (the session is in the cache), then the row
    # with its log chunk and any new metric points. Staff cost one more: the membership.
    with django_assert_num_queries(2):
        status(client, submission, metrics_from=1)
    with django_assert_num_queries(2):
        assert status(client, submission)["metrics"] == [{"loss": 1.0}]
    client.force_login(cast.ta)
    client.get(url)
    with django_assert_num_queries(3):
        status(client, submission, metrics_from=1)


@pytest.mark.django_db
def test_a_student_who_left_the_course_still_sees_their_runs_progress(cast, client):
    submission = SubmissionFactory(
        user=cast.student, assignment=AssignmentFactory(chapter__course=cast.course)
    )
    cast.student.enrolments.all().delete()
    client.force_login(cast.student)
    assert status(client, submission)["status"] == "queued"


@pytest.mark.django_db
def test_a_keeper_that_loses_its_run_asks_the_job_to_stop(cast):
    submission = SubmissionFactory(
        user=cast.student,
        assignment=AssignmentFactory(chapter__course=cast.course),
        status=RunStatus.RUNNING,
        worker_id="me",
        started_at=timezone.now(),
        lease_expires_at=timezone.now() + timedelta(minutes=1),
    )
    keeper = live.RunKeeper(Submission, submission.pk, "me", lease=timedelta(seconds=30))
    keeper.on_log("hello")
    keeper.on_metric({"loss": 1.0})
    assert keeper._write()
    submission.refresh_from_db()
    assert submission.log == "hello\n" and submission.metrics == [{"loss": 1.0}]
    assert submission.lease_expires_at > timezone.now() + timedelta(seconds=25)
    Submission.objects.filter(pk=submission.pk).update(status=RunStatus.CANCELLED)
    assert not keeper._write()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "log_from", "metrics_from"),
    [
        ("", 0, 0),
        ("log_from=9&metrics_from=1", 9, 1),
        ("log_from=3&log_from=9", 9, 0),  # the last one, as request.GET.get gives it
        ("log_from=%39&metrics_from=+1", 9, 1),  # encoded
        ("log_from=-5&metrics_from=x", 0, 0),
        ("log_from&metrics_from=", 0, 0),
        ("log_from=%D9%A3", 3, 0),  # an Arabic-Indic three, as int() reads it
    ],
)
def test_the_status_endpoint_reads_its_offsets_as_django_decodes_them(
    cast, client, query, log_from, metrics_from
):
    submission = SubmissionFactory(
        user=cast.student, assignment=AssignmentFactory(chapter__course=cast.course)
    )
    client.force_login(cast.student)
    url = reverse("submission_status", args=[submission.pk])
    data = json.loads(client.get(f"{url}?{query}").content)
    assert (data["log_from"], data["metrics_from"]) == (log_from, metrics_from)
