from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.processes import ROOT


def import_settings(**env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "SECRET_KEY"}}
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "topdown.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    "secret", [None, "short", "topdown-insecure-development-key-do-not-use-in-production"]
)
def test_production_refuses_to_start_without_a_real_secret_key(secret):
    env = {"DEBUG": "0"} | ({"SECRET_KEY": secret} if secret else {})
    result = import_settings(**env)
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_production_starts_with_a_real_secret_key():
    result = import_settings(DEBUG="0", SECRET_KEY="x" * 50)
    assert result.returncode == 0, result.stderr


def settings_value(code: str, **env: str) -> subprocess.CompletedProcess:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k.removesuffix("_FILE") not in {"DEBUG", "SECRET_KEY", "DATABASE_URL", "REDIS_URL"}
        and k.removesuffix("_FILE") not in {"CELERY_BROKER_URL", "METRICS_TOKEN"}
    }
    return subprocess.run(
        [
            sys.executable,
            "-c",
            f"import django; django.setup(); from django.conf import settings; {code}",
        ],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "topdown.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_secrets_are_read_from_the_files_their_file_variables_name(tmp_path):
    files = {
        "SECRET_KEY": "k" * 50,
        "DATABASE_URL": "postgres://topdown:s3cret@db.internal:5432/topdown",
        "REDIS_URL": "redis://:r3dis@redis.internal:6379/0",
        "METRICS_TOKEN": "scrape-token",
    }
    env = {"DEBUG": "0"}
    for name, value in files.items():
        (tmp_path / name).write_text(value + "\n")  # as editors and `echo` leave them
        env[f"{name}_FILE"] = str(tmp_path / name)

    result = settings_value(
        "print(settings.SECRET_KEY, settings.DATABASES['default']['PASSWORD'], "
        "settings.DATABASES['default']['HOST'], settings.CACHES['default']['LOCATION'], "
        "settings.CELERY_BROKER_URL, settings.METRICS_TOKEN)",
        **env,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "k" * 50,
        "s3cret",
        "db.internal",
        files["REDIS_URL"],
        files["REDIS_URL"],
        "scrape-token",
    ]


def test_a_secret_set_both_ways_is_refused(tmp_path):
    (tmp_path / "key").write_text("k" * 50)

    result = settings_value(
        "print(settings.SECRET_KEY)",
        DEBUG="0",
        SECRET_KEY="x" * 50,
        SECRET_KEY_FILE=str(tmp_path / "key"),
    )

    assert result.returncode != 0
    assert "Set SECRET_KEY or SECRET_KEY_FILE, not both" in result.stderr


def test_a_missing_secret_file_is_refused_by_name(tmp_path):
    result = settings_value(
        "print(settings.SECRET_KEY)",
        DEBUG="0",
        SECRET_KEY_FILE=str(tmp_path / "absent"),
    )

    assert result.returncode != 0
    assert "SECRET_KEY_FILE=" in result.stderr and "No such file" in result.stderr


def test_the_broker_url_can_come_from_a_file_apart_from_the_cache(tmp_path):
    (tmp_path / "broker").write_text("redis://:b@broker.internal:6379/3")

    result = settings_value(
        "print(settings.CELERY_BROKER_URL)",
        CELERY_BROKER_URL_FILE=str(tmp_path / "broker"),
        REDIS_URL="redis://127.0.0.1:6379/8",
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "redis://:b@broker.internal:6379/3"


@pytest.mark.django_db
def test_postgresql_keeps_the_statements_a_connection_runs_often_prepared():
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("prepared statements are PostgreSQL's")
    statement = "SELECT COUNT(*) FROM accounts_user WHERE id > %s"
    with connection.cursor() as cursor:
        for n in range(6):
            cursor.execute(statement, [n])
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [row[0] for row in cursor.fetchall()]
    assert any("accounts_user WHERE id > $1" in text for text in prepared), prepared


@pytest.mark.parametrize(("value", "expected"), [(None, "True 5"), ("0", "None None")])
def test_prepared_statements_can_be_turned_off_for_a_pooler(value, expected):
    env = {"DATABASE_URL": "postgres://u@db.invalid/x"}
    if value is not None:
        env["DATABASE_PREPARED_STATEMENTS"] = value
    result = settings_value(
        "o = settings.DATABASES['default']['OPTIONS'];"
        " print(o.get('server_side_binding'), o.get('prepare_threshold'))",
        **env,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-2:] == expected.split()
