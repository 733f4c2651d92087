#!/usr/bin/env python3
"""
test_ingest_query.py -- end to end: events made by bench/gen.py are ingested
by the real `netwho` binary, and every answer (ingest summary, dead letters,
query with each filter, who, transfers, failures, output formats, input
framings, stdin, a trace ingested in two runs, the real seed events, usage
errors) is compared with the generator's exact expectation.

    python3 tests/e2e/test_ingest_query.py --bin-dir BUILD --source-dir SRC
        [--keep] [--only SUBSTRING] [--events N] [--seed S]

Prints one line per test and a final "N passed, M failed"; exits 1 if any
test failed.  Uses a temporary directory only (kept with --keep).
"""

import argparse
import collections
import glob
import json
import os
import shutil
import sys
import tempfile
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import netwho_e2e as E  # noqa: E402
from netwho_e2e import check  # noqa: E402

SEED = 20260316
HOSTS = 12
START = "2026-03-15T23:55:00Z"     # the trace crosses a UTC midnight
EMPTY_HOST = "EMPTYHOST"           # host 0 writes system.computer ""
TICKS = E.TICKS

TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


class Ctx:
    pass


# ------------------------------------------------------------------ helpers

def netwho(ctx, *args, **kw):
    return E.run([ctx.bin] + [str(a) for a in args], **kw)


def ok(res):
    check(res.rc == 0, res.describe())
    return res


def query(ctx, *args, store=None):
    res = ok(netwho(ctx, "query", "--store", store or ctx.store, "-o", "json",
                    *args))
    rows = E.parse_json_output(res)
    check(isinstance(rows, list), "query output is not an array: %.200s"
          % res.out)
    return rows


def ingest(ctx, store, files, *extra, stdin=None):
    res = ok(netwho(ctx, "ingest", "--store", store, *extra, *files,
                    stdin=stdin, timeout=300))
    # The summary is one JSON object on stdout (its last line).
    lines = [l for l in res.out.splitlines() if l.strip()]
    try:
        summary = json.loads(lines[-1])
    except (ValueError, IndexError):
        summary = None
    check(isinstance(summary, dict), "ingest printed no JSON summary: %.300s"
          % res.out)
    return summary


def need_store(ctx):
    check(getattr(ctx, "store", None), "no store: the first ingest failed")


def conns_equal(got, want, what):
    d = E.multiset_diff(got, want)
    check(not d, "%s: %s" % (what, d))


def expected_filtered(ctx, f):
    rows = [c for c in ctx.exp["connections"] if E.match(c, f)]
    rows.sort(key=lambda c: E.ticks_of(c["first_seen"]))
    return rows


def check_order(rows, what):
    keys = [(E.ticks_of(r["first_seen"]), r["id"]) for r in rows]
    check(keys == sorted(keys), "%s: not in (first_seen, id) order" % what)


def check_filter(ctx, args, f, what=None, min_rows=1):
    rows = query(ctx, *args)
    want = expected_filtered(ctx, f)
    check(len(want) >= min_rows,
          "test data has only %d rows for %s (test bug)" % (len(want), args))
    conns_equal(rows, want, what or " ".join(args))
    check_order(rows, " ".join(args))
    return rows


def rfc(t):
    """ticks -> RFC 3339 text for the command line."""
    return E.fmt_time(t)


def popular_remote(ctx, version):
    cnt = collections.Counter(c["remote_ip"] for c in ctx.exp["connections"]
                              if c["ip_version"] == version and
                              not c["remote_ip"].startswith("::ffff:") and
                              c["remote_ip"] not in ("::1", "127.0.0.1"))
    return cnt.most_common(1)[0][0]


# ------------------------------------------------------------------ setup

def gen(ctx, name, *extra):
    """Runs bench/gen.py; returns (data path, expectation)."""
    out = os.path.join(ctx.tmp, name)
    exp = out + ".expect.json"
    res = E.run([sys.executable, ctx.gen, "--events", ctx.events, "--hosts",
                 HOSTS, "--seed", ctx.seed, "--start", START, "--out", out,
                 "--expect", exp, "--empty-computer-host", EMPTY_HOST]
                + list(extra), timeout=300)
    if res.rc != 0:
        raise RuntimeError("gen.py failed: " + res.describe())
    with open(exp) as f:
        return out, json.load(f)


def setup(ctx):
    ctx.data, ctx.exp = gen(ctx, "events.ndjson", "--malformed", "0.01")
    ctx.store = None
    ctx.ids = {}


# ------------------------------------------------------------------ tests

@test
def generator_matches_independent_derivation(ctx):
    """The generator's answers equal those derived from its output text by
    an independent decoder/folder (netwho_e2e.derive)."""
    der = E.derive(ctx.data, EMPTY_HOST)
    problems = E.compare_expectations(ctx.exp, der)
    check(not problems, "\n".join(problems))
    # The data has what the tests below rely on.
    cs = ctx.exp["connections"]
    kinds = collections.Counter((c["proto"], c["direction"], c["state"])
                                for c in cs)
    for k in [("tcp", "outbound", "closed"), ("tcp", "outbound", "failed"),
              ("tcp", "outbound", "attempted"), ("tcp", "inbound", "closed"),
              ("tcp", "unknown", "established"), ("tcp", "unknown", "closed"),
              ("udp", "outbound", "closed"), ("udp", "inbound", "closed"),
              ("udp", "outbound", "established")]:
        check(kinds[k] > 0, "generated data has no %s connection" % (k,))
    # ... and what the flow filter tests rely on: remote ends of several
    # classes, IPv4 peers of IPv6 sockets (hashed as IPv4), and flows that
    # share a Community ID (a loopback connection seen from both ends).
    classes = collections.Counter(c["remote_ip_class"] for c in cs)
    for k in ("public", "private", "loopback"):
        check(classes[k] > 0, "generated data has no %s remote end" % k)
    check(any(c["ip_version"] == 6 and c["remote_ip"].startswith("::ffff:")
              for c in cs), "generated data has no IPv4-mapped connection")
    ids = collections.Counter(c["community_id"] for c in cs)
    check(None not in ids and max(ids.values()) > 1,
          "generated data has no shared Community ID")
    days = {c["first_seen"][:10] for c in cs}
    check(len(days) == 2, "trace does not cross midnight: %s" % days)
    check(any(c["first_seen"][:10] != c["last_seen"][:10] for c in cs),
          "no connection spans midnight")


@test
def ingest_summary(ctx):
    store = os.path.join(ctx.tmp, "store")
    s = ingest(ctx, store, [ctx.data], "--host", EMPTY_HOST)
    ctx.store = store
    want = {"events": ctx.exp["events"], "accepted": ctx.exp["accepted"],
            "rejected": ctx.exp["rejected"],
            "connections": len(ctx.exp["connections"]),
            "partitions": ctx.exp["partitions"]}
    got = {k: s.get(k) for k in want}
    check(got == want, "summary %s, expected %s" % (got, want))
    rbr = {k: v for k, v in (s.get("rejected_by_reason") or {}).items() if v}
    check(rbr == ctx.exp["rejected_by_reason"],
          "rejected_by_reason %s, expected %s" % (
              rbr, ctx.exp["rejected_by_reason"]))


@test
def partition_files(ctx):
    need_store(ctx)
    files = sorted(os.path.basename(p) for p in
                   glob.glob(os.path.join(ctx.store, "p-*.db")))
    check(len(files) == ctx.exp["partitions"],
          "partition files %s, expected %d (one per UTC day)" %
          (files, ctx.exp["partitions"]))
    check(os.path.exists(os.path.join(ctx.store, "catalog.db")),
          "no catalog.db")


@test
def dead_letters(ctx):
    need_store(ctx)
    paths = glob.glob(os.path.join(ctx.store, "rejected", "*.ndjson"))
    check(paths, "no dead-letter files in %s/rejected" % ctx.store)
    counts = collections.Counter()
    for p in paths:
        with open(p, "rb") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    d = json.loads(line)
                except ValueError as e:
                    raise E.Failed("%s:%d is not JSON (%s): %.200r" %
                                   (p, n, e, line))
                check(isinstance(d, dict) and isinstance(d.get("reason"), str),
                      "%s:%d has no \"reason\": %.200r" % (p, n, line))
                counts[d["reason"]] += 1
    check(dict(counts) == ctx.exp["rejected_by_reason"],
          "dead letters by reason %s, expected %s" %
          (dict(counts), ctx.exp["rejected_by_reason"]))


@test
def query_all_connections(ctx):
    need_store(ctx)
    rows = query(ctx)
    ids = [r.get("id") for r in rows]
    check(all(isinstance(i, int) and not isinstance(i, bool) and i > 0
              for i in ids), "ids are not positive integers")
    check(len(set(ids)) == len(ids), "ids are not unique")
    if rows:
        check(list(rows[0].keys()) == E.CONN_FIELDS,
              "keys %s, expected %s" % (list(rows[0].keys()), E.CONN_FIELDS))
        opts = [r["tcp_options"] for r in rows if r["tcp_options"]]
        check(opts and list(opts[0].keys()) == E.TCP_OPT_FIELDS,
              "tcp_options keys %s" % (list(opts[0].keys()) if opts else None))
    conns_equal(rows, ctx.exp["connections"], "query (no filter)")
    check_order(rows, "query (no filter)")
    ctx.all_rows = rows
    ctx.ids = {E.transfer_key(r): r["id"] for r in rows}


def _filter_cases(ctx):
    """(name, args, python filter) for the filter tests."""
    cs = ctx.exp["connections"]
    v4pop = popular_remote(ctx, 4)
    v6pop = popular_remote(ctx, 6)
    v4port = collections.Counter(
        c["remote_port"] for c in cs if c["remote_ip"] == v4pop and
        c["proto"] == "tcp" and E.ticks_of(c["last_seen"]) >=
        E.ticks_of(ctx.exp["split_time"]) - 90 * TICKS).most_common(1)[0][0]
    v6net = E.cidr_range(v6pop + "/64")
    w = E.ticks_of(ctx.exp["watermark"])
    mid = (E.ticks_of(ctx.exp["split_time"]) // TICKS) * TICKS
    frm, to = mid - 90 * TICKS, mid + 90 * TICKS
    pids = collections.Counter((c["pid"]) for c in cs if c["pid"] != 4)
    pid = pids.most_common(3)[-1][0]
    host = sorted({c["host"] for c in cs if c["host"] != EMPTY_HOST})[1]
    hp = collections.Counter((c["host"], c["pid"]) for c in cs
                             if c["state"] == "closed")
    (h2, p2), _ = hp.most_common(1)[0]
    lowport = [c["local_port"] for c in cs if c["direction"] == "inbound"]
    # Community IDs: one flow's own, and one shared by two rows (the two
    # ends of a loopback connection, or a UDP tuple reused).
    ids = collections.Counter(c["community_id"] for c in cs)
    mapped = [c for c in cs if c["remote_ip"].startswith("::ffff:") and
              ids[c["community_id"]] == 1]
    lone = mapped[len(mapped) // 2] if mapped else cs[len(cs) // 2]
    shared = sorted(k for k, n in ids.items() if n > 1)[0]
    return [
        ("ip v4 single", ["--ip", v4pop], {"ip": E.cidr_range(v4pop)}),
        ("ip v6 single", ["--ip", v6pop], {"ip": E.cidr_range(v6pop)}),
        ("ip v6 non-canonical text", ["--ip", v6pop.upper()],
         {"ip": E.cidr_range(v6pop)}),
        ("ip v4 /8", ["--ip", "10.0.0.0/8"], {"ip": E.cidr_range("10.0.0.0/8")}),
        ("ip v4 /24, host bits set", ["--ip", "10.2.10.77/24"],
         {"ip": E.cidr_range("10.2.10.0/24")}),
        ("ip v4 /0", ["--ip", "0.0.0.0/0"], {"ip": E.cidr_range("0.0.0.0/0")}),
        ("ip v6 /64", ["--ip", v6pop + "/64"], {"ip": v6net}),
        ("ip v6 /128 loopback", ["--ip", "::1/128"],
         {"ip": E.cidr_range("::1/128")}),
        ("ip 127.0.0.1", ["--ip", "127.0.0.1"],
         {"ip": E.cidr_range("127.0.0.1")}),
        ("ip v4-mapped text matches the IPv4 range",
         ["--ip", "::ffff:" + v4pop], {"ip": E.cidr_range(v4pop)}),
        ("ip matching nothing", ["--ip", "198.51.100.7"],
         {"ip": E.cidr_range("198.51.100.7")}, 0),
        ("port 445 (local or remote)", ["--port", "445"], {"port": 445}),
        ("port 53", ["--port", "53"], {"port": 53}),
        ("local-port", ["--local-port", str(collections.Counter(
            lowport).most_common(1)[0][0])],
         {"local_port": collections.Counter(lowport).most_common(1)[0][0]}),
        ("remote-port 443", ["--remote-port", "443"], {"remote_port": 443}),
        ("pid 4", ["--pid", "4"], {"pid": 4}),
        ("pid", ["--pid", str(pid)], {"pid": pid}),
        ("host, other case", ["--host", host.lower()], {"host": host}),
        ("host from --host (empty computer)", ["--host", EMPTY_HOST.lower()],
         {"host": EMPTY_HOST}),
        ("proto tcp", ["--proto", "tcp"], {"proto": "tcp"}),
        ("proto udp", ["--proto", "udp"], {"proto": "udp"}),
        ("direction inbound", ["--direction", "inbound"],
         {"direction": "inbound"}),
        ("direction unknown", ["--direction", "unknown"],
         {"direction": "unknown"}),
        ("state failed", ["--state", "failed"], {"state": "failed"}),
        ("state attempted", ["--state", "attempted"], {"state": "attempted"}),
        ("state established", ["--state", "established"],
         {"state": "established"}),
        ("window across midnight, RFC 3339", ["--from", rfc(frm), "--to",
                                              rfc(to)],
         {"from": frm, "to": to}),
        ("window as epoch seconds", ["--from", str(frm // TICKS),
                                     "--to", str(to // TICKS)],
         {"from": frm, "to": to}),
        ("window, fractional epoch", ["--from", "%d.5" % (frm // TICKS),
                                      "--to", "%d.25" % (to // TICKS)],
         {"from": frm + TICKS // 2, "to": to + TICKS // 4}),
        ("window, RFC 3339 with offset",
         ["--from", E.fmt_time(frm + 3600 * TICKS)[:19] + "+01:00",
          "--to", E.fmt_time(to - 5400 * TICKS)[:19] + "-01:30"],
         {"from": frm, "to": to}),
        ("from only", ["--from", rfc(w - 120 * TICKS)],
         {"from": w - 120 * TICKS}),
        ("to only", ["--to", rfc(E.ticks_of(START) + 60 * TICKS)],
         {"to": E.ticks_of(START) + 60 * TICKS}),
        # boundaries: to is exclusive (--to = a connection's first_seen
        # leaves it out), from is inclusive (--from = its last_seen keeps it)
        ("--to a first_seen (exclusive)", ["--to", cs[len(cs) // 2][
            "first_seen"]], {"to": E.ticks_of(cs[len(cs) // 2]["first_seen"])}),
        ("--from a last_seen (inclusive)", ["--from", cs[len(cs) // 3][
            "last_seen"]], {"from": E.ticks_of(cs[len(cs) // 3]["last_seen"])}),
        ("window = exactly one connection's span",
         ["--from", cs[len(cs) // 4]["last_seen"], "--to",
          E.fmt_time(E.ticks_of(cs[len(cs) // 4]["last_seen"]) + 1)],
         {"from": E.ticks_of(cs[len(cs) // 4]["last_seen"]),
          "to": E.ticks_of(cs[len(cs) // 4]["last_seen"]) + 1}),
        ("ip + proto + port + window",
         ["--ip", v4pop, "--proto", "tcp", "--port", str(v4port),
          "--from", rfc(frm)],
         {"ip": E.cidr_range(v4pop), "proto": "tcp", "port": v4port,
          "from": frm}),
        ("host + pid + state", ["--host", h2, "--pid", str(p2), "--state",
                                "closed"],
         {"host": h2, "pid": p2, "state": "closed"}),
        ("cidr + direction + state", ["--ip", "10.0.0.0/8", "--direction",
                                      "outbound", "--state", "closed"],
         {"ip": E.cidr_range("10.0.0.0/8"), "direction": "outbound",
          "state": "closed"}),
        # residual flow filters, alone and on top of indexed ones
        ("scope public", ["--scope", "public"], {"scope": "public"}),
        ("scope private", ["--scope", "private"], {"scope": "private"}),
        ("scope loopback", ["--scope", "loopback"], {"scope": "loopback"}),
        ("scope multicast (none)", ["--scope", "multicast"],
         {"scope": "multicast"}, 0),
        ("exclude-loopback", ["--exclude-loopback"],
         {"exclude_loopback": True}),
        ("exclude-loopback=true", ["--exclude-loopback=true"],
         {"exclude_loopback": True}),
        ("exclude-loopback=false", ["--exclude-loopback=false"], {}),
        ("scope + proto + window", ["--scope", "public", "--proto", "udp",
                                    "--from", rfc(frm), "--to", rfc(to)],
         {"scope": "public", "proto": "udp", "from": frm, "to": to}),
        ("exclude-loopback + port", ["--exclude-loopback", "--port", "53"],
         {"exclude_loopback": True, "port": 53}),
        ("community-id of one IPv4-mapped flow",
         ["--community-id", lone["community_id"]],
         {"community_id": lone["community_id"]}),
        ("community-id shared by two rows", ["--community-id", shared],
         {"community_id": shared}, 2),
        ("community-id + host", ["--community-id", lone["community_id"],
                                 "--host", lone["host"]],
         {"community_id": lone["community_id"], "host": lone["host"]}),
        ("community-id matching nothing",
         ["--community-id", "1:AAAAAAAAAAAAAAAAAAAAAAAAAAA="],
         {"community_id": "1:AAAAAAAAAAAAAAAAAAAAAAAAAAA="}, 0),
    ]


@test
def query_filters(ctx):
    """Placeholder: main() runs one test per _filter_cases entry here."""


def filter_tests(ctx):
    """(name, fn) per filter case; one failing case fails only itself."""
    out = []
    try:
        cases = _filter_cases(ctx)
    except Exception as e:  # noqa: BLE001
        def broken(ctx, e=e):
            raise E.Failed("cannot build the filter cases: %r" % e)
        return [("query_filter cases", broken)]
    for case in cases:
        name, args, f = case[:3]
        min_rows = case[3] if len(case) > 3 else 1

        def fn(ctx, args=args, f=f, name=name, min_rows=min_rows):
            need_store(ctx)
            check_filter(ctx, args, f, name, min_rows)
        out.append(("query_filter: " + name, fn))
    return out


@test
def query_limit(ctx):
    need_store(ctx)
    full = query(ctx)
    for n in (1, 7, 100):
        rows = query(ctx, "--limit", n)
        check(rows == full[:n], "--limit %d is not the first %d rows of the "
              "unlimited query (ids %s vs %s)" % (
                  n, n, [r["id"] for r in rows][:8],
                  [r["id"] for r in full[:n]][:8]))
    udp = query(ctx, "--proto", "udp")
    rows = query(ctx, "--proto", "udp", "--limit", 5)
    check(rows == udp[:5], "--proto udp --limit 5 is not the first 5 UDP rows")
    # the first N by first_seen are the expected first N
    want = sorted(ctx.exp["connections"],
                  key=lambda c: E.ticks_of(c["first_seen"]))[:7]
    got = query(ctx, "--limit", 7)
    if len({c["first_seen"] for c in want}) == 7:
        conns_equal(got, want, "--limit 7")
    # The limit counts what passes the residual filters, not what the scan
    # read: the first N public rows, however many private rows lie between.
    pub = query(ctx, "--scope", "public")
    check(len(pub) > 100, "only %d public rows" % len(pub))
    for n in (1, 7, 100):
        rows = query(ctx, "--scope", "public", "--limit", n)
        check(rows == pub[:n], "--scope public --limit %d is not the first "
              "%d public rows" % (n, n))


def _who_case(ctx, args, f):
    res = ok(netwho(ctx, "who", "--store", ctx.store, "-o", "json", *args))
    rows = E.parse_json_output(res)
    want = E.who(ctx.exp["connections"], f)
    check(want, "test data has no rows for who %s (test bug)" % args)
    d = E.multiset_diff(rows, want, drop=())
    check(not d, "who %s: %s" % (" ".join(args), d))
    if rows:
        check(list(rows[0].keys()) == E.WHO_FIELDS,
              "who keys %s, expected %s" % (list(rows[0].keys()),
                                            E.WHO_FIELDS))
    keys = [E.who_order_key(r) for r in rows]
    check(keys == sorted(keys), "who %s: not ordered by bytes desc, host, "
          "pid: %s" % (" ".join(args),
                       [(r["host"], r["pid"]) for r in rows][:10]))


@test
def who_ipv4(ctx):
    need_store(ctx)
    ip = popular_remote(ctx, 4)
    _who_case(ctx, ["--ip", ip], {"remote_ip": E.cidr_range(ip)})


@test
def who_ipv6(ctx):
    need_store(ctx)
    ip = popular_remote(ctx, 6)
    _who_case(ctx, ["--ip", ip], {"remote_ip": E.cidr_range(ip)})


@test
def who_cidr(ctx):
    need_store(ctx)
    _who_case(ctx, ["--ip", "10.0.0.0/8"],
              {"remote_ip": E.cidr_range("10.0.0.0/8")})


@test
def who_loopback(ctx):
    need_store(ctx)
    _who_case(ctx, ["--ip", "::1"], {"remote_ip": E.cidr_range("::1")})


@test
def who_with_filters(ctx):
    need_store(ctx)
    w = E.ticks_of(ctx.exp["watermark"])
    frm = w - 200 * TICKS
    _who_case(ctx, ["--ip", "0.0.0.0/0", "--proto", "tcp", "--from",
                    rfc(frm)],
              {"remote_ip": E.cidr_range("0.0.0.0/0"), "proto": "tcp",
               "from": frm})


@test
def transfers(ctx):
    need_store(ctx)
    check(ctx.ids, "no ids (query_all_connections failed)")
    n = 0
    for key, want in sorted(ctx.exp["transfers"].items()):
        cid = ctx.ids.get(key)
        check(cid is not None, "no connection %s in the store" % key)
        res = ok(netwho(ctx, "transfers", "--store", ctx.store, "--id", cid,
                        "-o", "json"))
        got = E.parse_json_output(res)
        check(isinstance(got, list), "transfers output not an array")
        trimmed = [{k: g.get(k) for k in E.TRANSFER_FIELDS} for g in got]
        check(trimmed == want, "transfers of id %d (%s):\n  got  %s\n  want %s"
              % (cid, key, json.dumps(trimmed)[:600], json.dumps(want)[:600]))
        extra = set().union(*[set(g) for g in got]) - set(E.TRANSFER_FIELDS) \
            if got else set()
        check(not extra, "transfer objects have extra keys %s" % extra)
        n += 1
    check(n >= 10, "only %d sampled connections" % n)


@test
def transfers_unknown_id(ctx):
    need_store(ctx)
    res = netwho(ctx, "transfers", "--store", ctx.store, "--id", 987654321,
                 "-o", "json")
    check(res.rc not in (0, "timeout", "oserror") and res.err.strip(),
          "transfers of a missing id should fail with a message: " +
          res.describe())


@test
def failures(ctx):
    need_store(ctx)
    res = ok(netwho(ctx, "failures", "--store", ctx.store, "-o", "json"))
    got = E.parse_json_output(res)
    d = E.multiset_diff(got, ctx.exp["failures"], drop=())
    check(not d, "failures: " + d)
    if got:
        check(list(got[0].keys()) == E.FAILURE_FIELDS,
              "failure keys %s" % list(got[0].keys()))
    keys = [E.ticks_of(f["time"]) for f in got]
    check(keys == sorted(keys), "failures not in time order")


@test
def failures_filtered(ctx):
    need_store(ctx)
    fs = ctx.exp["failures"]
    host = collections.Counter(f["host"] for f in fs).most_common(1)[0][0]
    mid = E.ticks_of(fs[len(fs) // 2]["time"])
    cases = [
        (["--host", host.lower()], lambda f: f["host"] == host),
        (["--from", rfc(mid)], lambda f: E.ticks_of(f["time"]) >= mid),
        (["--to", rfc(mid)], lambda f: E.ticks_of(f["time"]) < mid),
        (["--host", host, "--from", str(mid // TICKS)],
         lambda f: f["host"] == host and
         E.ticks_of(f["time"]) >= (mid // TICKS) * TICKS),
    ]
    for args, pred in cases:
        res = ok(netwho(ctx, "failures", "--store", ctx.store, "-o", "json",
                        *args))
        got = E.parse_json_output(res)
        want = [f for f in fs if pred(f)]
        d = E.multiset_diff(got, want, drop=())
        check(not d, "failures %s: %s" % (" ".join(args), d))


@test
def output_ndjson(ctx):
    need_store(ctx)
    rows = query(ctx, "--proto", "tcp")
    res = ok(netwho(ctx, "query", "--store", ctx.store, "--proto", "tcp",
                    "-o", "ndjson"))
    got = E.parse_ndjson_output(res.out)
    check(got == rows, "ndjson rows differ from json rows (%d vs %d)" %
          (len(got), len(rows)))


def _csv_to_rows(header, rows):
    ints = set(E.CONN_FIELDS) - {"host", "proto", "direction", "local_ip",
                                 "remote_ip", "first_seen", "last_seen",
                                 "state", "tcp_options", "process"} - \
        set(E.FLOW_FIELDS)
    out = []
    for r in rows:
        check(len(r) == len(header), "csv row has %d fields, header %d" %
              (len(r), len(header)))
        d = dict(zip(header, r))
        o = {}
        for k in E.CONN_FIELDS:
            if k == "tcp_options":
                vals = [d["tcp_" + f] for f in E.TCP_OPT_FIELDS]
                o[k] = None if all(v == "" for v in vals) else \
                    {f: int(v) for f, v in zip(E.TCP_OPT_FIELDS, vals)}
            elif k == "process":
                vals = {f: d["process_" + f] or None for f in E.PROCESS_FIELDS}
                if vals["parent_pid"] is not None:
                    vals["parent_pid"] = int(vals["parent_pid"])
                o[k] = None if all(v is None for v in vals.values()) else vals
            elif k in ints:
                o[k] = int(d[k])
            elif k == "community_id":
                o[k] = d[k] or None
            else:
                o[k] = d[k]
        out.append(o)
    return out


@test
def output_csv(ctx):
    need_store(ctx)
    for args in (["--proto", "tcp", "--limit", "300"], ["--proto", "udp"]):
        rows = query(ctx, *args)
        res = ok(netwho(ctx, "query", "--store", ctx.store, "-o", "csv",
                        *args))
        header, body = E.parse_csv_output(res.out)
        want_header = [f for f in E.CONN_FIELDS
                       if f not in ["tcp_options", "process"] + E.FLOW_FIELDS] + \
            ["tcp_" + f for f in E.TCP_OPT_FIELDS] + E.FLOW_FIELDS + \
            ["process_" + f for f in E.PROCESS_FIELDS]
        check(header == want_header, "csv header %s, expected %s" %
              (header, want_header))
        got = _csv_to_rows(header, body)
        check(got == rows, "csv rows differ from json rows (%d vs %d)%s" % (
            len(got), len(rows), "" if len(got) != len(rows) else
            ": first difference %s" % next(
                ((a, b) for a, b in zip(got, rows) if a != b), None)))


@test
def output_table(ctx):
    need_store(ctx)
    rows = query(ctx, "--proto", "udp", "--limit", "20")
    res = ok(netwho(ctx, "query", "--store", ctx.store, "--proto", "udp",
                    "--limit", "20", "-o", "table"))
    lines = [l for l in res.out.splitlines() if l.strip()]
    check(len(lines) >= len(rows), "table has %d lines for %d rows" %
          (len(lines), len(rows)))
    for r in rows[:5]:
        check(r["local_ip"] in res.out and r["remote_ip"] in res.out,
              "table does not show %s / %s" % (r["local_ip"], r["remote_ip"]))


def _same_data_other_framing(ctx, fmt, extra_ingest=()):
    path, exp = gen(ctx, "events." + fmt, "--format", fmt, "--malformed",
                    "0.005")
    # Same seed: the same traffic as the NDJSON file; only the bad lines
    # (and their counts) differ.
    check(exp["connections"] == ctx.exp["connections"],
          "gen.py: %s expectation differs from ndjson's (generator bug)" % fmt)
    store = os.path.join(ctx.tmp, "store-" + fmt)
    s = ingest(ctx, store, [path], "--host", EMPTY_HOST, *extra_ingest)
    want = {"events": exp["events"], "accepted": exp["accepted"],
            "rejected": exp["rejected"]}
    got = {k: s.get(k) for k in want}
    check(got == want, "%s summary %s, expected %s" % (fmt, got, want))
    rbr = {k: v for k, v in (s.get("rejected_by_reason") or {}).items() if v}
    check(rbr == exp["rejected_by_reason"], "%s rejected_by_reason %s, "
          "expected %s" % (fmt, rbr, exp["rejected_by_reason"]))
    rows = query(ctx, store=store)
    conns_equal(rows, exp["connections"], fmt + " connections")
    return s, exp


@test
def framing_pretty_hour_partitions(ctx):
    s, exp = _same_data_other_framing(ctx, "pretty",
                                      ("--partition", "hour"))
    check(s.get("partitions") == exp["partitions_hour"],
          "--partition hour: %s partitions, expected %d" %
          (s.get("partitions"), exp["partitions_hour"]))
    files = glob.glob(os.path.join(ctx.tmp, "store-pretty", "p-*.db"))
    check(len(files) == exp["partitions_hour"], "hour partition files %s" %
          sorted(os.path.basename(f) for f in files))


@test
def framing_array(ctx):
    _same_data_other_framing(ctx, "array", ("--threads", "3"))


@test
def ingest_stdin(ctx):
    store = os.path.join(ctx.tmp, "store-stdin")
    with open(ctx.data, "rb") as f:
        s = ingest(ctx, store, ["-"], "--host", EMPTY_HOST, "--threads", "1",
                   stdin=f)
    check(s.get("events") == ctx.exp["events"] and
          s.get("accepted") == ctx.exp["accepted"],
          "stdin summary %s" % s)
    rows = query(ctx, store=store)
    conns_equal(rows, ctx.exp["connections"], "stdin connections")


@test
def ingest_in_two_runs(ctx):
    """The trace cut at split_time into two files (as a rotated log would
    be), ingested by two runs into one store: the same connections and
    transfers, continued across the cut on the same rows.

    One exception, by design: a UDP flow whose last event is before the cut
    and within 60 s of the first run's newest event is written "established"
    by the first run (it might go on), and the second run never touches it
    again if no event of it follows -- while one run over the whole trace
    ends it "closed" once the trace moves 60 s past it.  Only the state of
    those flows is not compared."""
    T = E.ticks_of(ctx.exp["split_time"])
    a_path = os.path.join(ctx.tmp, "half1.ndjson")
    b_path = os.path.join(ctx.tmp, "half2.ndjson")
    with open(ctx.data, "rb") as f, open(a_path, "wb") as a, \
            open(b_path, "wb") as b:
        for line in f:
            t = None
            try:
                t = E.parse_time(json.loads(line)["system"]["time_created"])
            except (ValueError, KeyError, TypeError):
                pass
            (b if t is not None and t >= T else a).write(line)
    evs, _, _ = E.read_ndjson(a_path, EMPTY_HOST)
    w1 = max(e["t"] for e in evs)
    store = os.path.join(ctx.tmp, "store-split")
    ingest(ctx, store, [a_path], "--host", EMPTY_HOST)
    ingest(ctx, store, [b_path], "--host", EMPTY_HOST)
    rows = query(ctx, store=store)

    # The flows whose state is not compared, by identity, so that a row
    # of netwho's that differs in more than state still shows as such.
    loose = set()
    for c in ctx.exp["connections"]:
        last = E.ticks_of(c["last_seen"])
        if c["proto"] == "udp" and last < T and w1 - last < E.UDP_IDLE:
            loose.add(E.transfer_key(c))

    def strip(rs):
        return [{k: v for k, v in r.items()
                 if not (k == "state" and E.transfer_key(r) in loose)}
                for r in rs]
    conns_equal(strip(rows), strip(ctx.exp["connections"]),
                "two runs vs the expectation")
    # Transfers continue across the cut (split_time is a whole second, so
    # no bucket is cut in two).
    ids = {E.transfer_key(r): r["id"] for r in rows}
    for key, want in sorted(ctx.exp["transfers"].items())[:25]:
        res = ok(netwho(ctx, "transfers", "--store", store, "--id",
                        ids[key], "-o", "json"))
        got = [{k: g.get(k) for k in E.TRANSFER_FIELDS}
               for g in E.parse_json_output(res)]
        check(got == want, "transfers of %s after two runs:\n  got  %s\n"
              "  want %s" % (key, json.dumps(got)[:500],
                             json.dumps(want)[:500]))


@test
def seed_events(ctx):
    seed = os.path.join(ctx.src, "tests", "data",
                        "kernel_network_seed_examples.jsonl")
    store = os.path.join(ctx.tmp, "store-seed")
    s = ingest(ctx, store, [seed], "--host", "SEEDHOST")
    check(s.get("events") == 16 and s.get("accepted") == 16 and
          s.get("rejected") == 0, "seed summary %s" % s)
    rows = query(ctx, store=store)

    def find(lip, lport, rip, rport, proto="tcp"):
        m = [r for r in rows if (r["local_ip"], r["local_port"], r["remote_ip"],
                                 r["remote_port"], r["proto"]) ==
             (lip, lport, rip, rport, proto)]
        return m

    winrm = find("10.2.10.21", 5985, "10.2.10.11", 51201)
    check(len(winrm) == 1, "WinRM accept+close (close written first) must be "
          "ONE connection, got %d: %s" % (len(winrm), winrm))
    w = winrm[0]
    want = {"direction": "inbound", "state": "closed", "pid": 4,
            "host": "SEEDHOST", "first_seen": "2026-03-16T00:21:38.7201844Z",
            "last_seen": "2026-03-16T00:21:38.7333856Z"}
    got = {k: w[k] for k in want}
    check(got == want, "WinRM connection %s, expected %s" % (got, want))
    check(w["tcp_options"] and w["tcp_options"]["mss"] == 1460 and
          w["tcp_options"]["rcvwin"] == 2098020,
          "WinRM tcp_options %s" % w["tcp_options"])
    lb = find("10.2.10.21", 50993, "10.2.20.41", 5044)
    check(len(lb) == 1, "50993->5044: %d connections" % len(lb))
    want = {"bytes_sent": 1007, "bytes_received": 6, "bytes_copied": 6,
            "direction": "unknown", "pid": 4168, "send_events": 1,
            "receive_events": 1, "copy_events": 1, "state": "established",
            "tcp_options": None}
    got = {k: lb[0][k] for k in want}
    check(got == want, "50993->5044 %s, expected %s" % (got, want))
    dns = find("10.2.10.21", 53893, "10.2.10.11", 53, "udp")
    check(len(dns) == 1, "UDP 53893<->53: %d flows" % len(dns))
    want = {"pid": 228, "direction": "outbound", "bytes_sent": 63,
            "bytes_received": 186, "ip_version": 4}
    got = {k: dns[0][k] for k in want}
    check(got == want, "UDP 53893<->53 %s, expected %s" % (got, want))
    # UDP over ::1: the sender's flow (pid 11184) and the DNS server's
    # receive (pid 2680, local ::1:53) are two flows.
    srv = find("::1", 53, "::1", 52668, "udp")
    check(len(srv) == 1 and srv[0]["pid"] == 2680 and
          srv[0]["direction"] == "inbound" and srv[0]["bytes_received"] == 90,
          "UDP ::1:53 <- ::1:52668 (event 59): %s" % srv)
    cli = find("::1", 52668, "::1", 53, "udp")
    check(len(cli) == 1 and cli[0]["pid"] == 11184 and
          cli[0]["direction"] == "outbound" and cli[0]["bytes_sent"] == 90,
          "UDP ::1:52668 -> ::1:53 (event 58): %s" % cli)


@test
def usage_errors(ctx):
    need_store(ctx)
    st = ctx.store
    cases = [
        (["query", "--store", st, "--bogus-option"], 2, ["--bogus-option"]),
        (["query", "-o", "json"], 2, ["store"]),
        (["query", "--store", st, "--ip", "10.0.0.300"], 2, ["10.0.0.300"]),
        (["query", "--store", st, "--ip", "10.0.0.0/33"], 2, ["10.0.0.0/33"]),
        (["query", "--store", st, "--from", "yesterday"], 2, ["yesterday"]),
        (["query", "--store", st, "--port", "70000"], 2, ["70000"]),
        (["query", "--store", st, "--proto", "icmp"], 2, ["icmp"]),
        (["query", "--store", st, "-o", "xml"], 2, ["xml"]),
        (["who", "--store", st], 2, ["ip"]),
        (["query", "--store", st, "--scope", "internet"], 2,
         ["scope", "internet"]),
        (["query", "--store", st, "--community-id", "1:abc"], 2,
         ["community_id", "1:abc"]),
        (["query", "--store", st, "--community-id",
          "1:o8menXQ4hXu31Srz17-8UsfVwNM="], 2, ["community_id"]),
        (["query", "--store", st, "--exclude-loopback=maybe"], 2,
         ["exclude_loopback", "maybe"]),
        (["who", "--store", st, "--ip", "10.0.0.0/8", "--scope", "public"],
         2, ["scope"]),
        (["failures", "--store", st, "--exclude-loopback"], 2,
         ["exclude-loopback"]),
        (["transfers", "--store", st], 2, ["id"]),
        (["frobnicate"], 2, ["frobnicate"]),
    ]
    problems = []
    for args, rc, words in cases:
        res = netwho(ctx, *args, timeout=30)
        if res.rc != rc:
            problems.append("expected exit %d: %s" % (rc, res.describe()))
        elif not any(w.lower() in res.err.lower() for w in words):
            problems.append("stderr does not name %s: %s" % (
                words, res.describe()))
    missing = os.path.join(ctx.tmp, "no-such-dir", "missing.ndjson")
    res = netwho(ctx, "ingest", "--store", os.path.join(ctx.tmp, "store-x"),
                 missing, timeout=30)
    if res.rc in (0, "timeout", "oserror") or "missing.ndjson" not in res.err:
        problems.append("unreadable input must fail naming the file: " +
                        res.describe())
    res = netwho(ctx, "query", "--store", os.path.join(ctx.tmp, "nowhere"),
                 timeout=30)
    if res.rc in (0, "timeout", "oserror") or not res.err.strip():
        problems.append("query of a missing store must fail: " +
                        res.describe())
    check(not problems, "\n".join(problems))


# ------------------------------------------------------------------ main

def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bin-dir", required=True)
    p.add_argument("--source-dir", required=True)
    p.add_argument("--keep", action="store_true",
                   help="keep the temporary directory")
    p.add_argument("--only", help="run tests whose name contains this")
    p.add_argument("--events", type=int, default=30000)
    p.add_argument("--seed", type=int, default=SEED,
                   help="gen.py seed (other data, same checks)")
    a = p.parse_args()
    ctx = Ctx()
    ctx.src = os.path.abspath(a.source_dir)
    ctx.bin = os.path.join(os.path.abspath(a.bin_dir), "netwho")
    ctx.gen = os.path.join(ctx.src, "bench", "gen.py")
    ctx.events = a.events
    ctx.seed = a.seed
    ctx.tmp = tempfile.mkdtemp(prefix="netwho-e2e-")
    passed = failed = 0
    t_start = time.time()
    try:
        if not os.access(ctx.bin, os.X_OK):
            print("FAIL setup: no executable %s (build netwho first)" %
                  ctx.bin)
            print("0 passed, 1 failed")
            return 1
        try:
            setup(ctx)
        except Exception as e:  # noqa: BLE001
            print("FAIL setup: %s" % e)
            print("0 passed, 1 failed")
            return 1
        print("data: %s (%d frames, %d connections, %d failures)" % (
            ctx.data, ctx.exp["events"], len(ctx.exp["connections"]),
            len(ctx.exp["failures"])))
        plan = []
        for fn in TESTS:
            if fn is query_filters:
                plan += filter_tests(ctx)
            else:
                plan.append((fn.__name__, fn))
        for name, fn in plan:
            if a.only and a.only not in name:
                continue
            t0 = time.time()
            try:
                fn(ctx)
                passed += 1
                print("PASS %s (%.1fs)" % (name, time.time() - t0))
            except Exception as e:  # noqa: BLE001
                failed += 1
                if isinstance(e, AssertionError):
                    msg = str(e)
                else:
                    msg = traceback.format_exc()
                print("FAIL %s (%.1fs)\n    %s" % (
                    name, time.time() - t0, msg.replace("\n", "\n    ")))
            sys.stdout.flush()
    finally:
        if a.keep:
            print("kept %s" % ctx.tmp)
        else:
            shutil.rmtree(ctx.tmp, ignore_errors=True)
    print("total %.1fs" % (time.time() - t_start))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
