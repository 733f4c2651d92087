#!/usr/bin/env python3
"""
test_sysmon_export.py -- end to end: the real `netwho export --sysmon` and
`GET /api/v1/export/sysmon` of `netwhod`, checked against answers this file
computes on its own from `netwho query -o ndjson`.

The exported XML is parsed with a real XML parser (xml.etree), and every
System and EventData field of every event is compared with the expected
value; JSON, NDJSON (with OSSEM names) and ECS (with bulk lines) likewise.
The Community ID is recomputed here with hashlib and base64 from the
specification, the Sysmon rendering rules are re-implemented from
include/netwho/sysmon.h, and service names are read from the generated
table common/services_table.inc.

    python3 tests/e2e/test_sysmon_export.py --bin-dir BUILD --source-dir SRC [--keep]

Prints one line per test and "N passed, M failed"; exits 1 on a failure.
"""

import argparse
import base64
import hashlib
import http.client
import ipaddress
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.parse
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import netwho_e2e as E  # noqa: E402
from netwho_e2e import check  # noqa: E402

NS = "{http://schemas.microsoft.com/win/2004/08/events/event}"
DATA_ORDER = ["RuleName", "UtcTime", "ProcessGuid", "ProcessId", "Image", "User",
              "Protocol", "Initiated", "SourceIsIpv6", "SourceIp", "SourceHostname",
              "SourcePort", "SourcePortName", "DestinationIsIpv6", "DestinationIp",
              "DestinationHostname", "DestinationPort", "DestinationPortName"]
PROTO = {"tcp": 6, "udp": 17}
TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


class Ctx:
    pass


# ------------------------------------------------------------ the model

def load_services(src):
    table = {}
    path = os.path.join(src, "common", "services_table.inc")
    for m in re.finditer(r'\{(\d+), NW_PROTO_(TCP|UDP), "([^"]+)"\}',
                         open(path, encoding="utf-8").read()):
        table[(int(m.group(1)), m.group(2).lower())] = m.group(3)
    return table


def community_id(c, seed=0):
    """Community ID v1 straight from the specification's pseudo-code."""
    a = ipaddress.ip_address(c["local_ip"]).packed
    b = ipaddress.ip_address(c["remote_ip"]).packed
    mapped = b"\0" * 10 + b"\xff\xff"
    if len(a) == 4 or (a[:12] == mapped and b[:12] == mapped):
        a, b = a[-4:], b[-4:]            # IPv4 on the wire: hashed as 4 bytes
    pa, pb = c["local_port"], c["remote_port"]
    if (a, pa) > (b, pb):
        a, b, pa, pb = b, a, pb, pa
    msg = (seed.to_bytes(2, "big") + a + b + bytes([PROTO[c["proto"]], 0]) +
           pa.to_bytes(2, "big") + pb.to_bytes(2, "big"))
    return "1:" + base64.b64encode(hashlib.sha1(msg).digest()).decode()


def sysmon_ip(text, version):
    ip = ipaddress.ip_address(text)
    if version == 4:
        return str(ip)
    return ":".join("%x" % int(g, 16) for g in ip.exploded.split(":"))


def expected(c, services, no_names=False, no_hosts=False):
    """The 18 EventData values of a connection, as sysmon.h specifies."""
    lname = services.get((c["local_port"], c["proto"]))
    rname = services.get((c["remote_port"], c["proto"]))
    if c["direction"] == "outbound":
        local_src = True
    elif c["direction"] == "inbound":
        local_src = False
    elif (lname is None) != (rname is None):
        local_src = rname is not None
    else:
        local_src = c["local_port"] >= c["remote_port"]
    if no_names:
        lname = rname = None
    host = "-" if no_hosts else (c["host"] or "-")
    local = (sysmon_ip(c["local_ip"], c["ip_version"]), host, c["local_port"], lname or "-")
    remote = (sysmon_ip(c["remote_ip"], c["ip_version"]), "-", c["remote_port"],
              rname or "-")
    src, dst = (local, remote) if local_src else (remote, local)
    fs = c["first_seen"]                      # 2026-03-16T00:21:36.4231059Z
    v6 = "true" if c["ip_version"] == 6 else "false"
    return {
        "RuleName": "-", "UtcTime": fs[:10] + " " + fs[11:23], "ProcessGuid": "-",
        "ProcessId": str(c["pid"]), "Image": "-", "User": "-", "Protocol": c["proto"],
        "Initiated": "true" if local_src else "false",
        "SourceIsIpv6": v6, "SourceIp": src[0], "SourceHostname": src[1],
        "SourcePort": str(src[2]), "SourcePortName": src[3],
        "DestinationIsIpv6": v6, "DestinationIp": dst[0], "DestinationHostname": dst[1],
        "DestinationPort": str(dst[2]), "DestinationPortName": dst[3],
    }, local_src


# ------------------------------------------------------------ helpers

def netwho(ctx, *args):
    return E.run([ctx.bin] + [str(a) for a in args])


def ok(res):
    check(res.rc == 0, res.describe())
    return res


def truth(ctx, *filters):
    res = ok(netwho(ctx, "query", "--store", ctx.store, "-o", "ndjson", *filters))
    return {c["id"]: c for c in E.parse_ndjson_output(res.out)}


def check_xml_events(ctx, text, conns, exporter_pid=None):
    root = ET.fromstring(text.encode("utf-8"))
    check(root.tag == "Events", "root is %s" % root.tag)
    events = list(root)
    check(len(events) == len(conns), "%d events for %d connections" % (len(events), len(conns)))
    seen = set()
    for ev in events:
        check(ev.tag == NS + "Event", "element %s" % ev.tag)
        sysel = ev.find(NS + "System")
        prov = sysel.find(NS + "Provider")
        check(prov.get("Name") == "Microsoft-Windows-Sysmon", "provider name")
        check(prov.get("Guid") == "{5770385F-C22A-43E0-BF4C-06F5698FFBD9}", "provider guid")
        for tag, want in (("EventID", "3"), ("Version", "5"), ("Level", "4"), ("Task", "3"),
                          ("Opcode", "0"), ("Keywords", "0x8000000000000000"),
                          ("Channel", "Microsoft-Windows-Sysmon/Operational")):
            got = sysel.find(NS + tag).text
            check(got == want, "%s = %r, expected %r" % (tag, got, want))
        rid = int(sysel.find(NS + "EventRecordID").text)
        check(rid in conns, "EventRecordID %d is no connection id" % rid)
        seen.add(rid)
        c = conns[rid]
        check(sysel.find(NS + "Computer").text == c["host"], "Computer of %d" % rid)
        st = sysel.find(NS + "TimeCreated").get("SystemTime")
        check(st == c["first_seen"][:-1] + "00Z", "SystemTime %s vs %s" % (st, c["first_seen"]))
        check(sysel.find(NS + "Correlation") is not None, "Correlation missing")
        exe = sysel.find(NS + "Execution")
        if exporter_pid is not None:
            check(exe.get("ProcessID") == str(exporter_pid), "Execution ProcessID %s"
                  % exe.get("ProcessID"))
        check(exe.get("ProcessID") != str(c["pid"]) or c["pid"] == exporter_pid,
              "Execution is the connection's process")
        check(sysel.find(NS + "Security").get("UserID") == "S-1-5-18", "Security UserID")
        data = ev.find(NS + "EventData").findall(NS + "Data")
        names = [d.get("Name") for d in data]
        check(names == DATA_ORDER, "Data order %s" % names)
        got = {d.get("Name"): d.text for d in data}
        want, _ = expected(c, ctx.services)
        for k in DATA_ORDER:
            check(got[k] == want[k], "connection %d %s = %r, expected %r"
                  % (rid, k, got[k], want[k]))
    check(seen == set(conns), "events for %s" % sorted(set(conns) ^ seen)[:5])
    return events


# ------------------------------------------------------------ tests

@test
def xml_every_field(ctx):
    res = ok(netwho(ctx, "export", "--sysmon", "--store", ctx.store))
    check_xml_events(ctx, res.out, ctx.conns)
    # xmllint, the other real parser, agrees that it is well-formed
    if shutil.which("xmllint"):
        r = E.run(["xmllint", "--noout", "-"], input_bytes=res.out.encode())
        check(r.rc == 0, "xmllint: " + r.err)


@test
def xml_filters_like_query(ctx):
    for f in (["--proto", "udp"], ["--direction", "inbound"], ["--ip", "::1"],
              ["--port", "445", "--limit", "2"]):
        conns = truth(ctx, *f)
        res = ok(netwho(ctx, "export", "--sysmon", "--store", ctx.store, *f))
        check_xml_events(ctx, res.out, conns)


@test
def flow_fields_and_filters(ctx):
    """Every connection's community_id is the one computed here, its
    classes those of addrclass.h's table (netwho_e2e.addr_class); the
    export's flow filters keep exactly the connections they should."""
    for c in ctx.conns.values():
        check(c["community_id"] == community_id(c),
              "query community_id of %d: %s, expected %s" % (
                  c["id"], c["community_id"], community_id(c)))
        for end in ("local", "remote"):
            want = E.addr_class(c[end + "_ip"])
            check(c[end + "_ip_class"] == want, "%s_ip_class of %d (%s): %s, expected %s"
                  % (end, c["id"], c[end + "_ip"], c[end + "_ip_class"], want))
    cs = list(ctx.conns.values())
    one = next(c for c in cs if sum(1 for x in cs if x["community_id"] ==
                                    c["community_id"]) == 1)
    cases = [
        (["--scope", "public"], lambda c: E.addr_class(c["remote_ip"]) == "public"),
        (["--scope", "private"], lambda c: E.addr_class(c["remote_ip"]) == "private"),
        (["--exclude-loopback"], lambda c: E.addr_class(c["remote_ip"]) != "loopback"),
        (["--scope", "loopback", "--proto", "udp"],
         lambda c: E.addr_class(c["remote_ip"]) == "loopback" and c["proto"] == "udp"),
        (["--community-id", one["community_id"]],
         lambda c: community_id(c) == one["community_id"]),
    ]
    for args, pred in cases:
        want = {i: c for i, c in ctx.conns.items() if pred(c)}
        check(want and len(want) < len(ctx.conns), "%s: %d of %d rows (test bug)"
              % (args, len(want), len(ctx.conns)))
        res = ok(netwho(ctx, "export", "--sysmon", "--store", ctx.store, *args))
        check_xml_events(ctx, res.out, want)
        res = ok(netwho(ctx, "export", "--sysmon", "--store", ctx.store, "-o", "ndjson",
                        *args))
        got = E.parse_ndjson_output(res.out)
        check(sorted(o["EventRecordID"] for o in got) == sorted(want) and
              all(o["community_id"] == want[o["EventRecordID"]]["community_id"] for o in got),
              "%s as ndjson" % args)
    ctx.one = one


@test
def xml_escapes_free_text(ctx):
    # The seed examples carry host names; this store's host holds markup.
    res = ok(netwho(ctx, "export", "--sysmon", "--store", ctx.store2))
    conns = {c["id"]: c for c in E.parse_ndjson_output(
        ok(netwho(ctx, "query", "--store", ctx.store2, "-o", "ndjson")).out)}
    check(conns, "no connections in the markup store")
    check_xml_events(ctx, res.out, conns)
    check("&lt;" in res.out and "&amp;" in res.out, "markup not escaped")


@test
def json_and_ndjson(ctx):
    res = ok(netwho(ctx, "export", "--sysmon", "--store", ctx.store, "-o", "json"))
    arr = json.loads(res.out)
    check(len(arr) == len(ctx.conns), "json: %d objects" % len(arr))
    for o in arr:
        c = ctx.conns[o["EventRecordID"]]
        want, _ = expected(c, ctx.services)
        for k in DATA_ORDER:
            check(o[k] == want[k], "json %d %s = %r, expected %r"
                  % (c["id"], k, o[k], want[k]))
        check(o["EventID"] == 3 and o["Computer"] == c["host"], "json header")
        check(o["community_id"] == community_id(c), "json community_id of %d: %s, expected %s"
              % (c["id"], o["community_id"], community_id(c)))
        check("src_ip" not in o, "OSSEM names without --ossem")
    res = ok(netwho(ctx, "export", "--sysmon", "--store", ctx.store, "-o", "ndjson",
                    "--ossem", "--no-port-names", "--no-hostnames"))
    rows = E.parse_ndjson_output(res.out)
    check(len(rows) == len(ctx.conns), "ndjson: %d lines" % len(rows))
    for o in rows:
        c = ctx.conns[o["EventRecordID"]]
        want, local_src = expected(c, ctx.services, no_names=True, no_hosts=True)
        for k in DATA_ORDER:
            check(o[k] == want[k], "ndjson %d %s = %r, expected %r" % (c["id"], k, o[k], want[k]))
        check(o["src_ip"] == want["SourceIp"] and o["dst_port"] == int(want["DestinationPort"]),
              "OSSEM ends of %d" % c["id"])
        check(o["network_connection_initiated"] is local_src, "OSSEM initiated")
        check(o["process_id"] == c["pid"] and o["process_name"] is None, "OSSEM process")
        check(o["src_port_name"] is None and o["dst_host_name"] is None, "OSSEM nulls")


@test
def ecs_bulk(ctx):
    res = ok(netwho(ctx, "export", "--sysmon", "--store", ctx.store, "-o", "ecs", "--bulk",
                    "--index", "netwho-e2e"))
    lines = E.parse_ndjson_output(res.out)
    check(len(lines) == 2 * len(ctx.conns), "ecs: %d lines" % len(lines))
    for action, doc in zip(lines[0::2], lines[1::2]):
        check(action == {"create": {"_index": "netwho-e2e"}}, "action %r" % action)
        c = ctx.conns[int(doc["event"]["id"])]
        want, local_src = expected(c, ctx.services)
        check(doc["@timestamp"] == c["first_seen"], "@timestamp")
        check(doc["event"]["category"] == ["network"] and doc["event"]["kind"] == "event",
              "event.*")
        check(doc["event"]["start"] == c["first_seen"], "event.start")
        if c["state"] in ("closed", "failed"):
            check(doc["event"]["end"] == c["last_seen"], "event.end")
        check(doc["host"]["name"] == c["host"], "host.name")
        check(doc["network"]["community_id"] == community_id(c), "community_id of %d" % c["id"])
        check(doc["network"]["transport"] == c["proto"], "transport")
        check(doc["network"]["type"] == "ipv%d" % c["ip_version"], "network.type")
        check(doc["network"]["direction"] == {"outbound": "egress", "inbound": "ingress",
                                              "unknown": "unknown"}[c["direction"]],
              "network.direction")
        src_ip = c["local_ip"] if local_src else c["remote_ip"]
        check(doc["source"]["ip"] == src_ip, "source.ip %s vs %s" % (doc["source"]["ip"], src_ip))
        check(doc["source"]["port"] == int(want["SourcePort"]), "source.port")
        check(doc["source"]["bytes"] == (c["bytes_sent"] if local_src else c["bytes_received"]),
              "source.bytes")
        check(doc["process"] == {"pid": c["pid"]}, "process without attribution")
    res = ok(netwho(ctx, "export", "--sysmon", "--store", ctx.store, "-o", "ecs"))
    check(len(E.parse_ndjson_output(res.out)) == len(ctx.conns), "ecs without --bulk")


@test
def usage_errors(ctx):
    for args in (["export", "--store", ctx.store],
                 ["export", "--sysmon"],
                 ["export", "--sysmon", "--store", ctx.store, "-o", "csv"],
                 ["export", "--sysmon", "--store", ctx.store, "--bulk"],
                 ["export", "--sysmon", "--store", ctx.store, "-o", "ecs", "--index", "x"],
                 ["export", "--sysmon", "--store", ctx.store, "--ossem"],
                 ["export", "--sysmon", "--store", ctx.store, "--port", "http"],
                 ["export", "--sysmon", "--store", ctx.store, "--scope", "world"],
                 ["export", "--sysmon", "--store", ctx.store, "--community-id", "1:x"],
                 ["export", "--sysmon", "--store", ctx.store, "--exclude-loopback=2"]):
        r = netwho(ctx, *args)
        check(r.rc == 2 and r.err.startswith("netwho: "), "%s -> %s" % (args, r.describe()))
    r = ok(netwho(ctx, "export", "--help"))
    check("--sysmon" in r.out, "help")


def http_get(port, path, headers=None, full=False):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", path, headers=headers or {})
    r = conn.getresponse()
    body = r.read().decode("utf-8")
    conn.close()
    if full:
        return r, body
    return r.status, r.getheader("Content-Type"), body


@test
def http_route(ctx):
    log = open(os.path.join(ctx.tmp, "netwhod.log"), "w+b")
    p = subprocess.Popen([ctx.netwhod, "--store", ctx.store, "--listen", "127.0.0.1:0"],
                         stdout=subprocess.DEVNULL, stderr=log)
    try:
        port = None
        deadline = time.time() + 20
        while port is None and time.time() < deadline:
            log.seek(0)
            for line in log.read().decode("utf-8", "replace").splitlines():
                if "listening on http://127.0.0.1:" in line:
                    port = int(line.rsplit(":", 1)[1].strip("/"))
            check(p.poll() is None, "netwhod exited")
            time.sleep(0.05)
        check(port, "netwhod did not report its port")
        st, ct, body = http_get(port, "/api/v1/export/sysmon")
        check(st == 200 and ct.startswith("application/xml"), "xml: %s %s" % (st, ct))
        check_xml_events(ctx, body, ctx.conns, exporter_pid=p.pid)
        conns = truth(ctx, "--proto", "tcp", "--limit", "3")
        st, ct, body = http_get(port, "/api/v1/export/sysmon?proto=tcp&limit=3&format=xml")
        check_xml_events(ctx, body, conns, exporter_pid=p.pid)
        st, ct, body = http_get(port, "/api/v1/export/sysmon?format=json&ossem=true")
        arr = json.loads(body)
        check(st == 200 and len(arr) == len(ctx.conns) and "src_ip" in arr[0], "json route")
        st, ct, body = http_get(port, "/api/v1/export/sysmon?format=ndjson")
        check(st == 200 and ct.startswith("application/x-ndjson") and
              len(E.parse_ndjson_output(body)) == len(ctx.conns), "ndjson route")
        st, ct, body = http_get(port, "/api/v1/export/sysmon?format=ecs&bulk=true")
        lines = E.parse_ndjson_output(body)
        check(st == 200 and len(lines) == 2 * len(ctx.conns) and lines[0] == {"create": {}},
              "ecs route")
        # an unchanged store answers a repeated export with 304
        r, body = http_get(port, "/api/v1/export/sysmon?format=ecs", full=True)
        etag = r.getheader("ETag")
        check(r.status == 200 and etag, "ecs: no ETag")
        r, body = http_get(port, "/api/v1/export/sysmon?format=ecs",
                           headers={"If-None-Match": etag}, full=True)
        check(r.status == 304 and body == "", "If-None-Match: %s" % r.status)
        r, body = http_get(port, "/api/v1/export/sysmon?format=xml",
                           headers={"If-None-Match": etag}, full=True)
        check(r.status == 200, "another format must not match the ETag")
        # the flow filters, the Community ID's '+' sent as %2B and raw
        pub = sorted(i for i, c in ctx.conns.items() if E.addr_class(c["remote_ip"]) == "public")
        st, ct, body = http_get(port, "/api/v1/export/sysmon?format=ndjson&scope=public")
        check(st == 200 and sorted(o["EventRecordID"] for o in E.parse_ndjson_output(body))
              == pub, "scope=public: %s" % st)
        st, ct, body = http_get(port, "/api/v1/export/sysmon?format=ndjson&exclude_loopback=true")
        nolo = sorted(i for i, c in ctx.conns.items()
                      if E.addr_class(c["remote_ip"]) != "loopback")
        check(st == 200 and sorted(o["EventRecordID"] for o in E.parse_ndjson_output(body))
              == nolo, "exclude_loopback=true: %s" % st)
        one = getattr(ctx, "one", None) or next(iter(ctx.conns.values()))
        for text in (urllib.parse.quote(one["community_id"], safe=""),
                     one["community_id"].replace("/", "%2F")):
            st, ct, body = http_get(port, "/api/v1/export/sysmon?format=json&community_id=" + text)
            arr = json.loads(body)
            check(st == 200 and [o["EventRecordID"] for o in arr] == [one["id"]] and
                  arr[0]["community_id"] == one["community_id"],
                  "community_id=%s: %s %s" % (text, st, body[:200]))
        for q, param in (("format=csv", "format"), ("bulk=maybe", "bulk"),
                         ("cursor=x", "cursor"), ("port=http", "port"),
                         ("scope=world", "scope"), ("exclude_loopback=2", "exclude_loopback"),
                         ("community_id=1%3Aabc", "community_id")):
            st, ct, body = http_get(port, "/api/v1/export/sysmon?" + q)
            err = json.loads(body)["error"]
            check(st == 400 and err["parameter"] == param, "%s -> %s %s" % (q, st, body))
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)


# ------------------------------------------------------------ main

def setup(ctx):
    ctx.store = os.path.join(ctx.tmp, "store")
    for f in ("kernel_network_seed_examples.jsonl", "sample.ndjson"):
        ok(netwho(ctx, "ingest", "--store", ctx.store, os.path.join(ctx.src, "tests", "data", f)))
    ctx.conns = truth(ctx)
    check(len(ctx.conns) > 20, "only %d connections" % len(ctx.conns))
    dirs = {c["direction"] for c in ctx.conns.values()}
    check(dirs == {"outbound", "inbound", "unknown"}, "directions %s" % dirs)
    # A store whose host name needs escaping.
    ctx.store2 = os.path.join(ctx.tmp, "store2")
    seed = os.path.join(ctx.src, "tests", "data", "kernel_network_seed_examples.jsonl")
    ok(netwho(ctx, "ingest", "--store", ctx.store2, "--host", "WS<&>\"'01", seed))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bin-dir", required=True)
    p.add_argument("--source-dir", required=True)
    p.add_argument("--keep", action="store_true")
    a = p.parse_args()
    ctx = Ctx()
    ctx.src = os.path.abspath(a.source_dir)
    ctx.bin = os.path.join(os.path.abspath(a.bin_dir), "netwho")
    ctx.netwhod = os.path.join(os.path.abspath(a.bin_dir), "netwhod")
    ctx.services = load_services(ctx.src)
    ctx.tmp = tempfile.mkdtemp(prefix="netwho-sysmon-")
    passed = failed = 0
    try:
        try:
            setup(ctx)
        except Exception as e:  # noqa: BLE001
            print("FAIL setup: %s" % e)
            print("0 passed, 1 failed")
            return 1
        for fn in TESTS:
            t0 = time.time()
            try:
                fn(ctx)
                passed += 1
                print("PASS %s (%.1fs)" % (fn.__name__, time.time() - t0))
            except Exception as e:  # noqa: BLE001
                failed += 1
                msg = str(e) if isinstance(e, AssertionError) else traceback.format_exc()
                print("FAIL %s\n    %s" % (fn.__name__, msg.replace("\n", "\n    ")))
            sys.stdout.flush()
    finally:
        if a.keep:
            print("kept %s" % ctx.tmp)
        else:
            shutil.rmtree(ctx.tmp, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
