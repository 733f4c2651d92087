"""
gen_process.py -- process events for gen.py --processes F, and the exact
process netwho must attribute to every connection (include/netwho/
procstore.h).

For a fraction F of the (host, pid) pairs the generated connections use,
the pid's connections (by first_seen) are cut at gaps of more than 4 s,
at random, into the lifetimes of different processes that held the pid one
after the other -- PID reuse -- each described by:
  - Kernel-Process ProcessStart (1), or ProcessRundown (15) at the trace
    start when it was created before the trace, and ProcessStop (2) when
    the next holder takes the pid (the last holder keeps running);
    its image is a \\Device\\HarddiskVolume2\\... path, the stop's is the
    short AnsiString name, which must never replace it;
  - or Sysmon 1 / Sysmon 5 in nxlog's flat shape (ProcessId only in the
    Message text, C:\\ paths, user, command line, ProcessGuid);
  - some holders only by a ProcessStop (the start was lost): image is the
    short name, nothing else known.
Edge cases put on purpose: a holder created 2 s after its pid's first
connection (that connection: null), a holder that exited before its last
connection (null), and pairs with no process event at all (null).  About
30% of the process events are written at the end of the stream, after the
connections they explain.

Sysmon 3: for each host a few extra processes (new pids) make TCP
connections seen only as Sysmon 3 lines (connect, attempted, no data);
their process comes from the Sysmon 3 itself (image, user, guid, creation
second from the guid) and, for some, from a Sysmon 1 too.

Every expected process is computed by the lookup rule itself (the newest
holder created at or before first_seen + 1 s that had not exited before
first_seen), and the construction keeps 2 s between any connection and a
foreign creation or exit, so the rule's skew never decides.
"""

import hashlib
import json
import random

TICKS = 10_000_000
MS = 10_000
SKEW = TICKS                      # procstore.h NW_PROC_CLOCK_SKEW
VOL = "\\Device\\HarddiskVolume2"
SYSMON_HDR = {"Channel": "Microsoft-Windows-Sysmon/Operational",
              "SourceName": "Microsoft-Windows-Sysmon",
              "ProviderGuid": "{5770385F-C22A-43E0-BF4C-06F5698FFBD9}",
              "ProcessID": 2644, "host": "collector.example",
              "type": "nxlog"}


def _kp_time(t, fmt_out_time):
    """Kernel-Process CreateTime/ExitTime: 9 digits and Z."""
    return fmt_out_time(t)[:-1] + "00Z"


def _sysmon_time(t, fmt_out_time):
    s = fmt_out_time(t)
    return s[:10] + " " + s[11:23]


class Holder:
    __slots__ = ("host", "pid", "create", "exit", "kind", "image", "user",
                 "cmd", "guid", "parent", "seq")

    def __init__(self, host, pid, create, kind):
        self.host, self.pid, self.create, self.kind = host, pid, create, kind
        self.exit = None
        self.image = self.user = self.cmd = self.guid = None
        self.parent = None          # (pid, image) or None
        self.seq = 0                # ProcessSequenceNumber, 0: none


def _guid(r, create_sec, pid):
    return "{%08X-%04X-%04X-%04X-%012X}" % (
        r.getrandbits(32), create_sec & 0xFFFF, create_sec >> 16,
        pid & 0xFFFF, r.getrandbits(48))


def derived_guid(host, create, seq, pid):
    """netwho's ProcessGuid for a process no Sysmon event named
    (include/netwho/procguid.h), worked out here independently: SHA-1 of
    the lower-case host for the machine part, creation seconds split
    low/high, the start key (ProcessSequenceNumber, else 0xFF, the
    sub-second ticks and the pid) little-endian."""
    m = int.from_bytes(hashlib.sha1(host.lower().encode()).digest()[:4], "big")
    t = create // TICKS
    key = seq if seq else (0xFF << 56 | (create % TICKS) << 32 | pid)
    k = key.to_bytes(8, "little")
    return "{%08X-%04X-%04X-%s-%s}" % (m, t & 0xFFFF, t >> 16,
                                       k[:2].hex().upper(), k[2:].hex().upper())


def add(g, fraction, fmt_out_time, fmt_in_time, fmt_ip, Conn, CONNECT):
    """Adds holders for g's connections, sets every c.exp["process"], adds
    Sysmon 3 connections to g.conns.  Returns [(emit_key, line)] of the
    process lines to write, sorted (keys past the last event: written
    last)."""
    r = random.Random(g.a.seed + 7)
    start, wm = g.start, g.watermark
    lines = []
    late_key = wm + 10 * TICKS
    stats = {"process_holders": 0, "process_pairs_unknown": 0,
             "process_sysmon3_connections": 0, "process_events": 0,
             "process_events_late": 0}

    by_pair = {}
    for c in g.conns:
        c.exp["process"] = None
        by_pair.setdefault((c.host.idx, c.pid), []).append(c)
    hosts = {h.idx: h for h in g.hosts}
    used = {}
    for (hi, pid) in by_pair:
        used.setdefault(hi, set()).add(pid)

    def emit(key, obj):
        late = r.random() < 0.3
        stats["process_events"] += 1
        if late:
            stats["process_events_late"] += 1
        lines.append((late_key + len(lines) if late else key,
                      json.dumps(obj, separators=(",", ":"))))

    def envelope(h, eid, t, data):
        return {"system": {"provider": "Microsoft-Windows-Kernel-Process",
                           "guid": "{22fb2cd6-0e7b-422b-a0c7-2fad1fd0e716}",
                           "event_id": str(eid), "version": "3",
                           "time_created": fmt_in_time(t),
                           "execution": {"process_id": "4",
                                         "thread_id": "88"},
                           "channel": "Microsoft-Windows-Kernel-Process/"
                                      "Analytic",
                           "computer": h.computer},
                "event_data": data, "message": ""}

    def sysmon(h, eid, t, fields, title):
        msg = title + ":\r\nRuleName: \r\n" + "\r\n".join(
            "%s: %s" % kv for kv in fields.items())
        o = dict(SYSMON_HDR)
        o.update({"EventID": eid, "Hostname": h.computer,
                  "UtcTime": _sysmon_time(t, fmt_out_time), "Message": msg})
        # nxlog: ProcessId is only in Message; empty fields are absent.
        o.update({k: str(v) for k, v in fields.items()
                  if k not in ("ProcessId", "UtcTime") and v != ""})
        return o

    # The parent of every holder of a host: running since long before.
    parents = {}
    for hi, h in hosts.items():
        ppid = 600
        while ppid in used.get(hi, ()):
            ppid += 4
        used.setdefault(hi, set()).add(ppid)
        create = start - 86400 * TICKS + r.randrange(TICKS)
        parents[hi] = (ppid, VOL + "\\Windows\\System32\\services.exe")
        emit(start, envelope(h, 15, start, {
            "ProcessID": "%8d" % ppid, "ProcessSequenceNumber": "%d" % ppid,
            "CreateTime": _kp_time(create, fmt_out_time),
            "ParentProcessID": "%8d" % 4, "SessionID": "%8d" % 0,
            "ImageName": parents[hi][1]}))

    def describe(h, hd):
        """Events of one holder (its kind decides which)."""
        ppid, pimage = parents[h.idx]
        seq = r.randrange(1, 1 << 40)
        if hd.kind in ("kernel", "stop_only"):
            hd.seq = seq
        if hd.kind == "kernel":
            hd.image = VOL + "\\Program Files\\App\\app%d_%x.exe" % (
                hd.pid, r.getrandbits(16))
            hd.parent = (ppid, pimage)
            rundown = hd.create < start
            t = start if rundown else hd.create
            emit(t, envelope(h, 15 if rundown else 1, t, {
                "ProcessID": "%8d" % hd.pid,
                "ProcessSequenceNumber": "%d" % seq,
                "CreateTime": _kp_time(hd.create, fmt_out_time),
                "ParentProcessID": "%8d" % ppid, "SessionID": "%8d" % 1,
                "ImageName": hd.image}))
        if hd.kind in ("kernel", "stop_only") and hd.exit is not None:
            short = "app%d.exe" % hd.pid
            if hd.kind == "stop_only":
                hd.image = short
            emit(hd.exit, envelope(h, 2, hd.exit, {
                "ProcessID": "%8d" % hd.pid,
                "ProcessSequenceNumber": "%d" % seq,
                "CreateTime": _kp_time(hd.create, fmt_out_time),
                "ExitTime": _kp_time(hd.exit, fmt_out_time),
                "ExitCode": "0", "ImageName": short[:15]}))
        if hd.kind == "sysmon":
            hd.create -= hd.create % MS          # UtcTime: milliseconds
            hd.image = "C:\\Tools\\tool%d_%x.exe" % (hd.pid,
                                                    r.getrandbits(16))
            hd.user = "CORP\\svc%d" % r.randrange(100)
            hd.cmd = "\"%s\" --run %d" % (hd.image, r.randrange(1000))
            hd.guid = _guid(r, hd.create // TICKS, hd.pid)
            hd.parent = (ppid, "C:\\Windows\\System32\\services.exe")
            emit(hd.create, sysmon(h, 1, hd.create, {
                "UtcTime": _sysmon_time(hd.create, fmt_out_time),
                "ProcessGuid": hd.guid, "ProcessId": hd.pid,
                "Image": hd.image, "CommandLine": hd.cmd, "User": hd.user,
                "ParentProcessId": ppid, "ParentImage": hd.parent[1]},
                "Process Create"))
            if hd.exit is not None:
                hd.exit -= hd.exit % MS
                emit(hd.exit, sysmon(h, 5, hd.exit, {
                    "UtcTime": _sysmon_time(hd.exit, fmt_out_time),
                    "ProcessGuid": hd.guid, "ProcessId": hd.pid,
                    "Image": hd.image}, "Process terminated"))

    def expected(hd):
        return {"image": hd.image,
                "name": hd.image.replace("/", "\\").rsplit("\\", 1)[-1],
                "create_time": fmt_out_time(hd.create),
                "parent_pid": hd.parent[0] if hd.parent else None,
                "parent_image": hd.parent[1] if hd.parent else None,
                "user": hd.user, "command_line": hd.cmd,
                "guid": hd.guid or derived_guid(hd.host.name, hd.create,
                                                hd.seq, hd.pid)}

    def attribute(conns, holders):
        for c in conns:
            t = c.first
            best = None
            for hd in holders:
                if hd.create <= t + SKEW and (best is None or
                                              hd.create > best.create):
                    best = hd
            if best is not None and (best.exit is None or best.exit >= t):
                c.exp["process"] = expected(best)

    for (hi, pid), conns in sorted(by_pair.items()):
        h = hosts[hi]
        if r.random() >= fraction:
            stats["process_pairs_unknown"] += 1
            continue
        conns.sort(key=lambda c: c.first)
        fs = [c.first for c in conns]
        segs, cur = [], [0]
        for i in range(1, len(fs)):
            if fs[i] - fs[i - 1] > 4 * TICKS and r.random() < 0.5:
                segs.append(cur)
                cur = []
            cur.append(i)
        segs.append(cur)
        holders = []
        for si, seg in enumerate(segs):
            first, last = fs[seg[0]], fs[seg[-1]]
            if si == 0:
                create = first - r.randrange(TICKS, 600 * TICKS)
                if len(seg) > 1 and fs[seg[1]] - first > 4 * TICKS and \
                        r.random() < 0.15:
                    create = first + 2 * TICKS       # first conn: null
            else:
                prev_last = fs[segs[si - 1][-1]]
                create = prev_last + (first - prev_last) // 2
            kind = r.choices(("kernel", "sysmon", "stop_only"),
                             (0.65, 0.3, 0.05))[0]
            hd = Holder(h, pid, create, kind)
            if si + 1 < len(segs):
                nxt = fs[segs[si + 1][0]]
                hd.exit = last + (nxt - last) // 4
                if len(seg) > 1 and last - fs[seg[-2]] > 4 * TICKS and \
                        r.random() < 0.15:
                    hd.exit = fs[seg[-2]] + TICKS    # last conn: null
            elif kind == "stop_only":
                hd.exit = last + TICKS
            if kind == "stop_only" and hd.exit is None:
                hd.kind = kind = "kernel"
            describe(h, hd)
            holders.append(hd)
            stats["process_holders"] += 1
        attribute(conns, holders)

    # Sysmon 3: new processes whose connections only Sysmon saw.
    for hi, h in sorted(hosts.items()):
        for k in range(3):
            pid = 5000 + 4 * k
            while pid in used[hi]:
                pid += 4
            used[hi].add(pid)
            t0 = start + r.randrange(max(1, (wm - start) // 2))
            create = t0 - t0 % MS
            hd = Holder(h, pid, create, "sysmon3")
            hd.image = "C:\\Users\\Public\\agent%d.exe" % k
            hd.user = "CORP\\user%d" % r.randrange(100)
            hd.guid = _guid(r, create // TICKS, pid)
            if r.random() < 0.5:
                hd.kind = "sysmon"
                hd.parent = parents[hi][0], "C:\\Windows\\explorer.exe"
                hd.cmd = "agent%d.exe" % k
                emit(create, sysmon(h, 1, create, {
                    "UtcTime": _sysmon_time(create, fmt_out_time),
                    "ProcessGuid": hd.guid, "ProcessId": pid,
                    "Image": hd.image, "CommandLine": hd.cmd,
                    "User": hd.user, "ParentProcessId": hd.parent[0],
                    "ParentImage": hd.parent[1]}, "Process Create"))
            else:
                hd.create = (create // TICKS) * TICKS   # from the guid
            for j in range(2):
                t = create + (3 + 5 * j) * TICKS + r.randrange(TICKS)
                t -= t % MS
                lport = 40000 + 16 * k + j
                lip, rip = h.v4, (0xFFFF << 32) | (198 << 24) | (51 << 16) | \
                    (100 << 8) | (1 + r.randrange(250))
                c = Conn(h, 6, 4, lip, lport, rip, 443, pid, None)
                c.ev = [(t, CONNECT, 0)]
                c.first = t
                c.buckets = {}
                c.exp = {
                    "host": h.name, "pid": pid, "proto": "tcp",
                    "ip_version": 4, "direction": "outbound",
                    "local_ip": fmt_ip(lip, 4), "local_port": lport,
                    "remote_ip": fmt_ip(rip, 4), "remote_port": 443,
                    "first_seen": fmt_out_time(t),
                    "last_seen": fmt_out_time(t), "state": "attempted",
                    "bytes_sent": 0, "bytes_received": 0,
                    "bytes_retransmitted": 0, "bytes_copied": 0,
                    "send_events": 0, "receive_events": 0,
                    "retransmit_events": 0, "copy_events": 0,
                    "reconnects": 0, "tcp_options": None,
                    "process": expected(hd)}
                g.conns.append(c)
                stats["process_sysmon3_connections"] += 1
                o = sysmon(h, 3, t, {
                    "UtcTime": _sysmon_time(t, fmt_out_time),
                    "ProcessGuid": hd.guid, "ProcessId": pid,
                    "Image": hd.image, "User": hd.user, "Protocol": "tcp",
                    "Initiated": "true", "SourceIsIpv6": "false",
                    "SourceIp": fmt_ip(lip, 4), "SourceHostname": "",
                    "SourcePort": lport, "DestinationIsIpv6": "false",
                    "DestinationIp": fmt_ip(rip, 4),
                    "DestinationHostname": "", "DestinationPort": 443},
                    "Network connection detected")
                lines.append((t, json.dumps(o, separators=(",", ":"))))
    for k, v in stats.items():
        g.stats[k] = v
    lines.sort(key=lambda x: x[0])
    return lines
