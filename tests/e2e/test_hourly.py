#!/usr/bin/env python3
"""
test_hourly.py -- end to end: the hourly roll-up (`netwho hourly`) over
events made by bench/gen.py equals the generator's exact expectation --
totals of connections and bytes per (host, pid, remote ip, remote port),
connections per hour of first_seen -- and still does after partition
retention (`netwho ingest --retention-days`) dropped every raw partition,
until the roll-up's own limit (--rollup-retention-days) deletes it.

    python3 tests/e2e/test_hourly.py --bin-dir BUILD --source-dir SRC
        [--keep] [--events N] [--seed S]

Prints one line per test and a final "N passed, M failed"; exits 1 if any
test failed.  Uses a temporary directory only (kept with --keep).
"""

import collections
import csv
import io
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import netwho_e2e as E  # noqa: E402
import netwhod_server as S  # noqa: E402
from netwho_e2e import check  # noqa: E402

HOSTS = 8
EVENTS = 20000
SEED = 515
START = "2026-03-15T22:30:00Z"     # with --rate 0.2: hours, and a UTC midnight
HOUR = 3600 * E.TICKS

TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn



def netwho(ctx, *args, **kw):
    res = E.run([ctx.bin] + [str(a) for a in args], **kw)
    check(res.rc == 0, res.describe())
    return res


def hourly(ctx, *args, fmt="json"):
    res = netwho(ctx, "hourly", "--store", ctx.store, "-o", fmt, *args)
    return res.out if fmt != "json" else E.parse_json_output(res)


def key(r):
    return (r["host"], r["pid"], E.addr_key(r["remote_ip"]), r["remote_port"])


def want_totals(conns):
    want = collections.defaultdict(lambda: [0, 0, 0])
    for c in conns:
        w = want[key(c)]
        w[0] += 1
        w[1] += c["bytes_sent"]
        w[2] += c["bytes_received"]
    return dict(want)


def got_totals(rows):
    got = {}
    for r in rows:
        check(r["hour"] is None, "a total with an hour: %r" % r)
        check(key(r) not in got, "two totals for %r" % (key(r),))
        got[key(r)] = [r["connections"], r["bytes_sent"], r["bytes_received"]]
    return got


def diff(got, want):
    keys = [k for k in set(got) | set(want) if got.get(k) != want.get(k)]
    return "%d groups, want %d; %d differ, e.g. %r" % (
        len(got), len(want), len(keys), [(k, got.get(k), want.get(k)) for k in keys[:3]])


def check_totals(ctx, what):
    got = got_totals(hourly(ctx, "--by", "total"))
    want = want_totals(ctx.exp["connections"])
    check(got == want, "%s: %s" % (what, diff(got, want)))


# ------------------------------------------------------------------ tests

@test
def totals_equal_expected(ctx):
    check_totals(ctx, "after ingest")


@test
def hours_add_up(ctx):
    """By hour: each connection counts in the hour of its first_seen; the
    hours of a key add up to its total; rows are in (hour, ...) order."""
    rows = hourly(ctx)
    hours = [E.ticks_of(r["hour"]) for r in rows]
    check(hours == sorted(hours) and all(h % HOUR == 0 for h in hours),
          "hours not on the hour or out of order")
    check(len(set(hours)) >= 3, "the trace spans only %d hours (test bug)" % len(set(hours)))
    sums = collections.defaultdict(lambda: [0, 0, 0])
    per_hour = collections.Counter()
    for r in rows:
        s = sums[key(r)]
        s[0] += r["connections"]
        s[1] += r["bytes_sent"]
        s[2] += r["bytes_received"]
        per_hour[E.ticks_of(r["hour"])] += r["connections"]
    want = want_totals(ctx.exp["connections"])
    check(dict(sums) == want, "hours: %s" % diff(dict(sums), want))
    want_hour = collections.Counter(E.ticks_of(c["first_seen"]) // HOUR * HOUR
                                    for c in ctx.exp["connections"])
    check(per_hour == want_hour, "connections per hour %r, want %r" % (per_hour, want_hour))


@test
def filters(ctx):
    """--ip (address and CIDR of the remote end), --port, --host, --pid,
    --from/--to select exactly the expected groups."""
    conns = ctx.exp["connections"]
    ip = collections.Counter(c["remote_ip"] for c in conns).most_common(1)[0][0]
    c0 = conns[len(conns) // 2]
    block = "10.0.0.0/8"
    cases = [
        (["--ip", ip], lambda c: E.addr_key(c["remote_ip"]) == E.addr_key(ip)),
        (["--ip", block], lambda c: E.cidr_range(block)[0] <= E.addr_key(c["remote_ip"])
         <= E.cidr_range(block)[1]),
        (["--port", c0["remote_port"]], lambda c: c["remote_port"] == c0["remote_port"]),
        (["--host", c0["host"].lower(), "--pid", c0["pid"]],
         lambda c: c["host"] == c0["host"] and c["pid"] == c0["pid"]),
    ]
    for args, pred in cases:
        sel = [c for c in conns if pred(c)]
        check(sel, "no expected rows for %r (test bug)" % args)
        got = got_totals(hourly(ctx, "--by", "total", *args))
        want = want_totals(sel)
        check(got == want, "%r: %s" % (args, diff(got, want)))
    # A window of whole hours: connections counted by first_seen's hour.
    t = E.ticks_of(c0["first_seen"]) // HOUR * HOUR
    rows = hourly(ctx, "--from", E.fmt_time(t), "--to", E.fmt_time(t + HOUR))
    check(rows and all(E.ticks_of(r["hour"]) == t for r in rows), "one-hour window")
    n = sum(r["connections"] for r in rows)
    want = sum(1 for c in conns if E.ticks_of(c["first_seen"]) // HOUR * HOUR == t)
    check(n == want, "connections in the hour: %d, want %d" % (n, want))


@test
def formats(ctx):
    rows = hourly(ctx)
    nd = [json.loads(l) for l in hourly(ctx, fmt="ndjson").splitlines()]
    check(nd == rows, "ndjson differs from json")
    table = list(csv.DictReader(io.StringIO(hourly(ctx, fmt="csv"))))
    check(len(table) == len(rows) and
          list(table[0]) == ["hour", "host", "pid", "remote_ip", "remote_port",
                             "connections", "bytes_sent", "bytes_received"],
          "csv header or rows")
    check(int(table[0]["bytes_sent"]) == rows[0]["bytes_sent"], "csv values")
    lim = hourly(ctx, "--limit", "2")
    check(lim == rows[:2], "--limit 2")


@test
def usage_errors(ctx):
    for args in (["--by", "day"], ["--port", "http"], ["--ip", "nope"], ["--pid", "-1"],
                 ["--from", "2026-03-17T00:00:00Z", "--to", "2026-03-16T00:00:00Z"]):
        res = E.run([ctx.bin, "hourly", "--store", ctx.store] + args)
        check(res.rc == 2, "%r: rc %d, expected 2: %s" % (args, res.rc, res.err))


@test
def survives_partition_retention(ctx):
    """Retention drops every raw partition (the trace is months old); the
    roll-up answers the same totals."""
    before = json.loads(netwho(ctx, "partitions", "--store", ctx.store).out)
    check(len(before["partitions"]) >= 2, "partitions %r" % before)
    netwho(ctx, "ingest", "--store", ctx.store, "--quiet", "--retention-days", "1", "-",
           input_bytes=b"")
    after = json.loads(netwho(ctx, "partitions", "--store", ctx.store).out)
    check(after["partitions"] == [], "partitions left: %r" % after["partitions"])
    rows = E.parse_json_output(netwho(ctx, "query", "--store", ctx.store, "-o", "json"))
    check(rows == [], "%d connections left" % len(rows))
    check_totals(ctx, "after partition retention")


@test
def rollup_retention_deletes(ctx):
    """Its own limit: rows older than N days go; 0 keeps them."""
    netwho(ctx, "ingest", "--store", ctx.store, "--quiet", "--rollup-retention-days", "0",
           "-", input_bytes=b"")
    check_totals(ctx, "--rollup-retention-days 0")
    netwho(ctx, "ingest", "--store", ctx.store, "--quiet", "--rollup-retention-days", "30",
           "-", input_bytes=b"")
    rows = hourly(ctx)
    check(rows == [], "%d roll-up rows older than 30 days left" % len(rows))


def setup(ctx):
    """gen.py's trace (EVENTS events over HOSTS hosts, a slow rate so it
    spans days) ingested into one store that every test reads."""
    ctx.bin = ctx.netwho
    ctx.store = os.path.join(ctx.tmp, "store")
    data, exp = os.path.join(ctx.tmp, "ev.ndjson"), os.path.join(ctx.tmp, "ev.json")
    for argv in ([sys.executable, os.path.join(ctx.src, "bench", "gen.py"), "--events",
                  EVENTS, "--hosts", HOSTS, "--seed", SEED, "--start", START,
                  "--rate", "0.2", "--out", data, "--expect", exp],
                 [ctx.bin, "ingest", "--store", ctx.store, "--quiet", data]):
        res = E.run([str(x) for x in argv], timeout=300)
        check(res.rc == 0, res.describe())
    with open(exp) as f:
        ctx.exp = json.load(f)


def main():
    return S.run_tests(TESTS, "netwho-hourly-", setup=setup)


if __name__ == "__main__":
    sys.exit(main())
