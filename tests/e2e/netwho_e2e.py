#!/usr/bin/env python3
"""
netwho_e2e.py -- shared helpers of the end-to-end tests, and an independent
model of what netwho must answer for an input file.

The model (derive) reads a generated NDJSON file the way netwho's decoder
and tracker are specified to (include/netwho/decode.h, tracker.h, conn.h):
it frames lines, decodes each JSON object, resolves the local and remote end
from saddr/daddr by event id, canonicalises addresses with the ipaddress
module, and folds the events of each key in time order.  Each connection's
Community ID is computed from the specification with hashlib and base64,
its ends' address classes with the ipaddress module and the networks of
include/netwho/addrclass.h (community_id, addr_class).  It shares no code
with bench/gen.py, which computes the same answers from its own plan; the
two agreeing is the evidence that the generator's --expect file is right:

    netwho_e2e.py derive --input FILE --expect FILE.json [--default-host H]

Python 3 standard library only.
"""

import argparse
import base64
import calendar
import collections
import csv
import hashlib
import io
import ipaddress
import json
import os
import re
import subprocess
import sys
import time

TICKS = 10_000_000
UDP_IDLE = 60 * TICKS
MAX_EVENT_BYTES = 1024 * 1024
PROVIDER = "Microsoft-Windows-Kernel-Network"

CONN_FIELDS = ["id", "host", "pid", "proto", "ip_version", "direction",
               "local_ip", "local_port", "remote_ip", "remote_port",
               "first_seen", "last_seen", "state", "bytes_sent",
               "bytes_received", "bytes_retransmitted", "bytes_copied",
               "send_events", "receive_events", "retransmit_events",
               "copy_events", "reconnects", "tcp_options", "community_id",
               "local_ip_class", "remote_ip_class", "process"]
# The flow fields (include/netwho/encode.h): CSV has them as they are.
FLOW_FIELDS = ["community_id", "local_ip_class", "remote_ip_class"]
# CSV flattens "process" into these columns (empty where unknown).
PROCESS_FIELDS = ["image", "name", "create_time", "parent_pid",
                  "parent_image", "user", "command_line", "guid"]
TCP_OPT_FIELDS = ["mss", "sackopt", "tsopt", "wsopt", "rcvwin",
                  "rcvwinscale", "sndwinscale"]
TRANSFER_FIELDS = ["time", "bytes_sent", "bytes_received",
                   "bytes_retransmitted", "send_events", "receive_events",
                   "retransmit_events"]
FAILURE_FIELDS = ["time", "host", "event_id", "proto", "fail_proto",
                  "fail_code"]
WHO_FIELDS = ["host", "pid", "connections", "bytes_sent", "bytes_received",
              "first_seen", "last_seen"]

# event id -> (proto, ip version, kind)
EVENTS = {}
for _base, _ver in ((0, 4), (16, 6)):
    for _off, _kind in ((10, "send"), (11, "recv"), (12, "connect"),
                        (13, "close"), (14, "retransmit"), (15, "accept"),
                        (16, "reconnect"), (18, "copy")):
        EVENTS[_off + _base] = ("tcp", _ver, _kind)
EVENTS.update({42: ("udp", 4, "send"), 43: ("udp", 4, "recv"),
               58: ("udp", 6, "send"), 59: ("udp", 6, "recv"),
               17: ("tcp", 4, "fail"), 49: ("udp", 4, "fail")})


# ------------------------------------------------------------------ time

_TIME = re.compile(r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})"
                   r"(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))\Z",
                   re.ASCII)


def parse_time(s):
    """RFC 3339 -> 100 ns ticks (floor); None if not valid."""
    if not isinstance(s, str):
        return None
    m = _TIME.match(s)
    if not m:
        return None
    y, mo, d, h, mi, se = (int(m.group(i)) for i in range(1, 7))
    if not (1 <= mo <= 12 and 1 <= d <= calendar.monthrange(y, mo)[1] and
            h <= 23 and mi <= 59 and se <= 60):
        return None
    frac = (m.group(7) or "").ljust(9, "0")
    secs = calendar.timegm((y, mo, d, h, mi, se, 0, 0, 0))
    if m.group(9):
        off = int(m.group(10)) * 3600 + int(m.group(11)) * 60
        secs += -off if m.group(9) == "+" else off
    return secs * TICKS + int(frac[:7])


def fmt_time(t):
    """Ticks -> the output format, "2026-03-16T00:21:36.4231059Z"."""
    sec, frac = divmod(t, TICKS)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)) + \
        ".%07dZ" % frac


def ticks_of(text):
    t = parse_time(text)
    if t is None:
        raise ValueError("bad time in output: %r" % (text,))
    return t


# ------------------------------------------------------------------ addresses

def addr_key(text):
    """Address text -> int of its 16-byte form (IPv4 as ::ffff:a.b.c.d)."""
    a = ipaddress.ip_address(text)
    if a.version == 4:
        return (0xFFFF << 32) | int(a)
    return int(a)


def canon(a):
    """inet_ntop text of an ipaddress object."""
    if a.version == 6 and a.ipv4_mapped is not None:
        return "::ffff:" + str(a.ipv4_mapped)
    return str(a)


def cidr_range(text):
    """Address or CIDR -> inclusive (lo, hi) over addr_key ints."""
    n = ipaddress.ip_network(text, strict=False)
    lo, hi = int(n.network_address), int(n.broadcast_address)
    if n.version == 4:
        lo |= 0xFFFF << 32
        hi |= 0xFFFF << 32
    return lo, hi


# ------------------------------------------------------------------ flows

# Address classes, first match wins: include/netwho/addrclass.h's table.
# An IPv4-mapped IPv6 address is classed by its IPv4 address.
ADDR_CLASSES = {
    4: [(ipaddress.ip_network(n), c) for n, c in (
        ("0.0.0.0/32", "unspecified"), ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local"), ("224.0.0.0/4", "multicast"),
        ("255.255.255.255/32", "broadcast"), ("10.0.0.0/8", "private"),
        ("172.16.0.0/12", "private"), ("192.168.0.0/16", "private"),
        ("100.64.0.0/10", "private"))],
    6: [(ipaddress.ip_network(n), c) for n, c in (
        ("::/128", "unspecified"), ("::1/128", "loopback"),
        ("fe80::/10", "link-local"), ("ff00::/8", "multicast"),
        ("fc00::/7", "private"), ("fec0::/10", "private"))],
}
ADDR_CLASS_NAMES = ["public", "private", "loopback", "link-local",
                    "multicast", "broadcast", "unspecified"]
IP_PROTO = {"tcp": 6, "udp": 17}


def addr_class(text):
    """The class of an address (output text): addrclass.h's table."""
    a = ipaddress.ip_address(text)
    if a.version == 6 and a.ipv4_mapped is not None:
        a = a.ipv4_mapped
    for net, cls in ADDR_CLASSES[a.version]:
        if a in net:
            return cls
    return "public"


def _packed16(text):
    """16 bytes of an address, IPv4 as ::ffff:a.b.c.d (netwho's form)."""
    a = ipaddress.ip_address(text)
    if a.version == 4:
        a = ipaddress.IPv6Address((0xFFFF << 32) | int(a))
    return a.packed


def community_id(c, seed=0):
    """Community ID v1 of connection c (output form), from the
    specification (github.com/corelight/community-id-spec): SHA-1 over the
    seed (2 bytes, big-endian), the two (address, port) ends ordered
    smaller first, the protocol number and a zero pad byte, then the ports;
    "1:" + base64.  IPv4 is hashed in its 4 bytes -- also when both ends of
    an IPv6 socket are IPv4-mapped, as the packets on the wire were IPv4.
    None if the ends cannot be hashed (an IPv4 flow with an IPv6 end)."""
    a, b = _packed16(c["local_ip"]), _packed16(c["remote_ip"])
    mapped = b"\0" * 10 + b"\xff\xff"
    if c["ip_version"] == 4 or (a[:12] == mapped and b[:12] == mapped):
        if a[:12] != mapped or b[:12] != mapped:
            return None
        a, b = a[12:], b[12:]
    pa, pb = c["local_port"], c["remote_port"]
    if (a, pa) > (b, pb):
        a, b, pa, pb = b, a, pb, pa
    msg = (seed.to_bytes(2, "big") + a + b +
           bytes([IP_PROTO[c["proto"]], 0]) +
           pa.to_bytes(2, "big") + pb.to_bytes(2, "big"))
    return "1:" + base64.b64encode(hashlib.sha1(msg).digest()).decode()


def flow_fields(c):
    """The flow fields of connection c (output form), as a dict."""
    return {"community_id": community_id(c),
            "local_ip_class": addr_class(c["local_ip"]),
            "remote_ip_class": addr_class(c["remote_ip"])}


# ------------------------------------------------------------------ decoding

_NUM = re.compile(r" *(\d+) *\Z", re.ASCII)


def num(v, maxv):
    """A JSON number or a space-padded decimal string; None if not one."""
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v if 0 <= v <= maxv else None
    if isinstance(v, str):
        m = _NUM.match(v)
        if m:
            x = int(m.group(1))
            return x if x <= maxv else None
    return None


def parse_ip(v, version):
    if not isinstance(v, str):
        return None
    try:
        a = ipaddress.ip_address(v.strip(" "))
    except ValueError:
        return None
    return a if a.version == version else None


def decode(obj, default_host):
    """One parsed JSON value -> (event dict, None) or (None, reason)."""
    if not isinstance(obj, dict):
        return None, "not_object"
    s = obj.get("system")
    if not isinstance(s, dict):
        return None, "missing_system"
    if s.get("provider") != PROVIDER:
        return None, "unknown_provider"
    eid = num(s.get("event_id"), 65535)
    if eid not in EVENTS:
        return None, "unknown_event_id"
    t = parse_time(s.get("time_created"))
    if t is None:
        return None, "bad_time"
    d = obj.get("event_data")
    if not isinstance(d, dict):
        return None, "missing_event_data"
    proto, ver, kind = EVENTS[eid]
    host = s.get("computer") or default_host or "unknown"
    ev = {"t": t, "eid": eid, "proto": proto, "ver": ver, "kind": kind,
          "host": host}
    if kind == "fail":
        fp, fc = num(d.get("Proto"), 65535), num(d.get("FailureCode"), 65535)
        if fp is None or fc is None:
            return None, "bad_field"
        ev.update(fail_proto=fp, fail_code=fc)
        return ev, None
    pid = num(d.get("PID"), 0xFFFFFFFF)
    if pid is None:
        return None, "bad_pid"
    size = num(d.get("size"), 0xFFFFFFFF)
    if size is None:
        return None, "bad_size"
    sa, da = parse_ip(d.get("saddr"), ver), parse_ip(d.get("daddr"), ver)
    if sa is None or da is None:
        return None, "bad_address"
    sp, dp = num(d.get("sport"), 65535), num(d.get("dport"), 65535)
    if sp is None or dp is None:
        return None, "bad_port"
    # decode.h: TCP names the local end in saddr; UDP receives name the
    # remote sender in saddr and the local end in daddr.
    if proto == "udp" and kind == "recv":
        local, lport, remote, rport = da, dp, sa, sp
    else:
        local, lport, remote, rport = sa, sp, da, dp
    opts = None
    if kind in ("connect", "accept"):
        opts = {}
        for k in TCP_OPT_FIELDS:
            v = num(d.get(k), 0xFFFFFFFF if k == "rcvwin" else 65535)
            if v is None:
                return None, "bad_field"
            opts[k] = v
    ev.update(pid=pid, size=size, local=canon(local), lport=lport,
              remote=canon(remote), rport=rport, opts=opts)
    return ev, None


def brace_depth(text):
    """Brace depth at the end of text, strings skipped (framer model)."""
    depth = 0
    for m in re.finditer(r'"(?:[^"\\]|\\.)*"|[{}]', text):
        tok = m.group(0)
        if tok == "{":
            depth += 1
        elif tok == "}":
            depth -= 1
    return depth


def read_ndjson(path, default_host):
    """Frames and decodes an NDJSON file: (events, rejected_by_reason,
    frames)."""
    events, reasons, frames = [], collections.Counter(), 0
    with open(path, "rb") as f:
        for raw in f:
            line = raw.rstrip(b"\r\n")
            if not line.strip():
                continue
            frames += 1
            if not line.lstrip().startswith(b"{"):
                reasons["bad_json"] += 1
                continue
            if len(line) > MAX_EVENT_BYTES:
                reasons["too_large"] += 1
                continue
            text = line.decode("utf-8", "replace")
            try:
                obj = json.loads(text)
            except ValueError:
                reasons["truncated" if brace_depth(text) > 0
                        else "bad_json"] += 1
                continue
            ev, why = decode(obj, default_host)
            if why:
                reasons[why] += 1
            else:
                events.append(ev)
    return events, dict(reasons), frames


# ------------------------------------------------------------------ folding

def fold(events):
    """Events -> (connections, transfers by connection index, failures,
    watermark), per tracker.h, in time order (stable)."""
    events = sorted(events, key=lambda e: e["t"])
    wm = max(e["t"] for e in events) if events else 0
    fails, conns, transfers = [], [], []
    current = {}   # key -> index of the connection the key maps to now
    for e in events:
        if e["kind"] == "fail":
            fails.append({"time": fmt_time(e["t"]), "host": e["host"],
                          "event_id": e["eid"], "proto": e["proto"],
                          "fail_proto": e["fail_proto"],
                          "fail_code": e["fail_code"]})
            continue
        key = (e["host"], e["proto"], e["ver"], e["local"], e["lport"],
               e["remote"], e["rport"], e["pid"])
        i = current.get(key)
        c = conns[i] if i is not None else None
        if c is not None:
            if e["proto"] == "tcp" and c["_closed"]:
                c = None
            elif e["proto"] == "udp" and e["t"] - c["_last"] >= UDP_IDLE:
                c = None
            elif e["kind"] in ("connect", "accept"):
                c = None   # never generated: a new open on an open tuple
        if c is None:
            c = {"host": e["host"], "pid": e["pid"], "proto": e["proto"],
                 "ip_version": e["ver"], "direction": None,
                 "local_ip": e["local"], "local_port": e["lport"],
                 "remote_ip": e["remote"], "remote_port": e["rport"],
                 "_first": e["t"], "_last": e["t"], "_closed": False,
                 "state": None, "bytes_sent": 0, "bytes_received": 0,
                 "bytes_retransmitted": 0, "bytes_copied": 0,
                 "send_events": 0, "receive_events": 0,
                 "retransmit_events": 0, "copy_events": 0, "reconnects": 0,
                 "tcp_options": None, "process": None}
            current[key] = len(conns)
            conns.append(c)
            transfers.append({})
        tr = transfers[current[key]]
        c["_last"] = max(c["_last"], e["t"])
        k = e["kind"]
        if k == "connect":
            c["direction"] = c["direction"] or "outbound"
            c["state"] = c["state"] or "attempted"
            c["tcp_options"] = e["opts"]
        elif k == "accept":
            c["direction"] = c["direction"] or "inbound"
            c["state"] = "established"
            c["tcp_options"] = e["opts"]
        elif k == "reconnect":
            c["reconnects"] += 1
            if c["direction"] in (None, "unknown"):
                c["direction"] = "outbound"
            c["state"] = c["state"] or "attempted"
        elif k == "close":
            c["_closed"] = True
        else:
            if c["direction"] is None and e["proto"] == "udp":
                c["direction"] = "outbound" if k == "send" else "inbound"
            c["state"] = "established"
            field = {"send": ("bytes_sent", "send_events", 0),
                     "recv": ("bytes_received", "receive_events", 1),
                     "retransmit": ("bytes_retransmitted",
                                    "retransmit_events", 2),
                     "copy": ("bytes_copied", "copy_events", None)}[k]
            c[field[0]] += e["size"]
            c[field[1]] += 1
            if field[2] is not None:
                b = tr.setdefault(e["t"] // TICKS, [0, 0, 0, 0, 0, 0])
                b[field[2]] += e["size"]
                b[3 + field[2]] += 1
        if c["direction"] is None:
            c["direction"] = "unknown"
    out = []
    for c, tr in zip(conns, transfers):
        moved = (c["send_events"] + c["receive_events"] +
                 c["retransmit_events"] + c["copy_events"]) > 0
        if c["proto"] == "udp":
            c["state"] = ("closed" if wm - c["_last"] >= UDP_IDLE
                          else "established")
        elif c["_closed"]:
            c["state"] = ("failed" if not moved and c["reconnects"] > 0
                          else "closed")
        elif c["state"] is None:
            c["state"] = "established" if moved else "attempted"
        c["first_seen"] = fmt_time(c.pop("_first"))
        c["last_seen"] = fmt_time(c.pop("_last"))
        del c["_closed"]
        c.update(flow_fields(c))
        out.append(({f: c[f] for f in CONN_FIELDS[1:]},
                    [dict(zip(TRANSFER_FIELDS,
                              [fmt_time(s * TICKS)] + b[:3] + b[3:]))
                     for s, b in sorted(tr.items())]))
    return out, fails, wm


def transfer_key(c):
    return "|".join(str(c[f]) for f in (
        "host", "proto", "local_ip", "local_port", "remote_ip",
        "remote_port", "pid", "first_seen"))


def derive(path, default_host=None):
    """The expected answers for an NDJSON file, derived from its text."""
    events, reasons, frames = read_ndjson(path, default_host)
    folded, fails, wm = fold(events)
    days, hours = set(), set()
    for c, tr in folded:
        for t in [c["first_seen"]] + [x["time"] for x in tr]:
            ticks = ticks_of(t)
            days.add(ticks // (86400 * TICKS))
            hours.add(ticks // (3600 * TICKS))
    for f in fails:
        ticks = ticks_of(f["time"])
        days.add(ticks // (86400 * TICKS))
        hours.add(ticks // (3600 * TICKS))
    return {
        "events": frames, "accepted": len(events),
        "rejected": sum(reasons.values()),
        "rejected_by_reason": reasons,
        "partitions": len(days), "partitions_hour": len(hours),
        "watermark": fmt_time(wm) if events else None,
        "connections": [c for c, _ in folded],
        "failures": fails,
        "transfers": {transfer_key(c): tr for c, tr in folded},
    }


# ------------------------------------------------------------------ compare

def freeze(v):
    if isinstance(v, dict):
        return tuple(sorted((k, freeze(x)) for k, x in v.items()))
    if isinstance(v, list):
        return tuple(freeze(x) for x in v)
    return v


def multiset_diff(got, want, drop=("id",), limit=5):
    """Compares two lists of dicts as multisets, ignoring keys in drop.
    Returns '' if equal, else a readable description of the difference."""
    def strip(d):
        return {k: v for k, v in d.items() if k not in drop}
    g = collections.Counter(freeze(strip(x)) for x in got)
    w = collections.Counter(freeze(strip(x)) for x in want)
    if g == w:
        return ""
    extra = list((g - w).elements())
    missing = list((w - g).elements())
    lines = ["%d rows, expected %d; %d unexpected, %d missing" %
             (len(got), len(want), len(extra), len(missing))]
    # pair each missing row with the unexpected row of the same identity
    ident = ("host", "proto", "local_ip", "local_port", "remote_ip",
             "remote_port", "pid", "first_seen", "time", "event_id")
    def idt(fr):
        d = dict(fr)
        return tuple(d.get(k) for k in ident)
    extra_by = collections.defaultdict(list)
    for x in extra:
        extra_by[idt(x)].append(x)
    shown = 0
    for m in missing:
        if shown >= limit:
            break
        md = dict(m)
        cand = extra_by.get(idt(m))
        if cand:
            xd = dict(cand.pop())
            diffs = {k: (xd.get(k), md.get(k)) for k in set(md) | set(xd)
                     if xd.get(k) != md.get(k)}
            lines.append("  row %s: (got, want) differ in %s" % (
                json.dumps({k: md[k] for k in ident if k in md}),
                json.dumps(diffs, default=str)))
        else:
            lines.append("  missing: %s" % json.dumps(md, default=str))
        shown += 1
    left = [x for v in extra_by.values() for x in v]
    for x in left[:max(0, limit - shown)]:
        lines.append("  unexpected: %s" % json.dumps(dict(x), default=str))
    return "\n".join(lines)


def compare_expectations(gen, der):
    """Generator expectation vs derived one; returns a list of problems."""
    problems = []
    for k in ("events", "accepted", "rejected", "partitions",
              "partitions_hour", "watermark"):
        if gen.get(k) != der.get(k):
            problems.append("%s: generator %r, derived %r" %
                            (k, gen.get(k), der.get(k)))
    if gen["rejected_by_reason"] != der["rejected_by_reason"]:
        problems.append("rejected_by_reason: generator %r, derived %r" %
                        (gen["rejected_by_reason"], der["rejected_by_reason"]))
    d = multiset_diff(gen["connections"], der["connections"])
    if d:
        problems.append("connections: " + d)
    d = multiset_diff(gen["failures"], der["failures"])
    if d:
        problems.append("failures: " + d)
    for key, tr in gen["transfers"].items():
        if der["transfers"].get(key) != tr:
            problems.append("transfers of %s: generator %s, derived %s" % (
                key, json.dumps(tr)[:300],
                json.dumps(der["transfers"].get(key))[:300]))
            break
    return problems


# ------------------------------------------------------------------ filters

def match(c, f):
    """Does connection c (output/expect form) match filter f (dict with
    ip=(lo,hi), port, local_port, remote_port, pid, host, proto, direction,
    state, from, to (ticks), community_id, exclude_loopback (bool), scope
    (the remote end's class)).  The flow filters are worked out here from
    the addresses and ports, not taken from c's own flow fields."""
    if "ip" in f:
        lo, hi = f["ip"]
        if not (lo <= addr_key(c["local_ip"]) <= hi or
                lo <= addr_key(c["remote_ip"]) <= hi):
            return False
    if "remote_ip" in f:   # who: the remote end only
        lo, hi = f["remote_ip"]
        if not lo <= addr_key(c["remote_ip"]) <= hi:
            return False
    if "port" in f and f["port"] not in (c["local_port"], c["remote_port"]):
        return False
    if "local_port" in f and c["local_port"] != f["local_port"]:
        return False
    if "remote_port" in f and c["remote_port"] != f["remote_port"]:
        return False
    if "pid" in f and c["pid"] != f["pid"]:
        return False
    if "host" in f and c["host"].lower() != f["host"].lower():
        return False
    for k in ("proto", "direction", "state"):
        if k in f and c[k] != f[k]:
            return False
    if "from" in f and ticks_of(c["last_seen"]) < f["from"]:
        return False
    if "to" in f and ticks_of(c["first_seen"]) >= f["to"]:
        return False
    if "community_id" in f and community_id(c) != f["community_id"]:
        return False
    if f.get("exclude_loopback") and addr_class(c["remote_ip"]) == "loopback":
        return False
    if "scope" in f and addr_class(c["remote_ip"]) != f["scope"]:
        return False
    return True


def who(conns, f):
    """Expected `who` rows for conns matching f (f has remote_ip)."""
    rows = {}
    for c in conns:
        if not match(c, f):
            continue
        r = rows.get((c["host"], c["pid"]))
        if r is None:
            r = rows[(c["host"], c["pid"])] = {
                "host": c["host"], "pid": c["pid"], "connections": 0,
                "bytes_sent": 0, "bytes_received": 0,
                "first_seen": c["first_seen"], "last_seen": c["last_seen"]}
        r["connections"] += 1
        r["bytes_sent"] += c["bytes_sent"]
        r["bytes_received"] += c["bytes_received"]
        if ticks_of(c["first_seen"]) < ticks_of(r["first_seen"]):
            r["first_seen"] = c["first_seen"]
        if ticks_of(c["last_seen"]) > ticks_of(r["last_seen"]):
            r["last_seen"] = c["last_seen"]
    return list(rows.values())


def who_order_key(r):
    return (-(r["bytes_sent"] + r["bytes_received"]), r["host"], r["pid"])


# ------------------------------------------------------------------ running

class Result:
    def __init__(self, argv, rc, out, err, secs):
        self.argv, self.rc, self.out, self.err, self.secs = \
            argv, rc, out, err, secs

    def describe(self):
        return "`%s` -> exit %s after %.1fs; stderr: %s" % (
            " ".join(self.argv), self.rc, self.secs,
            self.err.strip()[-800:] or "(empty)")


def run(argv, timeout=120, stdin=None, input_bytes=None, env=None):
    """Runs argv; never raises for a non-zero exit or a timeout (rc is
    'timeout' then).  stdout/stderr decoded as UTF-8 (with replacement)."""
    t0 = time.time()
    try:
        argv = [str(x) for x in argv]
        p = subprocess.run(argv, stdin=stdin, input=input_bytes,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=timeout, env=env)
        rc, out, err = p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired as e:
        rc, out, err = "timeout", e.stdout or b"", e.stderr or b""
    except OSError as e:
        rc, out, err = "oserror", b"", str(e).encode()
    return Result([str(a) for a in argv], rc,
                  out.decode("utf-8", "replace"),
                  err.decode("utf-8", "replace"), time.time() - t0)


def parse_json_output(res):
    try:
        return json.loads(res.out)
    except ValueError as e:
        raise AssertionError("output is not JSON (%s): %s; %s" % (
            e, res.out[:300], res.describe()))


def parse_ndjson_output(text):
    return [json.loads(l) for l in text.splitlines() if l.strip()]


def parse_csv_output(text):
    rows = list(csv.reader(io.StringIO(text)))
    return (rows[0], rows[1:]) if rows else ([], [])


class Failed(AssertionError):
    pass


def check(cond, msg):
    if not cond:
        raise Failed(msg)


# ------------------------------------------------------------------ cli

def main(argv=None):
    p = argparse.ArgumentParser(description="derive netwho's answers for a "
                                "generated NDJSON file independently, and "
                                "compare them with gen.py's --expect file")
    sub = p.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("derive")
    d.add_argument("--input", required=True)
    d.add_argument("--expect", help="gen.py --expect file to compare with")
    d.add_argument("--default-host")
    d.add_argument("--out", help="write the derived answers here")
    a = p.parse_args(argv)
    der = derive(a.input, a.default_host)
    if a.out:
        with open(a.out, "w") as f:
            json.dump(der, f, indent=1)
    print("derived: %d frames, %d accepted, %d connections, %d failures" % (
        der["events"], der["accepted"], len(der["connections"]),
        len(der["failures"])))
    if a.expect:
        with open(a.expect) as f:
            gen = json.load(f)
        problems = compare_expectations(gen, der)
        for pr in problems:
            print("MISMATCH " + pr)
        if problems:
            return 1
        print("generator expectation == derived expectation")
    return 0


if __name__ == "__main__":
    sys.exit(main())
