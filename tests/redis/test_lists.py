import pytest
import redis


def test_push_pop_both_ends(r):
    assert r.rpush("l", "a", "b") == 2
    assert r.lpush("l", "z", "y") == 4
    assert r.lrange("l", 0, -1) == [b"y", b"z", b"a", b"b"]
    assert r.lpop("l") == b"y"
    assert r.rpop("l") == b"b"
    assert r.llen("l") == 2
    assert r.lpop("l", 5) == [b"z", b"a"]
    assert r.exists("l") == 0
    assert r.lpop("l") is None
    assert r.lpop("l", 2) is None
    assert r.rpushx("l", "x") == 0
    assert r.exists("l") == 0
    r.rpush("l", "1")
    assert r.lpushx("l", "0") == 2
    assert r.type("l") == b"list"


def test_index_range_set(r):
    r.rpush("l", *"abcdef")
    assert r.lindex("l", 0) == b"a"
    assert r.lindex("l", -1) == b"f"
    assert r.lindex("l", 99) is None
    assert r.lrange("l", 1, 3) == [b"b", b"c", b"d"]
    assert r.lrange("l", -2, 100) == [b"e", b"f"]
    assert r.lrange("l", 4, 2) == []
    assert r.lrange("missing", 0, -1) == []
    assert r.lset("l", 1, "B") is True
    assert r.lindex("l", 1) == b"B"
    with pytest.raises(redis.ResponseError, match="index out of range"):
        r.lset("l", 50, "x")
    with pytest.raises(redis.ResponseError, match="no such key"):
        r.lset("missing", 0, "x")


def test_trim_rem_insert_pos(r):
    r.rpush("l", *"abcabcabc")
    assert r.lrem("l", 2, "a") == 2
    assert r.lrange("l", 0, -1) == [b"b", b"c", b"b", b"c", b"a", b"b", b"c"]
    assert r.lrem("l", -1, "c") == 1
    assert r.lrange("l", 0, -1) == [b"b", b"c", b"b", b"c", b"a", b"b"]
    assert r.lrem("l", 0, "b") == 3
    assert r.lrange("l", 0, -1) == [b"c", b"c", b"a"]
    assert r.linsert("l", "before", "a", "X") == 4
    assert r.linsert("l", "after", "a", "Y") == 5
    assert r.linsert("l", "after", "nope", "Z") == -1
    assert r.lrange("l", 0, -1) == [b"c", b"c", b"X", b"a", b"Y"]
    assert r.lpos("l", "c") == 0
    assert r.lpos("l", "c", rank=2) == 1
    assert r.lpos("l", "c", rank=-1) == 1
    assert r.lpos("l", "c", count=0) == [0, 1]
    assert r.lpos("l", "nope") is None
    assert r.ltrim("l", 1, -2) is True
    assert r.lrange("l", 0, -1) == [b"c", b"X", b"a"]
    assert r.ltrim("l", 5, 10) is True
    assert r.exists("l") == 0


def test_move_between_lists(r):
    r.rpush("a", "1", "2", "3")
    assert r.rpoplpush("a", "b") == b"3"
    assert r.lmove("a", "b", "LEFT", "RIGHT") == b"1"
    assert r.lrange("a", 0, -1) == [b"2"]
    assert r.lrange("b", 0, -1) == [b"3", b"1"]
    assert r.rpoplpush("b", "b") == b"1"
    assert r.lrange("b", 0, -1) == [b"1", b"3"]
    assert r.rpoplpush("missing", "b") is None
    r.set("s", "x")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        r.rpoplpush("a", "s")
    assert r.lrange("a", 0, -1) == [b"2"]


def test_list_as_queue_under_concurrency(r):
    import threading

    kwargs = r.connection_pool.connection_kwargs

    def producer(n):
        c = redis.Redis(host=kwargs["host"], port=kwargs["port"], socket_timeout=30)
        for i in range(25):
            c.rpush("q", f"{n}-{i}")
        c.close()

    threads = [threading.Thread(target=producer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert r.llen("q") == 100
    assert len(set(r.lrange("q", 0, -1))) == 100
