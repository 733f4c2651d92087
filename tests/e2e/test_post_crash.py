#!/usr/bin/env python3
"""POST /api/v1/events under kill -9: a client posts gen.py's events in
bodies of random size, each with its own Idempotency-Key, and resends a
body (same key) until it gets its answer; meanwhile netwhod is SIGKILLed
at random moments and restarted on the same store.  At the end the store
holds exactly gen.py's expected connections, bytes, transfers and
failures, and the answers' counts are exactly gen.py's accepted and
rejected: nothing acknowledged is lost, nothing resent is doubled.  Also
the key's plain contract (duplicate, bad key, another body, two at once).
Servers listen on 127.0.0.1 and a Unix socket in a temp dir; every wait
is bounded.  NETWHO_KILL_SEED overrides the seed of the kill moments and
body sizes."""
import http.client
import json
import os
import random
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import netwho_e2e as E  # noqa: E402
import netwhod_server as S  # noqa: E402
import test_follow as F  # noqa: E402  (its Server, gen and comparisons)
from netwho_e2e import check  # noqa: E402

EVENTS = "/api/v1/events"


class UnixHTTP(http.client.HTTPConnection):
    """HTTP over netwhod's --socket: the path stays the same across
    restarts, so the client needs no new port after a kill."""

    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout)
        self.sock_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        try:
            s.connect(self.sock_path)
        except OSError:
            s.close()
            raise
        self.sock = s


def post(sock_path, body, key=None, rec=None, timeout=30):
    """(status, headers, parsed body); raises OSError/HTTPException when
    the server is gone (refused, reset, cut answer)."""
    c = UnixHTTP(sock_path, timeout)
    try:
        hd = {"Content-Type": "application/x-ndjson"}
        if key is not None:
            hd["Idempotency-Key"] = key
        c.request("POST", EVENTS, body=body, headers=hd)
        r = c.getresponse()
        raw = r.read()
        headers = {k.lower(): v for k, v in r.getheaders()}
    finally:
        c.close()
    if rec is not None:
        rec.add("POST", EVENTS, r.status, headers, raw)
    return r.status, headers, json.loads(raw)


def counts_of(doc):
    return doc["accepted"], doc["rejected"], doc["rejected_by_reason"]


def final_answer(status, doc):
    """True if this answer is the body's outcome: 200, or 400
    no_events_accepted (a body of only bad lines, counted and kept)."""
    return status == 200 or (status == 400 and "accepted" in doc and
                             doc["error"]["code"] == "no_events_accepted")


def split_bodies(data, rnd, lo=5, hi=80):
    """Bodies of lo..hi whole lines (a bad line stays one line)."""
    lines = data.splitlines(keepends=True)
    out, i = [], 0
    while i < len(lines):
        n = rnd.randint(lo, hi)
        out.append(b"".join(lines[i:i + n]))
        i += n
    return out


def dead_letters(store):
    d = os.path.join(store, "rejected")
    n = 0
    if os.path.isdir(d):
        for name in os.listdir(d):
            with open(os.path.join(d, name), "rb") as f:
                n += sum(1 for _ in f)
    return n


def wait_socket(path, srv, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        check(srv.p.poll() is None, "netwhod exited: %s" % srv.text()[-800:])
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(path)
            s.close()
            return
        except OSError:
            time.sleep(0.02)
    raise E.Failed("netwhod's socket did not answer")


def check_totals(exp, answers, what):
    acc = sum(a[0] for a in answers)
    rej = sum(a[1] for a in answers)
    by = {}
    for a in answers:
        for k, v in a[2].items():
            by[k] = by.get(k, 0) + v
    check(acc == exp["accepted"], "%s: %d accepted, expected %d" % (what, acc, exp["accepted"]))
    check(rej == exp["rejected"], "%s: %d rejected, expected %d" % (what, rej, exp["rejected"]))
    check(by == exp["rejected_by_reason"], "%s: rejected %r, expected %r" %
          (what, by, exp["rejected_by_reason"]))


gen = F.gen


# ------------------------------------------------------------------ tests

TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


@test
def idempotency_key_contract(ctx):
    """K -> 200; K again -> 200 with the same counts and "duplicate": true,
    the store unchanged; the same key with another body -> 422; a bad key
    -> 400 naming the header; two POSTs with one key at once -> the body is
    stored once."""
    data, exp = gen(ctx, "key", 600, 7)
    store = os.path.join(ctx.tmp, "store-key")
    sock = os.path.join(ctx.tmp, "key.sock")
    rec = S.RECORDER
    srv = F.Server(ctx, store, "--socket", sock, name="key").wait_port()
    wait_socket(sock, srv)
    half = data.rfind(b"\n", 0, len(data) // 2) + 1
    st, _, d1 = post(sock, data[:half], "K-1", rec)
    check(st == 200 and "duplicate" not in d1, "first: %d %r" % (st, d1))
    gen1 = srv.get("/api/v1/health")["generation"]
    rows1 = F.query(ctx, store)
    st, _, d2 = post(sock, data[:half], "K-1", rec)
    check(st == 200 and d2.get("duplicate") is True, "again: %d %r" % (st, d2))
    check(counts_of(d2) == counts_of(d1), "duplicate counts %r vs %r" % (d2, d1))
    check(srv.get("/api/v1/health")["generation"] == gen1, "a duplicate changed the store")
    check(F.query(ctx, store) == rows1, "a duplicate changed the connections")
    st, _, d3 = post(sock, data[half:], "K-1", rec)
    check(st == 422 and d3["error"]["code"] == "idempotency_key_reused" and
          d3["error"]["parameter"] == "Idempotency-Key", "other body: %d %r" % (st, d3))
    for bad in ("", "a b", "x" * 129, "caf\u00e9".encode().decode("latin-1")):
        st, _, d4 = post(sock, data[half:], bad, rec)
        check(st == 400 and d4["error"]["code"] == "bad_idempotency_key" and
              d4["error"]["parameter"] == "Idempotency-Key", "key %r: %d %r" % (bad, st, d4))
    st, _, d5 = post(sock, data[half:], "x" * 128, rec)
    check(st == 200 and "duplicate" not in d5, "128-byte key: %d %r" % (st, d5))
    # Both halves are in: the store is exactly the expected one.
    rows = F.compare(ctx, exp, store, "halves")
    # Two at once with one new key: one ingests, the other waits for it
    # and is answered as a duplicate.
    extra, _ = gen(ctx, "key2", 300, 8, start="2026-03-18T00:00:00Z")
    got = []

    def one():
        got.append(post(sock, extra, "K-2", rec))
    ts = [threading.Thread(target=one) for _ in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    check(len(got) == 2 and all(g[0] == 200 for g in got), "concurrent: %r" % got)
    dups = sorted(bool(g[2].get("duplicate")) for g in got)
    check(dups == [False, True], "concurrent duplicates: %r" % got)
    n_extra = len(F.query(ctx, store)) - len(rows)
    srv.stop()
    # After a restart the keys are still known.
    srv = F.Server(ctx, store, "--socket", sock, name="key").wait_port()
    wait_socket(sock, srv)
    st, _, d6 = post(sock, data[:half], "K-1", rec)
    check(st == 200 and d6.get("duplicate") is True and counts_of(d6) == counts_of(d1),
          "after restart: %d %r" % (st, d6))
    check(len(F.query(ctx, store)) - len(rows) == n_extra and n_extra > 0,
          "the concurrent body is not there exactly once")
    srv.stop()


@test
def sigkill_during_posts_loses_and_doubles_nothing(ctx):
    """A client posts the trace (several hosts, bad lines, across a UTC
    midnight so commits write two partitions) in bodies of 5-80 lines,
    each with its own key, resending on any failure; netwhod is SIGKILLed
    8-12 times at random moments and restarted on the same store.
    Events come in time order (--jitter-ms 0): a POST's answer folds the
    reorder window (its events are queryable when answered), so an event
    that arrives in a later body than a newer one is folded late -- with
    or without kills; that is the POST contract, not what this tests."""
    seed = int(os.environ.get("NETWHO_KILL_SEED", "20261125"))
    rnd = random.Random(seed)
    data, exp = gen(ctx, "pcrash", 16000, 21, start="2026-03-16T23:58:30Z",
                      malformed=0.01, extra=["--jitter-ms", "0"])
    check(exp["partitions"] >= 2, "the trace does not cross midnight")
    check(exp["rejected"] > 0, "no bad lines generated")
    store = os.path.join(ctx.tmp, "store-pcrash")
    sock = os.path.join(ctx.tmp, "pcrash.sock")
    bodies = split_bodies(data, rnd)
    rec = S.RECORDER
    answers = [None] * len(bodies)
    state = {"resent": 0, "dups": 0, "error": None, "done": False}

    def client():
        try:
            deadline = time.time() + 90
            for i, body in enumerate(bodies):
                key = "pcrash-%d-%d" % (seed, i)
                while True:
                    check(time.time() < deadline, "the client did not finish in time")
                    try:
                        st, hd, doc = post(sock, body, key, rec)
                    except (OSError, http.client.HTTPException):
                        state["resent"] += 1
                        time.sleep(0.02)      # killed: resend once it is back
                        continue
                    if final_answer(st, doc):
                        answers[i] = counts_of(doc)
                        state["dups"] += bool(doc.get("duplicate"))
                        break
                    check(st == 503, "body %d: %d %r" % (i, st, doc))
                    state["resent"] += 1
                    time.sleep(0.05)
        except Exception as e:  # noqa: BLE001
            state["error"] = e
        state["done"] = True

    t = threading.Thread(target=client, daemon=True)
    nkills = rnd.randint(8, 12)
    srv = F.Server(ctx, store, "--socket", sock, name="pcrash")
    wait_socket(sock, srv)
    t.start()
    kills = 0
    while kills < nkills and not state["done"]:
        time.sleep(rnd.uniform(0.1, 0.8))
        srv.kill()
        kills += 1
        srv.clean()
        srv = F.Server(ctx, store, "--socket", sock, name="pcrash")
        wait_socket(sock, srv)
    t.join(120)
    check(not t.is_alive(), "the client hangs")
    if state["error"]:
        raise state["error"]
    check(kills >= 8, "only %d kills before the client finished (%d bodies)" %
          (kills, len(bodies)))
    # A clean stop flushes the stream as one uninterrupted run would.
    srv.stop()
    srv = F.Server(ctx, store, "--socket", sock, name="pcrash").wait_port()
    check_totals(exp, answers, "after %d kills" % kills)
    rows = F.compare(ctx, exp, store, "after %d kills" % kills)
    F.compare_failures_and_transfers(ctx, exp, srv, rows, "after %d kills" % kills)
    srv.stop()
    print("    %d SIGKILLs, %d bodies, %d resent, %d answered as duplicates; "
          "dead letters %d for %d rejected" % (kills, len(bodies), state["resent"],
                                               state["dups"], dead_letters(store),
                                               exp["rejected"]))


def main():
    return S.run_tests(TESTS, "netwho-postcrash-")


if __name__ == "__main__":
    sys.exit(main())
