"""The embedded configuration `make run` uses: SQLite and kombu's filesystem broker, no servers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from tests.processes import BIN, ROOT, celery_worker_args, free_port, running, wait_for

pytestmark = pytest.mark.slow


def manage(*args: str, env: dict[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def get_json(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())
    except OSError:
        return 0, {}


@pytest.fixture
def embedded_env(tmp_path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE"}
    }
    env["TOPDOWN_VAR_DIR"] = str(tmp_path / "var")
    return env


def test_embedded_setup_serves_the_demo_and_runs_tasks_without_servers(embedded_env, tmp_path):
    manage("migrate", "--noinput", env=embedded_env)
    first = manage("demo_load", env=embedded_env)
    second = manage("demo_load", env=embedded_env)
    assert "Demo users created: student, instructor" in first
    assert "0 created, 0 updated" in second and "Demo users created: none" in second
    assert (tmp_path / "var" / "topdown.sqlite3").exists()
    # The per-request user lookup (accounts.backends) converts SQLite's values as the ORM does.
    same = manage(
        "shell",
        "-c",
        "from django.utils import timezone; from accounts.backends import user_by_id; "
        "from accounts.models import User as U; "
        "U.objects.filter(username='student').update(last_login=timezone.now()); "
        "u = U.objects.get(username='student'); f = user_by_id(u.pk); "
        "print('same' if all(getattr(f, x.attname) == getattr(u, x.attname) "
        "for x in U._meta.concrete_fields) and f.last_login.tzinfo else 'different')",
        env=embedded_env,
    )
    assert same.strip().splitlines()[-1] == "same"

    port = free_port()
    web = [str(BIN / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", "1", "topdown.wsgi"]
    with (
        running(web, env=embedded_env, log=tmp_path / "web.log"),
        running(celery_worker_args("smoke@%h"), env=embedded_env, log=tmp_path / "worker.log"),
    ):
        url = f"http://127.0.0.1:{port}/healthz"
        status, body = wait_for(
            lambda: (r := get_json(url))[1].get("workers") == 1 and r,
            timeout=60,
            what="a healthy site with one worker",
        )
        assert status == 200 and body["database"] and body["broker"]

        # A task travels through the filesystem broker to the worker and runs there.
        manage(
            "shell",
            "-c",
            "from datetime import timedelta; from django.utils import timezone; "
            "from grader.models import WorkerHeartbeat as H; "
            "old = timezone.now() - timedelta(days=3); "
            "H.objects.create(hostname='gone@old', started_at=old, last_seen_at=old); "
            "from grader.tasks import worker_heartbeats_prune_task as t; t.delay()",
            env=embedded_env,
        )
        wait_for(
            lambda: (
                "gone@old"
                not in manage(
                    "shell",
                    "-c",
                    "from grader.models import WorkerHeartbeat as H; "
                    "print(list(H.objects.values_list('hostname', flat=True)))",
                    env=embedded_env,
                )
            ),
            timeout=60,
            what="the worker to run the prune task from the filesystem broker",
        )
