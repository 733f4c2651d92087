#!/usr/bin/env python3
"""netwhod under pressure and faults: POSTs faster than ingest (503 with
Retry-After, bounded memory, every acknowledged event stored exactly once),
a full disk (ingest off with the reason in logs, /health and /metrics,
queries on, back by itself when space returns), stale hosts in /health,
background retention while queries run, and a POST cut mid-body.  Servers
listen on 127.0.0.1 port 0; every wait is bounded."""
import http.client
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import netwho_e2e as E  # noqa: E402
import netwhod_server as S  # noqa: E402
from netwho_e2e import check  # noqa: E402

Server = S.Server
wait_for = S.wait_for


def events(first, n, host="ROBUST", day="2026-03-16", hour=0):
    """n TCP connect events (id 12), each its own connection: the source
    address counts up from `first`."""
    out = []
    for i in range(first, first + n):
        sec = i % 3600
        out.append(
            '{"system":{"provider":"Microsoft-Windows-Kernel-Network","event_id":"12",'
            '"time_created":"%sT%02d:%02d:%02d.%07dZ","execution":{"process_id":"4"},'
            '"computer":"%s"},"event_data":{"PID":"100","size":"0","daddr":"192.0.2.1",'
            '"saddr":"10.%d.%d.%d","dport":"443","sport":"50000","connid":"0",'
            '"seqnum":"0"}}\n' % (day, hour, sec // 60, sec % 60, i % 10000000, host,
                                   (i >> 16) & 255, (i >> 8) & 255, i & 255))
    return "".join(out).encode()


def connections(srv):
    st, _, h = srv.health()
    check(isinstance(h, dict) and "connections" in h, "health: %d %r" % (st, h))
    return h["connections"]


TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


@test
def post_backpressure(ctx):
    """16 clients POST 8 MB bodies as fast as they can against a 2 MB
    budget: some get 503 with Retry-After and an 'overloaded' error, the
    server's peak memory stays far below what 16 bodies held at once would
    take, and exactly the events of the 200 answers are stored.
    NETWHO_BP_BUDGET=1G shows what it guards against: no 503s, and the
    peak (printed) about 150 MB above the base against 60-70 MB here."""
    store = os.path.join(ctx.tmp, "store-bp")
    srv = Server(ctx, store, "--ingest-queue-bytes", os.environ.get("NETWHO_BP_BUDGET", "2M"), name="bp")
    per_body = 11000
    # One full-size body first: the base then holds what a single body
    # always costs (its buffer, the writer's page cache), so the peak
    # measures only what concurrent clients add.
    st, _, r = srv.request("POST", "/api/v1/events", events(0, per_body))
    check(st == 200 and r["accepted"] == per_body, "first POST: %d %r" % (st, r))
    base = srv.vm_hwm_kib()
    lock = threading.Lock()
    res = {"accepted": per_body, "ok": 0, "busy": 0, "bad": []}
    stop_at = time.time() + 6

    def client(t):
        k = 0
        while time.time() < stop_at:
            first = 1000000 + (t * 1000 + k) * per_body
            k += 1
            try:
                st, hd, r = srv.request("POST", "/api/v1/events", events(first, per_body))
            except (OSError, urllib.error.URLError) as e:
                # Refused early, the server may close before the whole body
                # was sent: that is a 503 the client could not read.
                with lock:
                    res["busy"] += 1
                    res.setdefault("reset", []).append(str(e))
                time.sleep(0.05)
                continue
            with lock:
                if st == 200:
                    res["ok"] += 1
                    res["accepted"] += r["accepted"]
                elif st == 503:
                    res["busy"] += 1
                    if not (hd.get("retry-after", "").isdigit() and
                            r["error"]["code"] == "overloaded"):
                        res["bad"].append((st, hd.get("retry-after"), r))
                else:
                    res["bad"].append((st, r))
            if st == 503:
                time.sleep(0.05)

    threads = [threading.Thread(target=client, args=(t,)) for t in range(16)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    peak = srv.vm_hwm_kib() - base
    print("post_backpressure: peak memory grew by %d KiB" % peak, flush=True)
    check(not res["bad"], "unexpected answers: %r" % res["bad"][:3])
    check(res["ok"] > 0 and res["busy"] > 0, "200s %d, 503s %d" % (res["ok"], res["busy"]))
    # 16 bodies of 8 MB read at once would be >= 128 MB (their buffers
    # double as they grow); the budget admits one body at a time here.
    check(peak < 100 * 1024, "peak memory grew by %d KiB" % peak)
    m = srv.metrics()
    check(m.get("netwhod_ingest_overloaded_total", 0) > 0, "no overloaded count in /metrics")
    # A request's bytes are released when libmicrohttpd has sent its answer,
    # a moment after the client read it.
    wait_for("the budget released",
             lambda: srv.metrics().get("netwhod_ingest_queue_bytes", -1) == 0, timeout=10)
    got = connections(srv)
    check(got == res["accepted"], "stored %d connections, 200 answers acknowledged %d"
          % (got, res["accepted"]))
    srv.stop()


TMPFS_SKIP = None


def fill_disk(mnt):
    """Fills mnt's file system with a file of zeros; returns its path (unlink
    it to give the space back)."""
    filler = os.path.join(mnt, "filler")
    # Unbuffered: a buffered file keeps the bytes a short write left over,
    # and its close would raise ENOSPC again, whenever the free space is
    # not a multiple of 64 KiB.
    with open(filler, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 65536)
        except OSError:
            pass
    return filler


def small_fs(ctx, size="3m"):
    """A small tmpfs (root only); None, with the reason in TMPFS_SKIP, if
    it cannot be mounted here."""
    global TMPFS_SKIP
    mnt = os.path.join(ctx.tmp, "smallfs-%d" % len(ctx.mounts))
    os.mkdir(mnt)
    if os.geteuid() != 0:
        TMPFS_SKIP = "not root: cannot mount a small tmpfs"
        return None
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=" + size, "tmpfs", mnt],
                       capture_output=True, text=True)
    if r.returncode != 0:
        TMPFS_SKIP = "mount -t tmpfs failed: %s" % (r.stderr.strip() or r.returncode)
        return None
    ctx.mounts.append(mnt)
    return mnt


@test
def disk_full_turns_ingest_off_and_back_on(ctx):
    """The store's file system fills up: the failing POST gets 503 (not
    200), ingest is off with the reason in the log, /health (503) and
    /metrics, queries keep answering; when space returns it is back on by
    itself, and the store holds exactly the acknowledged events."""
    mnt = small_fs(ctx)
    if mnt is None:
        print("SKIP disk_full_turns_ingest_off_and_back_on: %s" % TMPFS_SKIP)
        return
    store = os.path.join(mnt, "store")
    srv = Server(ctx, store, name="full")
    acked = 0
    st, _, r = srv.request("POST", "/api/v1/events", events(0, 500))
    check(st == 200, "first POST: %d %r" % (st, r))
    acked += r["accepted"]
    filler = fill_disk(mnt)
    refused = None
    for k in range(1, 60):
        st, hd, r = srv.request("POST", "/api/v1/events", events(k * 2000, 2000))
        if st == 200:
            acked += r["accepted"]
            continue
        check(st == 503 and hd.get("retry-after", "").isdigit(),
              "a failed POST: %d %r %r" % (st, hd, r))
        refused = r
        break
    check(refused is not None, "the disk never filled up")
    check(refused["error"]["code"] == "ingest_unavailable", "error: %r" % refused)
    st, _, h = srv.health()
    check(st == 503 and h["status"] == "unhealthy" and not h["ingest"]["up"] and
          any("ingest is off" in x for x in h["reasons"]), "health: %d %r" % (st, h))
    m = srv.metrics()
    check(m.get("netwhod_ingest_up") == 0 and m.get("netwhod_ingest_errors_total", 0) >= 1,
          "metrics: up %r errors %r" % (m.get("netwhod_ingest_up"),
                                        m.get("netwhod_ingest_errors_total")))
    check("ingest is off" in srv.text(), "not logged: %s" % srv.text()[-800:])
    # While off: POSTs are refused at once, queries answer.
    st, _, r = srv.request("POST", "/api/v1/events", events(900000, 10))
    check(st == 503 and r["error"]["code"] == "ingest_unavailable", "while off: %d" % st)
    rows = srv.get("/api/v1/connections?limit=10000")["data"]
    check(len(rows) == acked, "query while off: %d rows, %d acknowledged" % (len(rows), acked))
    os.unlink(filler)
    wait_for("ingest back on", lambda: srv.health()[0] == 200, timeout=30)
    check("ingest is back on" in srv.text(), "recovery not logged")
    st, _, r = srv.request("POST", "/api/v1/events", events(950000, 300))
    check(st == 200, "after space returned: %d %r" % (st, r))
    acked += r["accepted"]
    check(srv.metrics().get("netwhod_ingest_up") == 1, "metrics: not up again")
    got = connections(srv)
    check(got == acked, "stored %d connections, acknowledged %d" % (got, acked))
    srv.stop()


@test
def disk_full_while_following(ctx):
    """A followed file's batches while the disk is full: the reader holds
    its batch (state shows 'waiting: ...'), reads no further, and once space
    returns the store equals gen.py's expected answers exactly -- the failed
    commits cost nothing and counted nothing twice."""
    import test_follow as TF
    mnt = small_fs(ctx, "6m")
    if mnt is None:
        print("SKIP disk_full_while_following: %s" % TMPFS_SKIP)
        return
    data, exp = TF.gen(ctx, "fullfollow", 3000, 21)
    cut = data.rfind(b"\n", 0, len(data) // 3) + 1
    path = os.path.join(ctx.tmp, "follow-full.ndjson")
    with open(path, "wb") as f:
        f.write(data[:cut])
    store = os.path.join(mnt, "store")
    srv = TF.Server(ctx, store, "--follow", path, name="fullfollow").wait_port()
    TF.wait_for("part 1", lambda: srv.source()["bytes_read"] >= cut)
    time.sleep(1.5)
    filler = fill_disk(mnt)
    with open(path, "ab") as f:
        f.write(data[cut:])

    def health():
        st, _, h = srv.health()
        return st, h
    TF.wait_for("ingest off", lambda: health()[0] == 503, timeout=30)
    st, h = health()
    check(not h["ingest"]["up"] and h["ingest"]["error"], "health: %r" % h["ingest"])
    os.unlink(filler)
    TF.wait_for("ingest on", lambda: health()[0] == 200, timeout=30)
    # The held batch was read before the disk filled (bytes_read is whole
    # already): wait until it is taken, then for the reorder window.
    TF.wait_for("the held batch taken", lambda: srv.source()["accepted"] >= 3000, timeout=30)
    TF.drained(srv, len(data))
    rows = TF.compare(ctx, exp, store, "a disk full while following")
    TF.compare_failures_and_transfers(ctx, exp, srv, rows, "a disk full while following")
    srv.stop()


@test
def fifo_writer_waits_while_ingest_is_off(ctx):
    """The disk full under a FIFO source: the reader keeps its batch and
    reads no further, so the writer blocks instead of netwhod buffering
    its megabytes; when space returns the writer finishes and every event
    is stored."""
    mnt = small_fs(ctx, "8m")
    if mnt is None:
        print("SKIP fifo_writer_waits_while_ingest_is_off: %s" % TMPFS_SKIP)
        return
    store = os.path.join(mnt, "store")
    fifo = os.path.join(ctx.tmp, "full.fifo")
    srv = Server(ctx, store, "--fifo", fifo, name="fifofull")
    filler = fill_disk(mnt)
    n = 12000
    body = events(0, n)
    done = threading.Event()

    def writer():
        with open(fifo, "wb") as f:
            f.write(body)
        done.set()
    th = threading.Thread(target=writer)
    th.start()
    wait_for("ingest off", lambda: srv.health()[0] == 503, timeout=30)
    time.sleep(2)
    check(not done.is_set(), "the writer of %d bytes was not held back" % len(body))
    st, _, h = srv.health()
    read = h["sources"][0]["bytes_read"]
    check(read < len(body) // 2, "read %d of %d bytes while ingest was off" % (read, len(body)))
    os.unlink(filler)
    check(done.wait(60), "the writer never finished")
    th.join(10)
    wait_for("all events taken", lambda: srv.health()[2]["sources"][0]["accepted"] >= n,
             timeout=60)
    srv.stop()
    res = E.run([ctx.netwho, "query", "--store", store, "-o", "json"])
    check(res.rc == 0, res.describe())
    check(len(E.parse_json_output(res)) == n, "stored connections differ from %d" % n)


@test
def stale_hosts_and_gauges(ctx):
    """--stale-after: a host whose newest event is older makes /health 503
    naming it; a fresh host does not; /metrics has the same as gauges."""
    store = os.path.join(ctx.tmp, "store-stale")
    srv = Server(ctx, store, "--stale-after", "2h", name="stale")
    now = time.gmtime()
    # FRESH's events are at the start of this hour: under 2 h old.
    fresh = events(0, 5, host="FRESH", day=time.strftime("%Y-%m-%d", now), hour=now.tm_hour)
    st, _, r = srv.request("POST", "/api/v1/events", fresh)
    check(st == 200, "fresh POST: %d %r" % (st, r))
    st, _, h = srv.health()
    check(st == 200 and h["status"] == "ok", "fresh host only: %d %r" % (st, h.get("reasons")))
    st, _, r = srv.request("POST", "/api/v1/events", events(100, 5, host="OLDHOST"))
    check(st == 200, "old POST: %d %r" % (st, r))
    st, _, h = srv.health()
    check(st == 503 and h["status"] == "unhealthy" and
          any("OLDHOST" in x and "stale" in x for x in h["reasons"]) and
          not any("FRESH" in x for x in h["reasons"]),
          "health with a stale host: %d %r" % (st, h.get("reasons")))
    m = srv.metrics()
    old = m.get('netwhod_host_last_event_seconds{host="OLDHOST"}')
    check(old is not None and abs(old - 1773619200) < 3600,
          "gauge of OLDHOST: %r" % old)
    check(m.get("netwhod_ingest_up") == 1, "ingest_up: %r" % m.get("netwhod_ingest_up"))
    srv.stop()
    srv = Server(ctx, store, "--stale-after", "3650d", name="stale2")
    st, _, h = srv.health()
    check(st == 200 and h["status"] == "ok" and h["reasons"] == [], "not stale: %d %r" % (st, h))
    srv.stop()
    srv = Server(ctx, store, name="stale3")
    st, _, h = srv.health()
    check(st == 200, "without --stale-after: %d" % st)
    srv.stop()


@test
def retention_while_queries_run(ctx):
    """Six old daily partitions and today's: netwhod --retention-days 30
    drops the old ones in the background while clients query; every answer
    is a 200 with today's rows whole, and afterwards the files are gone."""
    store = os.path.join(ctx.tmp, "store-ret")
    src = os.path.join(ctx.tmp, "ret.ndjson")
    today = time.strftime("%Y-%m-%d", time.gmtime())
    with open(src, "wb") as f:
        for d in range(6):
            f.write(events(d * 1000, 400, day="2026-01-%02d" % (10 + d)))
        f.write(events(90000, 300, host="TODAY", day=today, hour=0))
    res = E.run([ctx.netwho, "ingest", "--store", store, src])
    check(res.rc == 0, res.describe())
    before = sorted(x for x in os.listdir(store) if x.startswith("p-") and x.endswith(".db"))
    check(len(before) == 7, "partitions: %r" % before)
    srv = Server(ctx, store, "--retention-days", "30", "--retention-interval", "1",
                 name="ret")
    bad = []
    counts = []
    stop = threading.Event()

    def client():
        while not stop.is_set():
            try:
                st, _, r = srv.request("GET", "/api/v1/connections?limit=10000")
                if st != 200:
                    bad.append((st, r))
                    continue
                n = len(r["data"])
                today_rows = sum(1 for c in r["data"] if c["host"] == "TODAY")
                counts.append(n)
                if today_rows != 300 or n < 300 or n > 2700:
                    bad.append(("rows", n, today_rows))
                st, _, r = srv.request("GET", "/api/v1/stats/top?by=host")
                if st != 200:
                    bad.append((st, r))
            except Exception as e:  # noqa: BLE001
                bad.append(repr(e))

    threads = [threading.Thread(target=client) for _ in range(3)]
    for th in threads:
        th.start()
    try:
        wait_for("retention", lambda: connections(srv) == 300, timeout=30)
        time.sleep(0.5)
    finally:
        stop.set()
        for th in threads:
            th.join(60)
    check(not bad, "answers during retention: %r" % bad[:3])
    check(counts, "no query ran")
    after = sorted(x for x in os.listdir(store) if x.startswith("p-") and x.endswith(".db"))
    check(after == ["p-%s.db" % today], "left: %r" % after)
    check(srv.metrics().get("netwhod_retention_partitions_dropped_total") == 6,
          "dropped count in /metrics")
    check("retention: dropped 6 partitions" in srv.text(), "not logged")
    srv.stop()
    # --max-store-bytes: the oldest go until the store fits, never the newest.
    store2 = os.path.join(ctx.tmp, "store-ret2")
    res = E.run([ctx.netwho, "ingest", "--store", store2, src])
    check(res.rc == 0, res.describe())
    srv = Server(ctx, store2, "--max-store-bytes", "1K", "--retention-interval", "1",
                 name="ret2")
    wait_for("size retention", lambda: connections(srv) == 300, timeout=30)
    srv.stop()


@test
def post_cut_mid_body(ctx):
    """A client that sends half its body and disconnects: nothing of it is
    stored, its admission is released, and the next POST is whole."""
    store = os.path.join(ctx.tmp, "store-cut")
    srv = Server(ctx, store, "--ingest-queue-bytes", "1M", name="cut")
    body = events(0, 1000)
    for _ in range(3):
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        s.sendall(b"POST /api/v1/events HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Type: application/x-ndjson\r\nContent-Length: %d\r\n\r\n"
                  % len(body))
        s.sendall(body[:len(body) // 2])
        time.sleep(0.2)
        s.close()
    wait_for("admission released",
             lambda: srv.metrics().get("netwhod_ingest_queue_bytes") == 0, timeout=10)
    check(connections(srv) == 0, "a cut body was stored")
    st, _, r = srv.request("POST", "/api/v1/events", events(5000, 200))
    check(st == 200 and r["accepted"] == 200, "whole POST: %d %r" % (st, r))
    check(connections(srv) == 200, "stored %d" % connections(srv))
    srv.stop()


@test
def truncated_partition(ctx):
    """An older partition cut short (a torn copy, a bad restore): netwhod
    starts, queries that touch it get an error answer or the rows it still
    has -- never a crash -- and those of the intact partition are whole;
    ingest goes on."""
    store = os.path.join(ctx.tmp, "store-trunc")
    src = os.path.join(ctx.tmp, "trunc.ndjson")
    with open(src, "wb") as f:
        f.write(events(0, 2000, day="2026-03-15"))
        f.write(events(5000, 300, day="2026-03-16"))
    res = E.run([ctx.netwho, "ingest", "--store", store, src])
    check(res.rc == 0, res.describe())
    old = os.path.join(store, "p-2026-03-15.db")
    check(os.path.getsize(old) > 16384, "partition too small: %d" % os.path.getsize(old))
    with open(old, "r+b") as f:
        f.truncate(8192)
    srv = Server(ctx, store, name="trunc")
    for path in ("/api/v1/connections?limit=10000", "/api/v1/stats/top?by=host",
                 "/api/v1/connections?limit=10&format=ndjson", "/api/v1/health", "/metrics"):
        try:
            st, _, _ = srv.request("GET", path)
        except (OSError, http.client.HTTPException) as e:
            # A streamed answer whose status line went out before the
            # damage was read is cut off (the only way to say it failed).
            check("format=ndjson" in path, "%s: %r" % (path, e))
            continue
        check(st in (200, 500, 503), "%s: %d" % (path, st))
    rows = srv.get("/api/v1/connections?from=2026-03-16T00:00:00Z&limit=10000")["data"]
    check(len(rows) == 300, "intact partition: %d rows" % len(rows))
    st, _, r = srv.request("POST", "/api/v1/events", events(9000, 50, day="2026-03-17"))
    check(st == 200, "ingest after a damaged partition: %d %r" % (st, r))
    check(srv.p.poll() is None, "netwhod died")
    srv.stop()


@test
def fifo_writer_cut_mid_line(ctx):
    """A FIFO writer that leaves mid-line: its partial event is rejected as
    truncated (and kept as a dead letter), never run into the next
    writer's bytes -- the next writer's first event is stored."""
    store = os.path.join(ctx.tmp, "store-fifo")
    fifo = os.path.join(ctx.tmp, "cut.fifo")
    srv = Server(ctx, store, "--fifo", fifo, name="fifo")
    first = events(0, 10)
    partial = events(10, 1)
    second = events(20, 20)
    with open(fifo, "wb") as f:
        f.write(first + partial[:len(partial) // 2])
    time.sleep(0.3)
    with open(fifo, "wb") as f:
        f.write(second)

    def done():
        st, _, h = srv.health()
        s = h["sources"][0]
        return h if s["accepted"] + s["rejected"] >= 31 else None
    h = wait_for("both writers ingested", done, timeout=20)
    s = h["sources"][0]
    check(s["accepted"] == 30 and s["rejected"] == 1,
          "accepted %d rejected %d (want 30, 1)" % (s["accepted"], s["rejected"]))
    check(h["ingest"]["rejected_by_reason"].get("truncated") == 1,
          "reasons: %r" % h["ingest"]["rejected_by_reason"])
    srv.stop()                       # the stop writes the open connections
    check("1 writers left mid-object" in srv.text(), "not logged: %s" % srv.text()[-600:])
    res = E.run([ctx.netwho, "query", "--store", store, "-o", "json"])
    check(res.rc == 0, res.describe())
    rows = E.parse_json_output(res)
    check(len(rows) == 30, "stored %d connections, want 30" % len(rows))


def main():
    return S.run_tests(TESTS, "netwho-robust-")


if __name__ == "__main__":
    sys.exit(main())
