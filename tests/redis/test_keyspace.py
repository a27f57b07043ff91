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


def test_rename_moves_values_of_every_type_with_their_expiry(r):
    r.set("s", "v", ex=100)
    r.hset("h", mapping={"f1": "1", "f2": "2"})
    r.rpush("l", "a", "b", "c")
    r.sadd("st", "x", "y")
    r.zadd("z", {"m": 1.5, "n": 2})
    assert r.rename("s", "s2") is True
    assert r.get("s") is None and r.get("s2") == b"v"
    assert 90 <= r.ttl("s2") <= 100
    assert r.rename("h", "h2") and r.hgetall("h2") == {b"f1": b"1", b"f2": b"2"}
    assert r.exists("h") == 0 and r.hlen("h2") == 2
    assert r.rename("l", "l2") and r.lrange("l2", 0, -1) == [b"a", b"b", b"c"]
    assert r.rpop("l2") == b"c" and r.lpush("l2", "z") == 3
    assert r.rename("st", "st2") and r.smembers("st2") == {b"x", b"y"}
    assert r.rename("z", "z2")
    pairs = r.zrange("z2", 0, -1, withscores=True)
    assert [tuple(p) for p in pairs] == [(b"m", 1.5), (b"n", 2.0)]
    assert r.zscore("z2", "n") == 2.0
    # The old names are free for new values of any type.
    r.hset("h", "g", "3")
    assert r.hgetall("h") == {b"g": b"3"}
    assert r.hgetall("h2") == {b"f1": b"1", b"f2": b"2"}


def test_rename_replaces_the_destination_and_renamenx_does_not(r):
    r.hset("src", "f", "v")
    r.sadd("dst", "old1", "old2")
    assert r.rename("src", "dst") is True
    assert r.type("dst") == b"hash" and r.hgetall("dst") == {b"f": b"v"}
    r.set("a", "1")
    r.set("b", "2")
    assert r.renamenx("a", "b") is False
    assert r.get("a") == b"1" and r.get("b") == b"2"
    assert r.renamenx("a", "c") is True
    assert r.get("a") is None and r.get("c") == b"1"
    # Renaming a key onto itself changes nothing.
    assert r.rename("c", "c") is True and r.get("c") == b"1"
    assert r.renamenx("c", "c") is False
    with pytest.raises(redis.ResponseError, match="no such key"):
        r.rename("missing", "x")
    with pytest.raises(redis.ResponseError, match="no such key"):
        r.renamenx("missing", "x")
    assert r.exists("x") == 0


def test_collection_scans_page_large_collections(r):
    fields = {f"f{i:04}": str(i) for i in range(1000)}
    members = [f"m{i:04}" for i in range(1000)]
    r.hset("h", mapping=fields)
    r.sadd("s", *members)
    r.zadd("z", {m: i for i, m in enumerate(members)})
    for scan, key in ((r.hscan, "h"), (r.sscan, "s"), (r.zscan, "z")):
        cursor, first = scan(key, 0, count=10)
        assert cursor != 0 and 0 < len(first) < 1000, (key, cursor, len(first))
    assert dict(r.hscan_iter("h", count=37)) == {k.encode(): v.encode() for k, v in fields.items()}
    assert set(r.sscan_iter("s", count=37)) == {m.encode() for m in members}
    scores = dict(r.zscan_iter("z", count=37))
    assert scores == {m.encode(): float(i) for i, m in enumerate(members)}
    # MATCH filters each page; the walk still ends with every match.
    got = set(k for k, _ in r.hscan_iter("h", match="f09*", count=50))
    assert got == {f"f09{i:02}".encode() for i in range(100)}
    # A MULTI reads the collection from its own snapshot: one call with a large COUNT ends.
    p = r.pipeline(transaction=True)
    p.hscan("h", 0, count=2000)
    [(cursor, page)] = p.execute()
    assert cursor == 0 and len(page) == 1000
    # Fields the same transaction deleted first are skipped, and the rest still come back.
    r.hset("big", mapping={f"f{i:04}": "v" for i in range(1500)})
    p = r.pipeline(transaction=True)
    p.hdel("big", *[f"f{i:04}" for i in range(1000)])
    p.hscan("big", 0, count=5000)
    deleted, (cursor, page) = p.execute()
    assert deleted == 1000 and cursor == 0
    assert sorted(page) == [f"f{i:04}".encode() for i in range(1000, 1500)]
    r.set("str", "x")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        r.hscan("str", 0)
    assert r.sscan("missing", 0) == (0, [])
