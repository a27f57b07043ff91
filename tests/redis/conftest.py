"""The Redis compatibility suite: the same expectations are checked against a real
redis-server and against brisk's Redis endpoints, so an expectation that real Redis does
not meet is a wrong test, not a brisk feature.

BRISK_REDIS_URLS: comma-separated redis:// URLs; every test runs against each of them, in
RESP2 and in RESP3.
"""

import os

import pytest
import redis

URLS = [u for u in os.environ.get("BRISK_REDIS_URLS", "").split(",") if u]


def pytest_collection_modifyitems(config, items):
    if not URLS:
        raise pytest.UsageError("set BRISK_REDIS_URLS to the endpoints to test")


@pytest.fixture(params=[(u, p) for u in URLS for p in (2, 3)], ids=lambda p: f"{p[0]}-resp{p[1]}")
def r(request):
    url, protocol = request.param
    client = redis.Redis.from_url(url, protocol=protocol, socket_timeout=30)
    client.flushall()
    yield client
    client.close()


@pytest.fixture
def r2(r):
    """A second connection to the same endpoint (for WATCH races)."""
    kwargs = r.connection_pool.connection_kwargs
    client = redis.Redis(
        host=kwargs["host"], port=kwargs["port"], protocol=kwargs.get("protocol", 2), socket_timeout=30
    )
    yield client
    client.close()


def raw(client, *args):
    """The reply exactly as decoded, without redis-py's per-command conversions."""
    conn = client.connection_pool.get_connection(args[0])
    try:
        conn.send_command(*args)
        return conn.read_response()
    finally:
        client.connection_pool.release(conn)
