#!/usr/bin/env python3
"""post_bench.py -- POST ingest throughput of one or more netwhod builds.

For each run, and each build in turn (so that the machine's load falls on
all of them alike), a fresh store is served by that build's netwhod on a
Unix socket in a temp dir and gen.py's events are POSTed to it in bodies
of --batch lines by --clients senders at once (each takes the next body
when its last was answered), each body with its own Idempotency-Key
(--no-key: without), every answer checked (200).  Prints per build the median events/s over the runs, the runs
themselves and the store's size, as a markdown table.

  bench/post_bench.py --bin DIR [--bin DIR ...] [--events N] [--batch N]
                      [--runs N] [--clients N] [--no-key] [--label NAME ...]

DIR holds netwhod (a release build: cmake -DCMAKE_BUILD_TYPE=Release).
"""
import argparse
import http.client
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=300)
        self.sock_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.sock_path)


def dir_bytes(d):
    return sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(d) for f in fs)


def one_run(netwhod, bodies, tmp, key, clients):
    store = os.path.join(tmp, "store")
    sock = os.path.join(tmp, "s.sock")
    shutil.rmtree(store, ignore_errors=True)
    log = open(os.path.join(tmp, "netwhod.log"), "w+b")
    p = subprocess.Popen([netwhod, "--store", store, "--no-listen", "--socket", sock],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log)
    try:
        deadline = time.time() + 30
        while not os.path.exists(sock):
            if p.poll() is not None or time.time() > deadline:
                log.seek(0)
                sys.exit("netwhod did not start: %s" % log.read()[-500:])
            time.sleep(0.02)
        lock = threading.Lock()
        state = {"next": 0, "events": 0, "error": None}

        def sender():
            c = UnixHTTP(sock)
            while True:
                with lock:
                    i = state["next"]
                    state["next"] += 1
                if i >= len(bodies) or state["error"]:
                    break
                body, lines = bodies[i]
                hd = {"Content-Type": "application/x-ndjson"}
                if key:
                    hd["Idempotency-Key"] = "bench-%d" % i
                c.request("POST", "/api/v1/events", body=body, headers=hd)
                r = c.getresponse()
                raw = r.read()
                with lock:
                    if r.status != 200:
                        state["error"] = "POST %d: %d %s" % (i, r.status, raw[:300])
                    state["events"] += lines
            c.close()
        t0 = time.perf_counter()
        threads = [threading.Thread(target=sender) for _ in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        secs = time.perf_counter() - t0
        if state["error"]:
            sys.exit(state["error"])
        n = state["events"]
    finally:
        p.terminate()
        p.wait(60)
    return n / secs, dir_bytes(store)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", action="append", required=True)
    ap.add_argument("--label", action="append")
    ap.add_argument("--events", type=int, default=300000)
    ap.add_argument("--batch", type=int, default=5000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--clients", type=int, default=1)
    ap.add_argument("--no-key", action="store_true")
    a = ap.parse_args()
    labels = a.label or a.bin
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    tmp = tempfile.mkdtemp(prefix="netwho-postbench-")
    try:
        data = os.path.join(tmp, "ev.ndjson")
        subprocess.run([sys.executable, os.path.join(root, "bench", "gen.py"), "--events",
                        str(a.events), "--hosts", "20", "--seed", "7", "--out", data],
                       check=True)
        with open(data, "rb") as f:
            lines = f.readlines()
        bodies = [(b"".join(lines[i:i + a.batch]), len(lines[i:i + a.batch]))
                  for i in range(0, len(lines), a.batch)]
        got = {b: [] for b in a.bin}
        size = {}
        for r in range(a.runs):
            for b in a.bin:
                eps, size[b] = one_run(os.path.join(b, "netwhod"), bodies, tmp, not a.no_key,
                                       a.clients)
                got[b].append(eps)
                print("run %d %s: %.0f events/s" % (r + 1, b, eps), file=sys.stderr, flush=True)
        print("| build | median events/s | runs | store bytes |")
        print("|---|---|---|---|")
        for b, name in zip(a.bin, labels):
            print("| %s | **%.0f** | %s | %d |" % (name, statistics.median(got[b]),
                                                  ", ".join("%.0f" % x for x in got[b]),
                                                  size[b]))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
