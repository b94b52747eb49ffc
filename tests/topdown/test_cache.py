"""The Redis cache backend (``topdown.cache``) keeps one client per pool and behaves as Django's."""

from __future__ import annotations

import pytest
from django.core.cache import cache, caches

from topdown.cache import RedisCache

pytestmark = pytest.mark.skipif(
    not isinstance(caches["default"], RedisCache),
    reason="the tests' cache is Redis when REDIS_URL is set",
)


def test_the_client_is_built_once_and_reused():
    backend = caches["default"]._cache
    client = backend.get_client()
    assert backend.get_client() is client
    assert backend.get_client(write=True) is client  # one server: reads and writes share it


def test_it_stores_reads_counts_and_deletes_like_djangos_backend():
    cache.set("topdown-cache-test", {"a": [1, 2]}, timeout=30)
    assert cache.get("topdown-cache-test") == {"a": [1, 2]}
    assert cache.add("topdown-cache-test", "other") is False
    assert cache.get_many(["topdown-cache-test", "missing"]) == {
        "topdown-cache-test": {"a": [1, 2]}
    }
    cache.set("topdown-cache-counter", 1)
    assert cache.incr("topdown-cache-counter", 5) == 6
    cache.delete_many(["topdown-cache-test", "topdown-cache-counter"])
    assert cache.get("topdown-cache-test") is None and cache.get("topdown-cache-counter") is None
