#!/usr/bin/env bash
# http_bench.sh -- netwhod's REST API under load, with ingest beside it:
# requests/s and latency of the IP lookup (popular, rare, and many distinct
# addresses in rotation) and of the dashboard's window query, each with wrk
# over TCP and over the Unix socket while events are POSTed continuously;
# plus /health and the 304 path without ingest.  See bench/README.md.
#
#   bench/http_bench.sh [--events N] [--port P] [--duration S] [--threads T]
#                       [--connections C] [--ingest-events N] [--batch N]
#                       [--no-build] [--bin DIR]
#
# --bin DIR: run DIR/netwho and DIR/netwhod instead of build-rel's (another
# build, to compare; implies --no-build).
# Prints a markdown table and writes it to bench/results/http_latest.md.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
results=$here/results

events=10000000       # the store: gen.py chunks of $chunk events, streamed into netwho ingest
chunk=2000000         # events per gen.py run (bounds its memory: ~1.5 GB)
port=18080            # first port tried on 127.0.0.1
duration=10           # seconds per wrk run
wrk_threads=2
conns=16
ingest_events=3000000 # the second file, POSTed beside the measured runs
batch=50000           # events per POST
build=1
bindir=

usage() {
    sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit "${1:-2}"
}

while [ $# -gt 0 ]; do
    case $1 in
        --events) events=$2; shift 2 ;;
        --port) port=$2; shift 2 ;;
        --duration) duration=$2; shift 2 ;;
        --threads) wrk_threads=$2; shift 2 ;;
        --connections) conns=$2; shift 2 ;;
        --ingest-events) ingest_events=$2; shift 2 ;;
        --batch) batch=$2; shift 2 ;;
        --no-build) build=0; shift ;;
        --bin) bindir=$2; build=0; shift 2 ;;
        -h|--help) usage 0 ;;
        *) echo "http_bench: unknown argument: $1" >&2; usage ;;
    esac
done
for n in "$events" "$port" "$duration" "$wrk_threads" "$conns" "$ingest_events" "$batch"; do
    case $n in ''|*[!0-9]*) echo "http_bench: not a number: $n" >&2; usage ;; esac
done

log() { printf '[http_bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
now() { date +%s.%N; }

cd "$root"
mkdir -p "$results"
work=$results/http-work
rm -rf "$work"
mkdir -p "$work"

# ------------------------------------------------------------ requirements
if ! command -v wrk >/dev/null 2>&1; then
    log "wrk missing: apt-get install wrk"
    if [ "$(id -u)" = 0 ]; then
        apt-get install -y wrk >&2 || { apt-get update >&2 && apt-get install -y wrk >&2; }
    elif command -v sudo >/dev/null 2>&1; then
        sudo apt-get install -y wrk >&2
    fi
    command -v wrk >/dev/null 2>&1 || die "wrk is required (Debian package wrk)"
fi
for c in curl python3 cmake; do
    command -v "$c" >/dev/null 2>&1 || die "$c is required"
done

# ------------------------------------------------------------ build
if [ "$build" = 1 ]; then
    log "building Release into build-rel"
    { cmake -S . -B build-rel -DCMAKE_BUILD_TYPE=Release &&
      cmake --build build-rel -j2 --target netwho netwhod; } >"$work/build.log" 2>&1 ||
        { tail -30 "$work/build.log" >&2; die "build failed (see $work/build.log)"; }
fi
nw=${bindir:-$root/build-rel}/netwho
nwd=${bindir:-$root/build-rel}/netwhod
[ -x "$nw" ] && [ -x "$nwd" ] || die "build-rel/netwho and build-rel/netwhod are missing (drop --no-build)"
shim=$work/wrk_unix.so
cc -shared -fPIC -O2 -o "$shim" "$here/wrk_unix.c" -ldl || die "cannot build the wrk Unix-socket shim"

# ------------------------------------------------------------ input and store
# The store is built once from gen.py runs of $chunk events (seeds 1, 2,
# ..., each starting where the previous one ended: 50 hosts at 5 events/s
# each), streamed into `netwho ingest -`, so no 7 GB file is written.
store=$results/http-store-n$events
marker=$store.source
source_id="gen.py n=$events chunk=$chunk hosts=50 seeds=1.."
if [ -d "$store" ] && [ "$(cat "$marker" 2>/dev/null)" = "$source_id" ]; then
    log "reusing $store ($source_id)"
else
    rm -rf "$store" "$marker"
    k=0
    left=$events
    while [ "$left" -gt 0 ]; do
        n=$(( left < chunk ? left : chunk ))
        start=$(python3 -c "import datetime as d; print((d.datetime(2026,3,16,tzinfo=d.timezone.utc)+d.timedelta(seconds=$k*$chunk//250)).strftime('%Y-%m-%dT%H:%M:%SZ'))")
        log "store: gen.py --events $n --seed $((k + 1)) --start $start | netwho ingest"
        python3 "$here/gen.py" --events "$n" --hosts 50 --seed $((k + 1)) --start "$start" --out - |
            "$nw" ingest --store "$store" --quiet - >"$work/ingest-summary-$k.json"
        left=$(( left - n ))
        k=$(( k + 1 ))
    done
    echo "$source_id" >"$marker"
fi
# The server runs on a copy: the ingest beside the runs adds to it, and the
# next run must start from the same data.
run_store=$results/http-store-run
rm -rf "$run_store"
mkdir -p "$run_store"
# Contents, not the directory entry: a store that is a symlink (kept
# elsewhere) would otherwise be copied as the link, and the runs would
# write into the source store.
cp -a "$store/." "$run_store/"

# ------------------------------------------------------------ server
port=$(python3 - "$port" <<'EOF'
import socket, sys
p = int(sys.argv[1])
for cand in range(p, p + 50):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", cand))
    except OSError:
        continue
    finally:
        s.close()
    print(cand)
    break
else:
    sys.exit("http_bench: no free port in %d..%d" % (p, p + 49))
EOF
)
sock=$results/netwhod.sock
base=http://127.0.0.1:$port
api=$base/api/v1

nwd_pid=
ingest_pid=
cleanup() {
    if [ -n "$ingest_pid" ]; then kill "$ingest_pid" 2>/dev/null || true; wait "$ingest_pid" 2>/dev/null || true; fi
    if [ -n "$nwd_pid" ]; then kill "$nwd_pid" 2>/dev/null || true; wait "$nwd_pid" 2>/dev/null || true; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "starting netwhod on 127.0.0.1:$port and $sock"
"$nwd" --store "$run_store" --listen "127.0.0.1:$port" --socket "$sock" 2>"$work/netwhod.log" &
nwd_pid=$!
for _ in $(seq 1 100); do
    curl -sf "$api/health" >"$work/health.json" 2>/dev/null && break
    kill -0 "$nwd_pid" 2>/dev/null || { cat "$work/netwhod.log" >&2; die "netwhod exited"; }
    sleep 0.1
done
curl -sf "$api/health" >"$work/health.json" || die "netwhod does not answer /api/v1/health"
curl -sf --unix-socket "$sock" http://netwhod/api/v1/health >/dev/null || die "no answer on $sock"

# ------------------------------------------------------------ what to ask
popular=10.2.10.11
"$nw" query --store "$run_store" --limit 20000 -o csv >"$work/first.csv"
# Rare IP: the least frequent public IPv4 remote address among the first
# 2000 connections (ties: the smallest).  Rotation: every distinct remote
# address among the first 20000 connections, shuffled (seed 1).
read -r rare nrot < <(python3 - "$work/first.csv" "$work/paths-rotate.txt" <<'EOF'
import csv, collections, ipaddress, random, sys, urllib.parse
rows = list(csv.DictReader(open(sys.argv[1])))
c = collections.Counter()
for row in rows[:2000]:
    a = ipaddress.ip_address(row["remote_ip"])
    if a.version == 4 and not a.is_private:
        c[row["remote_ip"]] += 1
low = min(c.values())
rare = sorted((ipaddress.ip_address(i) for i, n in c.items() if n == low))[0]
ips = sorted(set(r["remote_ip"] for r in rows))
random.Random(1).shuffle(ips)
with open(sys.argv[2], "w") as f:
    for ip in ips:
        f.write("/api/v1/ips/%s/processes\n" % urllib.parse.quote(ip, safe=""))
print(rare, len(ips))
EOF
)
# The dashboard's window: the last 5 minutes before the newest event.
read -r win_from win_to span_from < <(python3 - "$work/health.json" "$work/first.csv" <<'EOF'
import json, sys, csv, datetime as dt
h = json.load(open(sys.argv[1]))
def parse(s):
    s = s.rstrip("Z")
    base, _, frac = s.partition(".")
    return dt.datetime.fromisoformat(base).replace(tzinfo=dt.timezone.utc)
newest = parse(h["newest_event"])
to = newest.replace(microsecond=0) + dt.timedelta(seconds=1)
frm = to - dt.timedelta(minutes=5)
first = parse(next(csv.DictReader(open(sys.argv[2])))["first_seen"])
f = lambda t: t.strftime("%Y-%m-%dT%H:%M:%SZ")
print(f(frm), f(to), f(first))
EOF
)
newest=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["newest_event"])' "$work/health.json")
path_pop=/api/v1/ips/$popular/processes
path_rare=/api/v1/ips/$rare/processes
path_win="/api/v1/connections?from=$win_from&to=$win_to&limit=100"
echo "$path_pop" >"$work/paths-popular.txt"
echo "$path_rare" >"$work/paths-rare.txt"
echo "$path_win" >"$work/paths-window.txt"
echo "/api/v1/health" >"$work/paths-health.txt"
for p in "$path_pop" "$path_rare" "$path_win"; do
    curl -s -D "$work/hdr.txt" -o "$work/body.json" "$base$p"
    grep -q '^HTTP/1.1 200' "$work/hdr.txt" || die "$p: not 200: $(head -c 300 "$work/body.json")"
    printf '%s %s %s %s\n' "$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["data"]))' "$work/body.json")" \
        "$(stat -c %s "$work/body.json")" \
        "$(python3 -c 'import json,sys; print("yes" if "next_cursor" in json.load(open(sys.argv[1])) else "no")' "$work/body.json")" \
        "$p" >>"$work/answers.txt"
done
log "popular $popular, rare $rare, $nrot addresses in rotation, window $win_from .. $win_to"

# ------------------------------------------------------------ the second file (POSTed beside)
second=$results/events-n${ingest_events}-h50-s99-after-n${events}.jsonl
start2=$(python3 - "$newest" <<'EOF'
import sys, datetime as dt
s = sys.argv[1].rstrip("Z").partition(".")[0]
t = dt.datetime.fromisoformat(s) + dt.timedelta(minutes=2)
print(t.replace(second=0).strftime("%Y-%m-%dT%H:%M:%SZ"))
EOF
)
chunks=$results/http-ingest-chunks-n$events
if [ ! -s "$second" ] || [ "$(cat "$chunks/.source" 2>/dev/null)" != "$(basename "$second") $start2 $batch" ]; then
    log "generating $second ($ingest_events events from $start2, seed 99)"
    python3 "$here/gen.py" --events "$ingest_events" --hosts 50 --seed 99 --start "$start2" --out "$second"
    rm -rf "$chunks"; mkdir -p "$chunks"
    split -l "$batch" -d -a 4 "$second" "$chunks/batch-"
    echo "$(basename "$second") $start2 $batch" >"$chunks/.source"
fi

# ------------------------------------------------------------ wrk runs
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
# run_wrk NAME TRANSPORT PATHS_FILE [ETAG]: one wrk run, over TCP or the
# Unix socket (through the LD_PRELOAD shim), times and load recorded.
run_wrk() {
    local name=$1 transport=$2 paths=$3 etag=${4:-} url=$base
    log "wrk $name ($transport): -t $wrk_threads -c $conns -d ${duration}s $(head -1 "$paths")$( [ "$(wc -l <"$paths")" -gt 1 ] && echo " ... ($(wc -l <"$paths") paths)")"
    local t0 t1
    t0=$(now)
    if [ "$transport" = unix ]; then
        NW_PATHS=$paths NW_ETAG=$etag NW_WRK_UNIX=$sock LD_PRELOAD=$shim \
            wrk -t "$wrk_threads" -c "$conns" -d "${duration}s" --latency -s "$here/http_rotate.lua" \
            "http://127.0.0.1:1" >"$work/wrk-$name-$transport.txt"
    else
        NW_PATHS=$paths NW_ETAG=$etag \
            wrk -t "$wrk_threads" -c "$conns" -d "${duration}s" --latency -s "$here/http_rotate.lua" \
            "$url" >"$work/wrk-$name-$transport.txt"
    fi
    t1=$(now)
    echo "$t0 $t1 $(loadavg)" >"$work/run-$name-$transport.txt"
}

stop=$work/ingest.stop
ingest_loop() {
    local i=0 c t0 t1 code
    for c in "$chunks"/batch-*; do
        [ "$c" = "$chunks/batch-0000" ] && continue   # POSTed alone, before
        [ -e "$stop" ] && break
        t0=$(now)
        code=$(curl -s -o "$work/post-$i.json" -w '%{http_code}' -X POST -H 'Expect:' \
            -H 'Content-Type: application/x-ndjson' --data-binary "@$c" "$api/events") || code=000
        t1=$(now)
        echo "$t0 $t1 $code $work/post-$i.json" >>"$work/posts.txt"
        i=$((i + 1))
    done
    now >"$work/ingest.end"
}

run_wrk health tcp "$work/paths-health.txt"
# The window before any ingest: with ingest beside, every POSTed row is
# newer than the window's `from`, and the plan (conn_last, last_seen >=
# from) reads them all -- see BENCHMARKS.md.
run_wrk window-quiet tcp "$work/paths-window.txt"
# One batch alone (no other load), for comparison.
log "POST of $batch events alone"
a0=$(now)
code=$(curl -s -o "$work/post-alone.json" -w '%{http_code}' -X POST -H 'Expect:' \
    -H 'Content-Type: application/x-ndjson' --data-binary "@$chunks/batch-0000" "$api/events") || code=000
a1=$(now)
[ "$code" = 200 ] || die "POST of batch-0000 gave HTTP $code: $(head -c 300 "$work/post-alone.json")"
echo "$a0 $a1" >"$work/post-alone.time"

log "POSTing batches of $batch events from $(basename "$second") beside every run below"
: >"$work/posts.txt"
ingest_loop &
ingest_pid=$!
sleep 0.5
for transport in tcp unix; do
    run_wrk popular "$transport" "$work/paths-popular.txt"
    run_wrk rare "$transport" "$work/paths-rare.txt"
    run_wrk rotate "$transport" "$work/paths-rotate.txt"
    run_wrk window "$transport" "$work/paths-window.txt"
done
touch "$stop"
wait "$ingest_pid" || true
ingest_pid=
curl -sf "$api/health" >"$work/health-after.json" || die "netwhod stopped answering after the ingest runs"
# The 304 path, on the store as it is now (no ingest: the ETag would move).
etag=$(curl -s -D - -o /dev/null "$base$path_pop" | tr -d '\r' | sed -n 's/^[Ee][Tt][Aa][Gg]: //p')
[ -n "$etag" ] || die "no ETag on $path_pop"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "If-None-Match: $etag" "$base$path_pop")
[ "$code" = 304 ] || die "If-None-Match $etag gave $code, not 304"
run_wrk popular-304 tcp "$work/paths-popular.txt" "$etag"

# ------------------------------------------------------------ report
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD -- server api store common include collector 2>/dev/null || commit="$commit (+ work tree)"
[ -z "$bindir" ] || commit="binaries of $bindir"
export H_POPULAR=$popular H_RARE=$rare H_NROT=$nrot H_WIN_FROM=$win_from H_WIN_TO=$win_to \
    H_SPAN_FROM=$span_from H_NEWEST=$newest H_ETAG=$etag H_COMMIT=$commit H_DURATION=$duration \
    H_THREADS=$wrk_threads H_CONNS=$conns H_BATCH=$batch H_SECOND=$(basename "$second") \
    H_EVENTS=$events H_PORT=$port H_STORE_BYTES=$(du -sbL --exclude=rejected "$store/" | cut -f1)
python3 - "$work" "$results/http_latest.md" <<'EOF'
import json, os, re, sys, datetime as dt, platform
work, out = sys.argv[1], sys.argv[2]
E = os.environ

def ms(s):
    m = re.match(r"([\d.]+)(us|ms|s)$", s)
    v = float(m.group(1))
    return v / 1000 if m.group(2) == "us" else v * 1000 if m.group(2) == "s" else v

def wrk(name, transport):
    t = open(os.path.join(work, "wrk-%s-%s.txt" % (name, transport))).read()
    r = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1)),
         "p50": ms(re.search(r"^\s*50%\s+(\S+)", t, re.M).group(1)),
         "p99": ms(re.search(r"^\s*99%\s+(\S+)", t, re.M).group(1)),
         "n": int(re.search(r"(\d+) requests in", t).group(1))}
    notes = []
    st = re.search(r"paths: (\d+), status 200: (\d+), 304: (\d+), other: (\d+)", t)
    if st:
        paths, s200, s304, other = map(int, st.groups())
        r["paths"] = paths
        notes.append("%s x 200, %s x 304, %s other" % (format(s200, ","), format(s304, ","), other))
    sock = re.search(r"Socket errors: (.*)", t)
    if sock:
        notes.append("socket errors: " + sock.group(1))
    t0, t1, *load = open(os.path.join(work, "run-%s-%s.txt" % (name, transport))).read().split()
    r["t0"], r["t1"], r["load"] = float(t0), float(t1), " ".join(load)
    r["notes"] = notes
    return r

posts = []
for l in open(os.path.join(work, "posts.txt")):
    t0, t1, code, path = l.split()
    try:
        j = json.load(open(path))
    except Exception:
        j = {}
    posts.append((float(t0), float(t1), code, j.get("accepted", 0), j.get("rejected", 0)))

def ingest_during(r):
    """Events of the POSTs that ended within the run, per second of the run."""
    done = [p for p in posts if r["t0"] <= p[1] <= r["t1"]]
    ev = sum(p[3] for p in done)
    return ev / (r["t1"] - r["t0"]), len(done), sorted(set(p[2] for p in done))

def f(v): return "%.2f ms" % v if v >= 0.995 else "%d µs" % round(v * 1000)
n = lambda v: format(round(v), ",")
health = json.load(open(os.path.join(work, "health.json")))
answers = [l.split(None, 3) for l in open(os.path.join(work, "answers.txt"))]
def ans(i):
    rows, size, more, _ = answers[i]
    return "%s rows, %s B%s" % (rows, format(int(size), ","), ", next_cursor" if more == "yes" else "")
a0, a1 = map(float, open(os.path.join(work, "post-alone.time")).read().split())
alone = json.load(open(os.path.join(work, "post-alone.json")))["accepted"] / (a1 - a0)
acc = sum(p[3] for p in posts); rej = sum(p[4] for p in posts)
span = (posts[-1][1] - posts[0][0]) if posts else 0
cpu = "?"
for l in open("/proc/cpuinfo"):
    if l.startswith("model name"):
        cpu = l.split(":", 1)[1].strip(); break
mem = "?"
for l in open("/proc/meminfo"):
    if l.startswith("MemTotal"):
        mem = "%.1f GiB" % (int(l.split()[1]) / 1048576); break
wrkv = os.popen("wrk -v 2>&1 | head -1").read().split(" [")[0].strip()
L = []
w = L.append
w("## netwhod HTTP -- %s events (gen.py), %s connections, %.0f MiB store" % (
    format(int(E["H_EVENTS"]), ","), format(health["connections"], ","), int(E["H_STORE_BYTES"]) / 1048576))
w("")
w("- date (UTC): %s" % dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ"))
w("- machine: %d CPUs (nproc), %s, %s RAM, Linux %s -- **wrk, netwhod and the POSTing curl share these %d cores**" % (os.cpu_count(), cpu, mem, platform.release(), os.cpu_count()))
w("- commit: netwho %s, Release (build-rel)" % E["H_COMMIT"])
w("- load: %s `-t %s -c %s -d %ss --latency -s bench/http_rotate.lua`, keep-alive; TCP on 127.0.0.1:%s, Unix socket through bench/wrk_unix.c (LD_PRELOAD)" % (wrkv, E["H_THREADS"], E["H_CONNS"], E["H_DURATION"], E["H_PORT"]))
w("- data: %s .. %s (newest event %s); popular IP `%s`, rare IP `%s`, rotation over %s distinct remote addresses; window `from=%s&to=%s` (the last 5 minutes)" % (
    E["H_SPAN_FROM"], E["H_NEWEST"][:19] + "Z", E["H_NEWEST"], E["H_POPULAR"], E["H_RARE"], E["H_NROT"], E["H_WIN_FROM"], E["H_WIN_TO"]))
w("- ingest beside every run marked so: POSTs of %s events (%s) back to back, %s accepted, %d rejected over %.0f s = %s events/s on average (one POST alone: %s events/s)" % (
    format(int(E["H_BATCH"]), ","), E["H_SECOND"], format(acc, ","), rej, span, n(acc / span if span else 0), n(alone)))
w("")
w("| request | transport | ingest beside | requests/s | p50 | p99 | answer | notes |")
w("|---|---|---|---|---|---|---|---|")
R = {}
def row(label, name, transport, answer, beside=True):
    r = wrk(name, transport)
    R[(name, transport)] = r
    notes = list(r["notes"])
    ing = "-"
    if beside:
        rate, k, codes = ingest_during(r)
        ing = "%s events/s (%d POSTs%s)" % (n(rate), k, ", HTTP " + ",".join(codes) if codes else "")
    notes.append("load avg after: " + r["load"])
    w("| %s | %s | %s | **%s** | %s | %s | %s | %s |" % (label, "Unix socket" if transport == "unix" else "TCP", ing,
      n(r["rps"]), f(r["p50"]), f(r["p99"]), answer, "; ".join(notes)))
row("`GET /api/v1/health` (baseline: no query)", "health", "tcp", "-", beside=False)
row("window, before any ingest", "window-quiet", "tcp", ans(2), beside=False)
for t in ("tcp", "unix"):
    row("IP lookup, popular `%s`" % E["H_POPULAR"], "popular", t, ans(0))
    row("IP lookup, rare `%s`" % E["H_RARE"], "rare", t, ans(1))
    row("IP lookup, %s addresses in rotation" % E["H_NROT"], "rotate", t, "first page of each")
    row("window: `/connections?from&to&limit=100` (last 5 min)", "window", t, ans(2))
row("popular IP with `If-None-Match` (304)", "popular-304", "tcp", "304, no body", beside=False)
w("")
w("Against the targets of issue 3 (with ingest beside; wrk sharing the 2 cores):")
w("")
w("| target | TCP | Unix socket | |")
w("|---|---|---|---|")
ok = lambda b: "met" if b else "**not met**"
lk = ("popular", "rare", "rotate")
for label, key, test, fmt in (
        (">= 10,000 requests/s (IP lookup)", "rps", lambda v: v >= 10000, n),
        ("IP lookup p50 < 2 ms", "p50", lambda v: v < 2, f),
        ("IP lookup p99 < 20 ms", "p99", lambda v: v < 20, f)):
    cells, good = [], True
    for t in ("tcp", "unix"):
        vals = [R[(k, t)][key] for k in lk]
        good &= all(test(v) for v in vals)
        cells.append(" / ".join(fmt(v) for v in vals))
    w("| %s | %s | %s | %s |" % (label, cells[0], cells[1], ok(good)))
w("")
w("(each cell: popular / rare / rotation)")
text = "\n".join(L) + "\n"
open(out, "w").write(text)
sys.stdout.write(text)
EOF
log "raw outputs in $work; table in $results/http_latest.md"
