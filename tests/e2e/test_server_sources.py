#!/usr/bin/env python3
"""netwhod live sources (--fifo, --follow, --stdin) end to end: events
written while the server runs are ingested, queryable over HTTP, and after a
SIGTERM the store holds the expected connections.  /api/v1/health reports
each source (state, bytes, counts, last error) and each host's newest
event; its answers are validated against openapi.yaml."""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import netwho_e2e as E  # noqa: E402
import netwhod_server as S  # noqa: E402
from netwho_e2e import check  # noqa: E402

HOST = "empty-host"


def split_data(ctx):
    """Lines before split_time, lines from it (as test_ingest_query.py)."""
    T = E.ticks_of(ctx.exp["split_time"])
    a, b = [], []
    with open(ctx.data, "rb") as f:
        for line in f:
            t = None
            try:
                t = E.parse_time(json.loads(line)["system"]["time_created"])
            except (ValueError, KeyError, TypeError):
                pass
            (b if t is not None and t >= T else a).append(line)
    return b"".join(a), b"".join(b)


def start(ctx, name, *extra, stdin=None):
    """netwhod on its own store-NAME, listening, --host empty-host."""
    return S.Server(ctx, os.path.join(ctx.tmp, "store-" + name), *extra, name=name,
                    host=HOST, stdin=stdin)


def health(p):
    """/api/v1/health's body, with its status in "_code" (503 is an
    answer too)."""
    st, _, out = p.health()
    out["_code"] = st
    return out


def source_done(p, total, timeout=20):
    """Polls /health until its one source has accounted for total events
    (accepted + rejected); returns that source."""
    deadline = time.time() + timeout
    while True:
        h = health(p)
        check(len(h["sources"]) == 1, "sources %r" % h["sources"])
        src = h["sources"][0]
        if src["accepted"] + src["rejected"] >= total or time.time() > deadline:
            return h, src
        time.sleep(0.2)


def check_source(ctx, h, src, kind, path, nbytes, state):
    exp = ctx.exp
    check(src["kind"] == kind and src["path"] == path and src["state"] == state,
          "source %r, expected %s %s %s" % (src, kind, path, state))
    check(src["accepted"] == exp["accepted"] and src["rejected"] == exp["rejected"] and
          src["failed_batches"] == 0 and src["last_error"] is None,
          "source counts %r, expected %d accepted, %d rejected" % (
              src, exp["accepted"], exp["rejected"]))
    check(src["bytes_read"] == nbytes, "bytes_read %d, expected %d" % (src["bytes_read"],
                                                                     nbytes))
    check(h["status"] == "ok", "status %r" % h["status"])
    check(h["ingest"]["accepted"] == exp["accepted"] and
          h["ingest"]["rejected_by_reason"] == exp["rejected_by_reason"],
          "ingest %r" % h["ingest"])
    # Each host's newest event, as the expectation has it.
    want = {}
    for c in exp["connections"]:
        want[c["host"]] = max(want.get(c["host"], 0), E.ticks_of(c["last_seen"]))
    for f in exp["failures"]:
        want[f["host"]] = max(want.get(f["host"], 0), E.ticks_of(f["time"]))
    got = {x["host"]: E.ticks_of(x["last_event"]) for x in h["hosts"]}
    check(got == want, "hosts %r, expected %r" % (sorted(got.items()), sorted(want.items())))


def count(p):
    return len(p.get("/api/v1/connections?limit=10000")["data"])


def has_partition(store):
    try:
        return any(n.startswith("p-") and n.endswith(".db") for n in os.listdir(store))
    except OSError:
        return False


def settle(p, timeout=20):
    """Polls until the connection count is non-zero and stable for 2.5 s."""
    deadline = time.time() + timeout
    last, since = -1, time.time()
    while time.time() < deadline:
        n = count(p)
        if n != last:
            last, since = n, time.time()
        elif n > 0 and time.time() - since >= 2.5:
            return n
        time.sleep(0.25)
    raise E.Failed("connection count did not settle within %ds (last %d)"
                   % (timeout, last))


def stop(p):
    p.stop()


def query(ctx, store):
    res = E.run([ctx.netwho, "query", "--store", store, "-o", "json"])
    check(res.rc == 0, res.describe())
    return E.parse_json_output(res)


def compare(ctx, rows, split, what):
    """As test_ingest_query.py's two-run test: when the trace was fed in
    two parts, UDP flows that might go on across the cut are not compared
    on state.  (Here a wall-clock tick may also end them: same rule.)"""
    loose = set()
    # Wall-clock ticks end every UDP flow once it is 60 s old in real time;
    # one run over the file leaves those near its end "established".
    wm = E.ticks_of(ctx.exp["watermark"])
    for c in ctx.exp["connections"]:
        if c["proto"] == "udp" and wm - E.ticks_of(c["last_seen"]) < E.UDP_IDLE:
            loose.add(E.transfer_key(c))
    if split:
        T = E.ticks_of(ctx.exp["split_time"])
        w1 = max(E.ticks_of(c["last_seen"]) for c in ctx.exp["connections"]
                 if E.ticks_of(c["last_seen"]) < T)
        for c in ctx.exp["connections"]:
            last = E.ticks_of(c["last_seen"])
            if c["proto"] == "udp" and last < T and w1 - last < E.UDP_IDLE:
                loose.add(E.transfer_key(c))

    def strip(rs):
        return [{k: v for k, v in r.items()
                 if not (k == "state" and E.transfer_key(r) in loose)}
                for r in rs]
    d = E.multiset_diff(strip(rows), strip(ctx.exp["connections"]))
    check(not d, "%s: %s" % (what, d))


TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


@test
def fifo_two_writers(ctx):
    fifo = os.path.join(ctx.tmp, "events.fifo")
    p = start(ctx, "fifo", "--fifo", fifo)
    check(os.path.exists(fifo), "no FIFO created")
    a, b = split_data(ctx)
    h = health(p)
    check([x["kind"] for x in h["sources"]] == ["fifo"] and
          h["sources"][0]["state"] in ("starting", "running"), "before: %r" % h["sources"])
    for part in (a, b):
        with open(fifo, "wb") as f:
            f.write(part)
        time.sleep(0.3)
    n = settle(p)
    h, src = source_done(p, ctx.exp["events"])
    check_source(ctx, h, src, "fifo", fifo, len(a) + len(b), "running")
    stop(p)
    check(not os.path.exists(fifo), "FIFO not removed at exit")
    rows = query(ctx, p.store)
    check(len(rows) >= n, "query has fewer rows than HTTP saw")
    compare(ctx, rows, True, "fifo")


@test
def fifo_refuses_regular_file(ctx):
    path = os.path.join(ctx.tmp, "not-a-fifo")
    with open(path, "w") as f:
        f.write("x")
    store = os.path.join(ctx.tmp, "store-nofifo")
    res = E.run([ctx.netwhod, "--store", store, "--listen", "127.0.0.1:0",
                 "--fifo", path], timeout=20)
    check(res.rc != 0, "netwhod accepted a regular file as --fifo")
    with open(path) as f:
        check(f.read() == "x", "the file was changed")


@test
def follow_appended(ctx):
    path = os.path.join(ctx.tmp, "follow.ndjson")
    a, b = split_data(ctx)
    with open(path, "wb") as f:
        f.write(a)
    p = start(ctx, "follow", "--follow", path)
    # Append after the first part is in the store AND after a pause of a few
    # seconds, so the idle ticks run: they must advance the stream's own
    # clock (this trace is historical), not jump to the wall clock, which
    # would end every UDP flow that spans the cut and split it in two.
    deadline = time.time() + 20
    while time.time() < deadline and not has_partition(p.store):
        time.sleep(0.05)
    time.sleep(2.5)
    with open(path, "ab") as f:
        f.write(b)
    settle(p)
    # Open connections are written at every commit now, so the count can
    # settle before the newest events leave the reorder buffer (3 s after
    # the last batch, by the idle ticks): wait for that before the hosts'
    # newest events are compared.
    time.sleep(3.5)
    h, src = source_done(p, ctx.exp["events"])
    check_source(ctx, h, src, "follow", path, len(a) + len(b), "running")
    stop(p)
    compare(ctx, query(ctx, p.store), True, "follow")


@test
def stdin_to_eof(ctx):
    with open(ctx.data, "rb") as f:
        p = start(ctx, "stdin", "--stdin", stdin=f)
        settle(p)
        # At EOF the source has ended, everything it read ingested.
        deadline = time.time() + 20
        while True:
            h = health(p)
            if h["sources"][0]["state"] == "ended" or time.time() > deadline:
                break
            time.sleep(0.2)
        check_source(ctx, h, h["sources"][0], "stdin", "-", os.path.getsize(ctx.data),
                     "ended")
        stop(p)
    compare(ctx, query(ctx, p.store), True, "stdin")


@test
def failing_source_degrades_health(ctx):
    """A source that cannot be read (a directory: read() fails with EISDIR)
    is 'failed' with its error, and /health answers 503 'unhealthy' naming
    it -- while the others go on."""
    good = os.path.join(ctx.tmp, "good.ndjson")
    with open(good, "wb") as f:
        f.write(split_data(ctx)[0][:20000].rsplit(b"\n", 1)[0] + b"\n")
    bad = os.path.join(ctx.tmp, "a-directory")
    os.mkdir(bad)
    p = start(ctx, "failing", "--follow", good, "--follow", bad)
    deadline = time.time() + 20
    while True:
        h = health(p)
        states = {x["path"]: x for x in h["sources"]}
        if states.get(bad, {}).get("state") == "failed" or time.time() > deadline:
            break
        time.sleep(0.1)
    b = states.get(bad)
    check(b and b["state"] == "failed" and b["last_error"] and "read" in b["last_error"],
          "the unreadable source: %r" % b)
    check(h["status"] == "unhealthy" and h.get("_code") == 503 and
          any(bad in r for r in h["reasons"]),
          "status %r (%r) with a failed source: %r" % (h["status"], h.get("_code"),
                                                      h.get("reasons")))
    g = states.get(good)
    check(g and g["state"] == "running" and g["last_error"] is None, "the good one: %r" % g)
    stop(p)


def setup(ctx):
    """gen.py's events (3 hosts) and expected answers, shared by every
    test."""
    ctx.data = os.path.join(ctx.tmp, "events.ndjson")
    exp = ctx.data + ".json"
    res = E.run([sys.executable, os.path.join(ctx.src, "bench", "gen.py"),
                 "--events", "3000", "--hosts", "3", "--seed", "11",
                 "--out", ctx.data, "--expect", exp,
                 "--empty-computer-host", HOST], timeout=120)
    check(res.rc == 0, res.describe())
    with open(exp) as f:
        ctx.exp = json.load(f)


def main():
    return S.run_tests(TESTS, "netwho-src-", setup=setup)


if __name__ == "__main__":
    sys.exit(main())
