"""deploy/healthcheck.py, the containers' health checks, outside a container."""

from __future__ import annotations

import os
import socket
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from deploy.healthcheck import check_beat, check_worker, main
from grader.models import WorkerHeartbeat


def test_beat_is_healthy_while_running_and_writing_its_schedule(tmp_path):
    pidfile, schedule = tmp_path / "beat.pid", tmp_path / "celerybeat-schedule"
    pidfile.write_text(f"{os.getpid()}\n")
    (tmp_path / "celerybeat-schedule.db").write_bytes(b"shelve")  # dbm may add a suffix

    assert check_beat(pidfile, schedule) is None


def test_beat_is_unhealthy_when_its_schedule_goes_stale(tmp_path):
    pidfile, schedule = tmp_path / "beat.pid", tmp_path / "celerybeat-schedule"
    pidfile.write_text(str(os.getpid()))
    schedule.write_bytes(b"shelve")
    old = time.time() - 3600
    os.utime(schedule, (old, old))

    assert "last written" in check_beat(pidfile, schedule)


def test_beat_is_unhealthy_when_its_process_is_gone(tmp_path):
    pidfile = tmp_path / "beat.pid"
    pidfile.write_text("999999999")

    assert "not running" in check_beat(pidfile, tmp_path / "schedule")
    assert "not running" in check_beat(tmp_path / "absent.pid", tmp_path / "schedule")


@pytest.mark.django_db
def test_a_worker_is_healthy_while_its_heartbeat_is_fresh():
    now = timezone.now()
    beat = WorkerHeartbeat.objects.create(
        hostname=f"cpu@{socket.gethostname()}", queues="cpu", started_at=now, last_seen_at=now
    )
    assert check_worker() is None

    beat.last_seen_at = now - timedelta(minutes=5)
    beat.save()
    assert "no worker heartbeat" in check_worker()


@pytest.mark.django_db
def test_another_containers_heartbeat_does_not_count():
    now = timezone.now()
    WorkerHeartbeat.objects.create(
        hostname="cpu@another-container", queues="cpu", started_at=now, last_seen_at=now
    )

    assert check_worker() is not None


def test_an_unknown_mode_is_a_usage_error(capsys):
    assert main(["healthcheck.py", "database"]) == 2
