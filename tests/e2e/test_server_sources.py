#!/usr/bin/env python3
"""netwhod live sources (--fifo, --follow, --stdin) end to end: events
written while the server runs are ingested, queryable over HTTP, and after a
SIGTERM the store holds the expected connections.  /api/v1/health reports
each source (state, bytes, counts, last error) and each host's newest
event; its answers are validated against openapi.yaml."""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import netwho_e2e as E  # noqa: E402
import openapi_check as O  # noqa: E402
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
    store = os.path.join(ctx.tmp, "store-" + name)
    log = open(os.path.join(ctx.tmp, name + ".log"), "w+b")
    p = subprocess.Popen([ctx.netwhod, "--store", store, "--listen", "127.0.0.1:0",
                          "--host", HOST] + list(extra),
                         stdin=stdin if stdin is not None else subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=log)
    p.log, p.store = log, store
    ctx.procs.append(p)
    deadline = time.time() + 20
    while time.time() < deadline:
        log.seek(0)
        for line in log.read().decode("utf-8", "replace").splitlines():
            if "listening on http://127.0.0.1:" in line:
                p.port = int(line.rsplit(":", 1)[1].strip("/"))
                return p
        check(p.poll() is None, "netwhod exited: %s" % logtext(p)[-800:])
        time.sleep(0.05)
    raise E.Failed("netwhod reported no port")


def logtext(p):
    p.log.seek(0)
    return p.log.read().decode("utf-8", "replace")


RECORDER = O.Recorder()


def health(p):
    """GET /api/v1/health (recorded for the openapi.yaml check)."""
    url = "http://127.0.0.1:%d/api/v1/health" % p.port
    try:
        r = urllib.request.urlopen(url, timeout=10)
    except urllib.error.HTTPError as e:
        r = e                        # 503: unhealthy, the same body shape
    with r:
        body = r.read()
        status = r.status if hasattr(r, "status") else r.code
        RECORDER.add("GET", "/api/v1/health", status,
                     {k.lower(): v for k, v in r.getheaders()}, body)
    out = json.loads(body)
    out["_code"] = status
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
    url = "http://127.0.0.1:%d/api/v1/connections?limit=10000" % p.port
    with urllib.request.urlopen(url, timeout=10) as r:
        return len(json.load(r)["data"])


def has_partition(store):
    try:
        return any(n.startswith("p-") and n.endswith(".db") for n in os.listdir(store))
    except OSError:
        return False


def settle(p, timeout=20):
    """Polls until the connection count is non-zero and stable for 2.5 s."""
    deadline = time.time() + timeout
    last, since = -1, time.time()
    # Not before something was ingested: a connections query on an empty
    # store trips UBSan in store/query.c (qsort(NULL, 0)) -- reported.
    while time.time() < deadline and not has_partition(p.store):
        time.sleep(0.1)
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
    p.send_signal(signal.SIGTERM)
    try:
        rc = p.wait(20)
    except subprocess.TimeoutExpired:
        raise E.Failed("netwhod did not stop within 20 s of SIGTERM")
    check(rc == 0, "netwhod exit %s: %s" % (rc, logtext(p)[-800:]))
    for bad in ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer"):
        check(bad not in logtext(p), "sanitizer report: %s" % logtext(p)[-2000:])


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


@test
def health_conforms_to_openapi(ctx):
    recs = RECORDER.records
    check(len(recs) >= 5, "only %d /health answers recorded" % len(recs))
    checked, failures = O.validate(ctx.src, recs)
    check(not failures, "%d /health answers do not conform: %s" % (
        len(failures), O.describe(failures)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin-dir", required=True)
    ap.add_argument("--source-dir", required=True)
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()

    class Ctx:
        pass
    ctx = Ctx()
    ctx.netwhod = os.path.join(os.path.abspath(a.bin_dir), "netwhod")
    ctx.netwho = os.path.join(os.path.abspath(a.bin_dir), "netwho")
    ctx.src = os.path.abspath(a.source_dir)
    ctx.tmp = tempfile.mkdtemp(prefix="netwho-src-")
    ctx.procs = []
    passed = failed = 0
    try:
        ctx.data = os.path.join(ctx.tmp, "events.ndjson")
        exp = ctx.data + ".json"
        res = E.run([sys.executable, os.path.join(a.source_dir, "bench", "gen.py"),
                     "--events", "3000", "--hosts", "3", "--seed", "11",
                     "--out", ctx.data, "--expect", exp,
                     "--empty-computer-host", HOST], timeout=120)
        if res.rc != 0:
            print("FAIL setup: " + res.describe())
            print("0 passed, 1 failed")
            return 1
        with open(exp) as f:
            ctx.exp = json.load(f)
        for fn in TESTS:
            t0 = time.time()
            try:
                fn(ctx)
                passed += 1
                print("PASS %s (%.1fs)" % (fn.__name__, time.time() - t0))
            except Exception as e:  # noqa: BLE001
                failed += 1
                msg = str(e) if isinstance(e, AssertionError) else traceback.format_exc()
                print("FAIL %s (%.1fs)\n    %s" % (fn.__name__, time.time() - t0,
                                                  msg.replace("\n", "\n    ")))
            sys.stdout.flush()
    finally:
        for p in ctx.procs:
            if p.poll() is None:
                p.kill()
                p.wait(5)
        if a.keep:
            print("kept %s" % ctx.tmp)
        else:
            shutil.rmtree(ctx.tmp, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
