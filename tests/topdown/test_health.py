from __future__ import annotations

import os

import pytest
from django.db import connection

from grader.models import WorkerHeartbeat
from tests.processes import celery_worker_args, running, wait_for
from topdown.celery import app as celery_app


@pytest.mark.django_db
def test_healthz_reports_database_and_broker(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    body = response.json()
    assert body["database"] is True and body["broker"] is True
    assert body["status"] == "ok" and body["version"]
    assert body["workers"] == 0


@pytest.mark.django_db
def test_healthz_is_503_when_the_broker_is_unreachable(client, monkeypatch):
    monkeypatch.setitem(celery_app.conf, "broker_url", "redis://127.0.0.1:1/0")

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["broker"] is False
    assert response.json()["database"] is True


@pytest.mark.django_db
def test_healthz_is_503_when_the_database_is_unreachable(client, monkeypatch):
    def broken_cursor(*args, **kwargs):
        raise OSError("connection refused")

    monkeypatch.setattr(connection, "cursor", broken_cursor)

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["database"] is False


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_running_celery_worker_is_counted_until_it_stops(client, tmp_path):
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
    }
    with running(celery_worker_args("health-test@%h"), env=env, log=tmp_path / "worker.log"):
        wait_for(
            lambda: client.get("/healthz").json()["workers"] == 1,
            timeout=60,
            what=f"the worker's heartbeat (log: {(tmp_path / 'worker.log').read_text()[-2000:]})",
        )
        heartbeat = WorkerHeartbeat.objects.get()
        assert heartbeat.hostname.startswith("health-test@")
        assert "default" in heartbeat.queues

    assert not WorkerHeartbeat.objects.exists()  # a clean shutdown removes the row
