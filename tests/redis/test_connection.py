import pytest
import redis

from conftest import raw


def test_ping_echo(r):
    assert r.ping() is True
    assert raw(r, "PING", "hi") == b"hi"
    assert raw(r, "PING") in (b"PONG", "PONG")
    assert r.echo("hello") == b"hello"


def test_select_only_db_zero(r):
    assert r.execute_command("SELECT", 0) in (b"OK", "OK", True)
    with pytest.raises(redis.ResponseError, match="DB index is out of range"):
        r.execute_command("SELECT", 99999)
    with pytest.raises(redis.ResponseError, match="value is not an integer or out of range"):
        r.execute_command("SELECT", "x")


def test_unknown_command_and_arity_errors(r):
    with pytest.raises(redis.ResponseError) as e:
        r.execute_command("NOSUCHCMD", "a", "b")
    assert str(e.value) == "unknown command 'NOSUCHCMD', with args beginning with: 'a' 'b' "
    with pytest.raises(redis.ResponseError) as e:
        r.execute_command("GET")
    assert str(e.value) == "wrong number of arguments for 'get' command"


def test_client_name_and_id(r):
    assert r.client_setname("worker-1") is True
    assert r.client_getname() in (b"worker-1", "worker-1")
    assert isinstance(r.client_id(), int)
    with pytest.raises(redis.ResponseError, match="cannot contain spaces"):
        r.client_setname("a b")


def test_hello_reports_the_protocol(r):
    proto = r.connection_pool.connection_kwargs.get("protocol", 2)
    hello = r.execute_command("HELLO", proto)
    if isinstance(hello, list):
        hello = dict(zip(hello[::2], hello[1::2]))
    hello = {k.decode() if isinstance(k, bytes) else k: v for k, v in hello.items()}
    assert hello["proto"] == proto
    assert hello["server"] in (b"redis", "redis")
    with pytest.raises(redis.ResponseError, match="NOPROTO"):
        r.execute_command("HELLO", 4)


def test_time_and_dbsize(r):
    secs, micros = r.time()
    assert secs > 1_600_000_000 and 0 <= micros < 1_000_000
    assert r.dbsize() == 0
    r.set("a", "1")
    r.set("b", "2")
    assert r.dbsize() == 2
    r.flushdb()
    assert r.dbsize() == 0


def test_info_has_server_and_replication(r):
    info = r.info()
    assert "redis_version" in info
    assert info["role"] in ("master", "slave")
