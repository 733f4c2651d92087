#!/usr/bin/env python3
"""
gen.py -- synthetic Microsoft-Windows-Kernel-Network ETW events for netwho,
together with the exact answers netwho must give for them.

    gen.py --events N --hosts H --seed S --out FILE [--expect FILE.json]
           [--format ndjson|pretty|array] [--malformed R] [--start RFC3339]
           [--rate EVENTS_PER_SEC_PER_HOST] [--jitter-ms MS]
           [--empty-computer-host NAME] [--transfer-sample K]

The events are written as the real provider writes them (the envelope of
tests/data/kernel_network_seed_examples.jsonl): PID/size/rcvwin/seqnum/connid
padded to 8 characters with spaces, ports and TCP options unpadded strings,
about one event in ten with some numeric fields as JSON numbers, a header
execution.process_id that is often not the event's PID, "keywords" > 2^63,
time_created with nine fractional digits (100 ns granularity) and "+00:00".
TCP events name the LOCAL end in saddr:sport; UDP sends (42/58) too; UDP
receives (43/59) name the remote sender in saddr and the local end in daddr.
IPv6 text is sometimes non-canonical (upper case, expanded, partly
compressed); IPv4-mapped addresses appear on dual-stack sockets.

The traffic: many hosts, each with processes whose PIDs get reused; TCP
outbound (connect, reconnects, sends/receives/copies/retransmits, close),
inbound (accept ... close), connections open before the trace began (first
event is data), never closed, failed (connect + reconnects + close, no data),
bare attempts (connect only); UDP flows (DNS, NTP, QUIC, syslog, server side)
including tuples reused after >= 60 s of silence (a new flow, exactly 60 s
included) and a 59.9999999 s gap (still one flow); failure events 17/49;
loopback (127.0.0.1, ::1; each TCP loopback connection seen from both ends)
and host-to-host connections seen from both hosts; Zipf-like popularity of
remote addresses; long-lived connections across the whole trace (so across a
UTC midnight when --start is near one), some idle for more than 300 s.

Events are emitted in time order with jitter: every event's position may be
off by less than --jitter-ms (default 500 ms, always under the tracker's 3 s
reorder window); some closes are written before the accept they end.

--malformed R adds round(R * N) extra bad lines with known reasons (see
MALFORMED_REASONS); they carry no traffic.

--expect writes the exact expected answers, following the folding rules of
include/netwho/tracker.h (see Gen.fold and Gen.expect), as one JSON object:
  events, accepted, rejected, rejected_by_reason   ingest's counts (frames)
  partitions, partitions_hour    partition files a store gets (day / hour)
  connections    every connection, with the fields of netwho's output but id
                 (community_id and the address classes worked out here)
  failures       [{time, host, event_id, proto, fail_proto, fail_code}]
  transfers      {"host|proto|local_ip|local_port|remote_ip|remote_port|pid|
                 first_seen": [{time, bytes_sent, bytes_received,
                 bytes_retransmitted, send_events, receive_events,
                 retransmit_events}]} for a sample of connections
  watermark      the newest event time (UDP flows idle 60 s before it are
                 closed)
  split_time     a whole second mid-trace where UDP tuples go silent for
                 exactly 60 s and for 59.9999999 s across it: cut the trace
                 there to test an ingest in two runs
  generator, hosts   the parameters, host names and scenario counts
With --processes F, Kernel-Process and Sysmon events are added and every
connection's "process" is the one netwho must attribute (gen_process.py);
without it, no process event is written and every "process" is null.
Times are RFC 3339 UTC with 7 fractional digits and Z, as netwho prints them.
tests/e2e/netwho_e2e.py derives the same answers independently from the
generated file (`netwho_e2e.py derive`), which is how this generator is
checked.

Python 3 standard library only.  Speed: see the report at the end of a run
on stderr (events/s).
"""

import argparse
import base64
import bisect
import calendar
import gc
import hashlib
import json
import math
import random
import re
import sys
import time
from operator import itemgetter

TICKS = 10_000_000          # 100 ns ticks per second
MS = 10_000
US = 10
UDP_IDLE = 60 * TICKS       # tracker.h: a UDP flow ends after 60 s of silence
REORDER_WINDOW = 3 * TICKS  # tracker.h default
MAX_EVENT_BYTES = 1024 * 1024

PROVIDER = "Microsoft-Windows-Kernel-Network"
GUID = "{7dd42a49-5329-4832-8dfd-43d979153a88}"

# Event kinds (event.h order).
SEND, RECV, CONNECT, CLOSE, RETRANS, ACCEPT, RECONNECT, FAIL, COPY = range(9)
KIND_NAMES = ["send", "recv", "connect", "close", "retransmit", "accept",
              "reconnect", "fail", "copy"]
TCP, UDP = 6, 17

EVENT_IDS = {
    (TCP, 4): {SEND: 10, RECV: 11, CONNECT: 12, CLOSE: 13, RETRANS: 14,
               ACCEPT: 15, RECONNECT: 16, COPY: 18},
    (TCP, 6): {SEND: 26, RECV: 27, CONNECT: 28, CLOSE: 29, RETRANS: 30,
               ACCEPT: 31, RECONNECT: 32, COPY: 34},
    (UDP, 4): {SEND: 42, RECV: 43},
    (UDP, 6): {SEND: 58, RECV: 59},
}
OPCODE = {10: 10, 11: 11, 12: 12, 13: 13, 14: 14, 15: 15, 16: 16, 17: 17,
          18: 18, 26: 10, 27: 11, 28: 12, 29: 13, 30: 14, 31: 15, 32: 16,
          34: 18, 42: 42, 43: 43, 49: 49, 58: 42, 59: 43}
KEYWORDS_V4 = 9223372036854775824
KEYWORDS_V6 = 9223372036854775840

MALFORMED_REASONS = [
    # reason, weight, formats it is used in
    ("bad_json", 12, "ndjson pretty array"),
    ("truncated", 12, "ndjson pretty"),
    ("missing_system", 4, "ndjson pretty array"),
    ("missing_event_data", 8, "ndjson pretty array"),
    ("unknown_provider", 8, "ndjson pretty array"),
    ("unknown_event_id", 8, "ndjson pretty array"),
    ("bad_time", 8, "ndjson pretty array"),
    ("bad_pid", 5, "ndjson pretty array"),
    ("bad_size", 8, "ndjson pretty array"),
    ("bad_address", 8, "ndjson pretty array"),
    ("bad_port", 8, "ndjson pretty array"),
    ("not_object", 8, "array"),
    ("too_large", 0, "ndjson pretty array"),   # placed separately, at most 2
]


# ---------------------------------------------------------------- time

_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
    r"(?:([Zz])|([+-])(\d{2}):(\d{2}))$")


def parse_rfc3339(s):
    """RFC 3339 text to 100 ns ticks since the epoch (floor)."""
    m = _RFC3339.match(s.strip())
    if not m:
        raise ValueError("not an RFC 3339 time: %r" % s)
    y, mo, d, h, mi, se = (int(m.group(i)) for i in range(1, 7))
    frac = (m.group(7) or "").ljust(9, "0")
    secs = calendar.timegm((y, mo, d, h, mi, se, 0, 0, 0))
    if m.group(9):
        off = int(m.group(10)) * 3600 + int(m.group(11)) * 60
        secs -= off if m.group(9) == "+" else -off
    return secs * TICKS + int(frac[:7])


_SEC_CACHE = {}


def _sec_text(sec):
    s = _SEC_CACHE.get(sec)
    if s is None:
        s = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
        _SEC_CACHE[sec] = s
    return s


def fmt_out_time(t):
    """Ticks to the output format: 7 fractional digits and Z."""
    sec, frac = divmod(t, TICKS)
    return "%s.%07dZ" % (_sec_text(sec), frac)


def fmt_in_time(t):
    """Ticks to the provider's format: 9 fractional digits and +00:00."""
    sec, frac = divmod(t, TICKS)
    return "%s.%07d00+00:00" % (_sec_text(sec), frac)


# ---------------------------------------------------------------- addresses
# Addresses are 128-bit ints; IPv4 a.b.c.d is the mapped ::ffff:a.b.c.d
# (addr.h), so ranges of both families compare as netwho compares them.

V4MAP = 0xFFFF << 32


def v4(text):
    a, b, c, d = (int(x) for x in text.split("."))
    return V4MAP | (a << 24) | (b << 16) | (c << 8) | d


def v6(text):
    """Parses IPv6 text (only the forms this file writes itself)."""
    if "." in text:
        head, _, tail = text.rpartition(":")
        low = v4(tail) & 0xFFFFFFFF
        text = head + ":%x:%x" % (low >> 16, low & 0xFFFF)
    if "::" in text:
        left, right = text.split("::")
        lw = [int(x, 16) for x in left.split(":")] if left else []
        rw = [int(x, 16) for x in right.split(":")] if right else []
        words = lw + [0] * (8 - len(lw) - len(rw)) + rw
    else:
        words = [int(x, 16) for x in text.split(":")]
    assert len(words) == 8, text
    x = 0
    for w in words:
        x = (x << 16) | w
    return x


def words_of(x):
    return [(x >> (112 - 16 * i)) & 0xFFFF for i in range(8)]


def dotted(x):
    return "%d.%d.%d.%d" % ((x >> 24) & 255, (x >> 16) & 255, (x >> 8) & 255,
                            x & 255)


def _zero_run(w):
    """Longest run of >= 2 zero words (first on ties): (start, len) or None."""
    best = None
    i = 0
    while i < 8:
        if w[i] == 0:
            j = i
            while j < 8 and w[j] == 0:
                j += 1
            if j - i >= 2 and (best is None or j - i > best[1]):
                best = (i, j - i)
            i = j
        else:
            i += 1
    return best


def fmt_v6(x):
    """glibc inet_ntop(AF_INET6) text."""
    w = words_of(x)
    if w[:5] == [0] * 5 and w[5] == 0xFFFF:
        return "::ffff:" + dotted(x)
    # (glibc also writes ::a.b.c.d for v4-compatible addresses; never made.)
    run = _zero_run(w)
    if run is None:
        return ":".join("%x" % v for v in w)
    a, n = run
    return (":".join("%x" % v for v in w[:a]) + "::" +
            ":".join("%x" % v for v in w[a + n:]))


def fmt_ip(x, ipver):
    return dotted(x) if ipver == 4 else fmt_v6(x)


def v6_variants(x):
    """Non-canonical IPv6 texts of x that inet_pton accepts."""
    canon = fmt_v6(x)
    w = words_of(x)
    out = {canon.upper(),
           ":".join("%04x" % v for v in w),
           ":".join("%x" % v for v in w).upper(),
           ":".join("%x" % v for v in w)}
    if w[:5] == [0] * 5 and w[5] == 0xFFFF:
        out.add("::FFFF:" + dotted(x))
        out.add("0:0:0:0:0:ffff:" + dotted(x))
    run = _zero_run(w)
    if run and run[1] >= 3:
        a, n = run   # compress all of the run but its first word
        t = (":".join("%x" % v for v in w[:a + 1]) + "::" +
             ":".join("%x" % v for v in w[a + n:]))
        out.add(t)
        out.add(t.upper())
    out.discard(canon)
    return sorted(out)


# ---------------------------------------------------------------- flows
# Community ID and address classes of an expected connection, worked out
# on the 128-bit ints (tests/e2e/netwho_e2e.py does it apart, with the
# ipaddress module, from the events' text: the two agreeing checks both).

# include/netwho/addrclass.h's table, first match wins; IPv4 (mapped) by
# its low 32 bits.
V4_CLASSES = [(v4(t) & 0xFFFFFFFF, n, c) for t, n, c in (
    ("0.0.0.0", 32, "unspecified"), ("127.0.0.0", 8, "loopback"),
    ("169.254.0.0", 16, "link-local"), ("224.0.0.0", 4, "multicast"),
    ("255.255.255.255", 32, "broadcast"), ("10.0.0.0", 8, "private"),
    ("172.16.0.0", 12, "private"), ("192.168.0.0", 16, "private"),
    ("100.64.0.0", 10, "private"))]
V6_CLASSES = [(v6(t), n, c) for t, n, c in (
    ("::", 128, "unspecified"), ("::1", 128, "loopback"),
    ("fe80::", 10, "link-local"), ("ff00::", 8, "multicast"),
    ("fc00::", 7, "private"), ("fec0::", 10, "private"))]


def is_mapped(x):
    return x >> 32 == 0xFFFF


def addr_class(x):
    if is_mapped(x):
        table, bits, x = V4_CLASSES, 32, x & 0xFFFFFFFF
    else:
        table, bits = V6_CLASSES, 128
    for prefix, n, cls in table:
        if x >> (bits - n) == prefix >> (bits - n):
            return cls
    return "public"


def community_id(proto, ipver, lip, lport, rip, rport, seed=0):
    """Community ID v1 (github.com/corelight/community-id-spec): IPv4 --
    and an IPv6 socket's IPv4-mapped pair, IPv4 on the wire -- in 4 bytes,
    the smaller (address, port) end first."""
    if ipver == 4 or (is_mapped(lip) and is_mapped(rip)):
        a = (lip & 0xFFFFFFFF).to_bytes(4, "big")
        b = (rip & 0xFFFFFFFF).to_bytes(4, "big")
    else:
        a, b = lip.to_bytes(16, "big"), rip.to_bytes(16, "big")
    pa, pb = lport, rport
    if (a, pa) > (b, pb):
        a, b, pa, pb = b, a, pb, pa
    msg = (seed.to_bytes(2, "big") + a + b + bytes((proto, 0)) +
           pa.to_bytes(2, "big") + pb.to_bytes(2, "big"))
    return "1:" + base64.b64encode(hashlib.sha1(msg).digest()).decode("ascii")


def with_flow(c):
    """c.exp with the flow fields, placed before "process" as netwho
    writes them."""
    out = {}
    for k, v in c.exp.items():
        if k == "process":
            out["community_id"] = community_id(c.proto, c.ipver, c.lip,
                                               c.lport, c.rip, c.rport)
            out["local_ip_class"] = addr_class(c.lip)
            out["remote_ip_class"] = addr_class(c.rip)
        out[k] = v
    return out


# ---------------------------------------------------------------- model

class Conn:
    """One expected connection (or UDP flow) and its events."""
    __slots__ = ("host", "proto", "ipver", "lip", "lport", "rip", "rport",
                 "pid", "ev", "intent", "r", "exp", "first", "buckets",
                 "o", "swap")

    def __init__(self, host, proto, ipver, lip, lport, rip, rport, pid,
                 intent):
        self.host = host
        self.proto = proto
        self.ipver = ipver
        self.lip, self.lport, self.rip, self.rport = lip, lport, rip, rport
        self.pid = pid
        self.ev = []          # (t, kind, size)
        self.o = None         # TCP options of the connect/accept
        self.swap = None      # accept/close written in reverse (see in_fast)
        self.intent = intent  # (direction, state) the scenario means, or None
        self.r = None          # pre-rendered pieces (render_setup)
        self.exp = None        # expected output fields (fold)
        self.first = None      # first event time (fold)
        self.buckets = None    # {second: [sent, recv, rtx, n_s, n_r, n_rtx]}


class Failure:
    __slots__ = ("host", "event_id", "fail_proto", "fail_code", "t")

    def __init__(self, host, event_id, fail_proto, fail_code):
        self.host = host
        self.event_id = event_id
        self.fail_proto = fail_proto
        self.fail_code = fail_code
        self.t = None


class Host:
    def __init__(self, idx, name, computer, v4addr, v6addr):
        self.idx = idx
        self.name = name
        self.computer = computer
        self.v4 = v4addr
        self.v6 = v6addr
        self.slots = []        # per client slot: [(t_from, pid)], sorted
        self.pids = []         # every pid this host ever shows
        self.dns_pid = 0
        self.listeners_tcp = []  # (port, pid)
        self.listeners_udp = []  # (port, pid, kind)

    def client_pid(self, rng, t):
        slot = self.slots[rng.randrange(len(self.slots))]
        i = bisect.bisect_right(slot, (t, 1 << 40)) - 1
        return slot[max(i, 0)][1]


# ---------------------------------------------------------------- generator

class Gen:
    def __init__(self, args):
        self.a = args
        self.rng = random.Random(args.seed)
        self.start = parse_rfc3339(args.start)
        self.duration = max(int(args.events / (args.hosts * args.rate) * TICKS),
                            10 * TICKS)
        self.end = self.start + self.duration
        self.jitter = int(args.jitter_ms * MS)
        self.conns = []
        self.failures = []
        self.events = []       # (emit_key, t, conn-or-failure, kind, size)
        self.make_tables()
        self.used_keys = set()
        self.stats = {}
        self.proc_lines = []   # [(emit key, text)]: gen_process.py
        self.make_hosts()
        self.make_remotes()

    # -- helpers

    def make_tables(self):
        """Random draws of the hot path come from tables (drawn from the
        seeded generator once): a table lookup is much cheaper than
        lognormvariate per event."""
        r = self.rng

        def ln(median, sigma, hi=65535):
            return [min(max(int(r.lognormvariate(math.log(median), sigma)),
                            1), hi) for _ in range(8192)]
        self.tab_send = ln(350, 1.5)
        self.tab_recv = ln(1200, 1.9)
        self.tab_copy = ln(500, 1.2)
        self.tab_gap = [int(r.expovariate(1.0 / (400 * US))) + US
                        for _ in range(8192)]

    def ephemeral(self):
        return self.rng.randint(49152, 65535)

    def size(self, median, sigma, lo=1, hi=65535):
        v = int(self.rng.lognormvariate(math.log(median), sigma))
        return lo if v < lo else hi if v > hi else v

    def opts(self, mss):
        r = self.rng
        rws = r.choice((8, 8, 8, 2, 0))
        return (mss, 1, r.choice((0, 0, 1)), 1 if rws else 0,
                r.choice((65535, 131072, 263520, 525568, 1051136, 2098020,
                          2160675, 64240)), rws, r.choice((8, 8, 0, 2)))

    def key_free(self, host, proto, ipver, lip, lport, rip, rport, pid):
        k = (host.idx, proto, ipver, lip, lport, rip, rport, pid)
        if k in self.used_keys:
            return False
        self.used_keys.add(k)
        return True

    def new_conn(self, host, proto, ipver, lip, lport, rip, rport, pid,
                 intent, fresh_port=None):
        """A connection with a key never used before.  fresh_port: 'l' or
        'r' -- re-pick that ephemeral port until the key is new."""
        while not self.key_free(host, proto, ipver, lip, lport, rip, rport,
                                pid):
            if fresh_port == "l":
                lport = self.ephemeral()
            elif fresh_port == "r":
                rport = self.ephemeral()
            else:
                return None
        return Conn(host, proto, ipver, lip, lport, rip, rport, pid, intent)

    # -- the fleet

    def make_hosts(self):
        a, r = self.a, self.rng
        self.hosts = []
        pid_space = list(range(200, 20000, 4))
        for i in range(a.hosts):
            if i == 0 and a.empty_computer_host:
                name = a.empty_computer_host
                computer = ""
            else:
                prefix = ("DC" if i % 17 == 1 else
                          "SRV" if i % 5 == 2 else "WS")
                name = "%s-%04d" % (prefix, i)
                computer = name
            hv4 = v4("10.%d.%d.%d" % (3 + i // 60000, (i // 250) % 240,
                                       i % 250 + 2))
            hv6 = v6("fd00:10:3:%x::%x" % (i // 250, i % 250 + 2))
            h = Host(i, name, computer, hv4, hv6)
            pool = r.sample(pid_space, 40)
            h.dns_pid = pool.pop()
            h.pids = [4, h.dns_pid]
            # Client process slots; every so often a process exits and a
            # new one starts, often with a pid that another process held
            # before it exited (Windows reuses PIDs quickly): the same pid,
            # another process.  Changes are simulated in time order, so a
            # pid is never held by two live processes at once.
            nslots = 10
            freed = []
            changes = [(self.start - TICKS, k) for k in range(nslots)]
            h.slots = [[] for _ in range(nslots)]
            while changes:
                changes.sort()
                t, k = changes.pop(0)
                if h.slots[k]:
                    freed.append(h.slots[k][-1][1])
                if freed and r.random() < 0.5:
                    pid = freed.pop(r.randrange(len(freed)))
                else:
                    pid = pool.pop() if pool else r.choice(pid_space)
                h.slots[k].append((t, pid))
                if pid not in h.pids:
                    h.pids.append(pid)
                t += int(r.uniform(0.2, 1.0) * self.duration)
                if t < self.end:
                    changes.append((t, k))
            svc = pool.pop() if pool else 1000
            rdp = pool.pop() if pool else 1004
            sql = pool.pop() if pool else 1008
            h.pids += [svc, rdp, sql]
            h.listeners_tcp = [(445, 4), (445, 4), (5985, 4), (80, 4),
                               (443, 4), (3389, rdp), (135, svc)]
            if name.startswith("SRV"):
                h.listeners_tcp += [(1433, sql), (1433, sql), (8080, svc)]
            h.listeners_udp = [(123, svc, "ntp"), (5353, h.dns_pid, "mdns")]
            if name.startswith("DC"):
                h.listeners_udp += [(53, svc, "dns")] * 4
                h.listeners_tcp += [(389, svc), (88, svc), (389, svc)]
            if name.startswith("SRV"):
                h.listeners_udp += [(514, svc, "syslog"), (161, svc, "snmp")]
            self.hosts.append(h)

    def make_remotes(self):
        """Remote servers by popularity rank (Zipf-like weights)."""
        r = self.rng
        rem = [  # (addr, ipver, tcp ports)
            (v4("10.2.10.11"), 4, (389, 88, 445, 135, 389, 445)),
            (v4("13.89.179.13"), 4, (443,)),
            (v6("2606:4700::6810:84e5"), 6, (443, 80)),
            (v4("10.2.20.41"), 4, (5044,)),
            (v4("52.96.164.130"), 4, (443,)),
            (v6("2a00:1450:4001:82b::200e"), 6, (443,)),
            (v4("142.250.185.78"), 4, (443, 80)),
            (v4("192.168.1.10"), 4, (445, 8080)),
            (v6("2001:db8:0:1:2:3:4:5"), 6, (443,)),
            (v6("2001:db8:0:0:1:0:0:1"), 6, (8443,)),
            (v6("fd00:10:2:10::11"), 6, (389, 445)),
            (v4("172.16.5.20"), 4, (1433, 3389)),
            (v4("20.190.151.68"), 4, (443,)),
            (v4("8.8.8.8"), 4, (443, 853)),
        ]
        seen = set(x[0] for x in rem)
        while len(rem) < 400:
            kind = r.random()
            if kind < 0.45:
                a = v4("%d.%d.%d.%d" % (r.choice((13, 20, 23, 34, 40, 52, 104,
                                                   151, 157, 185, 204)),
                                         r.randint(0, 255), r.randint(0, 255),
                                         r.randint(1, 254)))
                ent = (a, 4, (443, 443, 443, 80))
            elif kind < 0.65:
                a = v4("10.%d.%d.%d" % (r.randint(0, 2), r.randint(0, 255),
                                        r.randint(1, 254)))
                ent = (a, 4, (445, 443, 8080, 3389, 5985, 1433))
            elif kind < 0.72:
                a = v4("192.168.%d.%d" % (r.randint(0, 255), r.randint(1, 254)))
                ent = (a, 4, (80, 443, 445))
            else:
                base = r.choice(("2606:4700::", "2a00:1450:4001:800::",
                                 "2620:1ec:c11::", "2001:db8:aa::",
                                 "2603:1036:0:0:0:0:0:0"))
                low = r.choice((r.getrandbits(16), r.getrandbits(32),
                                r.getrandbits(64)))
                a = v6(fmt_v6(v6(base) | low))
                ent = (a, 6, (443, 443, 80))
            if ent[0] not in seen:
                seen.add(ent[0])
                rem.append(ent)
        self.remotes = rem
        cum, tot = [], 0.0
        for i in range(len(rem)):
            tot += 1.0 / (i + 1) ** 1.1
            cum.append(tot)
        self.rem_cum, self.rem_tot = cum, tot
        self.dns_servers = [(v4("10.2.10.11"), 4), (v4("10.2.10.11"), 4),
                            (v4("10.2.10.11"), 4), (v4("8.8.8.8"), 4),
                            (v4("1.1.1.1"), 4), (v6("fd00:10:2:10::11"), 6),
                            (v6("2001:4860:4860::8888"), 6)]
        self.clients = [v4("10.2.10.%d" % i) for i in range(11, 60)] + \
                       [v4("192.168.7.%d" % i) for i in range(2, 30)] + \
                       [v4("185.220.101.%d" % i) for i in range(1, 9)]
        self.clients6 = [v6("fd00:10:2:10::%x" % i) for i in range(0x11, 0x30)] \
            + [v6("2001:db8:bad::%x" % i) for i in range(1, 5)]

    def remote(self):
        i = bisect.bisect_left(self.rem_cum, self.rng.random() * self.rem_tot)
        return self.remotes[min(i, len(self.remotes) - 1)]

    # -- event times

    def data_times(self, t0, n, lifetime):
        """n strictly increasing times from t0 in bursts over ~lifetime."""
        r = self.rng
        nb = max(1, min(n, int(round(n / r.uniform(3, 20)))))
        starts = sorted([t0] + [t0 + int(r.random() * lifetime)
                                for _ in range(nb - 1)])
        cuts = sorted(r.sample(range(1, n), nb - 1)) if nb > 1 else []
        sizes = [b - a for a, b in zip([0] + cuts, cuts + [n])]
        out = []
        prev = t0 - 1
        gap, rnd = self.tab_gap, r.random
        for st, k in zip(starts, sizes):
            t = max(st, prev + 1)
            for _ in range(k):
                t += gap[int(rnd() * 8192)]
                out.append(t)
            prev = t
        return out

    def data_kinds(self, n, retrans=True, copies=True):
        """n data events (kind, size) of a request/response exchange."""
        rnd = self.rng.random
        ts, tr, tc = self.tab_send, self.tab_recv, self.tab_copy
        out = []
        prev, prev_size = SEND, 0
        for i in range(n):
            x = rnd()
            j = int(rnd() * 8192)
            if copies and prev == RECV and x < 0.25:
                k, s = COPY, min(prev_size, tc[j])
            elif retrans and prev == SEND and x < 0.05:
                k, s = RETRANS, min(prev_size, 1460)
            elif i == 0 or x < 0.5:
                k, s = SEND, ts[j]
            else:
                k, s = RECV, tr[j]
            out.append((k, s))
            prev, prev_size = k, s
        return out

    def n_data(self):
        v = int(round(self.rng.lognormvariate(math.log(15), 1.0)))
        return 2 if v < 2 else 200 if v > 200 else v

    def lifetime(self):
        v = self.rng.lognormvariate(math.log(2.0), 2.0)
        return int(min(max(v, 0.001), 600.0) * TICKS)

    def session_start(self, early=False):
        if early:
            span = min(self.duration // 20, 30 * TICKS)
            return self.start + int(self.rng.random() * span)
        return self.start + int(self.rng.random() * self.duration)

    # -- adding events to a connection

    def ev(self, c, t, kind, size=0, opts=None):
        c.ev.append((t, kind, size))
        if opts is not None:
            c.o = opts

    def tcp_data(self, c, t0, n, lifetime, mirror=None, moff=0):
        """Data events on c (and the peer's view on mirror: send <-> recv,
        moff later).  Returns the last time used."""
        kinds = self.data_kinds(n)
        times = self.data_times(t0, n, lifetime)
        add = c.ev.append
        for (k, s), t in zip(kinds, times):
            add((t, k, s))
        if mirror is not None:
            madd = mirror.ev.append
            for (k, s), t in zip(kinds, times):
                if k == SEND:
                    madd((t + moff, RECV, s))
                elif k == RECV:
                    madd((t + moff, SEND, s))
        return times[-1]

    # -- scenarios (each appends to self.pconns / self.pfail; see commit)

    def sc_tcp_out(self, host, t0, variant, ipver=None, remote=None,
                   pid=None, lport=None):
        """An outbound TCP connection (variant: closed, open, retry_ok,
        failed, bare, retrying) or one that began before the trace (pre,
        pre_close, pre_reconnect).  remote/lport/pid: reuse a tuple."""
        r = self.rng
        if remote is None:
            rip, rv, ports = self.remote()
            rport = r.choice(ports)
        else:
            rip, rv, rport = remote
        if ipver is None:
            ipver = rv
        lip = host.v4 if rv == 4 else host.v6
        if pid is None:
            pid = 4 if rport == 445 and r.random() < 0.5 else \
                host.client_pid(r, t0)
        direction = {"closed": "outbound", "open": "outbound",
                     "retry_ok": "outbound", "failed": "outbound",
                     "bare": "outbound", "retrying": "outbound",
                     "pre": "unknown", "pre_close": "unknown",
                     "pre_reconnect": "outbound"}[variant]
        if lport is None:
            c = self.new_conn(host, TCP, ipver, lip, self.ephemeral(), rip,
                              rport, pid, None, fresh_port="l")
        else:
            c = Conn(host, TCP, ipver, lip, lport, rip, rport, pid, None)
        mss = 1460 if rip >> 24 & 255 in (10, 172, 192) else 1440
        t = t0
        if variant in ("closed", "open", "retry_ok", "failed", "bare",
                       "retrying"):
            self.ev(c, t, CONNECT, 0, self.opts(mss))
        nrec = 0
        if variant in ("retry_ok", "failed", "retrying", "pre_reconnect"):
            nrec = r.randint(1, 3) if variant != "retry_ok" else r.randint(1, 2)
            back = 0.5
            for i in range(nrec):
                t += int(back * TICKS * r.uniform(0.9, 1.1)) + 1
                self.ev(c, t, RECONNECT)
                back *= 2
        moved = False
        if variant in ("closed", "open", "retry_ok", "pre"):
            n = self.n_data()
            t = self.tcp_data(c, t + int(r.uniform(0.2, 40) * MS), n,
                              self.lifetime())
            moved = True
        if variant in ("closed", "retry_ok", "failed", "pre_close",
                       "pre_reconnect") or (variant == "pre" and
                                            r.random() < 0.5):
            t += int(r.uniform(0.05, 80) * MS) + 1
            self.ev(c, t, CLOSE)
            state = "failed" if (not moved and nrec) else "closed"
        else:
            state = "established" if moved else "attempted"
        c.intent = (direction, state)
        self.pconns.append(c)
        return c

    def sc_tcp_in(self, host, t0, variant):
        r = self.rng
        lport, pid = r.choice(host.listeners_tcp)
        if r.random() < 0.25:
            rip, rv = r.choice(self.clients6), 6
            lip = host.v6
        else:
            rip, rv = r.choice(self.clients), 4
            lip = host.v4
        c = self.new_conn(host, TCP, rv, lip, lport, rip, self.ephemeral(),
                          pid, None, fresh_port="r")
        ta = t0
        self.ev(c, ta, ACCEPT, 0, self.opts(1460))
        if variant == "fast":
            d = int(r.uniform(0.5, 20) * MS)
            tc = ta + d
            c.ev.append((tc, CLOSE, 0))
            # Write the close before the accept half of the time: the
            # accept's emit key is later than the close's, and both stay
            # within the jitter (see emit_order).
            if self.jitter > 2 * d + 2 and r.random() < 0.5:
                c.swap = r.randint(d + 1, self.jitter - 1)
            c.intent = ("inbound", "closed")
        else:
            t = self.tcp_data(c, ta + int(r.uniform(0.1, 5) * MS),
                              self.n_data(), self.lifetime())
            if variant == "closed":
                self.ev(c, t + int(r.uniform(0.05, 50) * MS) + 1, CLOSE)
                c.intent = ("inbound", "closed")
            else:
                c.intent = ("inbound", "established")
        self.pconns.append(c)

    def sc_pair(self, host, t0, loop):
        """One TCP connection seen from both ends: loopback on one host, or
        host to host within the fleet."""
        r = self.rng
        if loop:
            peer = host
            ipver = r.choice((4, 6, 6))
            cip = sip = v4("127.0.0.1") if ipver == 4 else 1
            sport, spid = r.choice(((445, 4), (1500, host.client_pid(r, t0)),
                                    (r.randint(50000, 60000),
                                     host.client_pid(r, t0)), (5985, 4)))
            moff = int(r.uniform(5, 80) * US)
        else:
            peer = self.hosts[r.randrange(len(self.hosts))]
            ipver = 6 if r.random() < 0.2 else 4
            cip = host.v4 if ipver == 4 else host.v6
            sip = peer.v4 if ipver == 4 else peer.v6
            sport, spid = r.choice(peer.listeners_tcp)
            moff = int(r.uniform(0.15, 3) * MS)
        cpid = 4 if sport == 445 and r.random() < 0.5 else host.client_pid(r,
                                                                           t0)
        while True:
            cport = self.ephemeral()
            if (cport != sport and
                    (host.idx, TCP, ipver, cip, cport, sip, sport, cpid)
                    not in self.used_keys and
                    (peer.idx, TCP, ipver, sip, sport, cip, cport, spid)
                    not in self.used_keys):
                break
        self.used_keys.add((host.idx, TCP, ipver, cip, cport, sip, sport,
                            cpid))
        self.used_keys.add((peer.idx, TCP, ipver, sip, sport, cip, cport,
                            spid))
        cl = Conn(host, TCP, ipver, cip, cport, sip, sport, cpid, None)
        sv = Conn(peer, TCP, ipver, sip, sport, cip, cport, spid, None)
        mss = (65495 if ipver == 4 else 65475) if loop else 1460
        self.ev(cl, t0, CONNECT, 0, self.opts(mss))
        self.ev(sv, t0 + moff, ACCEPT, 0, self.opts(mss))
        t = self.tcp_data(cl, t0 + 2 * moff + US, self.n_data(),
                          self.lifetime(), mirror=sv, moff=moff)
        if r.random() < 0.85:
            t += int(r.uniform(0.05, 20) * MS) + 1
            self.ev(cl, t, CLOSE)
            self.ev(sv, t + moff, CLOSE)
            cl.intent, sv.intent = ("outbound", "closed"), ("inbound", "closed")
        else:
            cl.intent = ("outbound", "established")
            sv.intent = ("inbound", "established")
        self.pconns += [cl, sv]

    def sc_tcp_reuse(self, host, t0):
        """The same tuple twice: closed, then connected again (by the same
        process, or by another one holding the same or another pid)."""
        r = self.rng
        c1 = self.sc_tcp_out(host, t0, "closed")
        tnext = c1.ev[-1][0] + int(r.uniform(0.5, 30) * TICKS)
        pid = c1.pid if r.random() < 0.6 else host.client_pid(r, tnext)
        if (host.idx, TCP, c1.ipver, c1.lip, c1.lport, c1.rip, c1.rport,
                pid) in self.used_keys and pid != c1.pid:
            return
        self.used_keys.add((host.idx, TCP, c1.ipver, c1.lip, c1.lport,
                            c1.rip, c1.rport, pid))
        self.sc_tcp_out(host, tnext, r.choice(("closed", "closed", "open")),
                        ipver=c1.ipver, remote=(c1.rip, c1.ipver, c1.rport),
                        pid=pid, lport=c1.lport)

    def sc_mapped(self, host, t0):
        """Dual-stack socket: TCPv6 events with IPv4-mapped addresses."""
        r = self.rng
        rip, rv, ports = self.remote()
        if rv != 4:
            rip, rv, ports = self.remotes[0]
        c = self.new_conn(host, TCP, 6, host.v4, self.ephemeral(), rip,
                          r.choice(ports), host.client_pid(r, t0), None,
                          fresh_port="l")
        self.ev(c, t0, CONNECT, 0, self.opts(1440))
        t = self.tcp_data(c, t0 + int(r.uniform(0.2, 30) * MS), self.n_data(),
                          self.lifetime())
        self.ev(c, t + int(r.uniform(0.1, 30) * MS), CLOSE)
        c.intent = ("outbound", "closed")
        self.pconns.append(c)

    def udp_exchange(self, c, t0, nq, client, qsize=(30, 90),
                     asize=(50, 500)):
        """nq request/answer pairs: client sends first (c is the client's
        view) or receives first (server's view).  Returns last time."""
        r = self.rng
        t = t0
        first, second = (SEND, RECV) if client else (RECV, SEND)
        for i in range(nq):
            self.ev(c, t, first, r.randint(*qsize))
            t += int(r.uniform(0.3, 80) * MS) + 1
            self.ev(c, t, second, r.randint(*asize))
            t += int(r.uniform(0.01, 3) * MS) + 1
        return t

    def sc_dns(self, host, t0):
        r = self.rng
        sip, sv = r.choice(self.dns_servers)
        lip = host.v4 if sv == 4 else host.v6
        c = self.new_conn(host, UDP, sv, lip, self.ephemeral(), sip, 53,
                          host.dns_pid, None, fresh_port="l")
        self.udp_exchange(c, t0, r.choice((1, 1, 1, 2)), True)
        c.intent = ("outbound", None)
        self.pconns.append(c)

    def sc_udp_in(self, host, t0):
        r = self.rng
        lport, pid, kind = r.choice(host.listeners_udp)
        if r.random() < 0.2:
            rip, rv = r.choice(self.clients6), 6
        else:
            rip, rv = r.choice(self.clients), 4
        lip = host.v4 if rv == 4 else host.v6
        rport = 123 if kind == "ntp" and r.random() < 0.5 else \
            5353 if kind == "mdns" else self.ephemeral()
        c = self.new_conn(host, UDP, rv, lip, lport, rip, rport, pid, None,
                          fresh_port="r")
        if c is None:
            c = self.new_conn(host, UDP, rv, lip, lport, rip, self.ephemeral(),
                              pid, None, fresh_port="r")
        if kind == "syslog":
            t = t0
            for _ in range(r.randint(1, 30)):
                self.ev(c, t, RECV, r.randint(60, 1400))
                t += int(r.expovariate(1 / (2.0 * TICKS))) + US
        else:
            self.udp_exchange(c, t0, r.randint(1, 3), False, (40, 120),
                              (40, 480))
        c.intent = ("inbound", None)
        self.pconns.append(c)

    def sc_udp_long(self, host, t0):
        """NTP-like polling, or a QUIC flow: many events, gaps < 60 s."""
        r = self.rng
        if r.random() < 0.5:
            c = self.new_conn(host, UDP, 4, host.v4, 123,
                              v4("20.101.57.9"), 123, host.listeners_udp[0][1],
                              None)
            if c is None:
                return
            t = t0
            for _ in range(r.randint(3, 12)):
                t = self.udp_exchange(c, t, 1, True, (48, 48), (48, 48))
                t += int(r.uniform(5, 55) * TICKS)
        else:
            rip, rv, ports = self.remote()
            lip = host.v4 if rv == 4 else host.v6
            c = self.new_conn(host, UDP, rv, lip, self.ephemeral(), rip, 443,
                              host.client_pid(r, t0), None, fresh_port="l")
            times = self.data_times(t0, self.n_data() + 2,
                                    int(r.uniform(0.5, 50) * TICKS))
            self.ev(c, times[0], SEND, r.randint(1200, 1350))
            for t in times[1:]:
                if r.random() < 0.4:
                    self.ev(c, t, SEND, self.size(300, 1.2, hi=1350))
                else:
                    self.ev(c, t, RECV, self.size(1000, 0.8, hi=1350))
        c.intent = ("outbound", None)
        self.pconns.append(c)

    def sc_udp_reuse(self, host, t0, gap=None, merge=False):
        """One UDP tuple used twice with `gap` of silence between.  gap >=
        60 s makes two flows; merge=True uses 59.9999999 s: one flow."""
        r = self.rng
        sip, sv = r.choice(self.dns_servers)
        lip = host.v4 if sv == 4 else host.v6
        c1 = self.new_conn(host, UDP, sv, lip, self.ephemeral(), sip, 53,
                           host.dns_pid, None, fresh_port="l")
        t = self.udp_exchange(c1, t0, r.randint(1, 2), True)
        last = c1.ev[-1][0]
        if merge:
            gap = UDP_IDLE - 1
        elif gap is None:
            gap = r.choice((UDP_IDLE, UDP_IDLE + 1,
                            int(r.uniform(61, 200) * TICKS)))
        if merge:
            self.udp_exchange(c1, last + gap, 1, True)
            c1.intent = ("outbound", None)
            self.pconns.append(c1)
            return
        c2 = Conn(host, UDP, sv, lip, c1.lport, sip, 53, host.dns_pid, None)
        first_recv = r.random() < 0.3
        # The second flow may even begin with a receive (a late answer):
        # then it is inbound.
        self.udp_exchange(c2, last + gap, 1, not first_recv)
        c1.intent = ("outbound", None)
        c2.intent = ("inbound" if first_recv else "outbound", None)
        self.pconns += [c1, c2]

    def sc_udp_loop(self, host, t0):
        """DNS over ::1 or 127.0.0.1: the client's flow and the server's."""
        r = self.rng
        ipver = r.choice((4, 6))
        ip = v4("127.0.0.1") if ipver == 4 else 1
        cpid = host.client_pid(r, t0)
        spid = host.dns_pid if r.random() < 0.5 else r.choice(host.pids)
        while True:
            cport = self.ephemeral()
            k1 = (host.idx, UDP, ipver, ip, cport, ip, 53, cpid)
            k2 = (host.idx, UDP, ipver, ip, 53, ip, cport, spid)
            if k1 not in self.used_keys and k2 not in self.used_keys:
                break
        self.used_keys.update((k1, k2))
        cl = Conn(host, UDP, ipver, ip, cport, ip, 53, cpid, ("outbound", None))
        sv = Conn(host, UDP, ipver, ip, 53, ip, cport, spid, ("inbound", None))
        q, a = r.randint(30, 90), r.randint(30, 300)
        d = int(r.uniform(20, 200) * US)
        self.ev(cl, t0, SEND, q)
        self.ev(sv, t0 + d, RECV, q)
        self.ev(sv, t0 + 2 * d, SEND, a)
        self.ev(cl, t0 + 3 * d, RECV, a)
        self.pconns += [cl, sv]

    def sc_failure(self, host, t0):
        r = self.rng
        if r.random() < 0.6:
            f = Failure(host, 17, r.choice((2, 2, 2, 23)),
                        r.choice((1225, 1228, 1236, 10060, 10061, 64, 0)))
        else:
            f = Failure(host, 49, r.choice((2, 2, 23)),
                        r.choice((1234, 10054, 1231, 0)))
        f.t = t0
        self.pfail.append(f)

    def sc_long(self, host, preexisting):
        """A connection across the whole trace; keepalive traffic with gaps
        of 20..420 s (more than the 300 s tcp_idle now and then)."""
        r = self.rng
        rip, rv, ports = self.remotes[r.randrange(0, 6)]
        lip = host.v4 if rv == 4 else host.v6
        c = self.new_conn(host, TCP, rv, lip, self.ephemeral(), rip,
                          r.choice(ports), host.client_pid(r, self.start),
                          None, fresh_port="l")
        t = self.start + int(r.uniform(0, 2) * TICKS)
        if not preexisting:
            self.ev(c, t, CONNECT, 0, self.opts(1460))
            t += int(r.uniform(1, 30) * MS)
        end = self.end - int(r.uniform(0, 5) * TICKS)
        while True:
            n = r.randint(1, 6)
            t = self.tcp_data(c, t, n, int(r.uniform(0.01, 2) * TICKS))
            t += int(r.uniform(20, 420) * TICKS)
            if t >= end:
                break
        if preexisting:
            c.intent = ("unknown", "established")
        else:
            self.ev(c, max(c.ev[-1][0] + MS, end), CLOSE)
            c.intent = ("outbound", "closed")
        self.pconns.append(c)

    # -- the whole trace

    SCENARIOS = [  # name, weight
        ("out_closed", 24), ("out_open", 4), ("out_retry_ok", 2),
        ("out_failed", 3), ("out_bare", 2), ("out_retrying", 1),
        ("pre", 4), ("pre_close", 1), ("pre_reconnect", 1),
        ("in_closed", 10), ("in_fast", 4), ("in_open", 2),
        ("loop_pair", 3), ("fleet_pair", 4), ("tcp_reuse", 2), ("mapped", 1),
        ("dns", 22), ("udp_in", 6), ("udp_long", 2), ("udp_reuse", 2),
        ("udp_merge", 1), ("udp_loop", 2), ("failure", 3),
    ]

    def run_scenario(self, name):
        r = self.rng
        host = self.hosts[r.randrange(len(self.hosts))]
        early = name.startswith("pre")
        t0 = self.session_start(early)
        if name.startswith("out_") or early:
            v = name[4:] if name.startswith("out_") else name
            self.sc_tcp_out(host, t0, v, ipver=None)
        elif name.startswith("in_"):
            self.sc_tcp_in(host, t0, name[3:])
        elif name == "loop_pair":
            self.sc_pair(host, t0, True)
        elif name == "fleet_pair":
            self.sc_pair(host, t0, False)
        elif name == "tcp_reuse":
            self.sc_tcp_reuse(host, t0)
        elif name == "mapped":
            self.sc_mapped(host, t0)
        elif name == "dns":
            self.sc_dns(host, t0)
        elif name == "udp_in":
            self.sc_udp_in(host, t0)
        elif name == "udp_long":
            self.sc_udp_long(host, t0)
        elif name == "udp_reuse":
            self.sc_udp_reuse(host, t0)
        elif name == "udp_merge":
            self.sc_udp_reuse(host, t0, merge=True)
        elif name == "udp_loop":
            self.sc_udp_loop(host, t0)
        elif name == "failure":
            self.sc_failure(host, t0)

    def begin(self):
        self.pconns, self.pfail = [], []

    def commit(self, budget):
        """Keeps the pending scenario if it fits the budget: returns its
        number of events, or -1.  The trace stops at self.end: later events
        are never recorded, so what was still open then stays open (and a
        peer may lose its whole view)."""
        end = self.end
        keep = []
        n = 0
        for c in self.pconns:
            if c.ev[-1][0] >= end or c.ev[0][0] >= end:
                m = len(c.ev)
                c.ev = [e for e in c.ev if e[0] < end]
                if not c.ev:
                    continue
                if len(c.ev) < m:
                    c.intent = (c.intent[0], None)  # state: see fold
                    c.swap = None
            keep.append(c)
            n += len(c.ev)
        fails = [f for f in self.pfail if f.t < end]
        n += len(fails)
        if n > budget:
            return -1
        self.conns += keep
        self.failures += fails
        return n

    def emit_order(self):
        """All events with their emit keys (time + jitter), sorted: the
        order they are written in.  An event is written before an earlier
        one only if their times differ by less than the jitter."""
        J = self.jitter
        rnd = self.rng.random
        evs = []
        add = evs.append
        for c in self.conns:
            for t, k, s in c.ev:
                add((t + int(rnd() * J), t, c, k, s))
            if c.swap is not None:
                # accept at ta + ua, its close (ta + d) just before it
                i = len(evs) - len(c.ev)
                (_, ta, _, ka, _), (_, tc, _, kc, _) = evs[i], evs[i + 1]
                assert ka == ACCEPT and kc == CLOSE
                evs[i] = (ta + c.swap, ta, c, ACCEPT, 0)
                evs[i + 1] = (ta + c.swap - 1, tc, c, CLOSE, 0)
        for f in self.failures:
            add((f.t + int(rnd() * J), f.t, f, FAIL, 0))
        evs.sort(key=itemgetter(0))
        self.events = evs

    def generate(self):
        a, r = self.a, self.rng
        budget = a.events
        reserve = 4 if budget >= 40 else 0   # the end-of-trace UDP flows
        budget -= reserve
        mid = self.start + self.duration // 2
        self.split_time = (mid // TICKS) * TICKS
        # Around the suggested split time: a UDP tuple silent exactly 60 s
        # across it (two flows) and one silent 59.9999999 s (one flow).
        if self.duration >= 200 * TICKS and budget >= 40:
            h = self.hosts[0]
            self.begin()
            self.sc_udp_reuse(h, self.split_time - 31 * TICKS, gap=None)
            c1, c2 = self.pconns[-2], self.pconns[-1]
            # move c2 to exactly 60 s after c1's last event
            last = c1.ev[-1][0]
            shift = last + UDP_IDLE - c2.ev[0][0]
            c2.ev = [(t + shift, kd, s) for (t, kd, s) in c2.ev]
            budget -= max(self.commit(budget), 0)
            self.begin()
            self.sc_udp_reuse(h, self.split_time - 20 * TICKS, merge=True)
            budget -= max(self.commit(budget), 0)
        # A few long-lived connections per host.
        for h in self.hosts:
            for pre in (True, False):
                if r.random() < 0.7 and budget > 200:
                    self.begin()
                    self.sc_long(h, pre)
                    budget -= max(self.commit(budget), 0)
        names = [n for n, _ in self.SCENARIOS]
        cum = []
        tot = 0
        for _, w in self.SCENARIOS:
            tot += w
            cum.append(tot)
        while budget > 0:
            self.begin()
            if budget >= 10:
                name = names[bisect.bisect_right(cum, r.random() * tot)]
            else:
                name = r.choice(("out_bare", "failure", "pre_close"))
            self.run_scenario(name)
            n = self.commit(budget)
            if n >= 0:
                budget -= n
                self.stats[name] = self.stats.get(name, 0) + 1
        self.watermark = max([max(e[0] for e in c.ev) for c in self.conns] +
                             [f.t for f in self.failures])
        if reserve:
            # UDP flows whose last event is exactly 60 s before the newest
            # event of the trace (closed) and 100 ns later (still open).
            h = self.hosts[0]
            for dt, intent in ((0, "closed"), (1, "established")):
                self.begin()
                sip, sv = v4("10.2.10.11"), 4
                c = self.new_conn(h, UDP, sv, h.v4, self.ephemeral(), sip, 53,
                                  h.dns_pid, ("outbound", intent),
                                  fresh_port="l")
                tl = self.watermark - UDP_IDLE + dt
                self.ev(c, tl - int(r.uniform(1, 50) * MS), SEND, 40)
                self.ev(c, tl, RECV, 120)
                self.pconns.append(c)
                self.commit(2)
        self.emit_order()

    # ------------------------------------------------------------ expected

    def fold(self):
        """Expected connection fields, per tracker.h, from each Conn's own
        events (the scenario already put them in separate Conns)."""
        W = self.watermark
        for c in self.conns:
            ev = sorted(c.ev, key=itemgetter(0))
            ts = [e[0] for e in ev]
            assert len(set(ts)) == len(ts), "equal times in one connection"
            d = dict(bs=0, br=0, brt=0, bc=0, ns=0, nr=0, nrt=0, nc=0, rec=0)
            direction = None
            state = None
            opts = None
            buckets = {}
            for t, k, s in ev:
                if k == CONNECT:
                    direction = direction or "outbound"
                    state = state or "attempted"
                    opts = c.o
                elif k == ACCEPT:
                    direction = direction or "inbound"
                    state = "established"
                    opts = c.o
                elif k == RECONNECT:
                    d["rec"] += 1
                    if direction is None or direction == "unknown":
                        direction = "outbound"
                    state = state or "attempted"
                elif k == CLOSE:
                    state = "close"
                else:
                    if c.proto == UDP and direction is None:
                        direction = "outbound" if k == SEND else "inbound"
                    if state != "close":
                        state = "established"
                    b = None
                    if k == SEND:
                        d["bs"] += s
                        d["ns"] += 1
                        b = 0
                    elif k == RECV:
                        d["br"] += s
                        d["nr"] += 1
                        b = 1
                    elif k == RETRANS:
                        d["brt"] += s
                        d["nrt"] += 1
                        b = 2
                    elif k == COPY:
                        d["bc"] += s
                        d["nc"] += 1
                    if b is not None:
                        sec = t // TICKS
                        bk = buckets.get(sec)
                        if bk is None:
                            bk = buckets[sec] = [0, 0, 0, 0, 0, 0]
                        bk[b] += s
                        bk[3 + b] += 1
                if direction is None and c.proto == TCP:
                    direction = "unknown"
            moved = d["ns"] + d["nr"] + d["nrt"] + d["nc"] > 0
            if c.proto == UDP:
                state = "closed" if W - ts[-1] >= UDP_IDLE else "established"
            elif state == "close":
                state = "failed" if (not moved and d["rec"] > 0) else "closed"
            elif state is None:
                state = "established" if moved else "attempted"
            want = c.intent
            if want is not None:
                assert want[0] == direction, (want, direction, c.ev)
                assert want[1] is None or want[1] == state, (want, state, c.ev)
            host = c.host.name
            c.exp = {
                "host": host, "pid": c.pid,
                "proto": "tcp" if c.proto == TCP else "udp",
                "ip_version": c.ipver, "direction": direction,
                "local_ip": fmt_ip(c.lip, c.ipver), "local_port": c.lport,
                "remote_ip": fmt_ip(c.rip, c.ipver), "remote_port": c.rport,
                "first_seen": fmt_out_time(ts[0]),
                "last_seen": fmt_out_time(ts[-1]),
                "state": state,
                "bytes_sent": d["bs"], "bytes_received": d["br"],
                "bytes_retransmitted": d["brt"], "bytes_copied": d["bc"],
                "send_events": d["ns"], "receive_events": d["nr"],
                "retransmit_events": d["nrt"], "copy_events": d["nc"],
                "reconnects": d["rec"],
                "tcp_options": None if opts is None else dict(zip(
                    ("mss", "sackopt", "tsopt", "wsopt", "rcvwin",
                     "rcvwinscale", "sndwinscale"), opts)),
                # No process event in this stream: never attributed.
                "process": None,
            }
            c.first, c.buckets = ts[0], buckets

    def expect(self, total_frames, rejected_by_reason):
        out_conns = sorted((with_flow(c) for c in self.conns),
                           key=lambda e: (e["first_seen"], e["host"],
                                          e["local_ip"], e["local_port"],
                                          e["remote_ip"], e["remote_port"],
                                          e["pid"]))
        fails = sorted(({"time": fmt_out_time(f.t), "host": f.host.name,
                         "event_id": f.event_id,
                         "proto": "tcp" if f.event_id == 17 else "udp",
                         "fail_proto": f.fail_proto,
                         "fail_code": f.fail_code} for f in self.failures),
                       key=lambda f: (f["time"], f["host"], f["event_id"],
                                      f["fail_proto"], f["fail_code"]))
        # Partitions: a connection lives in the partition of its first_seen,
        # transfers and failures in that of their own time.
        days, hours = set(), set()
        for c in self.conns:
            for t in [c.first] + [s * TICKS for s in c.buckets]:
                days.add(t // (86400 * TICKS))
                hours.add(t // (3600 * TICKS))
        for f in self.failures:
            days.add(f.t // (86400 * TICKS))
            hours.add(f.t // (3600 * TICKS))
        # Transfers for a sample: the long-lived ones, a few without any
        # transfer, and a random sample of the rest.
        r = random.Random(self.a.seed + 1)
        idx = list(range(len(self.conns)))
        sample = set(i for i in idx if self.conns[i].intent and
                     len(self.conns[i].ev) > 3 and
                     self.conns[i].ev[-1][0] - self.conns[i].ev[0][0] >
                     self.duration // 2)
        sample = set(sorted(sample)[:20])
        empty = [i for i in idx if not self.conns[i].buckets]
        sample.update(r.sample(empty, min(5, len(empty))))
        busy = [i for i in idx if self.conns[i].buckets]
        sample.update(r.sample(busy, min(self.a.transfer_sample, len(busy))))
        transfers = {}
        for i in sorted(sample):
            c = self.conns[i]
            e = c.exp
            key = "|".join(str(x) for x in (
                e["host"], e["proto"], e["local_ip"], e["local_port"],
                e["remote_ip"], e["remote_port"], e["pid"], e["first_seen"]))
            transfers[key] = [
                {"time": fmt_out_time(s * TICKS), "bytes_sent": b[0],
                 "bytes_received": b[1], "bytes_retransmitted": b[2],
                 "send_events": b[3], "receive_events": b[4],
                 "retransmit_events": b[5]}
                for s, b in sorted(c.buckets.items())]
        accepted = len(self.events) + len(self.proc_lines)
        rejected = sum(rejected_by_reason.values())
        assert accepted + rejected == total_frames
        return {
            "generator": {"events": self.a.events, "hosts": self.a.hosts,
                          "seed": self.a.seed, "format": self.a.format,
                          "malformed": self.a.malformed,
                          "start": fmt_out_time(self.start),
                          "rate": self.a.rate, "jitter_ms": self.a.jitter_ms,
                          "empty_computer_host":
                              self.a.empty_computer_host or None,
                          "scenarios": dict(sorted(self.stats.items()))},
            "events": total_frames,
            "accepted": accepted,
            "rejected": rejected,
            "rejected_by_reason": dict(sorted(rejected_by_reason.items())),
            "partitions": len(days),
            "partitions_hour": len(hours),
            "watermark": fmt_out_time(self.watermark),
            "split_time": fmt_out_time(self.split_time),
            "hosts": [h.name for h in self.hosts],
            "connections": out_conns,
            "failures": fails,
            "transfers": transfers,
        }

    # ------------------------------------------------------------ output

    def render_setup(self):
        """Per-connection pre-rendered pieces and per-event-id templates."""
        self.tmpl = {}
        self.baked = {}
        pretty = self.a.format == "pretty"
        for eid in OPCODE:
            self.tmpl[eid] = make_template(eid, pretty)
        r = self.rng
        var_cache = {}

        def texts(x, ipver):
            if ipver == 4:
                return (dotted(x), None)
            v = var_cache.get(x)
            if v is None:
                v = var_cache[x] = (fmt_v6(x), v6_variants(x))
            return v

        for c in self.conns:
            lt, lv = texts(c.lip, c.ipver)
            rt, rv = texts(c.rip, c.ipver)
            ids = EVENT_IDS[(c.proto, c.ipver)]
            others = [p for p in c.host.pids if p != c.pid][:6] or [0]
            # 16 header (process_id, thread_id) choices: the owner ~45%,
            # 0 ~25%, 4 ~15%, another process of the host ~15%.
            hdr = []
            for i in range(16):
                if i < 7:
                    hp = c.pid
                elif i < 11:
                    hp = 0
                elif i < 13:
                    hp = 4
                else:
                    hp = others[r.randrange(len(others))]
                tid = 0 if hp == 0 else 4 * r.randint(1, 4000)
                hdr.append(('"%d"' % hp, '"%d"' % tid))
            r.shuffle(hdr)
            lp, rp = '"%d"' % c.lport, '"%d"' % c.rport
            per_kind = {}
            for k, eid in ids.items():
                if c.proto == UDP and k == RECV:
                    per_kind[k] = (self.tmpl[eid], eid, rt, lt, rp, lp, True)
                else:
                    per_kind[k] = (self.tmpl[eid], eid, lt, rt, lp, rp, False)
            if c.o is not None:
                mss, sack, ts_, ws, win, rws, sws = c.o
                o_s = ('"%d"' % mss, '"%d"' % sack, '"%d"' % ts_,
                       '"%d"' % ws, '"%8d"' % win, '"%d"' % rws,
                       '"%d"' % sws)
                o_n = tuple(str(v) for v in c.o)
            else:
                o_s = o_n = None
            c.r = (c.host.computer, '"%8d"' % c.pid, str(c.pid), hdr,
                   per_kind, lv, rv, o_s, o_n)

    def render_event(self, ev, rnd, cache=_SEC_CACHE):
        """One event as JSON text (template based: this is the hot path)."""
        _, t, c, kind, size = ev
        sec = t // TICKS
        ts = "%s.%07d00+00:00" % (cache.get(sec) or _sec_text(sec),
                                  t - sec * TICKS)
        x = rnd()
        if kind == FAIL:
            eid = c.event_id
            num = x < 0.1
            return self.tmpl[eid] % (
                eid if num else '"%d"' % eid, ts,
                '"0"' if x < 0.7 else '"4"', '"0"', c.host.computer,
                c.fail_proto if num else '"%d"' % c.fail_proto,
                c.fail_code if num else '"%d"' % c.fail_code)
        comp, pid_s, pid_n, hdr, per_kind, lv, rv, o_s, o_n = c.r
        # header pid: the owner, 0, 4, or another process of the host
        hp, tid = hdr[int(x * 7919.0) & 15]
        if x >= 0.1 and (x <= 0.8 or (lv is None and rv is None)):
            # The common case: string fields, canonical addresses.  The
            # template with this connection's constant fields filled in
            # is kept while the connection is active.
            baked = self.baked.get((c, kind))
            if baked is None:
                baked = self.bake(c, kind)
            if kind == SEND and c.proto == TCP:
                st = '" %7d"' % ((t // MS) % 10000000)
                return baked % (ts, hp, tid, '"%8d"' % size, st, st)
            return baked % (ts, hp, tid, '"%8d"' % size)
        tmpl, eid, saddr, daddr, sport, dport, recv_udp = per_kind[kind]
        if x > 0.8:
            # now and then a non-canonical spelling of an IPv6 address
            if lv is not None:
                v = lv[int(x * 1e6) % len(lv)]
                if recv_udp:
                    daddr = v
                else:
                    saddr = v
            if rv is not None and x > 0.9:
                v = rv[int(x * 1e7) % len(rv)]
                if recv_udp:
                    saddr = v
                else:
                    daddr = v
        if x < 0.1:
            # some numeric fields as JSON numbers
            z = int(x * 1e7)
            pid = pid_n if z & 1 else pid_s
            sz = str(size) if z & 2 else '"%8d"' % size
            if z & 4:
                sport, dport = sport[1:-1], dport[1:-1]
            eidt = str(eid) if z & 8 else '"%d"' % eid
            if z & 16:
                hp, tid = hp[1:-1], tid[1:-1]
            seq = "0" if z & 32 else '"       0"'
            opts = o_n
        else:
            pid, sz, eidt = pid_s, '"%8d"' % size, '"%d"' % eid
            seq = '"       0"'
            opts = o_s
        if kind == SEND and not recv_udp and c.proto == TCP:
            st = '" %7d"' % ((t // MS) % 10000000)
            return tmpl % (eidt, ts, hp, tid, comp, pid, sz, daddr, saddr,
                           dport, sport, st, st, seq, seq)
        if kind == CONNECT or kind == ACCEPT:
            return tmpl % ((eidt, ts, hp, tid, comp, pid, sz, daddr, saddr,
                            dport, sport) + opts + (seq, seq))
        return tmpl % (eidt, ts, hp, tid, comp, pid, sz, daddr, saddr, dport,
                       sport, seq, seq)

    def bake(self, c, kind):
        """c's template for kind with all but time, header pid/thread,
        size (and a TCP send's startime/endtime) filled in."""
        if len(self.baked) > 50000:
            self.baked.clear()
        comp, pid_s, pid_n, hdr, per_kind, lv, rv, o_s, o_n = c.r
        tmpl, eid, saddr, daddr, sport, dport, recv_udp = per_kind[kind]
        if kind == SEND and c.proto == TCP:
            extra = ("%s", "%s")
        elif kind == CONNECT or kind == ACCEPT:
            extra = o_s
        else:
            extra = ()
        esc = comp.replace("%", "%%")
        b = tmpl % (('"%d"' % eid, "%s", "%s", "%s", esc, pid_s, "%s",
                     daddr, saddr, dport, sport) + extra +
                    ('"       0"', '"       0"'))
        self.baked[(c, kind)] = b
        return b

    def write(self, path):
        """Writes the events (and malformed lines); returns (frames,
        rejected_by_reason)."""
        a, r = self.a, self.rng
        fmt = a.format
        n = len(self.events)
        nbad = int(round(a.malformed * a.events)) if a.malformed > 0 else 0
        reasons, weights = [], []
        for name, w, fmts in MALFORMED_REASONS:
            if fmt in fmts.split() and w > 0:
                reasons.append(name)
                weights.append(w)
        bad = []  # (position: before good event i, reason)
        ntl = min(2, nbad // 50) if nbad else 0
        for _ in range(ntl):
            bad.append((r.randint(0, n), "too_large"))
        for _ in range(nbad - ntl):
            bad.append((r.randint(0, n), r.choices(reasons, weights)[0]))
        # At one position: truncated lines last, so the line after a cut one
        # always begins with '{' (the framer resyncs there).
        order = {"truncated": 1}
        bad.sort(key=lambda b: (b[0], order.get(b[1], 0)))
        by_reason = {}
        rnd = r.random
        sep = "\n" if fmt != "array" else ",\n"
        with open(path, "w", encoding="ascii", newline="\n") as f:
            if fmt == "array":
                f.write("[\n")
            buf = []
            bi = 0
            first = True
            # Process lines (--processes) go before the first event whose
            # emit key is later; the late ones after everything.
            procs, pi = self.proc_lines, 0
            for i in range(n + 1):
                while pi < len(procs) and (i == n or
                                           procs[pi][0] <= self.events[i][0]):
                    buf.append(("" if first or fmt != "array" else ",\n") +
                               procs[pi][1] + ("\n" if fmt != "array" else ""))
                    first = False
                    pi += 1
                while bi < len(bad) and bad[bi][0] == i:
                    reason = bad[bi][1]
                    line = self.malformed(reason, fmt)
                    by_reason[reason] = by_reason.get(reason, 0) + 1
                    if fmt == "array":
                        buf.append(("" if first else ",\n") + line)
                    else:
                        buf.append(line + "\n")
                    first = False
                    bi += 1
                if i == n:
                    break
                line = self.render_event(self.events[i], rnd)
                if fmt == "array":
                    buf.append(("" if first else ",\n") + line)
                else:
                    buf.append(line + "\n")
                first = False
                if len(buf) >= 4096:
                    f.write("".join(buf))
                    buf = []
            f.write("".join(buf))
            if fmt == "array":
                f.write("\n]\n")
        return n + len(bad) + len(procs), by_reason

    def malformed(self, reason, fmt):
        """One bad event text for reason; a made-up event of a made-up
        connection (never one of the real ones)."""
        r = self.rng
        h = self.hosts[r.randrange(len(self.hosts))]
        t = self.start + int(r.random() * self.duration)
        ipver = 4 if reason == "bad_address" else r.choice((4, 6))
        proto = r.choice((TCP, UDP))
        kind = SEND if reason == "bad_size" else r.choice((SEND, RECV))
        eid = EVENT_IDS[(proto, ipver)][kind]
        lip = h.v4 if ipver == 4 else h.v6
        obj = {
            "system": {
                "provider": PROVIDER, "guid": GUID, "event_source_name": "",
                "event_id": str(eid), "version": "0", "level": "4",
                "task": "10" if proto == TCP else "11",
                "opcode": str(OPCODE[eid]),
                "keywords": KEYWORDS_V4 if ipver == 4 else KEYWORDS_V6,
                "time_created": fmt_in_time(t), "event_record_id": 0,
                "correlation": {"ActivityID":
                                "{00000000-0000-0000-0000-000000000000}"},
                "execution": {"process_id": "0", "thread_id": "0"},
                "channel": PROVIDER + "/Analytic", "computer": h.computer,
                "security": {"user_id": ""}},
            "event_data": {
                "PID": "%8d" % r.choice(h.pids), "size": "%8d" % r.randint(1, 900),
                "daddr": fmt_ip(v4("203.0.113.%d" % r.randint(1, 254))
                                if ipver == 4 else v6("2001:db8:dead::%x" %
                                                      r.randint(1, 999)),
                                ipver),
                "saddr": fmt_ip(lip, ipver),
                "dport": "443", "sport": str(self.ephemeral()),
                "seqnum": "       0", "connid": "       0"},
            "message": ""}
        s, ed = obj["system"], obj["event_data"]
        if reason == "bad_json":
            if fmt != "array" and r.random() < 0.5:
                return r.choice((
                    "garbage: ETW session restarted ### %d" % r.randint(0, 1 << 30),
                    "Microsoft-Windows-Kernel-Network trace dropped %d events"
                    % r.randint(1, 99999),
                    "<?xml version=\"1.0\"?> not json at all",
                    "\t\tnull-ish trailer 0x%x" % r.getrandbits(32)))
            return r.choice(('{"system": {"provider": oops}, "event_data": {}}',
                             '{this is not json}',
                             '{"system": {}, "event_data": {},,}',
                             '{"a": 1 "b": 2}'))
        if reason == "missing_system":
            del obj["system"]
        elif reason == "missing_event_data":
            del obj["event_data"]
        elif reason == "unknown_provider":
            # Not Kernel-Process or Sysmon: netwho decodes those now.
            s["provider"] = r.choice(("Microsoft-Windows-Kernel-File",
                                      "Microsoft-Windows-DNS-Client"))
        elif reason == "unknown_event_id":
            s["event_id"] = r.choice(("33", "99", "1", "60"))
        elif reason == "bad_time":
            s["time_created"] = r.choice((
                "yesterday", "2026-13-45T25:61:00.000000000+00:00", "",
                "2026-03-16 00:21", "16/03/2026 00:21:36"))
        elif reason == "bad_pid":
            ed["PID"] = r.choice(("    12ab", "-4", "pid", "99999999999"))
        elif reason == "bad_size":
            ed["size"] = r.choice(("abc", "   12x", "-1", ""))
        elif reason == "bad_address":
            if r.random() < 0.5:
                ed["saddr"] = r.choice(("999.1.1.1", "10.2.10", "hello"))
            else:
                ed["daddr"] = r.choice(("2001:db8::1", "::1", "fe80::1"))
        elif reason == "bad_port":
            if r.random() < 0.5:
                ed["dport"] = "70000"
            else:
                ed["sport"] = r.choice(("65536", "port", "-1"))
        elif reason == "too_large":
            obj["message"] = "x" * (MAX_EVENT_BYTES + 100 * 1024)
        elif reason == "not_object":
            return r.choice(("42", '"text"', "null", "true"))
        text = json.dumps(obj, indent=2 if fmt == "pretty" else None,
                          separators=None if fmt == "pretty" else (",", ":"))
        if reason == "truncated":
            cut = r.randint(1, len(text) - 2)
            text = text[:cut]
        return text


def make_template(eid, pretty):
    """The provider's envelope for eid with %s holes, in argument order:
    event_id, time, process_id, thread_id, computer, then event_data."""
    tcp = eid < 40
    v6_ = eid in (26, 27, 28, 29, 30, 31, 32, 34, 58, 59)
    data = {}
    if eid in (17, 49):
        data = {"Proto": "@@n@@", "FailureCode": "@@n@@"}
    else:
        data = {"PID": "@@n@@", "size": "@@n@@", "daddr": "@@s@@",
                "saddr": "@@s@@", "dport": "@@n@@", "sport": "@@n@@"}
        if eid in (10, 26):
            data["startime"] = "@@n@@"
            data["endtime"] = "@@n@@"
        if eid in (12, 15, 28, 31):
            for k in ("mss", "sackopt", "tsopt", "wsopt", "rcvwin",
                      "rcvwinscale", "sndwinscale"):
                data[k] = "@@n@@"
        data["seqnum"] = "@@n@@"
        data["connid"] = "@@n@@"
    obj = {
        "system": {
            "provider": PROVIDER, "guid": GUID, "event_source_name": "",
            "event_id": "@@n@@", "version": "0", "level": "4",
            "task": "10" if tcp else "11", "opcode": str(OPCODE[eid]),
            "keywords": KEYWORDS_V6 if v6_ else KEYWORDS_V4,
            "time_created": "@@s@@", "event_record_id": 0,
            "correlation": {"ActivityID":
                            "{00000000-0000-0000-0000-000000000000}"},
            "execution": {"process_id": "@@n@@", "thread_id": "@@n@@"},
            "channel": PROVIDER + "/Analytic", "computer": "@@s@@",
            "security": {"user_id": ""}},
        "event_data": data,
        "message": ""}
    text = json.dumps(obj, indent=2 if pretty else None,
                      separators=None if pretty else (",", ":"))
    assert "%" not in text
    return text.replace('"@@n@@"', "%s").replace("@@s@@", "%s")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--events", type=int, required=True,
                   help="good events to write (exact)")
    p.add_argument("--hosts", type=int, required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--out", required=True, help="output file ('-': stdout)")
    p.add_argument("--expect", help="write the expected answers here")
    p.add_argument("--format", choices=("ndjson", "pretty", "array"),
                   default="ndjson")
    p.add_argument("--malformed", type=float, default=0.0,
                   help="extra bad lines, as a fraction of --events")
    p.add_argument("--start", default="2026-03-16T00:00:00Z",
                   help="time of the first event (RFC 3339)")
    p.add_argument("--rate", type=float, default=5.0,
                   help="events per second per host (sets the duration)")
    p.add_argument("--jitter-ms", type=float, default=500.0,
                   help="events are out of order by less than this")
    p.add_argument("--empty-computer-host",
                   help="host 0 is NAME but writes system.computer \"\" "
                        "(ingest it with --host NAME)")
    p.add_argument("--processes", type=float, default=0.0,
                   help="add Kernel-Process and Sysmon 1/3/5 events for "
                        "this fraction of (host, pid) pairs, with the "
                        "expected process of every connection "
                        "(gen_process.py); 0: none")
    p.add_argument("--transfer-sample", type=int, default=60,
                   help="connections whose transfers --expect lists")
    a = p.parse_args(argv)
    if a.events < 1 or a.hosts < 1 or a.rate <= 0:
        p.error("--events, --hosts and --rate must be positive")
    if not 0 <= a.jitter_ms < REORDER_WINDOW / MS:
        p.error("--jitter-ms must be in [0, 3000): the reorder window is 3 s")
    if not 0 <= a.malformed <= 1:
        p.error("--malformed must be in [0, 1]")
    try:
        parse_rfc3339(a.start)
    except ValueError as e:
        p.error(str(e))
    # Millions of small tuples, no reference cycles: the cyclic garbage
    # collector would only rescan them over and over (a third of the time).
    gc.disable()
    t0 = time.time()
    g = Gen(a)
    g.generate()
    g.fold()
    if a.processes > 0:
        import gen_process
        g.proc_lines = gen_process.add(g, a.processes, fmt_out_time,
                                       fmt_in_time, fmt_ip, Conn, CONNECT)
    t1 = time.time()
    g.render_setup()
    out = "/dev/stdout" if a.out == "-" else a.out
    frames, by_reason = g.write(out)
    t2 = time.time()
    if a.expect:
        exp = g.expect(frames, by_reason)
        with open(a.expect, "w") as f:
            json.dump(exp, f, indent=1)
            f.write("\n")
    t3 = time.time()
    print("gen.py: %d events (%d frames, %d bad), %d connections, %d "
          "failures, %d hosts; generate %.1fs, write %.1fs, expect %.1fs; "
          "%.0f events/s" % (len(g.events), frames,
                             frames - len(g.events) - len(g.proc_lines),
                             len(g.conns), len(g.failures), a.hosts, t1 - t0,
                             t2 - t1, t3 - t2,
                             len(g.events) / max(t3 - t0, 1e-9)),
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
