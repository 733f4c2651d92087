#!/usr/bin/env python3
"""
bench_util.py -- helpers of bench/ingest_bench.sh (Python 3 standard library).

    bench_util.py pick-ips FILE [--lines N]
        A popular and a rare remote IPv4 address: the canonical daddr of send
        events (10/26/42/58) in the first N lines (default 100000) -- the most
        frequent one, and the least frequent IPv4 one (ties: first seen).
        Prints "POPULAR RARE".
    bench_util.py expect-who EXPECT.json IP...
        The exact "who talked to IP" answer from gen.py --expect: one JSON
        line per IP {ip, rows, connections, bytes, answer}.
    bench_util.py sqlite-query DB --iterations N IP...
        Times the baseline's "who talked to IP" query in-process through
        Python's sqlite3 module (the same system libsqlite3 the sqlite3 shell
        and netwho link): one JSON line per IP.
    bench_util.py shell-timer FILE
        Median "Run Time: real" of a sqlite3 `.timer on` transcript, per IP
        (lines "-- ip=X" separate the IPs): one JSON line per IP.
    bench_util.py parse-time-v FILE
        "RSS_KB CPU_S" from a /usr/bin/time -v report: peak RSS in KiB,
        user + system CPU seconds.
    bench_util.py part OUT.json KEY=VALUE... [--runs FILE] [--queries FILE]
        Writes one system's results (see ingest_bench.sh).
    bench_util.py report RESULTS_DIR DATASET_KEY
        The markdown results table of every part measured on that dataset.
"""

import collections
import datetime
import ipaddress
import json
import os
import re
import sqlite3
import statistics
import sys
import time

SEND_IDS = {"10", "26", "42", "58"}
RECV_IDS = {"11", "27", "43", "59"}

# The baselines' "who talked to IP" query.  raddr is the remote end, already
# lower-cased and with a "::ffff:" prefix of a dotted quad removed at load.
WHO_SQL = """
SELECT host, pid, count(*) AS events,
       sum(CASE WHEN event_id IN (10, 26, 42, 58) THEN size ELSE 0 END)
         AS bytes_sent,
       sum(CASE WHEN event_id IN (11, 27, 43, 59) THEN size ELSE 0 END)
         AS bytes_received,
       min(time) AS first_seen, max(time) AS last_seen
FROM events WHERE raddr = ?
GROUP BY host, pid
ORDER BY bytes_sent + bytes_received DESC, host, pid
"""


def canon(text):
    """Canonical text of an address; IPv4-mapped IPv6 becomes IPv4."""
    try:
        a = ipaddress.ip_address(str(text).strip())
    except ValueError:
        return None
    if a.version == 6 and a.ipv4_mapped is not None:
        return str(a.ipv4_mapped)
    return str(a)


def key16(text):
    """The address as netwho compares it: 16 bytes, IPv4 mapped."""
    a = ipaddress.ip_address(str(text).strip())
    if a.version == 4:
        return ipaddress.IPv6Address("::ffff:" + str(a)).packed
    return a.packed


def pick_ips(path, lines):
    count = collections.Counter()
    order = {}
    with open(path, "rb") as f:
        for i, line in enumerate(f):
            if i >= lines:
                break
            try:
                o = json.loads(line)
                eid = str(o["system"]["event_id"]).strip()
                if eid not in SEND_IDS:
                    continue
                c = canon(o["event_data"]["daddr"])
            except (ValueError, KeyError, TypeError):
                continue
            if c is None:
                continue
            count[c] += 1
            order.setdefault(c, i)
    if not count:
        sys.exit("bench_util: no send events with an address in %s" % path)
    popular = max(count, key=lambda a: (count[a], -order[a]))
    v4 = [a for a in count if ":" not in a and a != popular]
    if not v4:
        v4 = [a for a in count if a != popular] or [popular]
    rare = min(v4, key=lambda a: (count[a], order[a]))
    print(popular, rare)


def expect_who(path, ips):
    with open(path) as f:
        exp = json.load(f)
    for ip in ips:
        k = key16(ip)
        rows = {}
        for c in exp["connections"]:
            if key16(c["remote_ip"]) != k:
                continue
            r = rows.setdefault((c["host"], c["pid"]), [0, 0, 0])
            r[0] += 1
            r[1] += c["bytes_sent"]
            r[2] += c["bytes_received"]
        answer = sorted(([h, p, n, s, rcv] for (h, p), (n, s, rcv)
                         in rows.items()),
                        key=lambda r: (-(r[3] + r[4]), r[0], r[1]))
        print(json.dumps({"ip": ip, "rows": len(answer),
                          "connections": sum(r[2] for r in answer),
                          "bytes": sum(r[3] + r[4] for r in answer),
                          "answer": answer}))


def pct(sorted_v, p):
    if not sorted_v:
        return 0.0
    rank = max(1, min(len(sorted_v), -(-len(sorted_v) * p // 100)))
    return sorted_v[int(rank) - 1]


def sqlite_query(db, iterations, ips, max_seconds=30.0):
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
    for ip in ips:
        t0 = time.perf_counter_ns()
        rows = con.execute(WHO_SQL, (ip,)).fetchall()
        first = (time.perf_counter_ns() - t0) / 1e3
        ts = []
        start = time.perf_counter()
        for i in range(iterations):
            a = time.perf_counter_ns()
            con.execute(WHO_SQL, (ip,)).fetchall()
            ts.append((time.perf_counter_ns() - a) / 1e3)
            if i >= 9 and time.perf_counter() - start > max_seconds:
                break
        ts.sort()
        plan = " | ".join(r[-1] for r in con.execute(
            "EXPLAIN QUERY PLAN " + WHO_SQL, (ip,)))
        print(json.dumps({
            "ip": ip, "rows": len(rows),
            "events": sum(r[2] for r in rows),
            "bytes": sum((r[3] or 0) + (r[4] or 0) for r in rows),
            "answer": [[r[0], r[1], None, r[3] or 0, r[4] or 0] for r in rows],
            "iterations": len(ts), "first_us": round(first, 1),
            "min_us": round(ts[0], 1),
            "median_us": round(statistics.median(ts), 1),
            "p99_us": round(pct(ts, 99), 1), "plan": plan}))
    con.close()


def shell_timer(path):
    per_ip = collections.OrderedDict()
    ip = None
    with open(path) as f:
        for line in f:
            m = re.match(r"-- ip=(\S+)", line)
            if m:
                ip = m.group(1)
                per_ip[ip] = []
                continue
            m = re.match(r"Run Time: real ([0-9.]+)", line)
            if m and ip is not None:
                per_ip[ip].append(float(m.group(1)) * 1e3)
    for ip, ts in per_ip.items():
        # The first run of each IP is the warm-up.
        ts = ts[1:] if len(ts) > 1 else ts
        print(json.dumps({"ip": ip, "runs": len(ts),
                          "median_ms": statistics.median(ts) if ts else None}))


def parse_time_v(path):
    """Prints "RSS_KB CPU_S": peak RSS and user + system CPU seconds."""
    rss, cpu = None, 0.0
    with open(path) as f:
        for line in f:
            v = line.rsplit(":", 1)[-1].strip()
            if "Maximum resident set size" in line:
                rss = int(v)
            elif "User time (seconds)" in line or \
                    "System time (seconds)" in line:
                cpu += float(v)
    if rss is None:
        sys.exit("bench_util: no 'Maximum resident set size' in %s" % path)
    print(rss, "%.2f" % cpu)


def num(v):
    try:
        return int(v)
    except ValueError:
        try:
            return float(v)
        except ValueError:
            return v


def part(out, args):
    d = {"measured_at": datetime.datetime.now(datetime.timezone.utc)
         .strftime("%Y-%m-%d %H:%M:%SZ")}
    try:
        with open("/proc/loadavg") as f:
            d["loadavg"] = " ".join(f.read().split()[:3])
    except OSError:
        pass
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--runs":
            # lines "WALL_S RSS_KB CPU_S"
            runs = []
            with open(args[i + 1]) as f:
                for line in f:
                    w, r, c = line.split()
                    runs.append({"wall_s": float(w), "rss_kb": int(r),
                                 "cpu_s": float(c)})
            d["runs"] = runs
            i += 2
        elif a == "--queries":
            qs = []
            with open(args[i + 1]) as f:
                for line in f:
                    line = line.strip()
                    if line:
                        qs.append(json.loads(line))
            d["queries"] = qs
            i += 2
        elif a == "--json":
            with open(args[i + 2]) as f:
                d[args[i + 1]] = json.load(f)
            i += 3
        else:
            k, v = a.split("=", 1)
            d[k] = num(v)
            i += 1
    with open(out, "w") as f:
        json.dump(d, f, indent=1)
        f.write("\n")


# ------------------------------------------------------------------ report

def fmt_int(n):
    return "{:,}".format(int(round(n)))


def fmt_bytes(n):
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return ("%.0f %s" if unit == "B" else "%.1f %s") % (n, unit)
        n /= 1024


def fmt_us(us):
    if us is None:
        return "-"
    if us >= 1e6:
        return "%.2f s" % (us / 1e6)
    if us >= 1e3:
        return "%.2f ms" % (us / 1e3)
    return "%.0f µs" % us


def machine():
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = "?"
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal"):
                    mem = "%.1f GiB" % (int(line.split()[1]) / 1048576)
                    break
    except OSError:
        pass
    return "%d CPUs (nproc), %s, %s RAM, Linux %s" % (
        len(os.sched_getaffinity(0)), model, mem, os.uname().release)


def report(results_dir, dataset_key):
    parts = {}
    for name in ("netwho", "sqlite", "duckdb"):
        p = os.path.join(results_dir, "part-%s-%s.json" % (name, dataset_key))
        if os.path.exists(p):
            with open(p) as f:
                parts[name] = json.load(f)
    exp_path = os.path.join(results_dir, "who-expected-%s.jsonl" % dataset_key)
    expected = {}
    if os.path.exists(exp_path):
        with open(exp_path) as f:
            for line in f:
                e = json.loads(line)
                expected[e["ip"]] = e
    ds_path = os.path.join(results_dir, "dataset-%s.json" % dataset_key)
    ds = {}
    if os.path.exists(ds_path):
        with open(ds_path) as f:
            ds = json.load(f)

    out = []
    w = out.append
    w("# netwho ingest benchmark")
    w("")
    w("- date: %s" % datetime.datetime.now(datetime.timezone.utc)
      .strftime("%Y-%m-%d %H:%M:%SZ"))
    w("- machine: %s" % machine())
    if ds:
        w("- input: `%s` -- %s events (%s hosts, seed %s), %s, generated by "
          "bench/gen.py" % (os.path.basename(ds["file"]),
                            fmt_int(ds["events"]), ds["hosts"], ds["seed"],
                            fmt_bytes(ds["file_bytes"])))
        w("- queried: popular remote IP `%s`, rare remote IP `%s` (send "
          "events' daddr in the first 100k lines)" % (ds["popular"],
                                                       ds["rare"]))
    w("")
    cols = [n for n in ("netwho", "sqlite", "duckdb") if n in parts]
    if not cols:
        w("(no results)")
        return "\n".join(out) + "\n"
    title = {"netwho": "netwho",
             "sqlite": "sqlite3 shell + JSON functions",
             "duckdb": "DuckDB (node-api)"}
    w("| | " + " | ".join(title[c] for c in cols) + " |")
    w("|---|" + "---|" * len(cols))

    def row(label, fn):
        cells = []
        for c in cols:
            try:
                v = fn(parts[c])
            except (KeyError, TypeError, ValueError, ZeroDivisionError,
                    IndexError):
                v = None
            cells.append("-" if v is None else v)
        w("| %s | %s |" % (label, " | ".join(cells)))

    def wall_med(p):
        return statistics.median(r["wall_s"] for r in p["runs"])

    def wall_range(p):
        ws = [r["wall_s"] for r in p["runs"]]
        return "%.2f s (%s runs: %s)" % (
            statistics.median(ws), len(ws),
            ", ".join("%.2f" % x for x in ws))

    row("version", lambda p: str(p["version"]))
    row("ingest wall time, median", wall_range)
    row("**ingest events/s** (everything: parse, fold/load, index)",
        lambda p: "**%s**" % fmt_int(p["events"] / wall_med(p)))
    row("CPU time user+sys, median (runs)", lambda p: "%.2f s (%s)" % (
        statistics.median(r["cpu_s"] for r in p["runs"]),
        ", ".join("%.2f" % r["cpu_s"] for r in p["runs"])))
    row("load without index, events/s (median)",
        lambda p: fmt_int(p["events"] / p["load_s"]) if "load_s" in p
        else None)
    row("peak RSS (median of runs)",
        lambda p: fmt_bytes(1024 * statistics.median(
            r["rss_kb"] for r in p["runs"])))
    row("on-disk size", lambda p: fmt_bytes(p["store_bytes"]))
    row("**bytes/event**",
        lambda p: "**%.1f**" % (p["store_bytes"] / p["events"]))
    row("rows stored", lambda p: p["stored"])

    def q(i):
        def f(p):
            x = p["queries"][i]
            s = "%s / %s" % (fmt_us(x["median_us"]), fmt_us(x["p99_us"]))
            m = x.get("shell_median_ms")
            if m is not None:
                s += " (shell .timer: %s)" % (
                    "%.0f ms" % m if m >= 1 else "< 1 ms")
            return s
        return f

    def ans(i):
        def f(p):
            x = p["queries"][i]
            e = expected.get(x["ip"])
            s = "%d rows, %s B" % (x["rows"], fmt_int(x["bytes"]))
            if e is not None:
                ok = x["rows"] == e["rows"] and x["bytes"] == e["bytes"]
                if ok and "answer" in x and "answer" in e:
                    # Every row, in order: host, pid, bytes (and the
                    # connection count where the system has one).
                    for got, want in zip(x["answer"], e["answer"]):
                        if (got[0], got[1], got[3], got[4]) != (
                                want[0], want[1], want[3], want[4]) or (
                                got[2] is not None and got[2] != want[2]):
                            ok = False
                            s += " ✗ (first differing row: %s, expected %s)" \
                                % (got, want)
                            break
                    if ok:
                        s += " ✓ (every row)"
                elif ok:
                    s += " ✓"
                else:
                    s += " ✗ (expected %d rows, %s B)" % (
                        e["rows"], fmt_int(e["bytes"]))
            return s
        return f

    for i, label in ((0, "popular"), (1, "rare")):
        ip = ds.get(label, "?")
        row("who talked to %s IP `%s`: median / p99" % (label, ip), q(i))
        row("... answer (rows, bytes sent+received) vs gen.py's expected",
            ans(i))
        row("... first query on a fresh open", lambda p, i=i: fmt_us(
            p["queries"][i]["first_us"]))
    w("")
    w("Notes:")
    for c in cols:
        for n in parts[c].get("notes", "").split(" ;; "):
            if n:
                w("- %s: %s" % (title[c], n))
        w("- %s measured %s (load average then: %s)" % (
            title[c], parts[c]["measured_at"], parts[c].get("loadavg", "?")))
    return "\n".join(out) + "\n"


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    cmd, args = argv[1], argv[2:]
    if cmd == "pick-ips":
        lines = 100000
        if "--lines" in args:
            i = args.index("--lines")
            lines = int(args[i + 1])
            del args[i:i + 2]
        pick_ips(args[0], lines)
    elif cmd == "expect-who":
        expect_who(args[0], args[1:])
    elif cmd == "sqlite-query":
        i = args.index("--iterations")
        iterations = int(args[i + 1])
        del args[i:i + 2]
        sqlite_query(args[0], iterations, args[1:])
    elif cmd == "shell-timer":
        shell_timer(args[0])
    elif cmd == "parse-time-v":
        parse_time_v(args[0])
    elif cmd == "part":
        part(args[0], args[1:])
    elif cmd == "report":
        sys.stdout.write(report(args[0], args[1]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
