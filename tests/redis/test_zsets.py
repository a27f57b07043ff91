import pytest
import redis


def pairs(reply):
    """(member, score) tuples, however the protocol shaped them (RESP3 gives lists, and a
    flat pair for ZPOPMIN without a count)."""
    if reply and not isinstance(reply[0], (list, tuple)):
        reply = [reply[i : i + 2] for i in range(0, len(reply), 2)]
    return [tuple(p) for p in reply]


def test_zadd_score_card_rank(r):
    assert r.zadd("z", {"a": 1, "b": 2, "c": 3}) == 3
    assert r.zadd("z", {"a": 1.5}) == 0
    assert r.zscore("z", "a") == 1.5
    assert r.zscore("z", "nope") is None
    assert r.zcard("z") == 3
    assert r.zrank("z", "a") == 0
    assert r.zrevrank("z", "a") == 2
    assert r.zrank("z", "nope") is None
    assert r.zmscore("z", ["a", "nope", "c"]) == [1.5, None, 3.0]
    assert r.type("z") == b"zset"


def test_zadd_options(r):
    r.zadd("z", {"a": 5})
    assert r.zadd("z", {"a": 1, "b": 1}, nx=True) == 1
    assert r.zscore("z", "a") == 5
    assert r.zadd("z", {"a": 7, "c": 1}, xx=True) == 0
    assert r.zscore("z", "a") == 7 and r.zscore("z", "c") is None
    assert r.zadd("z", {"a": 3}, gt=True, ch=True) == 0
    assert r.zadd("z", {"a": 9}, gt=True, ch=True) == 1
    assert r.zadd("z", {"a": 2}, lt=True, ch=True) == 1
    assert r.zadd("z", {"a": 3}, incr=True) == 5.0
    assert r.zincrby("z", 2.5, "a") == 7.5
    assert r.zincrby("z", 1, "new") == 1.0
    with pytest.raises(redis.ResponseError, match="not compatible"):
        r.execute_command("ZADD", "z", "NX", "XX", "1", "a")
    with pytest.raises(redis.ResponseError, match="not a valid float"):
        r.execute_command("ZADD", "z", "x", "a")
    with pytest.raises(redis.ResponseError):
        r.execute_command("ZADD", "z", "1", "a", "2")


def test_ranges(r):
    r.zadd("z", {"a": 1, "b": 2, "c": 3, "d": 4, "e": 5})
    assert r.zrange("z", 0, 1) == [b"a", b"b"]
    assert pairs(r.zrange("z", -2, -1, withscores=True)) == [(b"d", 4.0), (b"e", 5.0)]
    assert r.zrevrange("z", 0, 1) == [b"e", b"d"]
    assert r.zrangebyscore("z", 2, 4) == [b"b", b"c", b"d"]
    assert r.zrangebyscore("z", "(2", "+inf") == [b"c", b"d", b"e"]
    assert pairs(r.zrangebyscore("z", "-inf", "(3", withscores=True)) == [(b"a", 1.0), (b"b", 2.0)]
    assert r.zrangebyscore("z", 1, 5, start=1, num=2) == [b"b", b"c"]
    assert r.zrevrangebyscore("z", 4, 2) == [b"d", b"c", b"b"]
    assert r.zrange("z", 4, 2, byscore=True, desc=True) == [b"d", b"c", b"b"]
    assert r.zrange("z", 0, -1, desc=True) == [b"e", b"d", b"c", b"b", b"a"]
    assert r.zcount("z", 2, 4) == 3
    assert r.zcount("z", "(2", "(4") == 1
    assert r.zrange("missing", 0, -1) == []
    r.zadd("lex", {"a": 0, "b": 0, "c": 0, "d": 0})
    assert r.zrangebylex("lex", "[b", "(d") == [b"b", b"c"]
    assert r.zrange("lex", "-", "+", bylex=True) == [b"a", b"b", b"c", b"d"]
    with pytest.raises(redis.ResponseError, match="min or max is not a float"):
        r.zrangebyscore("z", "x", 3)


def test_removal(r):
    r.zadd("z", {"a": 1, "b": 2, "c": 3, "d": 4, "e": 5})
    assert r.zrem("z", "a", "nope") == 1
    assert r.zremrangebyrank("z", 0, 0) == 1
    assert r.zrange("z", 0, -1) == [b"c", b"d", b"e"]
    assert r.zremrangebyscore("z", "(3", 4) == 1
    assert pairs(r.zpopmin("z")) == [(b"c", 3.0)]
    assert pairs(r.zpopmax("z", 5)) == [(b"e", 5.0)]
    assert r.exists("z") == 0
    assert r.zpopmin("z") == []


def test_zscan_and_wrongtype(r):
    r.zadd("z", {f"m{i}": i for i in range(20)})
    got = dict(r.zscan_iter("z"))
    assert len(got) == 20 and got[b"m7"] == 7.0
    r.set("s", "x")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        r.zadd("s", {"a": 1})
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        r.zrange("s", 0, -1)


def test_a_leaderboard_under_concurrency(r):
    import threading

    kwargs = r.connection_pool.connection_kwargs

    def player(n):
        c = redis.Redis(host=kwargs["host"], port=kwargs["port"], socket_timeout=30)
        for _ in range(25):
            c.zincrby("board", 1, f"p{n % 2}")
        c.close()

    threads = [threading.Thread(target=player, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert pairs(r.zrange("board", 0, -1, withscores=True)) == [(b"p0", 50.0), (b"p1", 50.0)]
