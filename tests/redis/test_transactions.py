import threading

import pytest
import redis


def test_multi_exec_is_atomic_and_queues(r):
    p = r.pipeline(transaction=True)
    p.set("a", "1").incr("a").get("a").mget("a", "b")
    assert p.execute() == [True, 2, b"2", [b"2", None]]


def test_ping_echo_and_time_queue_inside_multi(r):
    p = r.pipeline(transaction=True)
    p.ping().echo("hi").set("a", "1").execute_command("TIME")
    pong, echoed, ok, now = p.execute()
    assert pong is True and echoed == b"hi" and ok is True
    assert len(now) == 2 and int(now[0]) > 1_600_000_000


def test_exec_reports_runtime_errors_in_place(r):
    r.set("s", "abc")
    p = r.pipeline(transaction=True)
    p.set("x", "1").incr("s").set("y", "2")
    res = p.execute(raise_on_error=False)
    assert res[0] is True and res[2] is True
    assert isinstance(res[1], redis.ResponseError)
    assert r.mget("x", "y") == [b"1", b"2"]


def test_queue_errors_abort_exec(r):
    r.execute_command("MULTI")
    r.execute_command("SET", "k", "v")
    with pytest.raises(redis.ResponseError):
        r.execute_command("GET")
    with pytest.raises(redis.exceptions.ExecAbortError):
        r.execute_command("EXEC")
    assert r.get("k") is None


def test_multi_control_errors(r):
    with pytest.raises(redis.ResponseError, match="EXEC without MULTI"):
        r.execute_command("EXEC")
    with pytest.raises(redis.ResponseError, match="DISCARD without MULTI"):
        r.execute_command("DISCARD")
    r.execute_command("MULTI")
    with pytest.raises(redis.ResponseError, match="MULTI calls can not be nested"):
        r.execute_command("MULTI")
    with pytest.raises(redis.ResponseError, match="WATCH inside MULTI is not allowed"):
        r.execute_command("WATCH", "k")
    assert r.execute_command("DISCARD") in (b"OK", "OK", True)


def test_watch_aborts_when_a_watched_key_changes(r, r2):
    r.set("w", "1")
    with r.pipeline() as p:
        p.watch("w")
        r2.set("w", "2")
        p.multi()
        p.set("w", "3")
        with pytest.raises(redis.WatchError):
            p.execute()
    assert r.get("w") == b"2"


def test_watch_passes_when_other_keys_change(r, r2):
    r.set("w", "1")
    with r.pipeline() as p:
        p.watch("w")
        r2.set("other", "x")
        p.multi()
        p.incr("w")
        p.incr("other2")
        assert p.execute() == [2, 1]


def test_watch_sees_a_deleted_key_as_changed(r, r2):
    r.set("w", "1")
    with r.pipeline() as p:
        p.watch("w")
        r2.delete("w")
        p.multi()
        p.set("w", "3")
        with pytest.raises(redis.WatchError):
            p.execute()


def test_concurrent_increments_are_not_lost(r):
    kwargs = r.connection_pool.connection_kwargs

    def work():
        c = redis.Redis(host=kwargs["host"], port=kwargs["port"], socket_timeout=30)
        for _ in range(50):
            c.incr("c")
            c.append("log", "x")
        c.close()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert r.get("c") == b"200"
    assert r.strlen("log") == 200


def test_each_watch_counts_from_its_own_time(r, r2):
    r.set("a", "1")
    with r.pipeline() as p:
        p.watch("a")
        r2.set("b", "changed before b was watched")
        p.watch("b")
        p.multi()
        p.set("a", "2")
        assert p.execute() == [True]
    assert r.get("a") == b"2"
