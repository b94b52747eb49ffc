from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from grader.models import FailureReason, RunStatus, WorkerHeartbeat
from tests.factories import UserFactory
from tests.grader.factories import AssignmentFactory, BaselineRunFactory, SubmissionFactory

TOKEN = "scrape-token-0123456789"


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def token(settings):
    settings.METRICS_TOKEN = TOKEN
    return TOKEN


def scrape(client, token=TOKEN):
    response = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.content[:500]
    return response


def samples(response) -> dict[tuple[str, frozenset], float]:
    found = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(found, name, **labels) -> float | None:
    return found.get((name, frozenset(labels.items())))


def finished(*, assignment, seconds: float, ago: timedelta = timedelta(minutes=5), **fields):
    end = timezone.now() - ago
    return SubmissionFactory(
        assignment=assignment,
        worker_id="cpu@test",
        started_at=end - timedelta(seconds=seconds),
        finished_at=end,
        **fields,
    )


# Access -----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_public_gets_a_404(client, token):
    assert client.get("/metrics").status_code == 404


@pytest.mark.django_db
def test_a_wrong_token_gets_a_404(client, token):
    response = client.get("/metrics", headers={"Authorization": "Bearer scrape-token-01234567"})

    assert response.status_code == 404


@pytest.mark.django_db
def test_a_student_gets_a_404_even_with_a_session(client, cast, token):
    client.force_login(cast.student)

    assert client.get("/metrics").status_code == 404


@pytest.mark.django_db
def test_without_a_configured_token_no_bearer_gets_in(client, settings):
    settings.METRICS_TOKEN = ""

    assert client.get("/metrics", headers={"Authorization": "Bearer "}).status_code == 404


@pytest.mark.django_db
def test_staff_can_look_in_a_browser(client, token):
    client.force_login(UserFactory(is_staff=True))

    response = client.get("/metrics")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert "no-cache" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]


# Figures ----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_queue_depth_counts_queued_runs_per_queue(client, token):
    cpu = AssignmentFactory(needs_gpu=False)
    gpu = AssignmentFactory(needs_gpu=True)
    SubmissionFactory.create_batch(2, assignment=cpu)
    SubmissionFactory(assignment=gpu)
    BaselineRunFactory(baseline__assignment=gpu)
    SubmissionFactory(assignment=cpu, scored=True)  # not waiting

    found = samples(scrape(client))

    assert value(found, "topdown_queue_depth", queue="cpu") == 2
    assert value(found, "topdown_queue_depth", queue="gpu") == 2


@pytest.mark.django_db
def test_grading_duration_histogram_covers_the_last_hour(client, token):
    cpu = AssignmentFactory(needs_gpu=False)
    finished(assignment=cpu, seconds=3, scored=True)
    finished(assignment=cpu, seconds=40, scored=True)
    finished(
        assignment=cpu,
        seconds=100,
        status=RunStatus.FAILED,
        failure_reason=FailureReason.TIMEOUT,
        message="Ran out of time.",
    )
    finished(assignment=cpu, seconds=7, scored=True, ago=timedelta(hours=2))  # outside the window

    found = samples(scrape(client))

    name = "topdown_grading_duration_seconds"
    assert value(found, f"{name}_bucket", queue="cpu", le="2.0") == 0
    assert value(found, f"{name}_bucket", queue="cpu", le="5.0") == 1
    assert value(found, f"{name}_bucket", queue="cpu", le="60.0") == 2
    assert value(found, f"{name}_bucket", queue="cpu", le="120.0") == 3
    assert value(found, f"{name}_bucket", queue="cpu", le="+Inf") == 3
    assert value(found, f"{name}_gcount", queue="cpu") == 3
    assert value(found, f"{name}_gsum", queue="cpu") == pytest.approx(143, abs=0.01)
    assert value(found, f"{name}_gcount", queue="gpu") == 0


@pytest.mark.django_db
def test_failures_are_counted_by_reason(client, token):
    gpu = AssignmentFactory(needs_gpu=True)
    for reason in (FailureReason.MEMORY, FailureReason.MEMORY, FailureReason.INFRASTRUCTURE):
        finished(
            assignment=gpu,
            seconds=5,
            status=RunStatus.FAILED,
            failure_reason=reason,
            message="failed",
            counts_against_limit=reason != FailureReason.INFRASTRUCTURE,
        )
    finished(assignment=gpu, seconds=5, scored=True)

    found = samples(scrape(client))

    name = "topdown_graded_runs_finished_last_hour"
    assert value(found, name, queue="gpu", status="failed", reason="memory") == 2
    assert value(found, name, queue="gpu", status="failed", reason="infrastructure") == 1
    assert value(found, name, queue="gpu", status="scored", reason="") == 1


@pytest.mark.django_db
def test_workers_alive_counts_fresh_heartbeats_per_queue(client, token):
    now = timezone.now()
    WorkerHeartbeat.objects.create(
        hostname="cpu@a", queues="cpu,default", started_at=now, last_seen_at=now
    )
    WorkerHeartbeat.objects.create(
        hostname="gpu0@b", queues="gpu", started_at=now, last_seen_at=now
    )
    WorkerHeartbeat.objects.create(
        hostname="gpu1@c",
        queues="gpu",
        started_at=now - timedelta(hours=1),
        last_seen_at=now - timedelta(minutes=5),  # gone
    )

    found = samples(scrape(client))

    assert value(found, "topdown_workers_alive", queue="cpu") == 1
    assert value(found, "topdown_workers_alive", queue="default") == 1
    assert value(found, "topdown_workers_alive", queue="gpu") == 1


@pytest.mark.django_db
def test_request_latency_is_labelled_by_view_name_not_path(client, token, cast):
    client.force_login(cast.student)
    client.get(f"/courses/{cast.course.slug}/")
    client.get("/no-such-page/12345/")

    found = samples(scrape(client))

    counts = {
        dict(labels)["view"]: count
        for (name, labels), count in found.items()
        if name == "topdown_http_request_duration_seconds_count"
    }
    assert counts.get("unmatched", 0) >= 1
    assert not any("12345" in view or "/" in view for view in counts)
    assert any(view.startswith("courses:") or view.endswith("course_detail") for view in counts)


@pytest.mark.django_db
def test_broker_queue_length_is_reported_for_a_redis_broker(client, token, settings):
    if not settings.CELERY_BROKER_URL.startswith("redis"):
        pytest.skip("the broker is not Redis here")

    found = samples(scrape(client))

    for queue in ("default", "cpu", "gpu"):
        assert value(found, "topdown_broker_queue_length", queue=queue) is not None


def test_request_latency_adds_up_across_gunicorns_processes(tmp_path):
    # prometheus_client's multiprocess mode, as deploy/gunicorn.conf.py sets it up: each process
    # writes its own file, and whichever process answers /metrics reads them all.
    import os
    import subprocess
    import sys

    from tests.processes import ROOT

    observe = (
        "import django; django.setup(); from topdown.metrics import REQUEST_LATENCY; "
        "REQUEST_LATENCY.labels(view='home', method='GET', status='2xx').observe(0.02)"
    )
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for _ in range(2):
        subprocess.run([sys.executable, "-c", observe], cwd=ROOT, env=env, check=True, timeout=60)
    read = (
        "import django; django.setup(); "
        "from prometheus_client import CollectorRegistry, generate_latest, multiprocess; "
        "registry = CollectorRegistry(); multiprocess.MultiProcessCollector(registry); "
        "print(generate_latest(registry).decode())"
    )
    result = subprocess.run(
        [sys.executable, "-c", read], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 0, result.stderr
    assert (
        'topdown_http_request_duration_seconds_count{method="GET",status="2xx",view="home"} 2.0'
        in result.stdout
    )
