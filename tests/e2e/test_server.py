#!/usr/bin/env python3
"""
test_server.py -- end to end: the real `netwhod` on 127.0.0.1 (ephemeral
port) and on a Unix socket, over a store filled by `netwho ingest` and by
POST /api/v1/events with events from bench/gen.py; every answer is compared
with the generator's exact expectation.  Then bad input of every kind (each
parameter garbage, overlong, injection; unknown names; bad paths, methods,
bodies), after which the server must still answer.  openapi.yaml is checked
with a real validator (@redocly/cli, pinned in tools/openapi/package.json).

    python3 tests/e2e/test_server.py --bin-dir BUILD --source-dir SRC
        [--keep] [--only SUBSTRING]

Prints one line per test and a final "N passed, M failed"; exits 1 if any
test failed.  Every request has a timeout; the servers are always killed.
"""

import argparse
import collections
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


def request(ctx, method, path, body=None, headers=None, unix=False, port=None):
    """One request on a fresh connection; raw path (already encoded)."""
    if unix:
        conn = UnixHTTPConnection(ctx.sock_path, REQ_TIMEOUT)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port or ctx.port,
                                          timeout=REQ_TIMEOUT)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        return Resp(r.status, {k.lower(): v for k, v in r.getheaders()}, data)
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

@test
def health_both_transports(ctx):
    for unix in (False, True):
        h = get_json(ctx, "/api/v1/health", unix=unix)
        check(h["status"] == "ok" and h["partitions"] == ctx.exp["partitions"],
              "health %r" % h)
        check(h["connections"] == len(ctx.exp["connections"]), "health %r" % h)


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
    ]
    for params, f in cases:
        want = [c for c in conns if E.match(c, f)]
        got = all_connections(ctx, qs(**params), limit=500)
        if "from" not in params:
            got = [g for g in got if E.ticks_of(g["first_seen"]) <
                   E.ticks_of(POST_START)]
        d = E.multiset_diff(got, want)
        check(not d, "%r: %s" % (params, d))
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
def post_events(ctx):
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
                        ("/api/v1/health?verbose=1", "verbose")):
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
        r.read()
        check(r.status == 413, "chunked oversized: %d" % r.status)
    finally:
        conn.close()
    # Still serving, nothing lost.
    h = get_json(ctx, "/api/v1/health")
    check(h["connections"] == len(ctx.exp["connections"]) + len(ctx.exp2["connections"]),
          "health after abuse: %r" % h)


@test
def openapi_served_and_valid(ctx):
    path = os.path.join(ctx.src, "openapi.yaml")
    with open(path, "rb") as f:
        want = f.read()
    r = get(ctx, "/openapi.yaml", unix=True)
    check(r.status == 200 and r.body == want, "/openapi.yaml: %d, %d bytes" % (
        r.status, len(r.body)))
    npm = shutil.which("npm")
    check(npm, "npm is not installed: the openapi.yaml validator (@redocly/cli) "
               "needs node and npm (apt-get install npm)")
    tools = os.path.join(ctx.src, "tools", "openapi")
    bin_ = os.path.join(tools, "node_modules", ".bin", "redocly")
    if not os.path.exists(bin_):
        res = E.run([npm, "install", "--no-audit", "--no-fund", "--prefix", tools],
                    timeout=300)
        check(res.rc == 0 and os.path.exists(bin_), "npm install of @redocly/cli "
              "failed: " + res.describe())
    res = E.run([bin_, "lint", "--format", "stylish", path], timeout=120)
    check(res.rc == 0, "redocly lint openapi.yaml: " + res.out[-1500:] + res.err[-500:])
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
        for t in TESTS:
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
