"""Django's Redis cache with one client per connection pool instead of one per call.

``django.core.cache.backends.redis.RedisCacheClient.get_client`` builds a new ``redis.Redis``
around the shared connection pool on every cache call; building one costs more CPU than the
round trip it serves (about 0.18 ms against 0.12 ms on the benchmark machine), and every page
makes at least one call for the session. A ``redis.Redis`` is safe to share between threads (it
takes a connection from the pool per command), and the pool notices a fork by itself, so one
client per pool is kept instead. Everything else is Django's backend, unchanged.
"""

from __future__ import annotations

from typing import Any

from django.core.cache.backends import redis as django_redis

# Typed as Any: the stubs do not declare the private pool helpers used below.
_DjangoClient: Any = django_redis.RedisCacheClient


class RedisCacheClient(_DjangoClient):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, Any] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        index = self._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            pool = self._get_connection_pool(write)
            client = self._clients.setdefault(index, self._client(connection_pool=pool))
        return client


class RedisCache(django_redis.RedisCache):
    def __init__(self, server: Any, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = RedisCacheClient
