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
