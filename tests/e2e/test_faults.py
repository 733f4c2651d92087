#!/usr/bin/env python3
"""netwhod against a damaged or unwritable store: a read-only store at
start (a read-only mount of a copied store) and made read-only while it
runs, corrupted partition files (garbage over pages of an older and of the
newest partition, a garbage header), and a batch stalled on a lock
(--stall-after).  In each case: no crash, queries of what can be read keep
answering, ingest off with the reason in log, /health and /metrics, and
nothing acknowledged lost (compared with gen.py's expected answers).
Servers listen on 127.0.0.1 port 0; every wait is bounded."""
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import netwho_e2e as E  # noqa: E402
import netwhod_server as S  # noqa: E402
from netwho_e2e import check  # noqa: E402
import test_robust as R  # noqa: E402
import test_follow as TF  # noqa: E402

TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


def FServer(ctx, store, *args, name="netwhod", prefix=()):
    """test_follow's server (--host empty-host), optionally run through a
    prefix (setpriv)."""
    return S.Server(ctx, store, *args, name=name, host=TF.HOST, prefix=prefix, wait=False)


def health_status(srv):
    st, _, h = srv.health()
    return st, h


def ingest(ctx, store, path):
    res = E.run([ctx.netwho, "ingest", "--store", store, "--host", TF.HOST, path])
    check(res.rc == 0, res.describe())


def health(srv):
    st, _, h = srv.health()
    check(isinstance(h, dict) and "status" in h, "health: %d %r" % (st, h))
    return st, h


def mount_ro_bind(ctx, src):
    """A read-only bind mount of src; (path, None) or (None, why not)."""
    if os.geteuid() != 0:
        return None, "not root: cannot bind-mount a store read-only"
    mnt = os.path.join(ctx.tmp, "ro-%d" % len(ctx.mounts))
    os.mkdir(mnt)
    r = subprocess.run(["mount", "--bind", src, mnt], capture_output=True, text=True)
    if r.returncode != 0:
        return None, "mount --bind failed: %s" % (r.stderr.strip() or r.returncode)
    ctx.mounts.append(mnt)
    r = subprocess.run(["mount", "-o", "remount,ro,bind", mnt], capture_output=True, text=True)
    if r.returncode != 0:
        return None, "mount -o remount,ro,bind failed: %s" % (r.stderr.strip() or r.returncode)
    try:
        open(os.path.join(mnt, ".probe"), "w").close()
        return None, "the read-only bind mount is writable"
    except OSError:
        pass
    return mnt, None


@test
def read_only_store_at_start(ctx):
    """A store on a read-only mount (an analyst's evidence copy): netwhod
    starts and answers queries exactly (gen.py's answers), ingest is off
    with the reason (log, /health 503, /metrics 0), a POST gets 503 -- never
    200 -- and nothing is written.  Remounted read-write, ingest comes back
    by itself and a POST is stored next to the old rows."""
    data, exp = TF.gen(ctx, "ro", 2000, 31, start="2026-03-16T23:59:10Z")
    store = os.path.join(ctx.tmp, "store-ro")
    ingest(ctx, store, os.path.join(ctx.tmp, "ro.ndjson"))
    check(not any(n.endswith("-shm") or n.endswith("-wal") for n in os.listdir(store)),
          "a clean stop leaves no -wal/-shm: %r" % os.listdir(store))
    mnt, why = mount_ro_bind(ctx, store)
    if mnt is None:
        print("SKIP read_only_store_at_start: %s" % why)
        return
    before = sorted(os.listdir(store))
    srv = R.Server(ctx, mnt, name="ro")
    check("ingest is off" in srv.text() and "not writable" in srv.text(),
          "not logged: %s" % srv.text()[-800:])
    st, h = health(srv)
    check(st == 503 and h["status"] == "unhealthy" and h["ingest"]["up"] is False and
          "Read-only file system" in (h["ingest"]["error"] or "") and
          any("ingest is off" in x for x in h["reasons"]), "health: %d %r" % (st, h))
    check(h["connections"] == len(exp["connections"]) and h["store_check"] == "ok",
          "health facts: %r" % h)
    check(srv.metrics().get("netwhod_ingest_up") == 0, "metrics: ingest up")
    # Queries: every connection and the roll-up, as gen.py says.
    rows = TF.compare(ctx, exp, mnt, "a read-only store")
    got = srv.get("/api/v1/connections?limit=10000")["data"]
    check(len(got) == len(rows), "HTTP: %d rows, CLI %d" % (len(got), len(rows)))
    top = srv.get("/api/v1/stats/top?by=host")
    check(top, "stats/top: %r" % top)
    st, hd, r = srv.request("POST", "/api/v1/events", R.events(0, 50, day="2026-03-18"))
    check(st == 503 and r["error"]["code"] == "ingest_unavailable" and
          hd.get("retry-after", "").isdigit(), "POST on a read-only store: %d %r" % (st, r))
    check(sorted(os.listdir(store)) == before, "files changed: %r" % os.listdir(store))
    # Writable again: ingest comes back by itself.
    r = subprocess.run(["mount", "-o", "remount,rw,bind", mnt], capture_output=True, text=True)
    check(r.returncode == 0, "remount rw: %s" % r.stderr)
    R.wait_for("ingest back on", lambda: srv.health()[0] == 200, timeout=30)
    check("ingest is back on" in srv.text(), "recovery not logged")
    st, _, r = srv.request("POST", "/api/v1/events", R.events(0, 50, day="2026-03-18"))
    check(st == 200 and r["accepted"] == 50, "POST once writable: %d %r" % (st, r))
    got = srv.get("/api/v1/connections?limit=10000")["data"]
    check(len(got) == len(exp["connections"]) + 50,
          "after the POST: %d rows, want %d" % (len(got), len(exp["connections"]) + 50))
    check(srv.metrics().get("netwhod_ingest_up") == 1, "metrics: not up again")
    srv.stop()


def as_nobody(ctx):
    """Argv prefix running a command as an unprivileged user (root: setpriv
    to nobody) or [] if we are not root; None, with why, if neither."""
    if os.geteuid() != 0:
        return [], None
    if not shutil.which("setpriv"):
        return None, "root without setpriv: cannot drop privileges"
    return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"], None


@test
def read_only_while_following(ctx):
    """The store directory and its files lose their write permission while
    netwhod follows a file (run unprivileged: root ignores permissions).
    The batch is held (source 'waiting'), ingest off (/health 503, reason),
    queries answer; once writable again, ingest is back and the store
    equals gen.py's expected answers -- nothing lost, nothing twice."""
    prefix, why = as_nobody(ctx)
    if prefix is None:
        print("SKIP read_only_while_following: %s" % why)
        return
    data, exp = TF.gen(ctx, "rofollow", 3000, 32)
    cut = data.rfind(b"\n", 0, len(data) // 3) + 1
    base = os.path.join(ctx.tmp, "rofollow")
    os.mkdir(base)
    path = os.path.join(base, "in.ndjson")
    store = os.path.join(base, "store")
    os.mkdir(store)
    with open(path, "wb") as f:
        f.write(data[:cut])
    if prefix:
        os.chmod(ctx.tmp, 0o755)
        for p in (base, store, path):
            os.chown(p, 65534, 65534)
    srv = FServer(ctx, store, "--follow", path, name="rofollow", prefix=prefix).wait_port()
    TF.wait_for("part 1", lambda: srv.source()["accepted"] > 0)
    time.sleep(1.5)
    names = os.listdir(store)
    os.chmod(store, 0o555)
    for n in names:
        p = os.path.join(store, n)
        if os.path.isfile(p) and not n.endswith("-shm"):
            os.chmod(p, 0o444)
    try:
        with open(path, "ab") as f:
            f.write(data[cut:])
        st, h = TF.wait_for("ingest off", lambda: (lambda r: r if r[0] == 503 else None)(
            health_status(srv)), timeout=30)
        check(not h["ingest"]["up"] and h["ingest"]["error"], "health: %r" % h["ingest"])
        src = TF.wait_for("the source waiting", lambda: (lambda s: s if (s["last_error"] or "")
                                                         .startswith("waiting") else None)(
            srv.source()), timeout=15)
        check(src["state"] == "running", "source: %r" % src)
        rows = srv.get("/api/v1/connections?limit=10000")["data"]
        check(len(rows) <= len(exp["connections"]), "query while read-only: %d" % len(rows))
    finally:
        os.chmod(store, 0o755)
        for n in os.listdir(store):
            p = os.path.join(store, n)
            if os.path.isfile(p):
                os.chmod(p, 0o644)
    TF.wait_for("ingest on", lambda: health_status(srv)[0] == 200, timeout=30)
    TF.wait_for("the held batch taken", lambda: srv.source()["accepted"] >= 3000, timeout=30)
    TF.drained(srv, len(data))
    rows = TF.compare(ctx, exp, store, "a store read-only for a while")
    TF.compare_failures_and_transfers(ctx, exp, srv, rows, "a store read-only for a while")
    srv.stop()


def garble(path, offset, length, seed=7):
    import random
    rnd = random.Random(seed)
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(bytes(rnd.getrandbits(8) for _ in range(length)))


@test
def corrupted_partitions(ctx):
    """Garbage over pages in the middle of an older and of the newest
    partition: the start-up check names the newest (log, /health
    degraded); a query that reads a damaged partition is a JSON 500
    'store_corrupt' naming it; queries that leave them out answer
    exactly; a POST into another day is stored, one into the damaged
    newest partition turns ingest off (503 naming it) rather than crash,
    and nothing of it is stored."""
    store = os.path.join(ctx.tmp, "store-garble")
    src = os.path.join(ctx.tmp, "garble.ndjson")
    with open(src, "wb") as f:
        f.write(R.events(0, 3000, day="2026-03-14"))
        f.write(R.events(10000, 300, day="2026-03-15"))
        f.write(R.events(20000, 3000, day="2026-03-16"))
    ingest(ctx, store, src)
    older = os.path.join(store, "p-2026-03-14.db")
    newest = os.path.join(store, "p-2026-03-16.db")
    for p in (older, newest):
        size = os.path.getsize(p)
        check(size > 20 * 4096, "%s too small: %d" % (p, size))
        garble(p, size // 2 - 4096, 8 * 4096)
    srv = R.Server(ctx, store, name="garble")
    check("store check: ERROR: p-2026-03-16.db" in srv.text(), "not logged: %s" % srv.text())
    st, h = health(srv)
    check(st == 200 and h["status"] == "degraded" and "p-2026-03-16.db" in h["store_check"],
          "health: %d %r" % (st, h))
    rows = srv.get("/api/v1/connections?from=2026-03-15T00:00:00Z&to=2026-03-16T00:00:00Z"
                   "&limit=10000")["data"]
    check(len(rows) == 300, "intact partition: %d rows" % len(rows))
    for day in ("2026-03-14", "2026-03-16"):
        st, _, r = srv.request("GET", "/api/v1/connections?from=%sT00:00:00Z&limit=10000"
                               "&to=%sT23:59:59Z" % (day, day))
        check(st == 500 and isinstance(r, dict) and r["error"]["code"] == "store_corrupt" and
              ("p-%s.db" % day) in r["error"]["message"],
              "query of damaged %s: %d %r" % (day, st, r))
    st, _, r = srv.request("POST", "/api/v1/events", R.events(50000, 20, day="2026-03-17"))
    check(st == 200 and r["accepted"] == 20, "POST into a new day: %d %r" % (st, r))
    st, _, r = srv.request("POST", "/api/v1/events", R.events(60000, 2000, day="2026-03-16"))
    check(st == 503 and r["error"]["code"] == "ingest_unavailable" and
          "p-2026-03-16.db" in r["error"]["message"], "POST into the damaged partition: %d %r"
          % (st, r))
    st, h = health(srv)
    check(st == 503 and not h["ingest"]["up"] and "p-2026-03-16.db" in h["ingest"]["error"],
          "health after: %d %r" % (st, h["ingest"]))
    check("ingest is off: p-2026-03-16.db" in srv.text(), "not logged: %s" % srv.text()[-600:])
    rows = srv.get("/api/v1/connections?from=2026-03-17T00:00:00Z&limit=10000")["data"]
    check(len(rows) == 20, "the new day after the failed POST: %d rows" % len(rows))
    check(srv.p.poll() is None, "netwhod died")
    srv.stop()


@test
def garbage_partition_header(ctx):
    """The newest partition's header is garbage (not an SQLite file any
    more): reported at start, its queries are a JSON 500 naming it, the
    other partition answers."""
    store = os.path.join(ctx.tmp, "store-header")
    src = os.path.join(ctx.tmp, "header.ndjson")
    with open(src, "wb") as f:
        f.write(R.events(0, 200, day="2026-03-15"))
        f.write(R.events(1000, 200, day="2026-03-16"))
    ingest(ctx, store, src)
    garble(os.path.join(store, "p-2026-03-16.db"), 0, 100)
    srv = R.Server(ctx, store, name="header")
    st, h = health(srv)
    check(h["status"] == "degraded" and "p-2026-03-16.db" in h["store_check"],
          "health: %d %r" % (st, h))
    rows = srv.get("/api/v1/connections?to=2026-03-16T00:00:00Z&limit=10000")["data"]
    check(len(rows) == 200, "older partition: %d" % len(rows))
    st, _, r = srv.request("GET", "/api/v1/connections?from=2026-03-16T00:00:00Z")
    check(st == 500 and r["error"]["code"] == "store_corrupt" and
          "p-2026-03-16.db" in r["error"]["message"], "damaged: %d %r" % (st, r))
    check(srv.p.poll() is None, "netwhod died")
    srv.stop()


@test
def old_schema_upgraded_at_start(ctx):
    """A store whose partitions are all of schema version 1 (netwho 1: no
    who roll-up, the old window index): netwhod upgrades every one in place
    at start -- also the days it will not write again -- logs it, and
    answers exactly what gen.py expects; a second start has nothing to do."""
    data, exp = TF.gen(ctx, "v1", 2000, 37, start="2026-03-16T23:59:10Z")
    store = os.path.join(ctx.tmp, "store-v1")
    ingest(ctx, store, os.path.join(ctx.tmp, "v1.ndjson"))
    parts = sorted(n for n in os.listdir(store) if n.startswith("p-") and n.endswith(".db"))
    check(len(parts) >= 2, "partitions: %r" % parts)
    for name in parts:
        db = sqlite3.connect(os.path.join(store, name))
        db.executescript("DROP TABLE who_rollup; DROP INDEX conn_last_first;"
                         " CREATE INDEX conn_last ON connections(last_seen);"
                         " PRAGMA user_version=1;")
        db.close()

    def versions():
        out = {}
        for name in parts:
            db = sqlite3.connect(os.path.join(store, name))
            out[name] = (db.execute("PRAGMA user_version").fetchone()[0],
                         db.execute("SELECT count(*) FROM sqlite_master"
                                    " WHERE name = 'who_rollup'").fetchone()[0])
            db.close()
        return out
    check(set(versions().values()) == {(1, 0)}, "downgrade: %r" % versions())
    srv = R.Server(ctx, store, name="v1")
    want = "upgraded %d partitions from schema version 1 to" % len(parts)
    check(want in srv.text(), "not logged (%s): %s" % (want, srv.text()[-800:]))
    got = versions()
    check(len(set(got.values())) == 1 and list(got.values())[0][0] > 1 and
          list(got.values())[0][1] == 1, "after start: %r" % got)
    TF.compare(ctx, exp, store, "an upgraded store")
    who_ip = exp["connections"][0]["remote_ip"]
    rows = srv.get("/api/v1/ips/%s/processes?limit=10000" % who_ip)["data"]
    want_pids = sorted({(c["host"].lower(), c["pid"]) for c in exp["connections"]
                        if c["remote_ip"] == who_ip})
    check(sorted((r["host"].lower(), r["pid"]) for r in rows) == want_pids,
          "who %s: %r, want %r" % (who_ip, rows, want_pids))
    srv.stop()
    srv = R.Server(ctx, store, name="v1-again")
    check("upgraded" not in srv.text(), "upgraded twice: %s" % srv.text()[-800:])
    srv.stop()


@test
def stalled_batch(ctx):
    """--stall-after 2: a POST whose commit waits on a lock another
    process holds on the catalog makes /health 503 'ingest is stalled'
    and /metrics netwhod_ingest_stalled 1; once the lock goes the POST is
    answered 200, health is 200 again and every event is stored."""
    store = os.path.join(ctx.tmp, "store-stall")
    srv = R.Server(ctx, store, "--stall-after", "2", name="stall")
    st, _, r = srv.request("POST", "/api/v1/events", R.events(0, 100))
    check(st == 200, "first POST: %d %r" % (st, r))
    db = sqlite3.connect(os.path.join(store, "catalog.db"), timeout=5, isolation_level=None)
    db.execute("BEGIN IMMEDIATE")       # the writer's commit waits on this
    locked = True
    res = {}

    def post():
        res["r"] = srv.request("POST", "/api/v1/events", R.events(1000, 300))
    th = threading.Thread(target=post)
    th.start()
    try:
        # SQLite waits up to 5 s for the lock (NW_SQL_BUSY_TIMEOUT_MS): the
        # stall shows after 2 s; released as soon as it was seen.
        def stalled():
            st, h = health(srv)
            return (st, h) if st == 503 else None
        st, h = R.wait_for("the stall", stalled, timeout=4.5, every=0.05)
        m = srv.metrics()
        db.execute("ROLLBACK")
        locked = False
        check(any("ingest is stalled" in x for x in h["reasons"]) and
              h["ingest"]["stalled_seconds"] >= 2 and h["ingest"]["up"],
              "health: %r" % h)
        check(m.get("netwhod_ingest_stalled") == 1, "metrics: %r" %
              m.get("netwhod_ingest_stalled"))
    finally:
        if locked:
            db.execute("ROLLBACK")
        db.close()
        th.join(30)
    st, _, r = res["r"]
    check(st == 200 and r["accepted"] == 300, "the stalled POST: %d %r" % (st, r))
    st, h = health(srv)
    check(st == 200 and h["status"] == "ok" and h["connections"] == 400,
          "after: %d %r" % (st, h))
    check(srv.metrics().get("netwhod_ingest_stalled") == 0, "still stalled in /metrics")
    srv.stop()
    r = subprocess.run([ctx.netwhod, "--store", store, "--stall-after", "0"],
                       capture_output=True, text=True, timeout=20)
    check(r.returncode == 2 and "--stall-after" in r.stderr, "bad value: %r" % r.stderr)


def main():
    return S.run_tests(TESTS, "netwho-faults-")


if __name__ == "__main__":
    sys.exit(main())
