"""Limits brisk puts on what one client can make a node do. Real Redis has other limits
(or none), so these run against brisk only."""

import socket

import pytest
import redis


@pytest.fixture
def brisk(r):
    if "brisk_version" not in r.info():
        pytest.skip("brisk's own limits")
    return r


def _raw_exchange(r, payload):
    kwargs = r.connection_pool.connection_kwargs
    with socket.create_connection((kwargs["host"], kwargs["port"]), timeout=10) as s:
        s.sendall(payload)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return data
            data += chunk


def test_nested_arrays_are_refused_and_the_node_keeps_serving(brisk):
    reply = _raw_exchange(brisk, b"*1\r\n" * 200_000)
    assert reply.startswith(b"-ERR Protocol error")
    assert brisk.ping() is True


def test_a_request_over_the_budget_closes_only_its_connection(brisk):
    reply = _raw_exchange(brisk, b"*2\r\n$3\r\nGET\r\n$4000000000\r\n" + b"x" * (33 << 20))
    assert b"Protocol error" in reply
    assert brisk.ping() is True


def test_a_reply_built_from_more_than_the_read_budget_is_refused(brisk):
    brisk.set("big", b"x" * (1 << 20))
    with pytest.raises(redis.ResponseError, match="reads more than"):
        brisk.mget(["big"] * 100)
    assert len(brisk.get("big")) == 1 << 20


def test_a_transaction_queue_is_bounded(brisk):
    value = b"x" * (6 << 20)
    brisk.execute_command("MULTI")
    brisk.execute_command("SET", "a", value)
    brisk.execute_command("SET", "b", value)
    with pytest.raises(redis.ResponseError, match="exceed"):
        brisk.execute_command("SET", "c", value)
    with pytest.raises(redis.exceptions.ExecAbortError):
        brisk.execute_command("EXEC")
    assert brisk.exists("a", "b", "c") == 0


def test_an_oversized_write_fails_alone_in_its_batch(brisk):
    p = brisk.pipeline(transaction=False)
    p.set("ok1", "v").set("k" * 5000, "v").hset("h", "f", b"x" * (9 << 20)).set("ok2", "v")
    res = p.execute(raise_on_error=False)
    assert res[0] is True and res[3] is True, res
    assert isinstance(res[1], redis.ResponseError) and "too large" in str(res[1])
    assert isinstance(res[2], redis.ResponseError) and "too large" in str(res[2])
    assert brisk.mget("ok1", "ok2") == [b"v", b"v"]
    assert brisk.exists("h") == 0
