import pytest
import redis


def test_sadd_srem_members(r):
    assert r.sadd("s", "a", "b", "c", "a") == 3
    assert r.sadd("s", "a") == 0
    assert r.scard("s") == 3
    assert r.smembers("s") == {b"a", b"b", b"c"}
    assert r.sismember("s", "a") == 1
    assert r.sismember("s", "z") == 0
    assert r.smismember("s", "a", "z") == [1, 0]
    assert r.srem("s", "a", "z") == 1
    assert r.type("s") == b"set"
    assert r.srem("s", "b", "c") == 2
    assert r.exists("s") == 0
    assert r.smembers("missing") == set()
    assert r.scard("missing") == 0


def test_spop_and_srandmember(r):
    r.sadd("s", *[str(i) for i in range(10)])
    one = r.spop("s")
    assert one is not None and r.scard("s") == 9
    assert r.sismember("s", one) == 0
    popped = r.spop("s", 3)
    assert len(popped) == 3 and r.scard("s") == 6
    assert r.spop("missing") is None
    assert r.srandmember("s") in r.smembers("s")
    assert len(r.srandmember("s", 4)) == 4
    assert len(set(r.srandmember("s", 100))) == 6
    assert len(r.srandmember("s", -20)) == 20
    assert r.srandmember("missing") is None
    assert r.scard("s") == 6


def test_set_algebra(r):
    r.sadd("a", "1", "2", "3")
    r.sadd("b", "2", "3", "4")
    assert r.sinter("a", "b") == {b"2", b"3"}
    assert r.sunion("a", "b") == {b"1", b"2", b"3", b"4"}
    assert r.sdiff("a", "b") == {b"1"}
    assert r.sinter("a", "missing") == set()
    r.set("str", "x")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        r.sinter("a", "str")


def test_sscan(r):
    r.sadd("s", *[f"m{i}" for i in range(25)])
    assert len(set(r.sscan_iter("s"))) == 25
    assert set(r.sscan_iter("s", match="m2*")) == {b"m2", b"m20", b"m21", b"m22", b"m23", b"m24"}
