#!/usr/bin/env python3
"""
openapi_check.py -- the end-to-end tests' link to tools/openapi: installs
the pinned validators (@redocly/cli, ajv, yaml; tools/openapi/package.json)
with npm on first use, lints openapi.yaml, and checks recorded HTTP answers
against its schemas with tools/openapi/validate.mjs.

A Recorder collects what a test's client received (method, raw path,
status, Content-Type, body decoded from gzip, ETag); validate() sends them
to validate.mjs in one run and returns its failures.  Python 3 standard
library only; node and npm come from scripts/deps.sh.
"""

import fcntl
import gzip
import hashlib
import json
import os
import shutil
import subprocess
import tempfile

NPM_TIMEOUT = 300
NODE_TIMEOUT = 300
# A body larger than this is not recorded (validation cost, not a limit of
# the contract); the e2e answers are far smaller.
RECORD_MAX = 16 * 1024 * 1024


class ToolError(AssertionError):
    pass


def tools_dir(src):
    return os.path.join(src, "tools", "openapi")


def ensure_tools(src):
    """npm install in tools/openapi unless every pinned package is there.
    Serialized with a lock file: ctest runs test files in parallel."""
    tools = tools_dir(src)
    need = [os.path.join(tools, "node_modules", ".bin", "redocly"),
            os.path.join(tools, "node_modules", "ajv", "package.json"),
            os.path.join(tools, "node_modules", "yaml", "package.json")]
    npm = shutil.which("npm")
    if not npm or not shutil.which("node"):
        raise ToolError("node and npm are needed for the openapi.yaml checks "
                        "(scripts/deps.sh installs them)")
    key = hashlib.sha1(os.path.abspath(tools).encode()).hexdigest()[:12]
    with open(os.path.join(tempfile.gettempdir(), "netwho-npm-%s.lock" % key), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if all(os.path.exists(p) for p in need):
            return tools
        res = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--prefix", tools],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             timeout=NPM_TIMEOUT)
        if res.returncode != 0 or not all(os.path.exists(p) for p in need):
            raise ToolError("npm install in tools/openapi failed: %s" %
                            res.stderr.decode("utf-8", "replace")[-1500:])
    return tools


def lint(src):
    """redocly lint openapi.yaml; raises ToolError with its output."""
    tools = ensure_tools(src)
    res = subprocess.run([os.path.join(tools, "node_modules", ".bin", "redocly"), "lint",
                          "--format", "stylish", os.path.join(src, "openapi.yaml")],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         timeout=NODE_TIMEOUT)
    if res.returncode != 0:
        raise ToolError("redocly lint openapi.yaml: " +
                        res.stdout.decode("utf-8", "replace")[-1500:] +
                        res.stderr.decode("utf-8", "replace")[-500:])


def record_of(method, path, status, headers, body):
    """The record validate.mjs reads, from a raw answer (headers in lower
    case; body as received, gzip-coded or not)."""
    if headers.get("content-encoding") == "gzip" and body:
        body = gzip.decompress(body)
    return {"method": method, "path": path, "status": status,
            "content_type": headers.get("content-type", ""),
            "etag": headers.get("etag"),
            "body": body.decode("utf-8", "replace")}


class Recorder:
    def __init__(self):
        self.records = []
        self.enabled = True

    def add(self, method, path, status, headers, body):
        if self.enabled and len(body) <= RECORD_MAX:
            self.records.append(record_of(method, path, status, headers, body))


def validate(src, records):
    """Runs validate.mjs over records; returns (checked, failures)."""
    tools = ensure_tools(src)
    fd, path = tempfile.mkstemp(prefix="netwho-records-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(records, f)
        res = subprocess.run([shutil.which("node"), os.path.join(tools, "validate.mjs"),
                              os.path.join(src, "openapi.yaml"), path],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             timeout=NODE_TIMEOUT)
    finally:
        os.unlink(path)
    if res.returncode != 0:
        raise ToolError("validate.mjs failed: " + res.stderr.decode("utf-8", "replace")[-1500:])
    out = json.loads(res.stdout)
    return out["checked"], out["failures"]


def describe(failures, limit=10):
    return "; ".join("%s: %s" % (f["request"], f["problem"]) for f in failures[:limit]) + (
        " (and %d more)" % (len(failures) - limit) if len(failures) > limit else "")
