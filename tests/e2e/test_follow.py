#!/usr/bin/env python3
"""netwhod --follow end to end: like `tail -F` (rotation, truncation, a file
that appears later), and checkpoints: after a clean restart or after
SIGKILL at random moments while the file grows, the store holds exactly
gen.py's expected connections, bytes and failures -- nothing lost, nothing
counted twice.  Servers listen on 127.0.0.1 only; every wait is bounded."""
import json
import os
import random
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import netwho_e2e as E  # noqa: E402
import netwhod_server as S  # noqa: E402
from netwho_e2e import check  # noqa: E402

HOST = "empty-host"


# ----------------------------------------------------------------- server

def Server(ctx, store, *args, name="netwhod"):
    """netwhod on store for these tests (--host empty-host), not waited
    for: the kill test may kill it before it listens."""
    return S.Server(ctx, store, *args, name=name, host=HOST, wait=False)


wait_for = S.wait_for


def drained(srv, total_bytes, quiet=4.0):
    """Waits until the source read total_bytes in this run and then
    nothing changed for `quiet` seconds (the reorder window, 3 s, has
    passed on the idle ticks)."""
    wait_for("%d bytes read" % total_bytes,
             lambda: srv.source()["bytes_read"] >= total_bytes, timeout=60)
    time.sleep(quiet)


# ---------------------------------------------------------------- compare

def query(ctx, store):
    res = E.run([ctx.netwho, "query", "--store", store, "-o", "json"])
    check(res.rc == 0, res.describe())
    return E.parse_json_output(res)


def compare(ctx, exp, store, what):
    """Every expected connection exactly once with its bytes and counts.
    A UDP flow whose last event is within 60 s of the end may still be open
    (ended by the idle clock, not by the trace): its state is not
    compared."""
    rows = query(ctx, store)
    wm = E.ticks_of(exp["watermark"])
    loose = set(E.transfer_key(c) for c in exp["connections"]
                if c["proto"] == "udp" and wm - E.ticks_of(c["last_seen"]) < E.UDP_IDLE)

    def strip(rs):
        return [{k: v for k, v in r.items()
                 if not (k == "state" and E.transfer_key(r) in loose)} for r in rs]
    d = E.multiset_diff(strip(rows), strip(exp["connections"]))
    check(not d, "%s: %s" % (what, d))
    return rows


def compare_failures_and_transfers(ctx, exp, srv, rows, what):
    fails = srv.get("/api/v1/failures?limit=10000")["data"]
    check(len(fails) == len(exp["failures"]),
          "%s: %d failures, expected %d" % (what, len(fails), len(exp["failures"])))
    by_key = {E.transfer_key(r): r for r in rows}
    fields = ("bytes_sent", "bytes_received", "bytes_retransmitted", "send_events",
              "receive_events", "retransmit_events")
    n = 0
    for key, want in sorted(exp["transfers"].items())[:40]:
        row = by_key.get(key)
        check(row is not None, "%s: no connection %s" % (what, key))
        got = srv.get("/api/v1/connections/%d/transfers?limit=10000" % row["id"])["data"]
        tot = {f: sum(x[f] for x in got) for f in fields}
        exp_tot = {f: sum(x[f] for x in want) for f in fields}
        check(tot == exp_tot, "%s: transfers of %s: %r, expected %r" % (what, key, tot,
                                                                        exp_tot))
        n += 1
    check(n > 0, "no transfers compared")


def compare_hourly(ctx, exp, store, what):
    """The hourly roll-up's totals per (host, pid, remote ip, remote port)
    equal the expected connections' count and bytes (as test_hourly.py)."""
    res = E.run([ctx.netwho, "hourly", "--store", store, "--by", "total", "-o", "json"])
    check(res.rc == 0, res.describe())
    got = {}
    for r in E.parse_json_output(res):
        k = (r["host"], r["pid"], E.addr_key(r["remote_ip"]), r["remote_port"])
        check(k not in got, "%s: two roll-up totals for %r" % (what, k))
        got[k] = [r["connections"], r["bytes_sent"], r["bytes_received"]]
    want = {}
    for c in exp["connections"]:
        k = (c["host"], c["pid"], E.addr_key(c["remote_ip"]), c["remote_port"])
        w = want.setdefault(k, [0, 0, 0])
        w[0] += 1
        w[1] += c["bytes_sent"]
        w[2] += c["bytes_received"]
    bad = [k for k in set(got) | set(want) if got.get(k) != want.get(k)]
    check(not bad, "%s: hourly roll-up: %d of %d groups differ, e.g. %r" % (
        what, len(bad), len(want), [(k, got.get(k), want.get(k)) for k in bad[:3]]))


def compare_dead_letters(exp, store, what):
    """DIR/rejected holds each rejected event exactly once, by reason."""
    by = {}
    rdir = os.path.join(store, "rejected")
    for name in sorted(os.listdir(rdir)) if os.path.isdir(rdir) else []:
        with open(os.path.join(rdir, name), "rb") as f:
            for n, line in enumerate(f, 1):
                try:
                    r = json.loads(line)["reason"]
                except ValueError:
                    raise E.Failed("%s: %s line %d is not a JSON object (a line cut by a "
                                   "kill and appended to): %r" % (what, name, n, line[:300]))
                by[r] = by.get(r, 0) + 1
    check(by == exp["rejected_by_reason"], "%s: dead letters %r, expected %r" % (
        what, by, exp["rejected_by_reason"]))
    check(sum(by.values()) > 0, "no rejections to compare (test bug)")


# ------------------------------------------------------------------ tests

TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


def gen(ctx, name, events, seed, start=None, malformed=0.0, extra=()):
    """gen.py's events (4 hosts, one of them only in the events' header:
    HOST) and its expected answers; malformed: the share of bad lines;
    extra: more gen.py options."""
    out = os.path.join(ctx.tmp, name + ".ndjson")
    argv = [sys.executable, os.path.join(ctx.src, "bench", "gen.py"), "--events",
            str(events), "--hosts", "4", "--seed", str(seed), "--out", out,
            "--expect", out + ".json", "--empty-computer-host", HOST,
            "--malformed", str(malformed)] + list(extra)
    if start:
        argv += ["--start", start]
    res = E.run(argv, timeout=120)
    check(res.rc == 0, res.describe())
    with open(out + ".json") as f:
        exp = json.load(f)
    with open(out, "rb") as f:
        data = f.read()
    return data, exp


@test
def sigkill_at_random_points_loses_and_doubles_nothing(ctx):
    """The file grows in uneven pieces (some ending mid-line) while netwhod
    is killed with SIGKILL after a random 0.2-1.6 s, again and again; each
    restart goes on from the checkpoint.  The trace crosses a UTC midnight,
    so commits write two partitions.  Some events are malformed: the dead
    letters are compared too, and the hourly roll-up's totals."""
    data, exp = gen(ctx, "crash", 12000, 5, start="2026-03-16T23:56:00Z", malformed=0.15)
    path = os.path.join(ctx.tmp, "crash-follow.ndjson")
    store = os.path.join(ctx.tmp, "store-crash")
    rnd = random.Random(int(os.environ.get("NETWHO_KILL_SEED", "20261124")))
    open(path, "wb").close()
    written, kills, t_end = 0, 0, time.time() + 30
    while written < len(data) and time.time() < t_end:
        srv = Server(ctx, store, "--follow", path, name="crash")
        life = time.time() + rnd.uniform(0.2, 1.6)
        while time.time() < life and written < len(data):
            n = min(len(data) - written, rnd.randint(10000, 80000))
            with open(path, "ab") as f:
                f.write(data[written:written + n])
            written += n
            time.sleep(rnd.uniform(0.0, 0.1))
        time.sleep(max(0.0, life - time.time()))
        srv.kill()
        kills += 1
        srv.clean()
    check(written == len(data), "the writer did not finish in time")
    check(kills >= 5, "only %d kills" % kills)
    # One more life to the end, killed too, then a clean one.
    srv = Server(ctx, store, "--follow", path, name="crash").wait_port()
    time.sleep(rnd.uniform(0.5, 2.0))
    srv.kill()
    srv.clean()
    srv = Server(ctx, store, "--follow", path, name="crash").wait_port()
    wait_for("the follow to start", lambda: srv.source()["state"] == "running")
    m = re.search(r"resuming at offset (\d+)", srv.text())
    check(m, "no resume logged: %s" % srv.text()[-800:])
    drained(srv, len(data) - int(m.group(1)))   # the rest, then the reorder window
    rows = compare(ctx, exp, store, "after %d kills" % kills)
    compare_failures_and_transfers(ctx, exp, srv, rows, "after %d kills" % kills)
    srv.stop()
    compare_dead_letters(exp, store, "after %d kills" % kills)
    compare_hourly(ctx, exp, store, "after %d kills" % kills)
    print("    %d SIGKILLs" % kills)


@test
def a_failed_rollup_commit_loses_and_doubles_nothing(ctx):
    """rollups.db commits after the partitions.  Another process holds its
    write lock while a batch commits: the roll-up's COMMIT fails after the
    catalog and the partition committed, ingest turns off.  Once the lock
    is gone, the reload adds the commit's roll-up sums from its checkpoint
    and the reader's retried batch is not fed again: connections, dead
    letters and roll-up totals equal gen.py's."""
    failed_commit_of(ctx, "rollups.db", "rollfail", [])


@test
def a_failed_processes_commit_loses_and_doubles_nothing(ctx):
    """Another process holds processes.db's write lock while a batch with
    process events is folded: the step fails when it writes them, before
    its commit point, ingest turns off, and once the lock is gone the batch
    is read again -- every connection gets the process gen.py expects and
    nothing is doubled.  (A failure of processes.db's COMMIT itself cannot
    be provoked from outside; that it comes before the catalog's, and that
    applying a step's process events twice changes nothing, is
    test_process.c's applying_events_again_changes_nothing.)"""
    failed_commit_of(ctx, "processes.db", "procfail", ["--processes", "0.5"])


def failed_commit_of(ctx, dbname, name, extra):
    """Follows gen.py's trace while another process holds dbname's write
    lock over the second half's commit; then compares everything with
    gen.py's answers."""
    import sqlite3

    def ingest_up():
        return srv.health()[2]["ingest"]["up"]
    data, exp = gen(ctx, name, 3000, 21, malformed=0.05, extra=extra)
    cut = data.rfind(b"\n", 0, len(data) // 2) + 1
    path = os.path.join(ctx.tmp, name + ".ndjson")
    store = os.path.join(ctx.tmp, "store-" + name)
    with open(path, "wb") as f:
        f.write(data[:cut])
    srv = Server(ctx, store, "--follow", path, name=name).wait_port()
    wait_for("the first half", lambda: srv.source()["bytes_read"] >= cut)
    held = os.path.join(store, dbname)
    wait_for(dbname, lambda: os.path.exists(held))
    db = sqlite3.connect(held, isolation_level=None, timeout=30)
    try:
        db.execute("BEGIN EXCLUSIVE")
        with open(path, "ab") as f:
            f.write(data[cut:])
        wait_for("ingest to turn off", lambda: not ingest_up(), timeout=60, every=0.2)
        time.sleep(1.5)                      # a retry fails as well
    finally:
        db.execute("ROLLBACK")
        db.close()
    wait_for("ingest to come back", ingest_up, timeout=60, every=0.2)
    drained(srv, len(data))
    what = "after a failed %s commit" % dbname
    check("ingest is off" in srv.text(), "the %s commit did not fail: %s" %
          (dbname, srv.text()[-800:]))
    rows = compare(ctx, exp, store, what)
    compare_failures_and_transfers(ctx, exp, srv, rows, what)
    srv.stop()
    compare_dead_letters(exp, store, what)
    compare_hourly(ctx, exp, store, what)


@test
def clean_restart_goes_on_exactly(ctx):
    """SIGTERM mid-file, restart: the second run reads only the rest (its
    bytes_read), and the store equals one uninterrupted run -- the events
    held in the reorder buffer and the open connections came back from
    the checkpoint."""
    data, exp = gen(ctx, "clean", 3000, 11)
    path = os.path.join(ctx.tmp, "clean.ndjson")
    store = os.path.join(ctx.tmp, "store-clean")
    cut = data.rfind(b"\n", 0, len(data) // 2) + 1
    cut += 40                          # and half an object: read again later
    with open(path, "wb") as f:
        f.write(data[:cut])
    srv = Server(ctx, store, "--follow", path).wait_port()
    wait_for("the first part", lambda: srv.source()["bytes_read"] >= cut)
    time.sleep(0.5)
    srv.stop()
    check("resuming at offset" not in srv.text(), "nothing to resume from yet")
    with open(path, "ab") as f:
        f.write(data[cut:])
    srv = Server(ctx, store, "--follow", path).wait_port()
    resumed = data.rfind(b"\n", 0, cut)   # just after the last whole object
    drained(srv, len(data) - resumed)
    src = srv.source()
    check("resuming at offset %d" % resumed in srv.text(),
          "no resume at %d: %s" % (resumed, srv.text()[-600:]))
    check(src["bytes_read"] == len(data) - resumed,
          "second run read %d bytes, expected %d" % (src["bytes_read"], len(data) - resumed))
    rows = compare(ctx, exp, store, "clean restart")
    compare_failures_and_transfers(ctx, exp, srv, rows, "clean restart")
    srv.stop()


@test
def rotation_and_truncation(ctx):
    """The file is renamed and a new one created (rotation): the old one is
    read to its end, including what is appended to it after the rename,
    then the new one from its start.  Later the new file is truncated and
    rewritten: read from its start.  Every event is ingested exactly once."""
    data, exp = gen(ctx, "rot", 3000, 12)
    lines = data.splitlines(keepends=True)
    q = len(lines) // 4
    p1, p2, p3, p4 = (b"".join(lines[:q]), b"".join(lines[q:2 * q]),
                      b"".join(lines[2 * q:3 * q]), b"".join(lines[3 * q:]))
    path = os.path.join(ctx.tmp, "rot.ndjson")
    store = os.path.join(ctx.tmp, "store-rot")
    with open(path, "wb") as f:
        f.write(p1[:len(p1) - 30])
    srv = Server(ctx, store, "--follow", path).wait_port()
    wait_for("part 1", lambda: srv.source()["bytes_read"] >= len(p1) - 30)
    # Rotate: rename, a late append to the old file, then the new file.
    os.rename(path, path + ".1")
    with open(path + ".1", "ab") as f:
        f.write(p1[len(p1) - 30:] + p2)
    with open(path, "wb") as f:
        f.write(p3)
    wait_for("the rotated file and the new one",
             lambda: srv.source()["bytes_read"] >= len(p1) + len(p2) + len(p3))
    check("rotated" in srv.text(), "no rotation logged: %s" % srv.text()[-600:])
    # Truncate the new file and write the last part into it.
    time.sleep(0.5)
    with open(path, "r+b") as f:
        f.truncate(0)
    wait_for("the truncation", lambda: "truncated" in srv.text(), timeout=10)
    with open(path, "ab") as f:
        f.write(p4)
    drained(srv, len(p1) + len(p2) + len(p3) + len(p4))
    rows = compare(ctx, exp, store, "rotation and truncation")
    compare_failures_and_transfers(ctx, exp, srv, rows, "rotation and truncation")
    src = srv.source()
    check(src["rejected"] == 0, "rejections: %r" % src)
    srv.stop()


@test
def rotated_while_down(ctx):
    """Stopped mid-file; while netwhod is down the file is rotated (renamed,
    more appended to the old one, a new file at the path).  The restart
    finds the checkpointed file under its new name by inode, reads it from
    the offset to its end, then the new file from its start."""
    data, exp = gen(ctx, "down", 3000, 15)
    lines = data.splitlines(keepends=True)
    t = len(lines) // 3
    p1, p2, p3 = (b"".join(lines[:t]), b"".join(lines[t:2 * t]), b"".join(lines[2 * t:]))
    path = os.path.join(ctx.tmp, "down.ndjson")
    store = os.path.join(ctx.tmp, "store-down")
    with open(path, "wb") as f:
        f.write(p1)
    srv = Server(ctx, store, "--follow", path).wait_port()
    wait_for("part 1", lambda: srv.source()["bytes_read"] >= len(p1))
    time.sleep(0.5)
    srv.stop()
    os.rename(path, path + ".1")
    with open(path + ".1", "ab") as f:
        f.write(p2)
    with open(path, "wb") as f:
        f.write(p3)
    srv = Server(ctx, store, "--follow", path).wait_port()
    drained(srv, len(p2) + len(p3))
    check("is now %s.1" % path in srv.text(), "rotated file not found: %s" % srv.text()[-800:])
    rows = compare(ctx, exp, store, "rotated while down")
    compare_failures_and_transfers(ctx, exp, srv, rows, "rotated while down")
    srv.stop()


@test
def missing_file_is_waited_for(ctx):
    """A file that does not exist yet: state 'waiting' with the reason in
    /health, then read once it appears; removed, it is waited for again."""
    data, exp = gen(ctx, "late", 1000, 13)
    path = os.path.join(ctx.tmp, "later.ndjson")
    store = os.path.join(ctx.tmp, "store-late")
    srv = Server(ctx, store, "--follow", path).wait_port()
    src = wait_for("waiting", lambda: (lambda s: s if s["state"] == "waiting" else None)(
        srv.source()))
    check(src["last_error"] and "does not exist" in src["last_error"], "waiting: %r" % src)
    check(srv.get("/api/v1/health")["status"] == "ok", "a file not there yet is no failure")
    with open(path + ".tmp", "wb") as f:
        f.write(data)
    os.rename(path + ".tmp", path)
    drained(srv, len(data))
    check(srv.source()["state"] == "running", "running: %r" % srv.source())
    compare(ctx, exp, store, "a file that came later")
    os.unlink(path)
    src = wait_for("waiting again", lambda: (lambda s: s if s["state"] == "waiting"
                                             else None)(srv.source()), timeout=10)
    check("gone" in src["last_error"], "gone: %r" % src)
    srv.stop()


@test
def corrupt_newest_partition_is_reported(ctx):
    """The newest partition damaged (its pages overwritten, as a torn write
    or a bad disk would): netwhod starts, logs the quick_check verdict,
    /health is degraded and names the file; queries of the older partition
    still answer; the server survives queries that touch the damaged one."""
    data, exp = gen(ctx, "corrupt", 2000, 14, start="2026-03-16T23:59:20Z")
    src = os.path.join(ctx.tmp, "corrupt.ndjson")
    store = os.path.join(ctx.tmp, "store-corrupt")
    res = E.run([ctx.netwho, "ingest", "--store", store, src])
    check(res.rc == 0, res.describe())
    newest = os.path.join(store, "p-2026-03-17.db")
    check(os.path.exists(newest) and not os.path.exists(newest + "-wal"),
          "expected a checkpointed %s" % newest)
    size = os.path.getsize(newest)
    check(size > 8 * 4096, "partition too small to damage: %d" % size)
    with open(newest, "r+b") as f:
        f.seek(4096)                  # keep the header page: it still opens
        f.write(bytes(random.Random(1).getrandbits(8) for _ in range(size - 4096)))
    srv = Server(ctx, store, name="corrupt").wait_port()
    check("store check: ERROR: p-2026-03-17.db" in srv.text(),
          "no store check error logged: %s" % srv.text()[-800:])
    h = srv.get("/api/v1/health")
    check(h["status"] == "degraded" and "p-2026-03-17.db" in h["store_check"],
          "health: %r / %r" % (h["status"], h.get("store_check")))
    older = srv.get("/api/v1/connections?to=2026-03-17T00:00:00Z&limit=10000")["data"]
    want = [c for c in exp["connections"] if c["first_seen"] < "2026-03-17T00:00:00"]
    check(len(older) > 0 and len(older) == len(want),
          "older partition: %d rows, %d expected" % (len(older), len(want)))
    for path in ("/api/v1/connections?limit=10000", "/api/v1/stats/top?by=host"):
        st, _, r = srv.request("GET", path)
        check(st == 200 or (st == 500 and r["error"]["code"] == "store_corrupt"),
              "%s on a damaged store: %d %r" % (path, st, r))
    check(srv.p.poll() is None, "netwhod died on a damaged partition")
    srv.stop()
    # A healthy store says ok.
    srv = Server(ctx, os.path.join(ctx.tmp, "store-clean"), name="healthy").wait_port()
    check(srv.get("/api/v1/health")["store_check"] == "ok", "healthy store not ok")
    srv.stop()


@test
def process_events_are_followed_too(ctx):
    """Kernel-Process and Sysmon events in a followed file are decoded like
    every other ingest path takes them: the connections of a real Sysmon
    export carry the same processes as after `netwho ingest` of the file."""
    src = os.path.join(ctx.src, "tests", "data",
                       "sysmon_otrf_2019_covenant_psremoting_grunt.jsonl")
    with open(src, "rb") as f:
        data = f.read()
    lines = data.count(b"\n")
    path = os.path.join(ctx.tmp, "sysmon.jsonl")
    with open(path, "wb") as f:
        f.write(data)
    ref = os.path.join(ctx.tmp, "store-sysmon-ref")
    r = subprocess.run([ctx.netwho, "ingest", "--store", ref, "--host", HOST, "--quiet", src],
                       capture_output=True, timeout=60)
    check(r.returncode == 0, "reference ingest: %r" % r.stderr[-400:])
    r = subprocess.run([ctx.netwho, "query", "--store", ref, "-o", "json"],
                       capture_output=True, timeout=60)
    want = sorted((c["host"], c["local_port"], c["remote_port"], c["first_seen"],
                   (c["process"] or {}).get("image"), (c["process"] or {}).get("guid"))
                  for c in json.loads(r.stdout))
    check(sum(1 for w in want if w[4]) > 0, "the reference has no attributed connection")
    store = os.path.join(ctx.tmp, "store-sysmon")
    srv = Server(ctx, store, "--follow", path).wait_port()
    drained(srv, len(data))
    s = srv.source()
    check(s["accepted"] == lines and s["rejected"] == 0,
          "%d lines: accepted %d, rejected %d" % (lines, s["accepted"], s["rejected"]))
    rows = srv.get("/api/v1/connections?limit=10000")["data"]
    got = sorted((c["host"], c["local_port"], c["remote_port"], c["first_seen"],
                  (c["process"] or {}).get("image"), (c["process"] or {}).get("guid"))
                 for c in rows)
    check(got == want, "followed Sysmon file: %d rows, %d expected; first difference %r" % (
        len(got), len(want), next(((g, w) for g, w in zip(got, want) if g != w), None)))
    srv.stop()


@test
def log_file_is_reopened_on_sighup(ctx):
    """--log-file gets the log instead of standard error; after logrotate's
    rename, SIGHUP reopens the path: old lines stay in the renamed file,
    new ones go to the new file, none to standard error."""
    log = os.path.join(ctx.tmp, "netwhod.log")
    err = os.path.join(ctx.tmp, "netwhod.stderr")
    with open(err, "wb") as ef:
        p = subprocess.Popen([ctx.netwhod, "--store", os.path.join(ctx.tmp, "store-log"),
                              "--listen", "127.0.0.1:0", "--log-file", log],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=ef)
    ctx.procs.append(p)

    def text(path):
        try:
            with open(path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""
    wait_for("listening in the log file", lambda: "listening on" in text(log), timeout=20)
    os.rename(log, log + ".1")
    p.send_signal(signal.SIGHUP)
    wait_for("the reopened log", lambda: "SIGHUP: reopened" in text(log), timeout=10)
    p.send_signal(signal.SIGTERM)
    p.wait(20)
    check(p.returncode == 0, "exit %r" % p.returncode)
    old, new = text(log + ".1"), text(log)
    check("listening on" in old and "stopping" not in old, "rotated file: %r" % old[-300:])
    check("stopping" in new and "listening on" not in new, "new file: %r" % new[-300:])
    check(text(err) == "", "standard error got %r" % text(err)[-300:])


def main():
    return S.run_tests(TESTS, "netwho-follow-")


if __name__ == "__main__":
    sys.exit(main())
