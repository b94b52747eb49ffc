"""Settings for the web benchmark: the real site plus a bare "hello" view to measure the floor.

Everything else (DEBUG, SECRET_KEY, DATABASE_URL, REDIS_URL, ...) comes from the environment that
``benchmarks/web.py`` sets, exactly as in production.
"""

from __future__ import annotations

from topdown.settings import *  # noqa: F403

ROOT_URLCONF = "benchmarks.urls"
