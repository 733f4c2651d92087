#!/usr/bin/env bash
# http_bench.sh -- netwhod's REST API under load: requests/s and latency of
# the IP lookup, the dashboard's window query and the 304 path (wrk, TCP on
# loopback), Unix socket against TCP (a sequential Python client), and the
# IP lookup again while events are POSTed beside it.  See bench/README.md.
#
#   bench/http_bench.sh [--events N] [--port P] [--duration S] [--threads T]
#                       [--connections C] [--requests N] [--ingest-events N]
#                       [--batch N] [--no-build]
#
# Prints a markdown table and writes it to bench/results/http_latest.md.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
results=$here/results

events=1000000        # the store's input (reuses events-nN-h50-s1.jsonl)
port=18080            # first port tried on 127.0.0.1
duration=10           # seconds per wrk run
wrk_threads=2
conns=16
requests=2000         # sequential requests per Python client run
ingest_events=400000  # the second file, POSTed during the last wrk run
batch=50000           # events per POST
build=1

usage() {
    sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit "${1:-2}"
}

while [ $# -gt 0 ]; do
    case $1 in
        --events) events=$2; shift 2 ;;
        --port) port=$2; shift 2 ;;
        --duration) duration=$2; shift 2 ;;
        --threads) wrk_threads=$2; shift 2 ;;
        --connections) conns=$2; shift 2 ;;
        --requests) requests=$2; shift 2 ;;
        --ingest-events) ingest_events=$2; shift 2 ;;
        --batch) batch=$2; shift 2 ;;
        --no-build) build=0; shift ;;
        -h|--help) usage 0 ;;
        *) echo "http_bench: unknown argument: $1" >&2; usage ;;
    esac
done
for n in "$events" "$port" "$duration" "$wrk_threads" "$conns" "$requests" "$ingest_events" "$batch"; do
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
nw=$root/build-rel/netwho
nwd=$root/build-rel/netwhod
[ -x "$nw" ] && [ -x "$nwd" ] || die "build-rel/netwho and build-rel/netwhod are missing (drop --no-build)"

# ------------------------------------------------------------ input and store
input=$results/events-n${events}-h50-s1.jsonl
if [ ! -s "$input" ]; then
    log "generating $input ($events events)"
    python3 "$here/gen.py" --events "$events" --hosts 50 --seed 1 --out "$input"
fi
store=$results/http-store
marker=$results/http-store.source   # which input the store was built from
if [ -d "$store" ] && [ "$(cat "$marker" 2>/dev/null)" = "$(basename "$input")" ]; then
    log "reusing $store (built from $(basename "$input"))"
else
    rm -rf "$store" "$marker"
    log "ingesting $(basename "$input") into $store"
    "$nw" ingest --store "$store" --quiet "$input" >"$work/ingest-summary.json"
    basename "$input" >"$marker"
fi
# The server runs on a copy: the ingest-under-load run adds to it, and the
# next run must start from the same data.
run_store=$results/http-store-run
rm -rf "$run_store"
cp -a "$store" "$run_store"

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
"$nw" query --store "$run_store" --limit 2000 -o csv >"$work/first2000.csv"
# Rare IP: the least frequent IPv4 remote address among the first 2000
# connections (ties: the smallest address), checked to have an answer.
rare=$(python3 - "$work/first2000.csv" <<'EOF'
import csv, collections, ipaddress, sys
c = collections.Counter()
for row in csv.DictReader(open(sys.argv[1])):
    ip = row["remote_ip"]
    try:
        if ipaddress.ip_address(ip).version == 4 and not ipaddress.ip_address(ip).is_private:
            c[ip] += 1
    except ValueError:
        pass
low = min(c.values())
print(sorted((ipaddress.ip_address(i) for i, n in c.items() if n == low))[0])
EOF
)
# The dashboard's window: the last 5 minutes before the newest event.
read -r win_from win_to span_from < <(python3 - "$work/health.json" "$work/first2000.csv" <<'EOF'
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
url_pop=$api/ips/$popular/processes
url_rare=$api/ips/$rare/processes
url_win="$api/connections?from=$win_from&to=$win_to&limit=100"
for u in "$url_pop" "$url_rare" "$url_win"; do
    curl -s -D "$work/hdr.txt" -o "$work/body.json" "$u"
    grep -q '^HTTP/1.1 200' "$work/hdr.txt" || die "$u: not 200: $(head -c 300 "$work/body.json")"
    printf '%s %s %s\n' "$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["data"]))' "$work/body.json")" \
        "$(stat -c %s "$work/body.json")" "$u" >>"$work/answers.txt"
done
etag=$(curl -s -D - -o /dev/null "$url_pop" | tr -d '\r' | sed -n 's/^[Ee][Tt][Aa][Gg]: //p')
[ -n "$etag" ] || die "no ETag on $url_pop"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "If-None-Match: $etag" "$url_pop")
[ "$code" = 304 ] || die "If-None-Match $etag gave $code, not 304"
log "popular $popular, rare $rare, window $win_from .. $win_to, ETag $etag"

# ------------------------------------------------------------ wrk runs
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
run_wrk() {   # run_wrk NAME URL [wrk args...]
    local name=$1 url=$2; shift 2
    log "wrk $name: -t $wrk_threads -c $conns -d ${duration}s $url"
    wrk -t "$wrk_threads" -c "$conns" -d "${duration}s" --latency "$@" "$url" >"$work/wrk-$name.txt"
    loadavg >"$work/load-$name.txt"
}
run_wrk health "$api/health"
run_wrk ip-popular "$url_pop"
run_wrk ip-rare "$url_rare"
run_wrk window "$url_win"
NW_ETAG=$etag run_wrk ip-popular-304 "$url_pop" -s "$here/http_bench.lua"

# ------------------------------------------------------------ Unix socket vs TCP
log "python client: $requests sequential requests per transport and IP"
python3 - "$sock" "$port" "$requests" "$popular" "$rare" >"$work/pyclient.json" <<'EOF'
import http.client, json, socket, sys, time
sock, port, n, ips = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]

class UnixConn(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("netwhod", timeout=30)
        self.path_ = path
    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(30)
        s.connect(self.path_)
        self.sock = s

def run(conn, path):
    for _ in range(20):                       # warm-up
        conn.request("GET", path); r = conn.getresponse(); r.read()
    lat = []
    t0 = time.perf_counter()
    for _ in range(n):
        a = time.perf_counter()
        conn.request("GET", path)
        r = conn.getresponse()
        body = r.read()
        lat.append(time.perf_counter() - a)
        if r.status != 200:
            sys.exit("status %d for %s" % (r.status, path))
    wall = time.perf_counter() - t0
    lat.sort()
    q = lambda p: lat[min(len(lat) - 1, max(0, int(round(p * len(lat))) - 1))]
    return {"n": n, "rps": n / wall, "p50": q(0.50), "p99": q(0.99), "bytes": len(body)}

out = []
for ip in ips:
    path = "/api/v1/ips/%s/processes" % ip
    for name, mk in (("unix", lambda: UnixConn(sock)),
                     ("tcp", lambda: http.client.HTTPConnection("127.0.0.1", port, timeout=30))):
        c = mk()
        res = run(c, path)
        c.close()
        res.update(ip=ip, transport=name)
        out.append(res)
print(json.dumps(out))
EOF

# ------------------------------------------------------------ IP lookup while ingesting
second=$results/events-n${ingest_events}-h50-s2-after.jsonl
start2=$(python3 - "$newest" <<'EOF'
import sys, datetime as dt
s = sys.argv[1].rstrip("Z").partition(".")[0]
t = dt.datetime.fromisoformat(s) + dt.timedelta(minutes=2)
print(t.replace(second=0).strftime("%Y-%m-%dT%H:%M:%SZ"))
EOF
)
chunks=$results/http-ingest-chunks
if [ ! -s "$second" ] || [ "$(cat "$chunks/.source" 2>/dev/null)" != "$(basename "$second") $start2 $batch" ]; then
    log "generating $second ($ingest_events events from $start2, seed 2)"
    python3 "$here/gen.py" --events "$ingest_events" --hosts 50 --seed 2 --start "$start2" --out "$second"
    rm -rf "$chunks"; mkdir -p "$chunks"
    split -l "$batch" -d -a 3 "$second" "$chunks/batch-"
    echo "$(basename "$second") $start2 $batch" >"$chunks/.source"
fi

stop=$work/ingest.stop
ingest_loop() {
    local i=0 c t0 t1 code
    for c in "$chunks"/batch-*; do
        [ "$c" = "$chunks/batch-000" ] && continue   # POSTed alone, before
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
# The first batch alone (no other load), for comparison.
log "POST of $batch events alone"
a0=$(now)
code=$(curl -s -o "$work/post-alone.json" -w '%{http_code}' -X POST -H 'Expect:' \
    -H 'Content-Type: application/x-ndjson' --data-binary "@$chunks/batch-000" "$api/events") || code=000
a1=$(now)
[ "$code" = 200 ] || die "POST of batch-000 gave HTTP $code: $(head -c 300 "$work/post-alone.json")"
echo "$a0 $a1" >"$work/post-alone.time"
log "wrk ip-popular-ingest with POSTs of $batch events from $(basename "$second") beside it"
: >"$work/posts.txt"
ingest_loop &
ingest_pid=$!
sleep 0.5
wrk_t0=$(now)
run_wrk ip-popular-ingest "$url_pop"
wrk_t1=$(now)
touch "$stop"
wait "$ingest_pid" || true
ingest_pid=
curl -sf "$api/health" >"$work/health-after.json" || die "netwhod stopped answering after the ingest run"

# ------------------------------------------------------------ report
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD -- server api store common include 2>/dev/null || commit="$commit (+ work tree)"
export H_POPULAR=$popular H_RARE=$rare H_WIN_FROM=$win_from H_WIN_TO=$win_to H_SPAN_FROM=$span_from \
    H_NEWEST=$newest H_ETAG=$etag H_COMMIT=$commit H_DURATION=$duration H_THREADS=$wrk_threads \
    H_CONNS=$conns H_REQUESTS=$requests H_BATCH=$batch H_SECOND=$(basename "$second") \
    H_WRK_T0=$wrk_t0 H_WRK_T1=$wrk_t1 H_INPUT=$(basename "$input") H_PORT=$port
python3 - "$work" "$results/http_latest.md" <<'EOF'
import json, os, re, sys
work, out = sys.argv[1], sys.argv[2]
E = os.environ
cfg = dict(popular=E["H_POPULAR"], rare=E["H_RARE"], win_from=E["H_WIN_FROM"], win_to=E["H_WIN_TO"],
           span_from=E["H_SPAN_FROM"], newest=E["H_NEWEST"], etag=E["H_ETAG"], commit=E["H_COMMIT"],
           duration=int(E["H_DURATION"]), threads=int(E["H_THREADS"]), conns=int(E["H_CONNS"]),
           requests=int(E["H_REQUESTS"]), batch=int(E["H_BATCH"]), second=E["H_SECOND"],
           wrk_t0=float(E["H_WRK_T0"]), wrk_t1=float(E["H_WRK_T1"]), input=E["H_INPUT"], port=int(E["H_PORT"]))

def ms(s):
    m = re.match(r"([\d.]+)(us|ms|s)$", s)
    v = float(m.group(1))
    return v / 1000 if m.group(2) == "us" else v * 1000 if m.group(2) == "s" else v

def wrk(name):
    t = open(os.path.join(work, "wrk-%s.txt" % name)).read()
    r = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1)),
         "p50": ms(re.search(r"^\s*50%\s+(\S+)", t, re.M).group(1)),
         "p99": ms(re.search(r"^\s*99%\s+(\S+)", t, re.M).group(1)),
         "n": int(re.search(r"(\d+) requests in", t).group(1))}
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
    sock = re.search(r"Socket errors: (.*)", t)
    r["errors"] = (("%s non-2xx/3xx" % bad.group(1)) if bad else "") + (("; socket errors: " + sock.group(1)) if sock else "")
    st = re.search(r"status 304: (\d+), other: (\d+)", t)
    if st:
        r["errors"] = (r["errors"] + "; " if r["errors"] else "") + "%s x 304, %s other" % st.groups()
    r["load"] = open(os.path.join(work, "load-%s.txt" % name)).read().strip()
    return r

def f(v): return "%.2f ms" % v if v >= 0.995 else "%d µs" % round(v * 1000)
health = json.load(open(os.path.join(work, "health.json")))
answers = [l.split(None, 2) for l in open(os.path.join(work, "answers.txt"))]
rows_of = lambda i: "%s rows, %s B" % (answers[i][0], format(int(answers[i][1]), ","))

# The POSTs during the last wrk run.
posts, acc, rej, busy, codes = [], 0, 0, 0.0, []
for l in open(os.path.join(work, "posts.txt")):
    t0, t1, code, path = l.split()
    t0, t1 = float(t0), float(t1)
    codes.append(code)
    try:
        j = json.load(open(path))
    except Exception:
        j = {}
    acc += j.get("accepted", 0); rej += j.get("rejected", 0)
    posts.append((t0, t1))
if posts:
    ing_wall = posts[-1][1] - posts[0][0]
    overlap = sum(max(0.0, min(b, cfg["wrk_t1"]) - max(a, cfg["wrk_t0"])) for a, b in posts)
    wrk_len = cfg["wrk_t1"] - cfg["wrk_t0"]
else:
    ing_wall = overlap = 0.0; wrk_len = cfg["wrk_t1"] - cfg["wrk_t0"]
ing_rate = acc / ing_wall if ing_wall > 0 else 0

a0, a1 = map(float, open(os.path.join(work, "post-alone.time")).read().split())
alone = json.load(open(os.path.join(work, "post-alone.json")))["accepted"] / (a1 - a0)
py = json.load(open(os.path.join(work, "pyclient.json")))
cpu = "?"
for l in open("/proc/cpuinfo"):
    if l.startswith("model name"):
        cpu = l.split(":", 1)[1].strip(); break
mem = "?"
for l in open("/proc/meminfo"):
    if l.startswith("MemTotal"):
        mem = "%.1f GiB" % (int(l.split()[1]) / 1048576); break
import datetime as dt, platform
wrkv = os.popen("wrk -v 2>&1 | head -1").read().split(" [")[0].strip()
L = []
w = L.append
w("## netwhod HTTP -- %s, %d connections in the store" % (cfg["input"], health["connections"]))
w("")
w("- date (UTC): %s" % dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ"))
w("- machine: %d CPUs (nproc), %s, %s RAM, Linux %s -- **wrk and netwhod share these %d cores**" % (os.cpu_count(), cpu, mem, platform.release(), os.cpu_count()))
w("- commit: netwho %s, Release (build-rel)" % cfg["commit"])
w("- load: %s `-t %d -c %d -d %ds --latency`, keep-alive, 127.0.0.1:%d (loopback only); Python %s http.client, %d sequential requests on one keep-alive connection" % (wrkv, cfg["threads"], cfg["conns"], cfg["duration"], cfg["port"], platform.python_version(), cfg["requests"]))
w("- data: %s .. %s (newest event %s); popular IP `%s`, rare IP `%s`; window `from=%s&to=%s` (the last 5 minutes)" % (cfg["span_from"], cfg["newest"][:19] + "Z", cfg["newest"], cfg["popular"], cfg["rare"], cfg["win_from"], cfg["win_to"]))
w("")
w("| request | client, transport | requests/s | p50 | p99 | answer | notes |")
w("|---|---|---|---|---|---|---|")
def wrow(label, name, answer, note=""):
    r = wrk(name)
    notes = "; ".join(x for x in (note, r["errors"], "load avg after: " + r["load"]) if x)
    w("| %s | wrk, TCP | **%s** | %s | %s | %s | %s |" % (label, format(round(r["rps"]), ","), f(r["p50"]), f(r["p99"]), answer, notes))
    return r
h = wrow("`GET /api/v1/health` (baseline: no query)", "health", "-")
pop = wrow("`GET /ips/%s/processes` (popular)" % cfg["popular"], "ip-popular", rows_of(0), "JSON default page: 100 rows")
rare = wrow("`GET /ips/%s/processes` (rare)" % cfg["rare"], "ip-rare", rows_of(1))
win = wrow("`GET /connections?from=..&to=..&limit=100` (last 5 min)", "window", rows_of(2))
e304 = wrow("popular IP with `If-None-Match` (304)", "ip-popular-304", "304, no body", "ETag %s; the wrk script counts statuses" % cfg["etag"])
for p in py:
    label = "`GET /ips/%s/processes` (%s)" % (p["ip"], "popular" if p["ip"] == cfg["popular"] else "rare")
    w("| %s | Python, %s | %s | %s | %s | %s B | sequential, 1 connection |" % (label, "Unix socket" if p["transport"] == "unix" else "TCP", format(round(p["rps"]), ","), f(p["p50"] * 1000), f(p["p99"] * 1000), format(p["bytes"], ",")))
ing = wrow("popular IP **while ingesting**", "ip-popular-ingest", rows_of(0),
           "beside it: %d POST(s) of %d events (%s), %s accepted, %d rejected in %.1f s = **%s events/s** (one POST with nothing else running: %s events/s); POSTs busy %.1f s of the %.1f s wrk run; HTTP %s" %
           (len(posts), cfg["batch"], cfg["second"], format(acc, ","), rej, ing_wall, format(round(ing_rate), ","), format(round(alone), ","), overlap, wrk_len, ",".join(sorted(set(codes)))))
w("")
w("Against the targets of issue 3 (this 2-core machine, wrk sharing the cores):")
w("")
w("| target | measured | |")
w("|---|---|---|")
ok = lambda b: "met" if b else "**not met**"
w("| >= 10,000 requests/s | IP lookup: popular %s, rare %s; 304 path %s; health %s | %s |" % (
    format(round(pop["rps"]), ","), format(round(rare["rps"]), ","), format(round(e304["rps"]), ","), format(round(h["rps"]), ","),
    ok(pop["rps"] >= 10000) + " (popular), " + ok(rare["rps"] >= 10000) + " (rare)"))
w("| IP lookup p50 < 2 ms | popular %s, rare %s (while ingesting: %s) | %s |" % (f(pop["p50"]), f(rare["p50"]), f(ing["p50"]),
    ok(pop["p50"] < 2) + " (popular), " + ok(rare["p50"] < 2) + " (rare)"))
w("| IP lookup p99 < 20 ms | popular %s, rare %s (while ingesting: %s) | %s |" % (f(pop["p99"]), f(rare["p99"]), f(ing["p99"]),
    ok(pop["p99"] < 20) + " (popular), " + ok(rare["p99"] < 20) + " (rare)" + ", " + ok(ing["p99"] < 20) + " (while ingesting)"))
text = "\n".join(L) + "\n"
open(out, "w").write(text)
sys.stdout.write(text)
EOF
log "raw outputs in $work; table in $results/http_latest.md"
