import pytest
import redis


def test_keys_patterns(r):
    r.mset({"user:1": "a", "user:2": "b", "item:1": "c"})
    r.hset("user:h", "f", "v")
    assert sorted(r.keys("user:*")) == [b"user:1", b"user:2", b"user:h"]
    assert sorted(r.keys("*:1")) == [b"item:1", b"user:1"]
    assert r.keys("nomatch*") == []
    assert sorted(r.keys("user:[12]")) == [b"user:1", b"user:2"]


def test_scan_visits_every_key_once(r):
    r.mset({f"k{i}": i for i in range(57)})
    r.sadd("set1", "x")
    seen = list(r.scan_iter(count=7))
    assert len(seen) == len(set(seen)) == 58
    assert sorted(r.scan_iter(match="k1*", count=5)) == sorted(
        f"k{i}".encode() for i in range(57) if str(i).startswith("1")
    )
    assert list(r.scan_iter(_type="set")) == [b"set1"]
    with pytest.raises(redis.ResponseError, match="invalid cursor"):
        r.execute_command("SCAN", "notanumber")
    assert r.dbsize() == 58


def test_multi_across_types(r):
    p = r.pipeline(transaction=True)
    p.hset("h", "a", "1").sadd("s", "x").incr("n").hgetall("h").smembers("s")
    assert p.execute() == [1, 1, 1, {b"a": b"1"}, {b"x"}]
