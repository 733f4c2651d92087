#!/usr/bin/env python3
"""
test_server.py -- end to end: the real `netwhod` on 127.0.0.1 (ephemeral
port) and on a Unix socket, over a store filled by `netwho ingest` and by
POST /api/v1/events with events from bench/gen.py; every answer is compared
with the generator's exact expectation.  Then bad input of every kind (each
parameter garbage, overlong, injection; unknown names; bad paths, methods,
bodies), after which the server must still answer.  openapi.yaml is checked
with a real validator (@redocly/cli, pinned in tools/openapi/package.json),
and every answer the tests receive -- success and error -- is validated
against its operation's schema for its status code (ajv, through
tools/openapi/validate.mjs).  ETags (generation-based, 304 before any
query), gzip, CORS and /health have their own tests.

    python3 tests/e2e/test_server.py --bin-dir BUILD --source-dir SRC
        [--keep] [--only SUBSTRING]

Prints one line per test and a final "N passed, M failed"; exits 1 if any
test failed.  Every request has a timeout; the servers are always killed.
"""

import argparse
import collections
import gzip
import http.client
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import netwho_e2e as E  # noqa: E402
import openapi_check as O  # noqa: E402
from netwho_e2e import check  # noqa: E402

REQ_TIMEOUT = 30          # seconds per request (sanitizer builds are slow)
START_TIMEOUT = 20        # seconds for netwhod to report its port
MAX_PAGES = 200           # bound on cursor loops
POST_START = "2026-03-18T12:00:00Z"   # > 24 h after the first trace: no resume

TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


class Ctx:
    pass


# ------------------------------------------------------------------ http

class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


class Resp:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError as e:
            raise E.Failed("not JSON (%s): %.300r" % (e, self.body))

    def text(self):
        return self.body.decode("utf-8", "replace")


def request(ctx, method, path, body=None, headers=None, unix=False, port=None,
            record=True):
    """One request on a fresh connection; raw path (already encoded).  The
    answer is recorded for the openapi.yaml conformance check unless
    record is False (answers of a deliberately broken store)."""
    if unix:
        conn = UnixHTTPConnection(ctx.sock_path, REQ_TIMEOUT)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port or ctx.port,
                                          timeout=REQ_TIMEOUT)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        hdrs = {}
        for k, v in r.getheaders():
            k = k.lower()
            hdrs[k] = hdrs[k] + ", " + v if k in hdrs else v
        if record:
            ctx.recorder.add(method, path, r.status, hdrs, data)
        return Resp(r.status, hdrs, data)
    finally:
        conn.close()


def get(ctx, path, **kw):
    return request(ctx, "GET", path, **kw)


def get_json(ctx, path, **kw):
    r = get(ctx, path, **kw)
    check(r.status == 200, "GET %s -> %d: %.300r" % (path, r.status, r.body))
    return r.json()


def qs(**params):
    return urllib.parse.urlencode(params)


def all_connections(ctx, query="", unix=False, limit=1000):
    """Every page of /api/v1/connections?query, following next_cursor."""
    rows, cursor = [], None
    for _ in range(MAX_PAGES):
        q = query + ("&" if query else "") + "limit=%d" % limit
        if cursor:
            q += "&cursor=" + cursor
        page = get_json(ctx, "/api/v1/connections?" + q, unix=unix)
        check(set(page) <= {"data", "next_cursor"}, "page keys %r" % list(page))
        rows.extend(page["data"])
        cursor = page.get("next_cursor")
        if not cursor:
            return rows
        check(len(page["data"]) == limit, "a non-last page has %d rows"
              % len(page["data"]))
    raise E.Failed("more than %d pages" % MAX_PAGES)


def expect_error(r, status, parameter=None, what=""):
    check(r.status == status, "%s: status %d, expected %d: %.300r" % (
        what, r.status, status, r.body))
    body = r.json()
    err = body.get("error")
    check(isinstance(err, dict) and set(err) == {"code", "message", "parameter"},
          "%s: error body %.300r" % (what, r.body))
    check(isinstance(err["message"], str) and err["message"],
          "%s: empty message" % what)
    if parameter is not None:
        check(err["parameter"] == parameter, "%s: parameter %r, expected %r (%s)"
              % (what, err["parameter"], parameter, err["message"]))
    return err


# ------------------------------------------------------------------ server

def start_server(ctx, *extra, expect_port=True):
    """Starts netwhod; returns (proc, port).  stderr goes to a file that is
    polled for the 'listening on' line."""
    log = open(os.path.join(ctx.tmp, "netwhod-%d.log" % len(ctx.procs)), "w+b")
    argv = [ctx.netwhod, "--store", ctx.store] + list(extra)
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log)
    ctx.procs.append(p)
    p.log = log
    if not expect_port:
        return p, None
    deadline = time.time() + START_TIMEOUT
    while time.time() < deadline:
        log.seek(0)
        text = log.read().decode("utf-8", "replace")
        port = None
        for line in text.splitlines():
            if "listening on http://127.0.0.1:" in line:
                port = int(line.rsplit(":", 1)[1].strip("/"))
        ready = ("--socket" not in extra or "listening on unix:" in text)
        if port and ready:
            return p, port
        if p.poll() is not None:
            raise E.Failed("netwhod exited %s: %s" % (p.returncode, text[-800:]))
        time.sleep(0.05)
    raise E.Failed("netwhod did not report its port within %ds" % START_TIMEOUT)


def stop_server(p, timeout=20):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)
            raise E.Failed("netwhod did not stop within %ds of SIGTERM" % timeout)
    return p.returncode


def server_log(p):
    p.log.seek(0)
    return p.log.read().decode("utf-8", "replace")


# ------------------------------------------------------------------ tests

def expected_hosts(*exps):
    """host -> newest event (ticks): latest last_seen of its connections or
    time of its failures, over the expectation files given."""
    newest = {}
    for exp in exps:
        for c in exp["connections"]:
            t = E.ticks_of(c["last_seen"])
            newest[c["host"]] = max(newest.get(c["host"], t), t)
        for f in exp["failures"]:
            t = E.ticks_of(f["time"])
            newest[f["host"]] = max(newest.get(f["host"], t), t)
    return newest


def check_hosts(h, *exps):
    want = expected_hosts(*exps)
    got = {x["host"]: E.ticks_of(x["last_event"]) for x in h["hosts"]}
    check(got == want, "health hosts %r, expected %r" % (
        sorted(got.items())[:5], sorted(want.items())[:5]))
    names = [x["host"] for x in h["hosts"]]
    check(names == sorted(names, key=lambda n: n.encode()), "hosts not sorted by name")
    check(h["hosts_omitted"] == 0, "hosts_omitted %r" % h["hosts_omitted"])


@test
def health_both_transports(ctx):
    for unix in (False, True):
        h = get_json(ctx, "/api/v1/health", unix=unix)
        check(h["status"] == "ok" and h["partitions"] == ctx.exp["partitions"],
              "health %r" % h)
        check(h["connections"] == len(ctx.exp["connections"]), "health %r" % h)
        check_hosts(h, ctx.exp)
        check(h["sources"] == [] and h["ingest"]["enabled"] is True and
              h["ingest"]["rejected_by_reason"] == {}, "health %r" % h)
        check(isinstance(h["generation"], int) and h["generation"] >= 1,
              "generation %r after an ingest" % h["generation"])
    # Cheap enough to poll: a 304 while nothing changed, and a stable tag.
    r = get(ctx, "/api/v1/health")
    r2 = get(ctx, "/api/v1/health", headers={"If-None-Match": r.headers["etag"]})
    check(r2.status == 304 and r2.headers.get("etag") == r.headers["etag"],
          "health revalidation: %d" % r2.status)


@test
def connections_paged_tcp(ctx):
    rows = all_connections(ctx, "to=" + urllib.parse.quote(POST_START), limit=97)
    d = E.multiset_diff(rows, ctx.exp["connections"])
    check(not d, d)
    keys = [(E.ticks_of(r["first_seen"]), r["id"]) for r in rows]
    check(keys == sorted(keys) and len(set(keys)) == len(keys),
          "pages are not in (first_seen, id) order without repeats")
    for r in rows[:50]:
        check(list(r) == E.CONN_FIELDS, "fields %r" % list(r))
    ctx.rows = rows
    ctx.ids = {E.transfer_key(r): r["id"] for r in rows}


@test
def connections_stream_unix(ctx):
    r = get(ctx, "/api/v1/connections?format=ndjson&to=" +
            urllib.parse.quote(POST_START), unix=True)
    check(r.status == 200 and "ndjson" in r.headers.get("content-type", ""),
          "ndjson: %d %r" % (r.status, r.headers))
    rows = E.parse_ndjson_output(r.text())
    d = E.multiset_diff(rows, ctx.exp["connections"])
    check(not d, "ndjson: " + d)
    r = get(ctx, "/api/v1/connections?to=" + urllib.parse.quote(POST_START),
            headers={"Accept": "text/csv"}, unix=True)
    header, data = E.parse_csv_output(r.text())
    check(r.status == 200 and header[:3] == ["id", "host", "pid"] and
          len(data) == len(ctx.exp["connections"]),
          "csv: %d rows, expected %d" % (len(data), len(ctx.exp["connections"])))
    r = get(ctx, "/api/v1/connections?format=ndjson&limit=7")
    check(len(E.parse_ndjson_output(r.text())) == 7, "ndjson limit 7")


@test
def connection_filters(ctx):
    conns = ctx.exp["connections"]
    c0 = max(conns, key=lambda c: c["bytes_sent"] + c["bytes_received"])
    mid = E.ticks_of(c0["first_seen"])
    cases = [
        ({"ip": c0["remote_ip"]}, {"ip": E.cidr_range(c0["remote_ip"])}),
        ({"ip": "10.0.0.0/8"}, {"ip": E.cidr_range("10.0.0.0/8")}),
        ({"port": c0["remote_port"]}, {"port": c0["remote_port"]}),
        ({"remote_port": 53}, {"remote_port": 53}),
        ({"local_port": c0["local_port"]}, {"local_port": c0["local_port"]}),
        ({"pid": c0["pid"]}, {"pid": c0["pid"]}),
        ({"host": c0["host"].lower()}, {"host": c0["host"]}),
        ({"proto": "udp"}, {"proto": "udp"}),
        ({"direction": "inbound"}, {"direction": "inbound"}),
        ({"state": "failed"}, {"state": "failed"}),
        ({"from": E.fmt_time(mid), "to": E.fmt_time(mid + 30 * E.TICKS)},
         {"from": mid, "to": mid + 30 * E.TICKS}),
        ({"scope": "public"}, {"scope": "public"}),
        ({"scope": "private", "proto": "udp"}, {"scope": "private", "proto": "udp"}),
        ({"scope": "loopback"}, {"scope": "loopback"}),
        ({"exclude_loopback": "true"}, {"exclude_loopback": True}),
        ({"exclude_loopback": "false", "state": "failed"}, {"state": "failed"}),
        ({"community_id": c0["community_id"]}, {"community_id": c0["community_id"]}),
    ]
    for params, f in cases:
        want = [c for c in conns if E.match(c, f)]
        check(want, "no expected rows for %r (test bug)" % params)
        got = all_connections(ctx, qs(**params), limit=500)
        if "from" not in params:
            got = [g for g in got if E.ticks_of(g["first_seen"]) <
                   E.ticks_of(POST_START)]
        d = E.multiset_diff(got, want)
        check(not d, "%r: %s" % (params, d))
    # A residual filter pages exactly: full pages of the rows that pass, a
    # cursor only when more pass, over both transports.
    want = [c for c in conns if E.match(c, {"scope": "public"}) and
            E.ticks_of(c["first_seen"]) < E.ticks_of(POST_START)]
    got = all_connections(ctx, "scope=public&to=" + urllib.parse.quote(POST_START),
                          limit=37)
    d = E.multiset_diff(got, want)
    check(not d, "scope=public in pages of 37: " + d)
    check(get_json(ctx, "/api/v1/connections?scope=public&limit=%d&to=%s" % (
        len(want), urllib.parse.quote(POST_START)), unix=True).get("next_cursor") is None,
        "a cursor after the last public row")
    # The Community ID of the one flow, its '+' sent raw (arrives as a
    # space), as %2B, and '/' as %2F: the same single row.
    one = next(c for c in conns if "+" in c["community_id"] and
               sum(1 for x in conns if x["community_id"] == c["community_id"]) == 1)
    for text in (one["community_id"], urllib.parse.quote(one["community_id"], safe=""),
                 one["community_id"].replace("/", "%2F")):
        got = get_json(ctx, "/api/v1/connections?community_id=" + text)["data"]
        check(len(got) == 1 and not E.multiset_diff(got, [one]),
              "community_id=%s: %d rows" % (text, len(got)))
        check(got[0]["community_id"] == one["community_id"], "community_id field")
    # An offset written with a raw '+' arrives as a space and still works;
    # so does %2B.
    t = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(mid // E.TICKS))
    a = get_json(ctx, "/api/v1/connections?limit=5&from=%s+00:00" % t)
    b = get_json(ctx, "/api/v1/connections?limit=5&from=%s%%2B00:00" % t)
    c = get_json(ctx, "/api/v1/connections?limit=5&from=%sZ" % t)
    check(a == b == c, "'+', %2B and Z offsets disagree")


@test
def who_processes(ctx):
    conns = ctx.exp["connections"]
    top = collections.Counter(c["remote_ip"] for c in conns).most_common(1)[0][0]
    for ip, path_ip in ((top, urllib.parse.quote(top, safe="")),
                        ("10.0.0.0/8", "10.0.0.0%2F8"),
                        ("0.0.0.0/0", "0.0.0.0%2F0")):
        want = E.who(conns, {"remote_ip": E.cidr_range(ip),
                             "to": E.ticks_of(POST_START)})
        # Pages come in (host, pid) order, the keyset of the cursor.
        want.sort(key=lambda r: (r["host"].encode(), r["pid"]))
        base = "/api/v1/ips/%s/processes?to=%s" % (
            path_ip, urllib.parse.quote(POST_START))
        got = get_json(ctx, base + "&limit=10000", unix=True)
        check("next_cursor" not in got, "who %s: a cursor on the only page" % ip)
        got = got["data"]
        check(got == want, "who %s: got %d rows, want %d; first %r vs %r" % (
            ip, len(got), len(want), got[:1], want[:1]))
        # The same rows across pages of 7, over both transports.
        paged, cursor, pages = [], None, 0
        for pages in range(1, MAX_PAGES + 1):
            page = get_json(ctx, base + "&limit=7" +
                            ("&cursor=" + cursor if cursor else ""),
                            unix=pages % 2 == 0)
            paged.extend(page["data"])
            cursor = page.get("next_cursor")
            check(len(page["data"]) == 7 or not cursor,
                  "who %s: short page %d with a cursor" % (ip, pages))
            if not cursor:
                break
        check(paged == want, "who %s paged: got %d rows in %d pages, want %d" % (
            ip, len(paged), pages, len(want)))
        check(pages == max(1, (len(want) + 6) // 7),
              "who %s: %d pages for %d rows" % (ip, pages, len(want)))


@test
def transfers(ctx):
    check(getattr(ctx, "ids", None), "needs connections_paged_tcp")
    n = 0
    for key, want in ctx.exp["transfers"].items():
        cid = ctx.ids.get(key)
        check(cid, "no connection for transfer key %s" % key)
        got = []
        cursor = None
        for _ in range(MAX_PAGES):
            q = "limit=3" + ("&cursor=" + cursor if cursor else "")
            page = get_json(ctx, "/api/v1/connections/%d/transfers?%s" % (cid, q))
            got.extend(page["data"])
            cursor = page.get("next_cursor")
            if not cursor:
                break
        got = [{k: t[k] for k in E.TRANSFER_FIELDS} for t in got]
        check(got == want, "transfers of %s: %s vs %s" % (
            key, json.dumps(got)[:300], json.dumps(want)[:300]))
        r = get(ctx, "/api/v1/connections/%d/transfers?format=ndjson" % cid,
                unix=True)
        s = [{k: t[k] for k in E.TRANSFER_FIELDS}
             for t in E.parse_ndjson_output(r.text())]
        check(s == want, "streamed transfers of %s differ" % key)
        one = get_json(ctx, "/api/v1/connections/%d" % cid)["data"]
        check(one["id"] == cid and E.transfer_key(one) == key, "by id: %r" % one)
        n += 1
        if n >= 15:
            break


@test
def failures(ctx):
    got = get_json(ctx, "/api/v1/failures?limit=10000&to=" +
                   urllib.parse.quote(POST_START))["data"]
    d = E.multiset_diff(got, ctx.exp["failures"], drop=())
    check(not d, d)
    host = ctx.exp["failures"][0]["host"]
    got = get_json(ctx, "/api/v1/failures?limit=10000&host=" + host)["data"]
    want = [f for f in ctx.exp["failures"] if f["host"] == host]
    check(not E.multiset_diff(got, want, drop=()), "failures of host %s" % host)


@test
def top_talkers(ctx):
    conns = ctx.exp["connections"]
    to = urllib.parse.quote(POST_START)
    for by, keyf in (("remote_ip", lambda c: E.addr_key(c["remote_ip"])),
                     ("remote_port", lambda c: c["remote_port"]),
                     ("pid", lambda c: (c["host"], c["pid"])),
                     ("host", lambda c: c["host"])):
        want = collections.defaultdict(lambda: [0, 0])
        for c in conns:
            w = want[keyf(c)]
            w[0] += 1
            w[1] += c["bytes_sent"] + c["bytes_received"]
        for order in ("bytes", "connections"):
            page = get_json(ctx, "/api/v1/stats/top?by=%s&order=%s&limit=10000&to=%s"
                            % (by, order, to))
            rows = page["data"]
            got = {}
            for r in rows:
                k = (E.addr_key(r["remote_ip"]) if by == "remote_ip" else
                     r["remote_port"] if by == "remote_port" else
                     (r["host"], r["pid"]) if by == "pid" else r["host"])
                got[k] = [r["connections"], r["bytes_total"]]
            check(got == dict(want), "top by %s: %d groups, want %d" % (
                by, len(got), len(want)))
            vals = [r["bytes_total"] if order == "bytes" else r["connections"]
                    for r in rows]
            check(vals == sorted(vals, reverse=True), "top %s not ordered" % order)
    check(len(get_json(ctx, "/api/v1/stats/top?limit=3")["data"]) == 3, "limit 3")


def hourly_totals(conns):
    """(host, pid, remote ip key, remote port) -> [connections, sent, received]."""
    want = collections.defaultdict(lambda: [0, 0, 0])
    for c in conns:
        w = want[(c["host"], c["pid"], E.addr_key(c["remote_ip"]), c["remote_port"])]
        w[0] += 1
        w[1] += c["bytes_sent"]
        w[2] += c["bytes_received"]
    return dict(want)


@test
def hourly_rollup(ctx):
    """GET /api/v1/stats/hourly: totals per (host, pid, remote end) equal the
    generator's connections; per-hour connection counts are in the hour of
    first_seen and add up to the totals; filters, formats, limit, errors."""
    to = urllib.parse.quote(POST_START)     # on an hour: the POSTs come later
    def key(r):
        return (r["host"], r["pid"], E.addr_key(r["remote_ip"]), r["remote_port"])
    page = get_json(ctx, "/api/v1/stats/hourly?by=total&limit=10000&to=" + to)
    check(page["more"] is False, "more on a full page")
    got = {}
    for r in page["data"]:
        check(r["hour"] is None, "a total has hour %r" % r["hour"])
        got[key(r)] = [r["connections"], r["bytes_sent"], r["bytes_received"]]
    want = hourly_totals(ctx.exp["connections"])
    check(got == want, "hourly totals: %d groups, want %d; first differences %r" % (
        len(got), len(want), [(k, got.get(k), want.get(k)) for k in set(got) | set(want)
                              if got.get(k) != want.get(k)][:3]))
    rows = get_json(ctx, "/api/v1/stats/hourly?limit=10000&to=" + to)["data"]
    sums = collections.defaultdict(lambda: [0, 0, 0])
    per_hour = collections.Counter()
    for r in rows:
        s = sums[key(r)]
        s[0] += r["connections"]
        s[1] += r["bytes_sent"]
        s[2] += r["bytes_received"]
        per_hour[E.ticks_of(r["hour"]) // (3600 * E.TICKS)] += r["connections"]
    check(dict(sums) == want, "hours do not add up to the totals")
    want_hour = collections.Counter(E.ticks_of(c["first_seen"]) // (3600 * E.TICKS)
                                    for c in ctx.exp["connections"])
    check(per_hour == want_hour, "connections per hour %r, want %r" % (per_hour, want_hour))
    # One remote address, and a CIDR block.
    ip = collections.Counter(c["remote_ip"] for c in ctx.exp["connections"]).most_common(1)[0][0]
    one = get_json(ctx, "/api/v1/stats/hourly?by=total&" + qs(ip=ip, to=POST_START))["data"]
    check({key(r): [r["connections"], r["bytes_sent"], r["bytes_received"]] for r in one} ==
          {k: v for k, v in want.items() if k[2] == E.addr_key(ip)}, "ip=%s" % ip)
    nd = get(ctx, "/api/v1/stats/hourly?format=ndjson&limit=10000&to=" + to)
    check(nd.status == 200 and len(nd.text().splitlines()) == len(rows), "ndjson rows")
    csv = get(ctx, "/api/v1/stats/hourly?format=csv&limit=10000&to=" + to)
    check(csv.status == 200 and len(csv.text().splitlines()) == len(rows) + 1, "csv rows")
    lim = get_json(ctx, "/api/v1/stats/hourly?limit=1")
    check(len(lim["data"]) == 1 and lim["more"] is True, "limit 1: %r" % lim)
    for path, param in (("by=day", "by"), ("port=http", "port"), ("ip=nope", "ip"),
                        ("pid=-1", "pid"), ("from=yesterday", "from"), ("limit=0", "limit"),
                        ("from=2026-03-17T00:00:00Z&to=2026-03-16T00:00:00Z", "to"),
                        ("remote_port=53", "remote_port"), ("format=table", "format")):
        expect_error(get(ctx, "/api/v1/stats/hourly?" + path), 400, param, path)


@test
def etag_304(ctx):
    for path in ("/api/v1/connections?limit=5", "/api/v1/health",
                 "/api/v1/connections?format=ndjson&limit=5",
                 "/api/v1/stats/top", "/openapi.yaml"):
        r = get(ctx, path)
        tag = r.headers.get("etag")
        check(r.status == 200 and tag, "%s: no ETag" % path)
        r2 = get(ctx, path, headers={"If-None-Match": tag})
        check(r2.status == 304 and not r2.body, "%s: %d with If-None-Match"
              % (path, r2.status))
        r3 = get(ctx, path, headers={"If-None-Match": '"0000000000000000"'})
        check(r3.status == 200, "%s: stale tag gave %d" % (path, r3.status))


@test
def gzip_answers(ctx):
    cid = ctx.rows[0]["id"] if getattr(ctx, "rows", None) else 1
    cases = [  # path, streamed?, transport
        ("/api/v1/connections?limit=500", False, False),
        ("/api/v1/connections?format=ndjson", True, False),
        ("/api/v1/connections?format=csv", True, True),
        ("/api/v1/connections/%d/transfers?format=ndjson" % cid, True, False),
        ("/api/v1/connections/%d" % cid, False, True),
        ("/api/v1/ips/10.0.0.0%2F8/processes", False, False),
        ("/api/v1/stats/top?by=host", False, False),
        ("/api/v1/failures?format=csv", False, True),
        ("/api/v1/health", False, False),
        ("/openapi.yaml", False, True),
    ]
    for path, streamed, unix in cases:
        plain = get(ctx, path, unix=unix)
        z = get(ctx, path, unix=unix, headers={"Accept-Encoding": "gzip, deflate"})
        what = "%s (%s)" % (path, "unix" if unix else "tcp")
        check(plain.status == 200 and z.status == 200, "%s: %d/%d" % (what, plain.status,
                                                                       z.status))
        check("content-encoding" not in plain.headers, "%s: plain answer coded" % what)
        check(z.headers.get("content-encoding") == "gzip", "%s: not gzip-coded" % what)
        for r in (plain, z):
            check("accept-encoding" in r.headers.get("vary", "").lower(),
                  "%s: Vary %r" % (what, r.headers.get("vary")))
        try:
            body = gzip.decompress(z.body)
        except (OSError, EOFError) as e:
            raise E.Failed("%s: not a gzip stream: %s" % (what, e))
        check(body == plain.body, "%s: decompressed %d bytes differ from the %d plain ones"
              % (what, len(body), len(plain.body)))
        check(len(plain.body) < 2000 or len(z.body) < len(plain.body) / 2,
              "%s: gzip saved little (%d -> %d)" % (what, len(plain.body), len(z.body)))
        if streamed:
            check(z.headers.get("transfer-encoding") == "chunked" and
                  "content-length" not in z.headers, "%s: a stream not chunked: %r"
                  % (what, z.headers))
        else:
            check(z.headers.get("content-length") == str(len(z.body)),
                  "%s: Content-Length %r for %d bytes" % (what, z.headers.get("content-length"),
                                                          len(z.body)))
    m = get(ctx, "/metrics", headers={"Accept-Encoding": "gzip"})
    check(m.headers.get("content-encoding") == "gzip" and
          b"netwhod_http_requests_total" in gzip.decompress(m.body), "/metrics gzip")
    # What does and does not admit gzip (RFC 9110 12.5.3).
    for ae, coded in (("gzip;q=0", False), ("identity", False), ("deflate, br", False),
                      ("*", True), ("x-gzip", True), ("br;q=1.0, GZIP;q=0.5", True),
                      ("gzip;q=0.000", False)):
        r = get(ctx, "/api/v1/stats/top", headers={"Accept-Encoding": ae})
        check((r.headers.get("content-encoding") == "gzip") == coded,
              "Accept-Encoding %r: Content-Encoding %r" % (ae, r.headers.get("content-encoding")))
    # Errors and POST answers stay plain, and still say Vary.
    e = get(ctx, "/api/v1/connections?limit=x", headers={"Accept-Encoding": "gzip"})
    check(e.status == 400 and "content-encoding" not in e.headers and
          "accept-encoding" in e.headers.get("vary", "").lower(), "gzip on an error")


def copy_store(src, dst):
    """A consistent copy of an idle store: the databases and their WAL
    (not the -shm index, which SQLite rebuilds, nor the writer lock)."""
    os.makedirs(dst)
    for name in os.listdir(src):
        if name.endswith(".db") or name.endswith(".db-wal"):
            shutil.copy2(os.path.join(src, name), os.path.join(dst, name))


@test
def etag_304_without_query(ctx):
    """On a copy of the store: another process (netwho ingest) writing it
    makes every old tag stale; then, with the partitions destroyed behind
    the server's back (the generation untouched), a current tag is still
    answered 304 -- no query ran -- while the same request without it
    fails.  Also: If-None-Match: * is judged after validation."""
    store = os.path.join(ctx.tmp, "store-etag")
    copy_store(ctx.store, store)
    p, port = start_server(ctx, "--store", store, "--listen", "127.0.0.1:0", "--no-ingest")
    try:
        cid = ctx.rows[0]["id"] if getattr(ctx, "rows", None) else 1
        paths = ["/api/v1/connections?limit=5", "/api/v1/connections?format=ndjson",
                 "/api/v1/connections/%d" % cid, "/api/v1/connections/%d/transfers" % cid,
                 "/api/v1/stats/top?by=pid", "/api/v1/failures",
                 "/api/v1/ips/10.0.0.0%2F8/processes"]
        old = {}
        for path in paths:
            r = get(ctx, path, port=port)
            check(r.status == 200 and r.headers.get("etag"), "%s: %d" % (path, r.status))
            old[path] = r.headers["etag"]
        h0 = get_json(ctx, "/api/v1/health", port=port)
        # Another process writes the store.
        extra = os.path.join(ctx.tmp, "extra.ndjson")
        res = E.run([sys.executable, os.path.join(ctx.src, "bench", "gen.py"), "--events", "300",
                     "--hosts", "2", "--seed", "21", "--start", "2026-03-20T00:00:00Z",
                     "--out", extra], timeout=120)
        check(res.rc == 0, res.describe())
        res = E.run([ctx.netwho, "ingest", "--store", store, "--quiet", extra], timeout=120)
        check(res.rc == 0, res.describe())
        h1 = get_json(ctx, "/api/v1/health", port=port)
        check(h1["generation"] > h0["generation"], "generation %r -> %r after netwho ingest"
              % (h0["generation"], h1["generation"]))
        new = {}
        for path in paths:
            r = get(ctx, path, port=port, headers={"If-None-Match": old[path]})
            check(r.status == 200 and r.headers.get("etag") != old[path],
                  "%s after another process wrote: %d" % (path, r.status))
            new[path] = r.headers["etag"]
        # Destroy the partitions; the catalog (and its generation) stays.
        for name in os.listdir(store):
            if name.startswith("p-"):
                full = os.path.join(store, name)
                if name.endswith(".db"):
                    with open(full, "r+b") as f:
                        f.write(b"this is no longer a database " * 200)
                else:
                    os.unlink(full)
        for path in paths:
            r = get(ctx, path, port=port, headers={"If-None-Match": new[path]}, record=False)
            check(r.status == 304 and r.headers.get("etag") == new[path],
                  "%s with a current tag on a broken store: %d (a query ran?)"
                  % (path, r.status))
        r = get(ctx, paths[0], port=port, record=False)
        check(r.status >= 500, "the broken store still answered %d: the test proves nothing"
              % r.status)
    finally:
        check(stop_server(p) == 0, "etag server exit")


@test
def cors(ctx):
    # Without --cors: no CORS headers; OPTIONS still says Allow.
    r = request(ctx, "OPTIONS", "/api/v1/connections", headers={"Origin": "https://x.example"})
    check(r.status == 204 and "GET" in r.headers.get("allow", "") and
          "access-control-allow-origin" not in r.headers, "OPTIONS without --cors: %d %r"
          % (r.status, r.headers))
    check("access-control-allow-origin" not in
          get(ctx, "/api/v1/health", headers={"Origin": "https://x.example"}).headers,
          "CORS header without --cors")
    tok = os.path.join(ctx.tmp, "token-cors")
    with open(tok, "w") as f:
        f.write("cors-token-0123456789abcdef\n")
    auth = {"Authorization": "Bearer cors-token-0123456789abcdef"}
    p, port = start_server(ctx, "--listen", "127.0.0.1:0", "--no-ingest", "--token-file", tok,
                           "--cors", "https://dash.example", "--cors", "http://b.example:8443")
    try:
        for origin in ("https://dash.example", "http://b.example:8443"):
            # A preflight needs no token (browsers send none).
            r = request(ctx, "OPTIONS", "/api/v1/connections?limit=5", port=port,
                        headers={"Origin": origin,
                                 "Access-Control-Request-Method": "GET",
                                 "Access-Control-Request-Headers": "authorization, if-none-match"})
            hd = r.headers
            check(r.status == 204 and hd.get("access-control-allow-origin") == origin,
                  "preflight from %s: %d %r" % (origin, r.status, hd))
            check("GET" in hd.get("access-control-allow-methods", "") and
                  "If-None-Match" in hd.get("access-control-allow-headers", "") and
                  "Authorization" in hd.get("access-control-allow-headers", "") and
                  hd.get("access-control-max-age", "").isdigit(), "preflight headers %r" % hd)
            check("origin" in hd.get("vary", "").lower(), "preflight Vary %r" % hd.get("vary"))
            r = get(ctx, "/api/v1/connections?limit=2", port=port,
                    headers=dict(auth, Origin=origin))
            check(r.status == 200 and r.headers.get("access-control-allow-origin") == origin
                  and "ETag" in r.headers.get("access-control-expose-headers", ""),
                  "GET from %s: %r" % (origin, r.headers))
        pre = request(ctx, "OPTIONS", "/api/v1/events", port=port,
                      headers={"Origin": "https://dash.example",
                               "Access-Control-Request-Method": "POST"})
        check(pre.status == 204 and "POST" in
              pre.headers.get("access-control-allow-methods", ""), "events preflight")
        # An unlisted origin gets no grant; a 401 still carries it for a
        # listed one (the page can read why).
        r = get(ctx, "/api/v1/health", port=port, headers=dict(auth, Origin="https://evil.example"))
        check(r.status == 200 and "access-control-allow-origin" not in r.headers,
              "unlisted origin granted: %r" % r.headers)
        r = get(ctx, "/api/v1/health", port=port, headers={"Origin": "https://dash.example"})
        check(r.status == 401 and
              r.headers.get("access-control-allow-origin") == "https://dash.example",
              "401 without CORS: %r" % r.headers)
    finally:
        check(stop_server(p) == 0, "cors server exit")
    p, port = start_server(ctx, "--listen", "127.0.0.1:0", "--no-ingest", "--cors", "*")
    try:
        r = get(ctx, "/api/v1/health", port=port, headers={"Origin": "https://any.example"})
        check(r.headers.get("access-control-allow-origin") == "*", "--cors *: %r" % r.headers)
    finally:
        check(stop_server(p) == 0, "cors * server exit")
    for bad in ("dash.example", "", "https://a.example,https://b.example"):
        p, _ = start_server(ctx, "--listen", "127.0.0.1:0", "--cors", bad, expect_port=False)
        try:
            rc = p.wait(START_TIMEOUT)
        except subprocess.TimeoutExpired:
            p.kill()
            raise E.Failed("--cors %r was accepted" % bad)
        check(rc == 2, "--cors %r: exit %s" % (bad, rc))



# Answers whose tags post_events checks: each must change with the commit,
# whether or not its body does (the first page of the oldest connections
# does not).
TAGGED = ["/api/v1/connections?limit=5", "/api/v1/connections?format=ndjson&limit=5",
          "/api/v1/stats/top?by=host", "/api/v1/failures?limit=3", "/api/v1/health"]


@test
def etag_from_generation(ctx):
    base = "/api/v1/connections?limit=5&proto=tcp&port=443"
    a = get(ctx, base)
    tag = a.headers.get("etag")
    check(a.status == 200 and tag, "no ETag on %s" % base)
    # The parameters' order does not matter; their values do.
    b = get(ctx, "/api/v1/connections?port=443&proto=tcp&limit=5")
    check(b.headers.get("etag") == tag and b.body == a.body, "order changed the tag")
    c = get(ctx, "/api/v1/connections?limit=6&proto=tcp&port=443")
    check(c.headers.get("etag") != tag, "limit=6 has the tag of limit=5")
    # The same tag over the Unix socket, and on HEAD (no body).
    u = get(ctx, base, unix=True)
    check(u.headers.get("etag") == tag, "unix socket tag differs")
    h = request(ctx, "HEAD", base)
    check(h.status == 200 and h.headers.get("etag") == tag and not h.body,
          "HEAD: %d %r" % (h.status, h.headers.get("etag")))
    # The format is part of the tag, whether named or negotiated.
    n = get(ctx, "/api/v1/connections?limit=5&proto=tcp&port=443",
            headers={"Accept": "application/x-ndjson"})
    check("ndjson" in n.headers.get("content-type", "") and n.headers.get("etag") != tag,
          "Accept: ndjson answered %r with tag %r" % (n.headers.get("content-type"),
                                                    n.headers.get("etag")))
    # A gzip-coded answer has its own tag: a plain client that sends it
    # gets the plain answer, a gzip client gets its 304.
    z = get(ctx, base, headers={"Accept-Encoding": "gzip"})
    ztag = z.headers.get("etag")
    check(ztag and ztag != tag, "gzip answer has the plain tag")
    r = get(ctx, base, headers={"If-None-Match": ztag})
    check(r.status == 200 and r.body == a.body, "plain client with the gzip tag: %d" % r.status)
    r = get(ctx, base, headers={"If-None-Match": ztag, "Accept-Encoding": "gzip"})
    check(r.status == 304 and r.headers.get("etag") == ztag and not r.body,
          "gzip revalidation: %d" % r.status)
    check("accept-encoding" in r.headers.get("vary", "").lower(), "304 without Vary")
    # Lists of tags, weak comparison, and "*".
    for inm in ('"0000000000000000", %s' % tag, "W/" + tag, "*"):
        r = get(ctx, base, headers={"If-None-Match": inm})
        check(r.status == 304, "If-None-Match %r: %d" % (inm, r.status))
    # Errors carry no tag, and a tag never turns an error into a 304.
    e = get(ctx, "/api/v1/connections?limit=0")
    check(e.status == 400 and "etag" not in e.headers, "error with an ETag")
    e = get(ctx, "/api/v1/connections?limit=0", headers={"If-None-Match": "*"})
    check(e.status == 400, "If-None-Match: * on a bad request gave %d" % e.status)
    # /metrics changes with every request: no tag.
    check("etag" not in get(ctx, "/metrics").headers, "/metrics has an ETag")
    ctx.tags_before_post = {p: get(ctx, p).headers.get("etag") for p in TAGGED}


@test
def post_events(ctx):
    check(getattr(ctx, "tags_before_post", None), "needs etag_from_generation")
    with open(ctx.post_file, "rb") as f:
        body = f.read()
    r = request(ctx, "POST", "/api/v1/events", body=body,
                headers={"Content-Type": "application/x-ndjson"}, unix=True)
    check(r.status == 200, "POST: %d %.300r" % (r.status, r.body))
    res = r.json()
    check(res["accepted"] == ctx.exp2["accepted"] and
          res["rejected"] == ctx.exp2["rejected"] and
          res["rejected_by_reason"] == ctx.exp2["rejected_by_reason"],
          "POST answer %r, expected accepted %d" % (res, ctx.exp2["accepted"]))
    got = all_connections(ctx, "from=" + urllib.parse.quote(POST_START), limit=1000)
    d = E.multiset_diff(got, ctx.exp2["connections"])
    check(not d, "after POST: " + d)
    h = get_json(ctx, "/api/v1/health")
    check(h["ingest"]["batches"] >= 1 and h["ingest"]["accepted"] >= res["accepted"],
          "health ingest %r" % h["ingest"])
    check(h["ingest"]["rejected_by_reason"] == ctx.exp2["rejected_by_reason"],
          "health rejected_by_reason %r" % h["ingest"]["rejected_by_reason"])
    check_hosts(h, ctx.exp, ctx.exp2)
    # The commit changed the store generation: every old tag is stale,
    # even where the body did not change.
    for p, old in ctx.tags_before_post.items():
        r = get(ctx, p, headers={"If-None-Match": old})
        check(r.status == 200 and r.headers.get("etag") not in (None, old),
              "%s after a commit: %d, tag %r (was %r)" % (p, r.status,
                                                           r.headers.get("etag"), old))
    m = get(ctx, "/metrics").text()
    for name in ("netwhod_http_requests_total{route=\"connections\",status=\"200\"}",
                 "netwhod_http_request_duration_seconds_bucket",
                 "netwhod_store_partitions", "netwhod_store_bytes",
                 "netwhod_ingest_events_total"):
        check(name in m, "/metrics lacks %s" % name)


GARBAGE = ["", "abc", "-1", "99999999999999999999", "1e3", "0x10", " 1", "1 ",
           "%00", "'; DROP TABLE connections; --", "1 OR 1=1", "\u00e9\u00e9",
           "<script>", "../../etc/passwd", "x" * 600, "1" * 600]
PARAM_BAD = {
    "ip": GARBAGE + ["10.0.0.0/33", "::1/129", "256.1.1.1", "10.0.0.0/8/8"],
    "port": GARBAGE + ["65536", "80abc"],
    "local_port": GARBAGE + ["65536"],
    "remote_port": GARBAGE + ["65536"],
    "pid": GARBAGE + ["4294967296"],
    "host": ["", "x" * 600],
    "proto": GARBAGE + ["TCPX", "icmp"],
    "direction": GARBAGE + ["sideways"],
    "state": GARBAGE + ["open"],
    # "-1" is a valid time (epoch seconds before 1970)
    "from": [g for g in GARBAGE if g != "-1"] + ["2026-13-01T00:00:00Z",
                                                 "2026-03-16T25:00:00Z"],
    "to": [g for g in GARBAGE if g != "-1"] + ["2026-02-30T00:00:00Z"],
    "limit": GARBAGE + ["0", "10001"],
    "cursor": GARBAGE + ["0" * 32, "g" * 32, "0" * 31, "0" * 33],
    "format": GARBAGE + ["table", "xml"],
    "community_id": GARBAGE + ["1:", "2:o8menXQ4hXu31Srz17+8UsfVwNM=",
                               "1:o8menXQ4hXu31Srz17+8UsfVwNM", "1:o8menXQ4hXu31Srz17_8UsfVwNM=",
                               "o8menXQ4hXu31Srz17+8UsfVwNM="],
    "exclude_loopback": GARBAGE + ["yes", "TRUE", "2"],
    "scope": GARBAGE + ["Public", "global", "site-local", "public,private"],
}


@test
def bad_parameters(ctx):
    n = 0
    for name, values in PARAM_BAD.items():
        for v in values:
            path = "/api/v1/connections?" + urllib.parse.urlencode({name: v})
            r = get(ctx, path, unix=(n % 2 == 1))
            expect_error(r, 400, name, "%s=%.40r" % (name, v))
            n += 1
    # from >= to names "to"
    expect_error(get(ctx, "/api/v1/connections?from=2026-03-17T00:00:00Z&to=2026-03-16T00:00:00Z"),
                 400, "to", "from > to")
    for name in ("prot", "limit2", "x" * 300, "ip[]", "'--", "%00"):
        expect_error(get(ctx, "/api/v1/connections?" + urllib.parse.urlencode({name: "1"})),
                     400, None, "unknown %r" % name)
    expect_error(get(ctx, "/api/v1/connections?port=1&port=2"), 400, "port", "twice")
    many = "&".join("port%d=1" % i for i in range(40))
    expect_error(get(ctx, "/api/v1/connections?" + many), 400, None, "40 params")
    for path, param in (("/api/v1/stats/top?by=nothing", "by"),
                        ("/api/v1/stats/top?order=size", "order"),
                        ("/api/v1/stats/top?limit=0", "limit"),
                        ("/api/v1/stats/top?format=csv", "format"),
                        ("/api/v1/failures?from=yesterday", "from"),
                        ("/api/v1/failures?ip=1.2.3.4", "ip"),
                        ("/api/v1/ips/not-an-ip/processes", "ip"),
                        ("/api/v1/ips/10.0.0.0%2F99/processes", "ip"),
                        ("/api/v1/ips/1.2.3.4/processes?cursor=00", "cursor"),
                        ("/api/v1/connections/abc", "id"),
                        ("/api/v1/connections/-5", "id"),
                        ("/api/v1/connections/99999999999999999999999", "id"),
                        ("/api/v1/connections/1?limit=1", "limit"),
                        ("/api/v1/connections/1/transfers?cursor=zz", "cursor"),
                        ("/api/v1/health?verbose=1", "verbose"),
                        # the flow filters: refused by name wherever
                        # connections are listed, unknown elsewhere
                        ("/api/v1/export/sysmon?scope=world", "scope"),
                        ("/api/v1/export/sysmon?community_id=1:x", "community_id"),
                        ("/api/v1/export/sysmon?exclude_loopback=2", "exclude_loopback"),
                        ("/api/v1/processes/4/connections?host=x&at=1&scope=world", "scope"),
                        ("/api/v1/processes/4/connections?host=x&at=1&community_id=x",
                         "community_id"),
                        ("/api/v1/ips/1.2.3.4/processes?scope=public", "scope"),
                        ("/api/v1/stats/top?exclude_loopback=true", "exclude_loopback"),
                        ("/api/v1/failures?scope=public", "scope")):
        expect_error(get(ctx, path), 400, param, path)


@test
def bad_paths_methods_bodies(ctx):
    for path in ("/", "/api", "/api/v1", "/api/v2/connections", "/api/v1/connection",
                 "/api/v1/connections/1/transfer", "/api/v1/ips/1.2.3.4",
                 "/etc/passwd", "/api/v1/connections/../health", "/" + "a" * 3000):
        expect_error(get(ctx, path), 404, None, path)
    expect_error(get(ctx, "/api/v1/connections/999999999"), 404, "id", "no such id")
    expect_error(get(ctx, "/api/v1/connections/999999999/transfers"), 404, "id",
                 "no such id (transfers)")
    for method, path, allow in (("POST", "/api/v1/connections", "GET"),
                                ("DELETE", "/api/v1/connections/1", "GET"),
                                ("PUT", "/api/v1/health", "GET"),
                                ("GET", "/api/v1/events", "POST"),
                                ("PATCH", "/api/v1/events", "POST")):
        r = request(ctx, method, path, body=b"" if method != "GET" else None)
        expect_error(r, 405, None, "%s %s" % (method, path))
        check(allow in r.headers.get("allow", ""), "%s %s: Allow %r" % (
            method, path, r.headers.get("allow")))
    bodies = [b"hello", b"{\"system\": {", b"[1, 2, 3]", b"{}", b"\xff\xfe\x00",
              b"{\"a\":" * 1000, b"null"]
    for body in bodies:
        r = request(ctx, "POST", "/api/v1/events", body=body, unix=True)
        err = expect_error(r, 400, None, "body %.30r" % body)
        check(err["code"] == "no_events_accepted", "code %r" % err["code"])
        check(r.json()["rejected"] >= 1, "body %.30r: %r" % (body, r.json()))
    expect_error(request(ctx, "POST", "/api/v1/events", body=b""), 400, None, "empty")
    # Oversized: refused from Content-Length, before the body is read.
    s = socket.create_connection(("127.0.0.1", ctx.port), timeout=REQ_TIMEOUT)
    try:
        s.sendall(b"POST /api/v1/events HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Length: 999999999999\r\n\r\n")
        data = b""
        while b"\r\n\r\n" not in data and len(data) < 65536:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    check(data.startswith(b"HTTP/1.1 413"), "oversized: %.200r" % data)
    # Oversized without a Content-Length (chunked): cut at the cap, 413.
    conn = http.client.HTTPConnection("127.0.0.1", ctx.port, timeout=REQ_TIMEOUT * 2)
    try:
        def chunks():
            block = b"x" * (1 << 20)
            for _ in range(65):
                yield block
        conn.request("POST", "/api/v1/events", body=chunks(),
                     encode_chunked=True,
                     headers={"Transfer-Encoding": "chunked"})
        r = conn.getresponse()
        data = r.read()
        ctx.recorder.add("POST", "/api/v1/events", r.status,
                         {k.lower(): v for k, v in r.getheaders()}, data)
        check(r.status == 413, "chunked oversized: %d" % r.status)
    finally:
        conn.close()
    # Still serving, nothing lost.
    h = get_json(ctx, "/api/v1/health")
    check(h["connections"] == len(ctx.exp["connections"]) + len(ctx.exp2["connections"]),
          "health after abuse: %r" % h)


# Values no parameter accepts: 100 KB, a NUL byte, CR LF, an escape.
HOSTILE = ["x" * 100_000, "1\x00", "a\r\nSet-Cookie: x=1", "\x1b[2J", "1\t2"]
# SQL written into values: refused where the value has a syntax, and
# harmless (a literal, nothing found) where any text is a value (host).
SQL = ["' OR '1'='1", "1; DROP TABLE connections; --", "1) UNION SELECT * FROM sqlite_master--",
       "\" OR \"\"=\""]
ROUTE_PARAMS = [
    ("/api/v1/connections", list(PARAM_BAD)),
    ("/api/v1/stats/top", ["by", "order", "from", "to", "limit"]),
    ("/api/v1/failures", ["host", "from", "to", "limit", "format"]),
    ("/api/v1/connections/1/transfers", ["limit", "cursor", "format"]),
    ("/api/v1/ips/10.0.0.0%2F8/processes", ["port", "pid", "host", "proto", "from", "limit"]),
]


@test
def bad_input_every_route(ctx):
    h0 = get_json(ctx, "/api/v1/health")
    n = 0
    for route, names in ROUTE_PARAMS:
        for name in names:
            for v in HOSTILE + SQL:
                path = route + "?" + urllib.parse.urlencode({name: v})
                r = get(ctx, path, unix=(n % 3 == 0))
                n += 1
                what = "%s %s=%.30r" % (route, name, v)
                if name == "host" and v in SQL:
                    check(r.status == 200 and r.json()["data"] == [],
                          "%s: %d %.200r" % (what, r.status, r.body))
                    continue
                expect_error(r, 400, name, what)
        # An unknown name, and one with a NUL in it, on every route.
        expect_error(get(ctx, route + ("&" if "?" in route else "?") + "colour=red"),
                     400, "colour", route + " unknown")
        expect_error(get(ctx, route + "?li%00mit=5"), 400, "li", route + " NUL in a name")
    # A NUL in the path is not cut off: /connections/1%00x is not connection 1.
    for path in ("/api/v1/connections/1%00x", "/api/v1/connections/1%00/transfers",
                 "/api/v1/ips/10.0.0.1%00/processes", "/api/v1/health%00"):
        err = expect_error(get(ctx, path), 400, None, path)
        check(err["code"] == "bad_path", "%s: code %r" % (path, err["code"]))
    # 100 KB in the path.
    expect_error(get(ctx, "/api/v1/ips/" + "1" * 100_000 + "/processes"), 400, "ip", "100 KB ip")
    expect_error(get(ctx, "/api/v1/connections/" + "9" * 100_000), 400, "id", "100 KB id")
    # Beyond the HTTP layer's line limit: a bare 414, and the server lives.
    r = get(ctx, "/api/v1/connections?host=" + "x" * 1_000_000, record=False)
    check(r.status == 414, "1 MB request line: %d" % r.status)
    # Headers that are garbage.
    r = get(ctx, "/api/v1/connections?limit=3", headers={"Accept": "x" * 50_000,
                                                         "If-None-Match": "\"" * 1000})
    check(r.status == 200, "garbage headers: %d" % r.status)
    # Bodies: truncated, not JSON, a form, a wrong type, a lying length.
    with open(ctx.post_file, "rb") as f:
        first = f.readline()
    for body, ctype, status in ((first[: len(first) // 2], "application/x-ndjson", 400),
                                (b"{\"system\":", "application/json", 400),
                                (b"a=1&b=2", "application/x-www-form-urlencoded", 415),
                                (first, "text/plain", 415),
                                (first, "multipart/form-data; boundary=x", 415),
                                (b"<events/>", "application/xml", 415)):
        r = request(ctx, "POST", "/api/v1/events", body=body, headers={"Content-Type": ctype})
        err = expect_error(r, status, None, "POST %s %.30r" % (ctype, body))
        check(status != 400 or r.json()["rejected"] >= 1, "POST %s: %r" % (ctype, r.json()))
    s = socket.create_connection(("127.0.0.1", ctx.port), timeout=REQ_TIMEOUT)
    try:   # promises 10000 bytes, sends 50, then goes away
        s.sendall(b"POST /api/v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 10000\r\n"
                  b"Content-Type: application/x-ndjson\r\n\r\n" + first[:50])
        s.shutdown(socket.SHUT_WR)
        s.settimeout(REQ_TIMEOUT)
        try:
            s.recv(4096)
        except OSError:
            pass
    finally:
        s.close()
    # Nothing lost, nothing added: the store and the ingest counters are
    # where they were.
    h1 = get_json(ctx, "/api/v1/health")
    check(h1["connections"] == h0["connections"] and h1["generation"] == h0["generation"] and
          h1["ingest"]["accepted"] == h0["ingest"]["accepted"],
          "bad input changed the store: %r -> %r" % (
              {k: h0[k] for k in ("connections", "generation")},
              {k: h1[k] for k in ("connections", "generation")}))


@test
def responses_conform_to_openapi(ctx):
    """Every answer recorded so far (success and error, both transports,
    every server these tests started) against openapi.yaml's schema for its
    operation, status and media type -- and proof that the check bites."""
    recs = list(ctx.recorder.records)
    statuses = collections.Counter(r["status"] for r in recs)
    check(len(recs) > 300 and {200, 304, 400, 404, 405, 413, 415} <= set(statuses),
          "too few answers recorded to mean much: %r" % statuses)
    checked, failures = O.validate(ctx.src, recs)
    check(checked == len(recs), "validator checked %d of %d" % (checked, len(recs)))
    check(not failures, "%d answers do not conform: %s" % (len(failures),
                                                           O.describe(failures)))
    # The same check on answers broken one way each must fail.
    def find(pred):
        for r in recs:
            if pred(r):
                return dict(r)
        raise E.Failed("no recorded answer to mutate")
    page = find(lambda r: r["path"].startswith("/api/v1/connections?") and
                r["status"] == 200 and r["content_type"] == "application/json" and
                '"data":[{' in r["body"])
    health = find(lambda r: r["path"] == "/api/v1/health" and r["status"] == 200)
    error = find(lambda r: r["status"] == 400 and r["path"].startswith("/api/v1/connections?"))
    top = find(lambda r: r["path"].startswith("/api/v1/stats/top") and r["status"] == 200 and
               '"data":[{' in r["body"])
    nd = find(lambda r: "format=ndjson" in r["path"] and r["status"] == 200 and r["body"])

    def mutate(rec, fn):
        m = dict(rec)
        doc = json.loads(m["body"])
        fn(doc)
        m["body"] = json.dumps(doc)
        return m
    broken = [
        mutate(page, lambda d: d["data"][0].update(local_port="445")),      # wrong type
        mutate(page, lambda d: d["data"][0].pop("state")),                  # missing field
        mutate(page, lambda d: d["data"][0].update(colour="red")),          # unknown field
        mutate(page, lambda d: d["data"][0].update(first_seen="yesterday")),
        mutate(page, lambda d: d.update(next_cursor=7)),
        mutate(health, lambda d: d.pop("hosts")),
        mutate(health, lambda d: d["ingest"].update(accepted=-1)),
        mutate(health, lambda d: d.update(status="fine")),
        mutate(error, lambda d: d["error"].pop("parameter")),
        mutate(error, lambda d: d.update(detail="x")),
        mutate(top, lambda d: d["data"][0].update(remote_port=53)),        # by=remote_ip row + port
        dict(page, status=418),                                             # undeclared status
        dict(page, content_type="text/html"),                               # undeclared type
        dict(page, body="{\"data\": [}"),                                   # not JSON
        dict(nd, body=nd["body"].split("\n")[0].replace('"pid":', '"pid":"x",'
                                                          '"pid_":') + "\n"),
        dict(page, etag="W/\"abc\""),
    ]
    checked, failures = O.validate(ctx.src, broken)
    caught = {f["index"] for f in failures}
    missed = [i for i in range(len(broken)) if i not in caught]
    check(not missed, "the validator let broken answers pass: %s" % [
        (broken[i]["path"][:60], broken[i]["body"][:120]) for i in missed])


@test
def openapi_served_and_valid(ctx):
    path = os.path.join(ctx.src, "openapi.yaml")
    with open(path, "rb") as f:
        want = f.read()
    r = get(ctx, "/openapi.yaml", unix=True)
    check(r.status == 200 and r.body == want, "/openapi.yaml: %d, %d bytes" % (
        r.status, len(r.body)))
    O.lint(ctx.src)
    # Every path of the contract answers something other than 404 here.
    text = want.decode()
    paths = [l.strip()[:-1] for l in text.splitlines()
             if l.startswith("  /") and l.rstrip().endswith(":")]
    check(len(paths) >= 10, "openapi paths: %r" % paths)
    for p in paths:
        p = p.replace("{id}", "1").replace("{ip}", "10.0.0.0%2F8")
        r = get(ctx, p)
        check(r.status != 404 or p.endswith("/1") or p.endswith("/1/transfers"),
              "%s is in openapi.yaml but answers 404" % p)


@test
def token_auth(ctx):
    tok = os.path.join(ctx.tmp, "token")
    with open(tok, "w") as f:
        f.write("s3cret-token-0123456789\n")
    p, port = start_server(ctx, "--listen", "127.0.0.1:0", "--token-file", tok,
                           "--no-ingest")
    try:
        expect_error(get(ctx, "/api/v1/health", port=port), 401, None, "no token")
        expect_error(get(ctx, "/api/v1/health", port=port,
                         headers={"Authorization": "Bearer s3cret-token-012345678"}),
                     401, None, "short token")
        expect_error(get(ctx, "/api/v1/health", port=port,
                         headers={"Authorization": "Bearer s3cret-token-0123456789x"}),
                     401, None, "long token")
        r = get(ctx, "/api/v1/health", port=port,
                headers={"Authorization": "Bearer s3cret-token-0123456789"})
        check(r.status == 200, "good token: %d" % r.status)
        expect_error(request(ctx, "POST", "/api/v1/events", body=b"{}", port=port,
                             headers={"Authorization": "Bearer s3cret-token-0123456789"}),
                     503, None, "--no-ingest")
    finally:
        check(stop_server(p) == 0, "token server exit")
    # A non-loopback listener without a token refuses to start.
    p, _ = start_server(ctx, "--listen", "0.0.0.0:0", expect_port=False)
    try:
        rc = p.wait(START_TIMEOUT)
    except subprocess.TimeoutExpired:
        p.kill()
        raise E.Failed("non-loopback listen without a token kept running")
    check(rc == 2 and "token" in server_log(p), "non-loopback: exit %s" % rc)


@test
def clean_stop(ctx):
    r = get(ctx, "/api/v1/health")
    check(r.status == 200, "health before stop")
    rc = stop_server(ctx.main)
    log = server_log(ctx.main)
    check(rc == 0, "exit %s after SIGTERM: %s" % (rc, log[-1500:]))
    check(not os.path.exists(ctx.sock_path), "socket file left behind")
    check("ERROR: " not in log and "runtime error" not in log,
          "sanitizer report: %s" % log[-3000:])


# ------------------------------------------------------------------ main

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin-dir", required=True)
    ap.add_argument("--source-dir", required=True)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--only")
    a = ap.parse_args()
    ctx = Ctx()
    ctx.src = os.path.abspath(a.source_dir)
    ctx.netwho = os.path.join(a.bin_dir, "netwho")
    ctx.netwhod = os.path.join(a.bin_dir, "netwhod")
    ctx.tmp = tempfile.mkdtemp(prefix="netwhod-e2e-")
    ctx.store = os.path.join(ctx.tmp, "store")
    ctx.sock_path = os.path.join(ctx.tmp, "netwhod.sock")
    ctx.procs = []
    ctx.recorder = O.Recorder()
    passed = failed = 0
    try:
        gen = os.path.join(ctx.src, "bench", "gen.py")
        ev, exp = os.path.join(ctx.tmp, "ev.ndjson"), os.path.join(ctx.tmp, "ev.json")
        ctx.post_file = os.path.join(ctx.tmp, "post.ndjson")
        exp2 = os.path.join(ctx.tmp, "post.json")
        for argv in ([sys.executable, gen, "--events", "5000", "--hosts", "5",
                      "--seed", "7", "--out", ev, "--expect", exp],
                     [sys.executable, gen, "--events", "1500", "--hosts", "3",
                      "--seed", "8", "--start", POST_START, "--out", ctx.post_file,
                      "--expect", exp2],
                     [ctx.netwho, "ingest", "--store", ctx.store, "--quiet", ev]):
            res = E.run(argv, timeout=300)
            if res.rc != 0:
                print("SETUP FAILED: " + res.describe())
                print("0 passed, 1 failed")
                return 1
        with open(exp) as f:
            ctx.exp = json.load(f)
        with open(exp2) as f:
            ctx.exp2 = json.load(f)
        ctx.main, ctx.port = start_server(ctx, "--listen", "127.0.0.1:0",
                                          "--socket", ctx.sock_path)
        # The conformance check reads what every other test received: it
        # runs last but for the clean stop.
        order = [t for t in TESTS if t not in (responses_conform_to_openapi, clean_stop)]
        order += [responses_conform_to_openapi, clean_stop]
        for t in order:
            if a.only and a.only not in t.__name__:
                continue
            t0 = time.time()
            try:
                t(ctx)
                passed += 1
                print("PASS %-28s %.1fs" % (t.__name__, time.time() - t0))
            except Exception as e:  # noqa: BLE001 -- report and go on
                failed += 1
                print("FAIL %-28s %.1fs: %s" % (t.__name__, time.time() - t0,
                                                str(e)[:2000]))
                if not isinstance(e, AssertionError):
                    traceback.print_exc()
            sys.stdout.flush()
    except Exception as e:  # noqa: BLE001
        failed += 1
        print("FAIL setup: %s" % e)
        traceback.print_exc()
    finally:
        for p in ctx.procs:
            if p.poll() is None:
                p.kill()
                p.wait(10)
        if a.keep:
            print("kept " + ctx.tmp)
        else:
            shutil.rmtree(ctx.tmp, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
