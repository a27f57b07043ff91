import pytest
import redis

WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"


def test_hset_hget_hgetall(r):
    assert r.hset("h", mapping={"a": "1", "b": "2"}) == 2
    assert r.hset("h", "a", "10") == 0
    assert r.hget("h", "a") == b"10"
    assert r.hget("h", "zz") is None
    assert r.hget("missing", "a") is None
    assert r.hgetall("h") == {b"a": b"10", b"b": b"2"}
    assert r.hgetall("missing") == {}
    assert sorted(r.hkeys("h")) == [b"a", b"b"]
    assert sorted(r.hvals("h")) == [b"10", b"2"]
    assert r.hlen("h") == 2
    assert r.type("h") == b"hash"


def test_hmset_hmget_hsetnx_hexists(r):
    assert r.execute_command("HMSET", "h", "a", "1", "b", "2") in (b"OK", "OK", True)
    assert r.hmget("h", "a", "x", "b") == [b"1", None, b"2"]
    assert r.hsetnx("h", "a", "9") == 0
    assert r.hsetnx("h", "c", "3") == 1
    assert r.hexists("h", "c") is True
    assert r.hexists("h", "q") is False
    with pytest.raises(redis.ResponseError, match="wrong number of arguments for 'hset' command"):
        r.execute_command("HSET", "h", "a", "1", "b")


def test_hdel_removes_empty_hash(r):
    r.hset("h", mapping={"a": "1", "b": "2"})
    assert r.hdel("h", "a", "nope") == 1
    assert r.hlen("h") == 1
    assert r.hdel("h", "b") == 1
    assert r.exists("h") == 0
    assert r.hdel("h", "b") == 0


def test_hincrby_and_float(r):
    assert r.hincrby("h", "n", 5) == 5
    assert r.hincrby("h", "n", -2) == 3
    r.hset("h", "s", "abc")
    with pytest.raises(redis.ResponseError, match="hash value is not an integer"):
        r.hincrby("h", "s", 1)
    assert r.hincrbyfloat("h", "f", 1.5) == 1.5
    assert r.hincrbyfloat("h", "f", 0.25) == 1.75
    assert r.hget("h", "f") == b"1.75"
    with pytest.raises(redis.ResponseError, match="hash value is not a float"):
        r.hincrbyfloat("h", "s", 1)


def test_hash_wrongtype_and_overwrite(r):
    r.set("s", "v")
    with pytest.raises(redis.ResponseError, match=WRONGTYPE):
        r.hset("s", "a", "1")
    r.hset("h", "a", "1")
    with pytest.raises(redis.ResponseError, match=WRONGTYPE):
        r.get("h")
    with pytest.raises(redis.ResponseError, match=WRONGTYPE):
        r.incr("h")
    assert r.delete("h") == 1
    assert r.hgetall("h") == {}
    r.hset("h", "b", "2")
    assert r.hgetall("h") == {b"b": b"2"}
    r.set("h", "now a string")
    assert r.get("h") == b"now a string"


def test_hscan(r):
    r.hset("h", mapping={f"f{i}": str(i) for i in range(30)})
    found = dict(r.hscan_iter("h"))
    assert len(found) == 30 and found[b"f7"] == b"7"
    assert sorted(dict(r.hscan_iter("h", match="f1*"))) == sorted(
        [f"f{i}".encode() for i in range(30) if str(i).startswith("1")]
    )


def test_hash_expiry(r):
    r.hset("h", "a", "1")
    assert r.pexpire("h", 150) is True
    import time
    time.sleep(0.3)
    assert r.exists("h") == 0
    assert r.hget("h", "a") is None
    r.hset("h", "b", "2")
    assert r.hgetall("h") == {b"b": b"2"}
