"""A redis-py write loop for fault tests: SET and INCR against the given endpoints for a while,
moving to the next endpoint on any error, then check that every acknowledged write survived.

Prints one JSON line: acked, unknown, refused, lost, counter, and exits 1 on a lost write.
Usage: write_loop.py --urls redis://a,redis://b --seconds 8
"""

import argparse
import json
import sys
import time

import redis


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--urls", required=True)
    ap.add_argument("--seconds", type=float, default=8.0)
    args = ap.parse_args()
    clients = [redis.Redis.from_url(u, socket_timeout=5, socket_connect_timeout=1) for u in args.urls.split(",")]
    acked, unknown, refused = [], [], 0
    incr_acked, incr_unknown = 0, 0
    which, i = 0, 0
    end = time.monotonic() + args.seconds
    while time.monotonic() < end:
        c = clients[which % len(clients)]
        key, value = f"loop:{i}", f"v{i}"
        try:
            c.set(key, value)
            acked.append(i)
            c.incr("loop:counter")
            incr_acked += 1
        except redis.ResponseError as e:
            if str(e).startswith("TRYAGAIN"):
                refused += 1
            else:
                unknown.append(i)
                incr_unknown += 1
            which += 1
        except (redis.ConnectionError, redis.TimeoutError):
            # The connection failed with the request possibly sent: its outcome is unknown.
            unknown.append(i)
            incr_unknown += 1
            which += 1
            time.sleep(0.05)
        i += 1
    # Read everything back from whichever endpoint answers.
    lost, counter = [], None
    deadline = time.monotonic() + 60
    for c in clients:
        try:
            values = c.mget([f"loop:{k}" for k in acked]) if acked else []
            counter = int(c.get("loop:counter") or 0)
        except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError):
            if time.monotonic() > deadline:
                break
            continue
        lost = [k for k, v in zip(acked, values) if v != f"v{k}".encode()]
        break
    else:
        print(json.dumps({"error": "no endpoint answered the final read"}))
        return 1
    ok = not lost and acked and counter is not None and incr_acked <= counter <= incr_acked + incr_unknown
    print(json.dumps({
        "acked": len(acked), "unknown": len(unknown), "refused": refused, "lost": lost[:20],
        "counter": counter, "incr_acked": incr_acked, "incr_unknown": incr_unknown,
    }))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
