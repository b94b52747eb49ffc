"""The production settings: what DEBUG off turns on by itself, and ``check --deploy`` passing."""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys

import pytest
from django.test import override_settings

from tests.processes import ROOT

PRODUCTION_SETTINGS = [
    "SECURE_SSL_REDIRECT",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "SECURE_PROXY_SSL_HEADER",
    "GRADER_ALLOW_DEGRADED",
    "DEBUG",
]


def clean_environment(**env: str) -> dict[str, str]:
    """This process's environment without any setting of ours, plus ``env``."""
    example = (ROOT / ".env.example").read_text()
    ours = set(re.findall(r"^#?([A-Z][A-Z0-9_]*)=", example, flags=re.MULTILINE))
    kept = {
        key: value
        for key, value in os.environ.items()
        if key not in ours and key.removesuffix("_FILE") not in ours
    }
    return {**kept, "DJANGO_SETTINGS_MODULE": "topdown.settings", **env}


def run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=clean_environment(**env),
        capture_output=True,
        text=True,
        timeout=120,
    )


def production_env(tmp_path) -> dict[str, str]:
    """The uncommented lines of .env.example, with the secrets as files as compose gives them."""
    env = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        match = re.match(r"^([A-Z][A-Z0-9_]*)=(.*)$", line)
        if match:
            env[match.group(1)] = match.group(2)
    key_file = tmp_path / "secret_key"
    key_file.write_text(secrets.token_urlsafe(50) + "\n")
    env["SECRET_KEY_FILE"] = str(key_file)
    env["TOPDOWN_VAR_DIR"] = str(tmp_path / "var")
    return env


def test_check_deploy_passes_with_the_production_settings(tmp_path):
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=clean_environment(**production_env(tmp_path)),
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_fails_in_development_settings(tmp_path):
    # The check has teeth: the development defaults (DEBUG on, no HTTPS) do not pass it.
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=clean_environment(TOPDOWN_VAR_DIR=str(tmp_path / "var")),
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode != 0
    assert "security.W018" in result.stderr + result.stdout  # DEBUG on


def test_debug_off_turns_https_and_hsts_on_without_any_other_setting(tmp_path):
    code = (
        "import json, django; django.setup(); from django.conf import settings; "
        f"print(json.dumps({{n: getattr(settings, n) for n in {PRODUCTION_SETTINGS!r}}}))"
    )
    result = run_python(
        code,
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(50),
        TOPDOWN_VAR_DIR=str(tmp_path / "var"),
    )

    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout.strip().splitlines()[-1])
    assert values["SECURE_SSL_REDIRECT"] is True
    assert values["SESSION_COOKIE_SECURE"] is True and values["CSRF_COOKIE_SECURE"] is True
    assert values["SECURE_HSTS_SECONDS"] >= 31536000
    assert values["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True
    assert values["SECURE_HSTS_PRELOAD"] is True
    assert values["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert values["GRADER_ALLOW_DEGRADED"] is False


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/healthz", "/metrics"])
def test_health_and_metrics_answer_over_plain_http_for_the_internal_network(client, path):
    with override_settings(SECURE_SSL_REDIRECT=True):
        response = client.get(path)

    assert response.status_code in (200, 404)  # not a redirect to https


@pytest.mark.django_db
def test_other_pages_redirect_to_https_when_redirects_are_on(client):
    with override_settings(SECURE_SSL_REDIRECT=True):
        response = client.get("/")

    assert response.status_code == 301
    assert response["Location"].startswith("https://")
