#!/usr/bin/env python3
"""Process attribution end to end: a generated trace with PID reuse,
process events that arrive after the connections they explain (a second
ingest), connections whose pid no process event names, Kernel-Process
start/stop/rundown and Sysmon 1/3 -- every connection's "process" of
`netwho query` must be exactly the expected one (or null), and
--process, CSV and GET /api/v1/processes/{pid}/connections must agree."""
import argparse
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import netwho_e2e as E  # noqa: E402
from netwho_e2e import check  # noqa: E402

HOST = "PROCHOST"
SEC = E.TICKS
T0 = E.parse_time("2026-03-16T08:00:00Z")
VOL = "\\Device\\HarddiskVolume3"


def ft(t):
    """Ticks -> Kernel-Process's CreateTime text (9 digits, Z)."""
    s = E.fmt_time(t)
    return s[:-1] + "00Z"


def envelope(provider, eid, t, data):
    return {"system": {"provider": provider, "event_id": str(eid),
                       "time_created": ft(t)[:-1] + "+00:00",
                       "computer": HOST,
                       "execution": {"process_id": "4", "thread_id": "8"}},
            "event_data": data, "message": ""}


def kp(eid, t, pid, create, image, ppid=None, exit_t=None, seq=None):
    d = {"ProcessID": "%8d" % pid, "CreateTime": ft(create),
         "ImageName": image}
    if ppid is not None:
        d["ParentProcessID"] = "%8d" % ppid
        d["SessionID"] = "       0"
    if seq is not None:
        d["ProcessSequenceNumber"] = str(seq)
    if exit_t is not None:
        d["ExitTime"] = ft(exit_t)
        d["ExitCode"] = "0"
        d["ImageName"] = image.rsplit("\\", 1)[-1][:15]   # AnsiString
    return envelope("Microsoft-Windows-Kernel-Process", eid, t, d)


def kn(eid, t, pid, sport, dport):
    return envelope("Microsoft-Windows-Kernel-Network", eid, t, {
        "PID": "%8d" % pid, "size": "       0", "daddr": "10.9.9.9",
        "saddr": "10.1.1.1", "dport": str(dport), "sport": str(sport),
        "seqnum": "0", "connid": "0"})


def sysmon_time(t):
    s = E.fmt_time(t)
    return s[:10] + " " + s[11:23]


def guid_for(pid, create):
    secs = create // SEC
    return "{AB12CD34-%04X-%04X-%04X-0000000009%02X}" % (
        secs & 0xFFFF, secs >> 16, pid & 0xFFFF, pid & 0xFF)


def derived_guid(pid, create, seq):
    """The ProcessGuid netwho derives for a process no Sysmon event named
    (include/netwho/procguid.h): SHA-1 of the lower-case host, creation
    seconds low/high, the start key (the sequence number) little-endian."""
    m = int.from_bytes(hashlib.sha1(HOST.lower().encode()).digest()[:4], "big")
    secs = create // SEC
    k = seq.to_bytes(8, "little")
    return "{%08X-%04X-%04X-%s-%s}" % (m, secs & 0xFFFF, secs >> 16,
                                       k[:2].hex().upper(), k[2:].hex().upper())


def sysmon1(pid, create, image, cmd, user, ppid, pimage):
    g = guid_for(pid, create)
    return {"SourceName": "Microsoft-Windows-Sysmon", "EventID": 1,
            "Hostname": HOST, "UtcTime": sysmon_time(create),
            "ProcessGuid": g, "ProcessId": str(pid), "Image": image,
            "CommandLine": cmd, "User": user, "ParentProcessId": str(ppid),
            "ParentImage": pimage, "RuleName": "-",
            "Message": "Process Create:\r\nRuleName: -\r\nUtcTime: %s" %
            sysmon_time(create)}


def sysmon3(t, pid, create, image, user, sport, dport):
    """nxlog style: ProcessId only in Message, empty fields absent."""
    g = guid_for(pid, create)
    msg = ("Network connection detected:\r\nRuleName: \r\nUtcTime: %s\r\n"
           "ProcessGuid: %s\r\nProcessId: %d\r\nImage: %s\r\nUser: %s\r\n"
           "Protocol: tcp\r\nInitiated: true\r\nSourceIsIpv6: false\r\n"
           "SourceIp: 10.1.1.2\r\nSourceHostname: \r\nSourcePort: %d\r\n"
           "DestinationIsIpv6: false\r\nDestinationIp: 10.9.9.8\r\n"
           "DestinationPort: %d" % (sysmon_time(t), g, pid, image, user,
                                    sport, dport))
    return {"Channel": "Microsoft-Windows-Sysmon/Operational",
            "SourceName": "Microsoft-Windows-Sysmon", "EventID": 3,
            "ProcessID": 2644, "Hostname": HOST, "host": "collector",
            "UtcTime": sysmon_time(t), "ProcessGuid": g, "Image": image,
            "User": user, "Protocol": "tcp", "Initiated": "true",
            "SourceIp": "10.1.1.2", "SourcePort": str(sport),
            "DestinationIp": "10.9.9.8", "DestinationPort": str(dport),
            "Message": msg}


def generate(seed):
    """(events of file 1, events of file 2, expected {local_port: process})."""
    r = random.Random(seed)
    f1, f2, expect = [], [], {}
    port = [20000]

    def conn(t, pid, want, out=f1):
        port[0] += 1
        out.append(kn(12, t, pid, port[0], 443))
        out.append(kn(13, t + SEC // 10, pid, port[0], 443))
        expect[port[0]] = want

    parent = (500, T0 - 86400 * SEC, VOL + "\\Windows\\explorer.exe")
    f1.append(kp(15, T0, parent[0], parent[1], parent[2], ppid=4))
    for pid in range(1000, 1040, 4):
        t = T0 + r.randrange(0, 60) * SEC + r.randrange(SEC)
        for k in range(r.randrange(2, 4)):
            create = t
            life = r.randrange(60, 300) * SEC
            last = k == 2 or r.random() < 0.2
            exit_t = None if last else create + life
            image = VOL + "\\Apps\\app%d_%d.exe" % (pid, k)
            want = {"image": image, "name": "app%d_%d.exe" % (pid, k),
                    "create_time": E.fmt_time(create), "parent_pid": 500,
                    "parent_image": parent[2], "user": None,
                    "command_line": None,
                    "guid": derived_guid(pid, create, pid * 10 + k)}
            late = r.random() < 0.3           # arrives in the second file
            first = k == 0 and r.random() < 0.3   # running at trace start
            ev = kp(15 if first else 1, T0 if first else create, pid, create,
                    image, ppid=500, seq=pid * 10 + k)
            (f2 if late else f1).append(ev)
            for _ in range(r.randrange(1, 4)):
                span = (exit_t - create) if exit_t else life
                ct = create + SEC + r.randrange(span - 3 * SEC)
                conn(ct, pid, want)
            if exit_t is not None:
                (f2 if late else f1).append(
                    kp(2, exit_t, pid, create, image, exit_t=exit_t,
                       seq=pid * 10 + k))
                # the pid is free for a while: a connection then is unknown
                conn(exit_t + 2 * SEC, pid, None)
                t = exit_t + r.randrange(10, 30) * SEC
            else:
                break
    for pid in range(2000, 2005):        # no process event at all
        conn(T0 + r.randrange(1, 300) * SEC, pid, None)
    # Sysmon-only processes: Sysmon 1 (sometimes late) and Sysmon 3 lines.
    for i, pid in enumerate(range(3000, 3006)):
        create = T0 + (100 + 50 * i) * SEC + 1230000
        image = "C:\\Tools\\tool%d.exe" % i
        user = "CORP\\user%d" % i
        s1 = sysmon1(pid, create, image, "tool%d.exe --go" % i, user, 500,
                     parent[2])
        (f2 if i % 2 else f1).append(s1)
        want = {"image": image, "name": "tool%d.exe" % i,
                "create_time": E.fmt_time(create), "parent_pid": 500,
                "parent_image": parent[2], "user": user,
                "command_line": "tool%d.exe --go" % i,
                "guid": guid_for(pid, create)}
        for j in range(2):
            port[0] += 1
            f1.append(sysmon3(create + (5 + j) * SEC, pid, create, image,
                              user, port[0], 443))
            expect[port[0]] = want
    f1.sort(key=lambda o: o["system"]["time_created"] if "system" in o
            else o["UtcTime"].replace(" ", "T"))
    return f1, f2, expect


def write(path, events):
    with open(path, "w") as f:
        for e in events:
            f.write(json.dumps(e) + "\n")


def netwho(ctx, *args):
    return E.run([os.path.join(ctx.bin, "netwho")] + list(args))


def query(ctx, *args):
    res = netwho(ctx, "query", "--store", ctx.store, "-o", "json", *args)
    check(res.rc == 0, "query failed: %s" % res.err)
    return json.loads(res.out)


def compare(rows, expect, what):
    bad = []
    for r in rows:
        want = expect.get(r["local_port"], "missing")
        if r["process"] != want:
            bad.append((r["local_port"], r["pid"], r["first_seen"],
                        r["process"], want))
    check(not bad, "%s: %d of %d connections attributed wrongly, e.g. %s" %
          (what, len(bad), len(rows), bad[:3]))


def start_netwhod(a, tmp, name, store, *extra, stdin=None):
    log = open(os.path.join(tmp, name + ".log"), "w+b")
    srv = subprocess.Popen([os.path.join(a.bin_dir, "netwhod"), "--store",
                            store, "--listen", "127.0.0.1:0"] + list(extra),
                           stdin=stdin if stdin is not None else subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=log)
    srv.log = log
    deadline = time.time() + 20
    while time.time() < deadline:
        log.seek(0)
        for line in log.read().decode("utf-8", "replace").splitlines():
            if "listening on http://127.0.0.1:" in line:
                return srv, int(line.rsplit(":", 1)[1].strip("/"))
        check(srv.poll() is None, "netwhod exited")
        time.sleep(0.05)
    srv.terminate()
    raise E.Failed("netwhod reported no port")


def stop_netwhod(srv):
    srv.terminate()
    rc = srv.wait(timeout=30)
    srv.log.seek(0)
    text = srv.log.read().decode("utf-8", "replace")
    check(rc == 0, "netwhod exit %s: %s" % (rc, text[-800:]))
    for bad in ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer"):
        check(bad not in text, "sanitizer report: %s" % text[-2000:])


def other_ingest_paths(a, tmp, p1, p2, expect):
    """POST /api/v1/events (two requests) and netwhod --stdin."""
    store = os.path.join(tmp, "post-store")
    srv, port = start_netwhod(a, tmp, "post", store)
    def etag():
        url = "http://127.0.0.1:%d/api/v1/connections?format=ndjson" % port
        with urllib.request.urlopen(url, timeout=30) as resp:
            resp.read()
            return resp.headers.get("ETag")

    try:
        tags = []
        for path in (p1, p2):
            if path is p2:
                tags.append(etag())
            with open(path, "rb") as f:
                req = urllib.request.Request(
                    "http://127.0.0.1:%d/api/v1/events" % port, data=f.read(),
                    method="POST", headers={"Content-Type": "application/x-ndjson"})
            with urllib.request.urlopen(req, timeout=60) as resp:
                body = json.loads(resp.read())
                check(body.get("rejected", 0) == 0, "POST rejected: %s" % body)
        with urllib.request.urlopen("http://127.0.0.1:%d/api/v1/connections"
                                    "?limit=10000" % port, timeout=30) as resp:
            compare(json.loads(resp.read())["data"], expect, "POST /api/v1/events")
        # The second body holds process events only: no connection row and
        # no catalog count changed, but answers did -- so must the ETag.
        tags.append(etag())
        check(tags[0] and tags[1] and tags[0] != tags[1],
              "streamed ETag unchanged by process events: %s" % tags)
    finally:
        stop_netwhod(srv)
    print("ok   POST /api/v1/events carries process events")

    store = os.path.join(tmp, "stdin-store")
    both = os.path.join(tmp, "both.ndjson")
    with open(both, "wb") as out:
        for path in (p1, p2):
            with open(path, "rb") as f:
                out.write(f.read())
    with open(both, "rb") as f:
        srv, port = start_netwhod(a, tmp, "stdin", store, "--stdin", stdin=f)
        time.sleep(5)
        stop_netwhod(srv)
    ctx = argparse.Namespace(bin=a.bin_dir, store=store)
    compare(query(ctx), expect, "netwhod --stdin")
    print("ok   netwhod --stdin carries process events")


def generated(a, tmp):
    """gen.py --processes: every connection, process included, must be
    exactly the generator's expected row (ids aside)."""
    src = a.source_dir or os.path.join(os.path.dirname(
        os.path.abspath(__file__)), "..", "..")
    data, exp_path = os.path.join(tmp, "gen.ndjson"), os.path.join(tmp, "gen.json")
    res = E.run([sys.executable, os.path.join(src, "bench", "gen.py"),
                 "--events", "30000", "--hosts", "5", "--seed", "11",
                 "--processes", "0.8", "--malformed", "0.01",
                 "--empty-computer-host", "NOCOMPUTER",
                 "--out", data, "--expect", exp_path])
    check(res.rc == 0, "gen.py failed: %s" % res.err)
    with open(exp_path) as f:
        exp = json.load(f)
    store = os.path.join(tmp, "gen-store")
    ctx = argparse.Namespace(bin=a.bin_dir, store=store)
    res = netwho(ctx, "ingest", "--store", store, "--quiet", "--host",
                 "NOCOMPUTER", data)
    check(res.rc == 0, "ingest: %s" % res.err)
    summary = json.loads(res.out)
    for k in ("events", "accepted", "rejected", "rejected_by_reason"):
        check(summary[k] == exp[k], "ingest %s %s, expected %s" % (
            k, summary[k], exp[k]))
    rows = query(ctx)
    diff = E.multiset_diff(rows, exp["connections"])
    check(not diff, "connections differ from gen.py's: %s" % (diff,))
    sc = exp["generator"]["scenarios"]
    n = sum(1 for c in exp["connections"] if c["process"])
    print("ok   gen.py --processes: %d connections, %d attributed, %d "
          "holders, %d process events (%d late), %d Sysmon 3 connections" % (
              len(rows), n, sc["process_holders"], sc["process_events"],
              sc["process_events_late"], sc["process_sysmon3_connections"]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin-dir", required=True)
    ap.add_argument("--source-dir")
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="netwho-proc-")
    ctx = argparse.Namespace(bin=a.bin_dir, store=os.path.join(tmp, "store"))
    failed = 0
    srv = None
    try:
        f1, f2, expect = generate(4)
        p1, p2 = os.path.join(tmp, "one.ndjson"), os.path.join(tmp, "two.ndjson")
        write(p1, f1)
        write(p2, f2)
        res = netwho(ctx, "ingest", "--store", ctx.store, "--quiet", p1)
        check(res.rc == 0, "ingest 1: %s" % res.err)
        s1 = json.loads(res.out)
        check(s1["rejected"] == 0, "ingest 1 rejected %s" % s1["rejected_by_reason"])
        rows = query(ctx)
        check(len(rows) == len(expect), "%d connections, expected %d" %
              (len(rows), len(expect)))
        # Before the late events: unknown, or the right process known less
        # well (a Sysmon 3 names image, user and guid only) -- never wrong.
        for r in rows:
            p, w = r["process"], expect[r["local_port"]]
            check(p is None or (w is not None and p["image"] == w["image"] and
                                p["guid"] in (None, w["guid"])),
                  "before the late events: port %d got %s, expected %s or null"
                  % (r["local_port"], p, w))
        res = netwho(ctx, "ingest", "--store", ctx.store, "--quiet", p2)
        check(res.rc == 0, "ingest 2: %s" % res.err)
        rows = query(ctx)
        compare(rows, expect, "after both ingests")
        print("ok   every connection's process (%d connections, %d null)" % (
            len(rows), sum(1 for v in expect.values() if v is None)))

        # --process: by file name and by C:\ path of a \Device\ image.
        name = "app1004_1.exe"
        got = query(ctx, "--process", name.upper())
        want = sorted(p for p, v in expect.items() if v and v["name"] == name)
        check(sorted(r["local_port"] for r in got) == want,
              "--process %s: %s, expected ports %s" % (
                  name, [r["local_port"] for r in got], want))
        got2 = query(ctx, "--process", "c:\\apps\\" + name)
        check(got2 == got, "--process by path differs from by name")
        # with the flow filters: both residual, both applied
        check(query(ctx, "--process", name, "--scope", "private") == got and
              query(ctx, "--process", name, "--exclude-loopback") == got and
              query(ctx, "--process", name, "--scope", "public") == [],
              "--process with --scope / --exclude-loopback")
        got3 = query(ctx, "--process", name, "--community-id", got[0]["community_id"],
                     "--limit", "1")
        check([r["id"] for r in got3] == [got[0]["id"]], "--process --community-id")
        print("ok   --process by name and by path (%d rows)" % len(got))

        res = netwho(ctx, "query", "--store", ctx.store, "-o", "csv")
        header, body = E.parse_csv_output(res.out)
        check(header[-8:] == ["process_" + f for f in E.PROCESS_FIELDS],
              "csv header %s" % header[-8:])
        idx = header.index("local_port")
        for row in body:
            want = expect[int(row[idx])]
            got = row[-8]
            check(got == (want["image"] if want else ""),
                  "csv process_image %r, expected %r" % (got, want))
        print("ok   csv process columns")

        # The server: /connections carries process; /processes/{pid}/...
        srv, port = start_netwhod(a, tmp, "query", ctx.store)
        base = "http://127.0.0.1:%d/api/v1" % port

        def get(path):
            with urllib.request.urlopen(base + path, timeout=30) as resp:
                return json.loads(resp.read())

        data = get("/connections?limit=10000")["data"]
        compare(data, expect, "GET /connections")
        one = get("/connections/%d" % data[0]["id"])["data"]
        check(one.get("process", "absent") == expect[one["local_port"]],
              "GET /connections/{id} process %s" % one.get("process"))
        # every holder of every pid: its own connections, nothing else
        holders = {}
        for r in rows:
            if r["process"]:
                holders.setdefault((r["pid"], r["process"]["create_time"]),
                                   []).append(r["local_port"])
        for (pid, ct), ports in sorted(holders.items()):
            at = E.fmt_time(E.parse_time(ct) + SEC // 2)
            got = get("/processes/%d/connections?host=%s&at=%s&limit=10000" %
                      (pid, HOST.lower(), at))["data"]
            check(sorted(x["local_port"] for x in got) == sorted(ports),
                  "/processes/%d/connections at %s: %s, expected %s" % (
                      pid, at, [x["local_port"] for x in got], sorted(ports)))
        # ... narrowed by the flow filters: every remote end here is
        # 10.9.9.x (private); a Community ID picks one connection.
        for (pid, ct), ports in sorted(holders.items())[:4]:
            at = E.fmt_time(E.parse_time(ct) + SEC // 2)
            base_q = "/processes/%d/connections?host=%s&at=%s&limit=10000" % (pid, HOST, at)
            got = get(base_q + "&scope=private&exclude_loopback=true")["data"]
            check(sorted(x["local_port"] for x in got) == sorted(ports),
                  "%s&scope=private: %s" % (base_q, [x["local_port"] for x in got]))
            check(get(base_q + "&scope=public")["data"] == [], base_q + "&scope=public")
            mine = [r for r in rows if r["local_port"] == ports[0]][0]
            check(mine["community_id"] == E.community_id(mine) and
                  mine["remote_ip_class"] == "private", "flow fields of %s" % mine)
            got = get(base_q + "&community_id=" +
                      urllib.parse.quote(mine["community_id"], safe=""))["data"]
            check([x["id"] for x in got] == [mine["id"]],
                  "%s&community_id=%s: %s" % (base_q, mine["community_id"], got))
        try:
            get("/processes/4/connections?host=%s&at=2026-03-16T08:01:00Z&scope=x" % HOST)
            check(False, "scope=x is not a 400")
        except urllib.error.HTTPError as e:
            body = json.loads(e.read())
            check(e.code == 400 and body["error"]["parameter"] == "scope",
                  "scope=x: %d %s" % (e.code, body))
        try:
            get("/processes/2000/connections?host=%s&at=2026-03-16T08:01:00Z" % HOST)
            check(False, "a pid without process events is not a 404")
        except urllib.error.HTTPError as e:
            check(e.code == 404, "status %d" % e.code)
        print("ok   netwhod: /connections, /connections/{id}, "
              "/processes/{pid}/connections (%d holders)" % len(holders))
        stop_netwhod(srv)
        srv = None

        other_ingest_paths(a, tmp, p1, p2, expect)
        generated(a, tmp)
    except Exception:
        failed = 1
        traceback.print_exc()
    finally:
        if srv:
            srv.terminate()
            srv.wait(timeout=20)
        if not a.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    print("FAILED" if failed else "all passed")
    return failed


if __name__ == "__main__":
    sys.exit(main())
