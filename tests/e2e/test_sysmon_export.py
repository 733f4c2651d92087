#!/usr/bin/env python3
"""
test_sysmon_export.py -- end to end: the real `netwho export --sysmon` and
`GET /api/v1/export/sysmon` of `netwhod`, checked against answers this file
computes on its own.

Two sources of truth:
  - the gen_* tests: input made by bench/gen.py --processes and the
    generator's own expected connections (its .expect.json: addresses,
    direction, first_seen, community_id and each connection's process with
    its ProcessGuid); every field of every exported event is computed here
    from those rows, and there must be exactly one event per row.  Only the
    EventRecordID comes from netwho: the generator does not know ids, so
    events are paired with rows by host, protocol, both ends and
    first_seen, and the id must be the one `netwho query` gives that row;
  - the other tests: the seed examples and tests/data/sample.ndjson (markup
    in host names, hand-written edge cases), whose rows are read back with
    `netwho query -o ndjson` and rendered here; they check the filters, the
    options and the errors.

The exported XML is parsed with a real XML parser (xml.etree, and xmllint
when present), and every System and EventData field of every event is
compared with the expected value; JSON, NDJSON (with OSSEM names) and ECS
(whole documents) likewise.  The Community ID is recomputed here with
hashlib and base64 from the specification, the Sysmon rendering rules are
re-implemented from include/netwho/sysmon.h, and service names are read
from the generated table common/services_table.inc.

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
    p = c.get("process") or {}
    return {
        # UtcTime: milliseconds cut, not rounded (sysmon.h, gen_process.py)
        "RuleName": "-", "UtcTime": fs[:10] + " " + fs[11:23],
        "ProcessGuid": p.get("guid") or "-", "ProcessId": str(c["pid"]),
        "Image": p.get("image") or "-", "User": p.get("user") or "-", "Protocol": c["proto"],
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
                 ["export", "--sysmon", "--store", ctx.store, "--exclude-loopback=2"],
                 ["export", "--sysmon", "--store", ctx.store, "--process", ""]):
        r = netwho(ctx, *args)
        check(r.rc == 2 and r.err.startswith("netwho: "), "%s -> %s" % (args, r.describe()))
    r = ok(netwho(ctx, "export", "--help"))
    check("--sysmon" in r.out and "--process" in r.out, "help")


def http_get(port, path, headers=None, full=False):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", path, headers=headers or {})
    r = conn.getresponse()
    body = r.read().decode("utf-8")
    conn.close()
    if full:
        return r, body
    return r.status, r.getheader("Content-Type"), body


def start_netwhod(ctx, store, name):
    """netwhod on store at an ephemeral port: (process, port)."""
    log = open(os.path.join(ctx.tmp, name + ".log"), "w+b")
    p = subprocess.Popen([ctx.netwhod, "--store", store, "--listen", "127.0.0.1:0"],
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
    except BaseException:
        stop_netwhod(p)
        raise
    finally:
        log.close()
    return p, port


def stop_netwhod(p):
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(20)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait(5)


@test
def http_route(ctx):
    p, port = start_netwhod(ctx, ctx.store, "netwhod")
    try:
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
        stop_netwhod(p)


# ------------------------------------------------ against the generator
#
# Everything above takes its truth from `netwho query`; these tests take it
# from bench/gen.py's expected answers instead (the .expect.json, written
# by the generator itself, processes included), so an error shared by the
# query engine and the exporter cannot hide.  Only the record ids come from
# `netwho query`: the generator does not know them.

GEN_ARGS = ["--events", "1500", "--hosts", "3", "--seed", "7", "--processes", "0.8"]
SYSTEM_ORDER = ["Provider", "EventID", "Version", "Level", "Task", "Opcode", "Keywords",
                "TimeCreated", "EventRecordID", "Correlation", "Execution", "Channel",
                "Computer", "Security"]
SYSTEM_TEXT = {"EventID": "3", "Version": "5", "Level": "4", "Task": "3", "Opcode": "0",
               "Keywords": "0x8000000000000000",
               "Channel": "Microsoft-Windows-Sysmon/Operational"}
JSON_KEYS = {"EventID", "Computer", "EventRecordID", "TimeCreated", "community_id"} | \
    set(DATA_ORDER)


def _end(ip, port):
    a = ipaddress.ip_address(ip)
    if a.version == 6 and a.ipv4_mapped is not None:
        a = a.ipv4_mapped
    return (str(a), int(port))


def row_key(c):
    """A connection without its id: host, protocol, both ends (unordered,
    so a wrongly oriented export still finds its row), first_seen."""
    return (c["host"], c["proto"],
            tuple(sorted([_end(c["local_ip"], c["local_port"]),
                          _end(c["remote_ip"], c["remote_port"])])),
            c["first_seen"])


def event_key(computer, proto, sip, sport, dip, dport, system_time):
    """row_key of an exported event (SystemTime: first_seen with 9 digits)."""
    fs = system_time[:-3] + "Z" if system_time.endswith("00Z") else system_time
    return (computer, proto, tuple(sorted([_end(sip, sport), _end(dip, dport)])), fs)


def run_pid(argv):
    """Runs argv; (pid, rc, stdout, stderr): the pid is what Execution names."""
    p = subprocess.Popen([str(a) for a in argv], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    out, err = p.communicate(timeout=120)
    check(p.returncode == 0, "%s -> exit %s: %s" % (" ".join(map(str, argv)), p.returncode,
                                                   err.decode("utf-8", "replace")[-800:]))
    return p.pid, out.decode("utf-8")


def gen_setup(ctx):
    """bench/gen.py with process events -> ctx.gstore; the expected rows
    by row_key (ctx.gexp) and the ids netwho gave them (ctx.gids)."""
    data = os.path.join(ctx.tmp, "gen.ndjson")
    exp_path = os.path.join(ctx.tmp, "gen.expect.json")
    res = E.run([sys.executable, os.path.join(ctx.src, "bench", "gen.py")] + GEN_ARGS +
                ["--out", data, "--expect", exp_path])
    check(res.rc == 0, "gen.py: " + res.describe())
    with open(exp_path, encoding="utf-8") as f:
        exp = json.load(f)
    ctx.gstore = os.path.join(ctx.tmp, "gen-store")
    summary = json.loads(ok(netwho(ctx, "ingest", "--store", ctx.gstore, "--quiet", data)).out)
    for k in ("events", "accepted", "rejected"):
        check(summary[k] == exp[k], "ingest %s %s, expected %s" % (k, summary[k], exp[k]))
    rows = exp["connections"]
    ctx.gexp = {row_key(c): c for c in rows}
    check(len(ctx.gexp) == len(rows), "gen.py rows share a key (test bug)")
    # The data must hold every case the rendering rules distinguish.
    procs = [c["process"] for c in rows if c["process"]]
    for what, n in (("inbound", sum(c["direction"] == "inbound" for c in rows)),
                    ("unknown direction", sum(c["direction"] == "unknown" for c in rows)),
                    ("IPv6", sum(c["ip_version"] == 6 for c in rows)),
                    ("UDP", sum(c["proto"] == "udp" for c in rows)),
                    ("no process", len(rows) - len(procs)),
                    ("a process with a user", sum(bool(p["user"]) for p in procs)),
                    ("a process without a user", sum(not p["user"] for p in procs)),
                    ("a Sysmon-named process", sum(bool(p["command_line"]) for p in procs)),
                    ("a process with no parent", sum(p["parent_pid"] is None for p in procs)),
                    ("a named service port", sum(
                        (c["remote_port"], c["proto"]) in ctx.services for c in rows))):
        check(n > 0, "gen.py %s made no connection with %s (test bug)" % (GEN_ARGS, what))
    ids = {}
    for q in E.parse_ndjson_output(ok(netwho(ctx, "query", "--store", ctx.gstore,
                                             "-o", "ndjson")).out):
        ids[row_key(q)] = q["id"]
    check(set(ids) == set(ctx.gexp), "netwho query's connections are not gen.py's: %d vs %d, "
          "e.g. %s" % (len(ids), len(ctx.gexp), sorted(set(ids) ^ set(ctx.gexp), key=str)[:3]))
    ctx.gids = ids


def process_match(p, flt):
    """nw_process_matches (procstore.h), re-stated: a bare name against the
    image's file name ("x" also matches "x.exe"), a path against the whole
    image with a drive letter and a \\Device\\HarddiskVolumeN the same."""
    if not p or not p["image"]:
        return False
    if "\\" in flt or "/" in flt:
        def norm(s):
            s = s.replace("/", "\\")
            return re.sub(r"^(?:[A-Za-z]:|\\Device\\HarddiskVolume\d+)", "", s,
                          flags=re.I).lower()
        return norm(p["image"]) == norm(flt)
    name = p["image"].replace("/", "\\").rsplit("\\", 1)[-1].lower()
    return name in (flt.lower(), flt.lower() + ".exe")


def gen_expected(ctx, pred):
    """The expected rows a filter keeps, by row_key."""
    return {k: c for k, c in ctx.gexp.items() if pred(c)}


def match_events(ctx, events, want, what):
    """Pairs exported events with expected rows, one to one: [(event, row)].
    events: [(key, event)]."""
    pairs, seen = [], set()
    for k, ev in events:
        check(k in want, "%s: an event no expected row explains: %s" % (what, k))
        check(k not in seen, "%s: two events for %s" % (what, k))
        seen.add(k)
        pairs.append((ev, want[k]))
    check(len(pairs) == len(want), "%s: %d events for %d expected connections; missing %s"
          % (what, len(pairs), len(want), sorted(set(want) - seen, key=str)[:3]))
    return pairs


def check_gen_xml(ctx, text, want, exporter_pid, exporter_tid, what):
    """Every System and EventData field of every event against the
    expected rows; exactly one event per row."""
    root = ET.fromstring(text.encode("utf-8"))
    check(root.tag == "Events", "%s: root is %s" % (what, root.tag))
    keyed = []
    for ev in root:
        check(ev.tag == NS + "Event", "%s: element %s" % (what, ev.tag))
        check([x.tag for x in ev] == [NS + "System", NS + "EventData"],
              "%s: Event children %s" % (what, [x.tag for x in ev]))
        sysel = ev.find(NS + "System")
        data = {d.get("Name"): d.text for d in ev.find(NS + "EventData")}
        keyed.append((event_key(sysel.find(NS + "Computer").text, data["Protocol"],
                                data["SourceIp"], data["SourcePort"], data["DestinationIp"],
                                data["DestinationPort"],
                                sysel.find(NS + "TimeCreated").get("SystemTime")), ev))
    tids = set()
    for ev, c in match_events(ctx, keyed, want, what):
        rid = ctx.gids[row_key(c)]
        w, _ = expected(c, ctx.services)
        tag = "%s: connection %d" % (what, rid)
        sysel = ev.find(NS + "System")
        check([x.tag for x in sysel] == [NS + t for t in SYSTEM_ORDER],
              "%s: System children %s" % (tag, [x.tag[len(NS):] for x in sysel]))
        prov = sysel.find(NS + "Provider")
        check(prov.attrib == {"Name": "Microsoft-Windows-Sysmon",
                              "Guid": "{5770385F-C22A-43E0-BF4C-06F5698FFBD9}"},
              "%s: Provider %s" % (tag, prov.attrib))
        for t, v in SYSTEM_TEXT.items():
            got = sysel.find(NS + t).text
            check(got == v, "%s: %s = %r, expected %r" % (tag, t, got, v))
        st = sysel.find(NS + "TimeCreated").attrib
        check(st == {"SystemTime": c["first_seen"][:-1] + "00Z"},
              "%s: TimeCreated %s, first_seen %s" % (tag, st, c["first_seen"]))
        got = sysel.find(NS + "EventRecordID").text
        check(got == str(rid), "%s: EventRecordID %s" % (tag, got))
        corr = sysel.find(NS + "Correlation")
        check(not corr.attrib and not corr.text and not len(corr), "%s: Correlation" % tag)
        exe = sysel.find(NS + "Execution").attrib
        check(set(exe) == {"ProcessID", "ThreadID"} and
              exe["ProcessID"] == str(exporter_pid) and
              (exe["ThreadID"] == str(exporter_tid) if exporter_tid else
               int(exe["ThreadID"]) > 0),
              "%s: Execution %s, exporter %s/%s" % (tag, exe, exporter_pid, exporter_tid))
        tids.add(exe["ThreadID"])
        got = sysel.find(NS + "Computer").text
        check(got == c["host"], "%s: Computer %r, expected %r" % (tag, got, c["host"]))
        sec = sysel.find(NS + "Security").attrib
        check(sec == {"UserID": "S-1-5-18"}, "%s: Security %s" % (tag, sec))
        dl = ev.find(NS + "EventData").findall(NS + "Data")
        check(len(dl) == len(ev.find(NS + "EventData")), "%s: EventData not all Data" % tag)
        check([d.get("Name") for d in dl] == DATA_ORDER, "%s: Data order" % tag)
        for d in dl:
            k = d.get("Name")
            check(d.text == w[k], "%s: %s = %r, expected %r" % (tag, k, d.text, w[k]))
    # one thread encodes one answer (netwhod: the connection's thread)
    check(len(tids) <= 1, "%s: Execution ThreadIDs %s" % (what, sorted(tids)))
    return len(want)


def check_gen_json(ctx, objs, want, what, ossem=False):
    keyed = [(event_key(o["Computer"], o["Protocol"], o["SourceIp"], o["SourcePort"],
                        o["DestinationIp"], o["DestinationPort"], o["TimeCreated"]), o)
             for o in objs]
    for o, c in match_events(ctx, keyed, want, what):
        rid = ctx.gids[row_key(c)]
        w, local_src = expected(c, ctx.services)
        tag = "%s: connection %d" % (what, rid)
        sysmon_keys = {k for k in o if not re.match(r"[a-z]", k) or k == "community_id"}
        check(sysmon_keys == JSON_KEYS, "%s: keys %s" % (tag, sorted(sysmon_keys ^ JSON_KEYS)))
        head = {"EventID": 3, "Computer": c["host"], "EventRecordID": rid,
                "TimeCreated": c["first_seen"][:-1] + "00Z",
                "community_id": c["community_id"]}
        for k, v in list(head.items()) + list(w.items()):
            check(o[k] == v, "%s: %s = %r, expected %r" % (tag, k, o[k], v))
        if not ossem:
            check(set(o) == JSON_KEYS, "%s: OSSEM names without ossem" % tag)
            continue
        p = c["process"] or {}

        def opt(v):
            return None if v == "-" else v
        want_o = {
            "event_creation_time": w["UtcTime"], "process_guid": p.get("guid"),
            "process_id": c["pid"], "process_name": p.get("image"),
            "user_name": p.get("user"), "network_protocol": c["proto"],
            "network_connection_initiated": local_src,
            "src_is_ipv6": c["ip_version"] == 6, "dst_is_ipv6": c["ip_version"] == 6,
        }
        for pre, end in (("src", "Source"), ("dst", "Destination")):
            want_o[pre + "_ip"] = w[end + "Ip"]
            want_o[pre + "_host_name"] = opt(w[end + "Hostname"])
            want_o[pre + "_port"] = int(w[end + "Port"])
            want_o[pre + "_port_name"] = opt(w[end + "PortName"])
        extra = set(o) - JSON_KEYS
        check(extra == set(want_o), "%s: OSSEM keys %s" % (tag, sorted(extra ^ set(want_o))))
        for k, v in want_o.items():
            check(o[k] == v, "%s: %s = %r, expected %r" % (tag, k, o[k], v))
    return len(want)


STATE_OUTCOME = {"attempted": "unknown", "established": "success", "closed": "success",
                 "failed": "failure"}
DIR_ACTION = {"outbound": "connection_attempted", "inbound": "connection_accepted",
              "unknown": "network_flow"}
DIR_ECS = {"outbound": "egress", "inbound": "ingress", "unknown": "unknown"}


def ecs_doc(ctx, c):
    """The whole ECS document sysmon.h describes, from an expected row."""
    rid = ctx.gids[row_key(c)]
    w, local_src = expected(c, ctx.services)
    fs = c["first_seen"]
    event = {"kind": "event", "category": ["network"], "type": ["connection"],
             "action": DIR_ACTION[c["direction"]], "outcome": STATE_OUTCOME[c["state"]],
             "dataset": "netwho.connection", "id": str(rid), "start": fs}
    if c["state"] in ("closed", "failed"):
        event["end"] = c["last_seen"]
    local = {"ip": c["local_ip"], "port": c["local_port"], "bytes": c["bytes_sent"]}
    remote = {"ip": c["remote_ip"], "port": c["remote_port"], "bytes": c["bytes_received"]}
    src, dst = (local, remote) if local_src else (remote, local)
    doc = {"@timestamp": fs, "event": event, "host": {"name": c["host"]},
           "source": src, "destination": dst,
           "network": {"transport": c["proto"], "iana_number": str(PROTO[c["proto"]]),
                       "type": "ipv%d" % c["ip_version"], "direction": DIR_ECS[c["direction"]],
                       "bytes": c["bytes_sent"] + c["bytes_received"],
                       "community_id": c["community_id"]},
           "process": {"pid": c["pid"]}}
    p = c["process"]
    if p:
        proc = doc["process"]
        if p["image"]:
            proc["executable"] = p["image"]
            proc["name"] = p["name"]
        if p["command_line"]:
            proc["command_line"] = p["command_line"]
        proc["entity_id"] = p["guid"]
        proc["start"] = p["create_time"]
        if p["parent_pid"] is not None:
            proc["parent"] = {"pid": p["parent_pid"]}
            if p["parent_image"]:
                proc["parent"]["executable"] = p["parent_image"]
        if p["user"]:
            dom, _, name = p["user"].rpartition("\\")
            doc["user"] = {"name": name}
            if dom:
                doc["user"]["domain"] = dom
    return doc


def check_gen_ecs(ctx, docs, want, what):
    keyed = []
    for d in docs:
        keyed.append(((d["host"]["name"], d["network"]["transport"],
                       tuple(sorted([_end(d["source"]["ip"], d["source"]["port"]),
                                     _end(d["destination"]["ip"], d["destination"]["port"])])),
                       d["@timestamp"]), d))
    for d, c in match_events(ctx, keyed, want, what):
        w = ecs_doc(ctx, c)
        for k in sorted(set(d) | set(w)):
            check(d.get(k) == w.get(k), "%s: connection %s %s = %s, expected %s"
                  % (what, w["event"]["id"], k, json.dumps(d.get(k)), json.dumps(w.get(k))))
    return len(want)


@test
def gen_xml_every_field(ctx):
    """netwho export --sysmon -o xml of the generated store: every field of
    every event is the one the generator's expected row gives."""
    pid, out = run_pid([ctx.bin, "export", "--sysmon", "--store", ctx.gstore, "-o", "xml"])
    # single-threaded: Execution ThreadID is the pid (cli_export.c)
    check_gen_xml(ctx, out, ctx.gexp, pid, pid, "export -o xml")
    if shutil.which("xmllint"):
        r = E.run(["xmllint", "--noout", "-"], input_bytes=out.encode())
        check(r.rc == 0, "xmllint: " + r.err)


@test
def gen_json_ndjson_ecs(ctx):
    _, out = run_pid([ctx.bin, "export", "--sysmon", "--store", ctx.gstore, "-o", "json"])
    check_gen_json(ctx, json.loads(out), ctx.gexp, "export -o json")
    _, out = run_pid([ctx.bin, "export", "--sysmon", "--store", ctx.gstore, "-o", "ndjson",
                      "--ossem"])
    check_gen_json(ctx, E.parse_ndjson_output(out), ctx.gexp, "export -o ndjson --ossem",
                   ossem=True)
    _, out = run_pid([ctx.bin, "export", "--sysmon", "--store", ctx.gstore, "-o", "ecs"])
    check_gen_ecs(ctx, E.parse_ndjson_output(out), ctx.gexp, "export -o ecs")


def process_filters(ctx):
    """(filter text, expected rows) for a few --process / process= values:
    a bare name in another case, without .exe, a C: path that must match a
    \\Device\\HarddiskVolumeN image, and a name nobody has."""
    procs = [c["process"] for c in ctx.gexp.values() if c["process"]]
    sysmon3 = next(p for p in procs if p["image"].startswith("C:\\Users\\Public\\"))
    kernel = next(p for p in procs if p["image"].startswith("\\Device\\HarddiskVolume"))
    cases = [sysmon3["name"].upper(), sysmon3["name"][:-4],
             "c:" + kernel["image"][len("\\Device\\HarddiskVolume2"):],
             "no-such-program.exe"]
    out = []
    for f in cases:
        want = gen_expected(ctx, lambda c: process_match(c["process"], f))
        out.append((f, want))
    check(all(w for _, w in out[:3]), "a process filter matches nothing (test bug)")
    check(len(out[0][1]) > 2, "the agent filter should span hosts (test bug)")
    return out


@test
def gen_process_filter(ctx):
    """netwho export --process NAME keeps exactly the connections of the
    processes the generator attributed, every field still right."""
    for f, want in process_filters(ctx):
        pid, out = run_pid([ctx.bin, "export", "--sysmon", "--store", ctx.gstore,
                            "--process", f])
        check_gen_xml(ctx, out, want, pid, pid, "export --process %s" % f)


@test
def gen_http(ctx):
    """GET /api/v1/export/sysmon of netwhod on the generated store: the
    same events, Execution naming netwhod, and process= like --process."""
    p, port = start_netwhod(ctx, ctx.gstore, "netwhod-gen")
    try:
        st, ct, body = http_get(port, "/api/v1/export/sysmon")
        check(st == 200 and ct.startswith("application/xml"), "xml: %s %s" % (st, ct))
        check_gen_xml(ctx, body, ctx.gexp, p.pid, None, "GET xml")
        st, ct, body = http_get(port, "/api/v1/export/sysmon?format=ecs")
        check(st == 200, "ecs: %s" % st)
        check_gen_ecs(ctx, E.parse_ndjson_output(body), ctx.gexp, "GET ecs")
        st, ct, body = http_get(port, "/api/v1/export/sysmon?format=json&ossem=true")
        check(st == 200, "json: %s" % st)
        check_gen_json(ctx, json.loads(body), ctx.gexp, "GET json", ossem=True)
        for f, want in process_filters(ctx):
            q = urllib.parse.quote(f, safe="")
            st, ct, body = http_get(port, "/api/v1/export/sysmon?format=xml&process=" + q)
            check(st == 200, "process=%s: %s %s" % (f, st, body[:200]))
            check_gen_xml(ctx, body, want, p.pid, None, "GET process=%s" % f)
            st, ct, body = http_get(port, "/api/v1/export/sysmon?format=ndjson&process=" + q)
            check_gen_json(ctx, E.parse_ndjson_output(body), want, "GET ndjson process=%s" % f)
    finally:
        stop_netwhod(p)


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
    gen_setup(ctx)


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
