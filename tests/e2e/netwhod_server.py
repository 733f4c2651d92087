#!/usr/bin/env python3
"""
netwhod_server.py -- one netwhod under test, for every end-to-end test
file: started on 127.0.0.1 port 0 (the port read from its log), asked over
HTTP with every answer recorded, stopped with its exit status and log
checked for sanitizer reports and for a commit that had to be repeated.

Every answer a test receives through Server.request (errors, 503s and
health included) goes into RECORDER; a test file ends with
conforms_to_openapi(ctx), which validates them all against openapi.yaml
(openapi_check.py), so the contract is checked on the fault paths too, not
only on test_server.py's happy ones.  Python 3 standard library only.
"""

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request

import netwho_e2e as E
import openapi_check as O
from netwho_e2e import check

SANITIZER_MARKS = ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer")

RECORDER = O.Recorder()


class Server:
    """netwhod --store STORE --listen 127.0.0.1:0 [--host HOST] ARGS.

    wait: block until the port is known (else call wait_port); prefix: a
    command to run it through (setpriv); stdin: its standard input (a
    pipe for --stdin tests), else /dev/null.  Freed memory sits in ASan's
    quarantine (256 MB by default), which would hide whether netwhod's own
    memory stays bounded: it is cut to 8 MB."""

    def __init__(self, ctx, store, *args, name="netwhod", host=None, prefix=(),
                 stdin=None, wait=True):
        self.log_path = os.path.join(ctx.tmp, "%s-%d.log" % (name, len(ctx.procs)))
        self.log = open(self.log_path, "w+b")
        self.store = store
        env = dict(os.environ)
        env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=8").lstrip(":")
        argv = list(prefix) + [ctx.netwhod, "--store", store, "--listen", "127.0.0.1:0"]
        if host is not None:
            argv += ["--host", host]
        self.p = subprocess.Popen(argv + list(args),
                                  stdin=stdin if stdin is not None else subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=self.log, env=env)
        ctx.procs.append(self.p)
        self.port = None
        if wait:
            self.wait_port()

    def text(self):
        self.log.seek(0)
        return self.log.read().decode("utf-8", "replace")

    def wait_port(self, timeout=20):
        deadline = time.time() + timeout
        while self.port is None:
            for line in self.text().splitlines():
                if "listening on http://127.0.0.1:" in line:
                    self.port = int(line.rsplit(":", 1)[1].strip("/"))
                    return self
            check(self.p.poll() is None, "netwhod exited: %s" % self.text()[-800:])
            check(time.time() < deadline, "netwhod reported no port")
            time.sleep(0.05)
        return self

    def request(self, method, path, body=None, headers=None, timeout=60):
        """(status, headers, parsed JSON or text) -- errors included; the
        answer is recorded for the openapi.yaml check."""
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.port, path), data=body,
                                     method=method)
        if body is not None:
            req.add_header("Content-Type", "application/x-ndjson")
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            r = urllib.request.urlopen(req, timeout=timeout)
        except urllib.error.HTTPError as e:
            r = e
        with r:
            raw = r.read()
            status = r.status if hasattr(r, "status") else r.code
            hdrs = {k.lower(): v for k, v in r.getheaders()}
        RECORDER.add(method, path, status, hdrs, raw)
        try:
            return status, hdrs, json.loads(raw)
        except ValueError:
            return status, hdrs, raw.decode("utf-8", "replace")

    def get(self, path):
        """The parsed answer of a GET that must succeed."""
        st, _, body = self.request("GET", path)
        check(st == 200, "GET %s: %d %r" % (path, st, body))
        return body

    def health(self):
        """(status, headers, body) of /api/v1/health: 503 is an answer too."""
        return self.request("GET", "/api/v1/health")

    def source(self, i=0):
        """Source i of /health, also while it answers 503."""
        return self.health()[2]["sources"][i]

    def metrics(self):
        st, _, text = self.request("GET", "/metrics")
        check(st == 200, "/metrics: %d" % st)
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                k, v = line.rsplit(" ", 1)
                out[k] = float(v)
        return out

    def vm_hwm_kib(self):
        with open("/proc/%d/status" % self.p.pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        raise E.Failed("no VmHWM")

    def kill(self):
        self.p.send_signal(signal.SIGKILL)
        self.p.wait(20)

    def stop(self, timeout=60):
        self.p.send_signal(signal.SIGTERM)
        try:
            rc = self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            raise E.Failed("netwhod did not stop within %d s of SIGTERM" % timeout)
        check(rc == 0, "netwhod exit %s: %s" % (rc, self.text()[-800:]))
        self.clean()

    def clean(self):
        """The log holds no sanitizer report and no repeated commit."""
        t = self.text()
        for bad in SANITIZER_MARKS:
            check(bad not in t, "sanitizer report: %s" % t[-3000:])
        # A commit cut between two partition files is repaired from its redo
        # record; one that could not be would count rows twice.
        check("are written again" not in t, "a commit was cut: %s" % t[-1500:])


def wait_for(what, cond, timeout=30, every=0.1):
    """cond()'s first true value, polled every `every` s for `timeout` s."""
    deadline = time.time() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.time() > deadline:
            raise E.Failed("timed out waiting for %s" % what)
        time.sleep(every)


def conforms_to_openapi(ctx, at_least=1):
    """Every answer recorded so far conforms to openapi.yaml."""
    recs = list(RECORDER.records)
    check(len(recs) >= at_least, "only %d answers recorded" % len(recs))
    checked, failures = O.validate(ctx.src, recs)
    check(checked == len(recs), "the validator checked %d of %d answers" % (checked, len(recs)))
    check(not failures, "%d of %d answers do not conform to openapi.yaml: %s" % (
        len(failures), checked, O.describe(failures)))


def run_tests(tests, prefix, argv=None, setup=None):
    """A test file's main: runs setup(ctx) if given, then each test
    function with a ctx (netwhod, netwho, src, tmp, procs, mounts), prints
    PASS/FAIL lines, kills what a test left running, unmounts what it
    mounted, and last checks every answer recorded against openapi.yaml.
    -k NAME runs only the tests whose name contains NAME.  Returns the exit
    status."""
    import argparse
    import shutil
    import tempfile
    import traceback

    ap = argparse.ArgumentParser()
    ap.add_argument("--bin-dir", required=True)
    ap.add_argument("--source-dir", required=True)
    ap.add_argument("--keep", action="store_true", help="keep the temp directory")
    ap.add_argument("-k", "--only", dest="k", help="only tests whose name contains this")
    a = ap.parse_args(argv)

    class Ctx:
        pass
    ctx = Ctx()
    ctx.netwhod = os.path.join(os.path.abspath(a.bin_dir), "netwhod")
    ctx.netwho = os.path.join(os.path.abspath(a.bin_dir), "netwho")
    ctx.src = os.path.abspath(a.source_dir)
    ctx.tmp = tempfile.mkdtemp(prefix=prefix)
    ctx.procs = []
    ctx.mounts = []
    failed = 0

    def one(name, fn):
        nonlocal failed
        t0 = time.time()
        try:
            fn()
            print("PASS %-45s %.1fs" % (name, time.time() - t0), flush=True)
        except Exception as e:  # noqa: BLE001
            failed += 1
            print("FAIL %-45s %.1fs: %s" % (name, time.time() - t0, e), flush=True)
            traceback.print_exc()
        for p in ctx.procs:
            if p.poll() is None:
                p.kill()
                p.wait(10)
        ctx.procs = []

    try:
        if setup is not None:
            try:
                setup(ctx)
            except Exception:  # noqa: BLE001
                print("FAIL setup", flush=True)
                traceback.print_exc()
                return 1
        for fn in tests:
            if a.k and a.k not in fn.__name__:
                continue
            one(fn.__name__, lambda: fn(ctx))
        if RECORDER.records:
            one("answers_conform_to_openapi", lambda: conforms_to_openapi(ctx))
    finally:
        for m in reversed(ctx.mounts):
            subprocess.run(["umount", "-l", m], capture_output=True)
        if not a.keep:
            shutil.rmtree(ctx.tmp, ignore_errors=True)
    return 1 if failed else 0
