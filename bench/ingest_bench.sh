#!/usr/bin/env bash
# ingest_bench.sh -- netwho's ingest and "who talked to this IP" against two
# baselines (the sqlite3 shell with JSON functions, DuckDB), side by side on
# one generated file.  See bench/README.md.
#
#   bench/ingest_bench.sh [--events N] [--hosts H] [--seed S] [--runs R]
#                         [--only netwho|sqlite|duckdb[,...]] [--iterations N]
#                         [--no-build]
#
# Prints a markdown table and writes it to bench/results/latest.md.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
results=$here/results
util=$here/bench_util.py

events=1000000
hosts=50
seed=1
runs=3
only=netwho,sqlite,duckdb
nw_iterations=1000      # netwho_query_bench runs per IP
sqlite_iterations=200   # in-process sqlite3 runs per IP
shell_iterations=11     # sqlite3 shell .timer runs per IP (first = warm-up)
duck_iterations=50      # DuckDB runs per IP
build=1

usage() {
    sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit "${1:-2}"
}

while [ $# -gt 0 ]; do
    case $1 in
        --events) events=$2; shift 2 ;;
        --hosts) hosts=$2; shift 2 ;;
        --seed) seed=$2; shift 2 ;;
        --runs) runs=$2; shift 2 ;;
        --only) only=$2; shift 2 ;;
        --iterations) nw_iterations=$2; shift 2 ;;
        --no-build) build=0; shift ;;
        -h|--help) usage 0 ;;
        *) echo "ingest_bench: unknown argument: $1" >&2; usage ;;
    esac
done
for n in "$events" "$hosts" "$seed" "$runs" "$nw_iterations"; do
    case $n in ''|*[!0-9]*) echo "ingest_bench: not a number: $n" >&2; usage ;; esac
done
[ "$runs" -ge 1 ] || { echo "ingest_bench: --runs must be >= 1" >&2; exit 2; }
want() { case ",$only," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
for s in ${only//,/ }; do
    case $s in netwho|sqlite|duckdb) ;; *) echo "ingest_bench: --only takes netwho, sqlite, duckdb" >&2; exit 2 ;; esac
done

log() { printf '[ingest_bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
now() { date +%s.%N; }
elapsed() { python3 -c "import sys; print('%.3f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$1" "$2"; }

apt_install() {   # apt_install PACKAGE: the Debian package, if apt-get can
    if command -v apt-get >/dev/null 2>&1; then
        log "installing the Debian package $1"
        local sudo=
        [ "$(id -u)" -eq 0 ] || sudo=sudo
        $sudo apt-get install -y -q "$1" >/dev/null 2>&1 ||
            { $sudo apt-get update -q >/dev/null 2>&1 &&
              $sudo apt-get install -y -q "$1" >/dev/null 2>&1; } || true
    fi
}

[ -x /usr/bin/time ] || apt_install time
[ -x /usr/bin/time ] || { echo "ingest_bench: /usr/bin/time is missing (Debian package time)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "ingest_bench: python3 is needed" >&2; exit 1; }

mkdir -p "$results"
key="n$events-h$hosts-s$seed"
data=$results/events-$key.jsonl
expect=$results/events-$key.expect.json
dataset=$results/dataset-$key.json
work=$results/work-$key
mkdir -p "$work"

# ---------------------------------------------------------------- the input
if [ ! -s "$data" ] || [ ! -s "$expect" ] || [ ! -s "$dataset" ]; then
    [ -f "$here/gen.py" ] || { echo "ingest_bench: bench/gen.py is missing" >&2; exit 1; }
    log "generating $events events ($hosts hosts, seed $seed) into $data"
    rm -f "$dataset"
    python3 "$here/gen.py" --events "$events" --hosts "$hosts" --seed "$seed" \
        --out "$data.tmp" --expect "$expect.tmp"
    mv "$expect.tmp" "$expect"
    mv "$data.tmp" "$data"
    read -r popular rare < <(python3 "$util" pick-ips "$data")
    python3 "$util" expect-who "$expect" "$popular" "$rare" \
        > "$results/who-expected-$key.jsonl"
    python3 - "$dataset" "$data" "$events" "$hosts" "$seed" "$popular" "$rare" <<'EOF'
import json, os, sys
out, f, n, h, s, pop, rare = sys.argv[1:]
json.dump({"file": f, "events": int(n), "hosts": int(h), "seed": int(s),
           "file_bytes": os.path.getsize(f), "popular": pop, "rare": rare},
          open(out, "w"), indent=1)
EOF
else
    log "reusing $data"
fi
read -r popular rare < <(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["popular"], d["rare"])' "$dataset")
log "queried addresses: popular $popular, rare $rare"

store_bytes_of() {   # du -sb of a store without its rejected/ dead letters
    local total rej=0
    total=$(du -sb "$1" | cut -f1)
    [ -d "$1/rejected" ] && rej=$(du -sb "$1/rejected" | cut -f1)
    echo $((total - rej))
}

median_of() { python3 -c 'import statistics,sys; print(statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }

# ------------------------------------------------------------------- netwho
run_netwho() {
    local bin=$root/build-rel/netwho qbin=$root/build-rel/bench/netwho_query_bench
    local has_bench=0 targets=(netwho)
    if grep -Eq '^[[:space:]]*add_subdirectory\(bench\)' "$root/CMakeLists.txt"; then
        has_bench=1
        targets+=(netwho_query_bench)
    fi
    if [ "$build" = 1 ]; then
        # Only the targets the bench runs: a unit test that does not link
        # must not stop the benchmark.
        log "building Release into build-rel (targets: ${targets[*]})"
        (cd "$root" && cmake -S . -B build-rel -DCMAKE_BUILD_TYPE=Release >"$work/build.log" 2>&1 &&
            cmake --build build-rel -j2 --target "${targets[@]}" >>"$work/build.log" 2>&1) || {
            echo "ingest_bench: the Release build failed; see $work/build.log:" >&2
            grep -m 10 -E 'error|Error|undefined reference' "$work/build.log" >&2 || tail -n 20 "$work/build.log" >&2
            return 1
        }
    fi
    [ -x "$bin" ] || { echo "ingest_bench: no $bin (is server/cli*.c there?)" >&2; return 1; }
    if [ "$has_bench" = 0 ]; then
        # The top-level CMakeLists.txt does not add_subdirectory(bench) yet:
        # link the query bench against build-rel's libraries by hand.
        qbin=$root/build-rel/netwho_query_bench
        local libs=() l
        for l in api store collector common; do
            [ -f "$root/build-rel/libnetwho_$l.a" ] && libs+=("$root/build-rel/libnetwho_$l.a")
        done
        log "compiling bench/query_bench.c by hand (no add_subdirectory(bench) yet)"
        cc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE \
            -I"$root/include" "$here/query_bench.c" "${libs[@]}" \
            $(pkg-config --libs sqlite3 libcjson) -lpthread -lm -o "$qbin" || return 1
    fi
    [ -x "$qbin" ] || { echo "ingest_bench: no $qbin" >&2; return 1; }

    local runsf=$work/netwho-runs.txt store=$work/netwho-store i t0 t1 rss cpu
    : >"$runsf"
    for i in $(seq 1 "$runs"); do
        rm -rf "$store"
        sync
        log "netwho ingest, run $i/$runs"
        t0=$(now)
        /usr/bin/time -v -o "$work/netwho-time-$i.txt" \
            "$bin" ingest --store "$store" --quiet "$data" \
            >"$work/netwho-summary-$i.json" 2>"$work/netwho-stderr-$i.txt" || {
            echo "ingest_bench: netwho ingest failed (run $i):" >&2
            tail -n 20 "$work/netwho-stderr-$i.txt" >&2
            return 1
        }
        t1=$(now)
        read -r rss cpu < <(python3 "$util" parse-time-v "$work/netwho-time-$i.txt")
        echo "$(elapsed "$t0" "$t1") $rss $cpu" >>"$runsf"
        log "  $(cat "$work/netwho-summary-$i.json")"
    done
    local bytes notes summary=$work/netwho-summary-$runs.json
    bytes=$(store_bytes_of "$store")
    notes=$(python3 - "$summary" "$events" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
n = int(sys.argv[2])
notes = ["ingest summary: %d events, %d accepted, %d rejected, %d connections, "
         "%d failures, %d late events, %d partitions; its own timer %.2f s"
         % (s.get("events", -1), s.get("accepted", -1), s.get("rejected", -1),
            s.get("connections", -1), s.get("failures", -1),
            s.get("late_events", -1), s.get("partitions", -1),
            s.get("seconds", -1))]
if s.get("accepted") != n:
    notes.append("PROBLEM: accepted %s of %d events (rejected_by_reason %s)"
                 % (s.get("accepted"), n, s.get("rejected_by_reason")))
print(" ;; ".join(notes))
EOF
)
    log "netwho who-talked-to queries ($nw_iterations runs per IP)"
    "$qbin" --store "$store" --iterations "$nw_iterations" --rows "$popular" "$rare" \
        >"$work/netwho-query.txt"
    python3 - "$work/netwho-query.txt" >"$work/netwho-query.jsonl" <<'EOF'
import json, sys
cur = None
out = []
for line in open(sys.argv[1]):
    line = line.rstrip("\n")
    if line.startswith("ip="):
        cur = {}
        for kv in line.split():
            k, v = kv.split("=", 1)
            try:
                v = float(v) if "." in v and k != "ip" else (v if k == "ip" else int(v))
            except ValueError:
                pass
            cur[k] = v
        cur["answer"] = []
        out.append(cur)
    elif line.startswith("row\t") and cur is not None:
        _, h, p, c, s, r = line.split("\t")
        cur["answer"].append([h, int(p), int(c), int(s), int(r)])
for q in out:
    print(json.dumps(q))
EOF
    # What the store holds (its catalog), against gen.py's expected counts.
    local stored
    stored=$(python3 - "$work/netwho-query.txt" "$expect" <<'EOF'
import json, sys
kv = {}
for line in open(sys.argv[1]):
    if line.startswith("store "):
        kv = dict(x.split("=", 1) for x in line.split()[1:])
e = json.load(open(sys.argv[2]))
s = "%s connections, %s transfer buckets, %s failures (%s partitions)" % (
    kv.get("connections"), kv.get("transfers"), kv.get("failures"),
    kv.get("partitions"))
if (int(kv.get("connections", -1)) != len(e["connections"]) or
        int(kv.get("failures", -1)) != len(e["failures"])):
    s += "; expected %d connections, %d failures" % (
        len(e["connections"]), len(e["failures"]))
print(s)
EOF
)
    python3 "$util" part "$results/part-netwho-$key.json" system=netwho \
        "version=netwho $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?') (+ work tree), Release, --threads $(nproc)" \
        "events=$events" "store_bytes=$bytes" "stored=$stored" "notes=$notes" \
        --runs "$runsf" --queries "$work/netwho-query.jsonl"
}

# ------------------------------------------------------------------- sqlite
run_sqlite() {
    command -v sqlite3 >/dev/null || apt_install sqlite3
    command -v sqlite3 >/dev/null || { echo "ingest_bench: no sqlite3 shell (Debian package sqlite3)" >&2; return 1; }
    local db=$work/sqlite.db sql=$work/sqlite-load.sql
    # One-column import of the NDJSON lines into a TEMP table (so the
    # database file holds only what is kept), then JSON functions extract
    # typed columns, then an index on the remote address.  raddr: see
    # duckdb_bench.mjs (daddr, but saddr for UDP receives 43/59;
    # lower-cased, "::ffff:" dropped in front of a dotted quad).
    local marks=$work/sqlite-marks.txt
    cat >"$sql" <<EOF
.shell echo start \$(date +%s.%N) >> '$marks'
CREATE TEMP TABLE raw(line TEXT);
.mode ascii
.separator "\\037" "\\n"
.import --schema temp '$data' raw
.mode list
CREATE TABLE events(time TEXT, host TEXT, event_id INTEGER, pid INTEGER,
                    size INTEGER, saddr TEXT, sport INTEGER, daddr TEXT,
                    dport INTEGER, raddr TEXT);
INSERT INTO events
SELECT time, host, event_id, pid, size, saddr, sport, daddr, dport,
       CASE WHEN r LIKE '::ffff:%.%' THEN substr(r, 8) ELSE r END
FROM (SELECT json_extract(line, '\$.system.time_created') AS time,
             json_extract(line, '\$.system.computer') AS host,
             CAST(trim(json_extract(line, '\$.system.event_id')) AS INTEGER) AS event_id,
             CAST(trim(json_extract(line, '\$.event_data.PID')) AS INTEGER) AS pid,
             CAST(trim(json_extract(line, '\$.event_data.size')) AS INTEGER) AS size,
             trim(json_extract(line, '\$.event_data.saddr')) AS saddr,
             CAST(trim(json_extract(line, '\$.event_data.sport')) AS INTEGER) AS sport,
             trim(json_extract(line, '\$.event_data.daddr')) AS daddr,
             CAST(trim(json_extract(line, '\$.event_data.dport')) AS INTEGER) AS dport,
             lower(trim(CASE WHEN trim(json_extract(line, '\$.system.event_id')) IN ('43', '59')
                             THEN json_extract(line, '\$.event_data.saddr')
                             ELSE json_extract(line, '\$.event_data.daddr') END)) AS r
      FROM temp.raw);
.shell echo loaded \$(date +%s.%N) >> '$marks'
CREATE INDEX events_raddr ON events(raddr);
.shell echo indexed \$(date +%s.%N) >> '$marks'
SELECT 'rows', count(*) FROM events;
EOF
    local runsf=$work/sqlite-runs.txt loads=() i t0 t1 rss cpu
    : >"$runsf"
    for i in $(seq 1 "$runs"); do
        rm -f "$db" "$db-journal" "$db-wal" "$db-shm" "$marks"
        sync
        log "sqlite3 shell load, run $i/$runs"
        t0=$(now)
        /usr/bin/time -v -o "$work/sqlite-time-$i.txt" \
            sqlite3 -bail "$db" <"$sql" >"$work/sqlite-log-$i.txt" 2>&1 || {
            echo "ingest_bench: the sqlite3 load failed (run $i):" >&2
            tail -n 20 "$work/sqlite-log-$i.txt" >&2
            return 1
        }
        t1=$(now)
        read -r rss cpu < <(python3 "$util" parse-time-v "$work/sqlite-time-$i.txt")
        echo "$(elapsed "$t0" "$t1") $rss $cpu" >>"$runsf"
        loads+=("$(awk '$1 == "start" { s = $2 } $1 == "loaded" { l = $2 }
                        END { printf "%.3f\n", l - s }' "$marks")")
        log "  $(grep '^rows' "$work/sqlite-log-$i.txt"), load ${loads[-1]} s, total $(tail -n 1 "$runsf")"
    done
    local bytes stored load_s
    bytes=$(stat -c %s "$db")
    stored=$(grep '^rows' "$work/sqlite-log-$runs.txt" | cut -d'|' -f2)" event rows"
    load_s=$(median_of "${loads[@]}")

    log "sqlite who-talked-to queries (in-process, $sqlite_iterations runs per IP)"
    python3 "$util" sqlite-query "$db" --iterations "$sqlite_iterations" "$popular" "$rare" \
        >"$work/sqlite-query.jsonl"
    log "sqlite who-talked-to queries (sqlite3 shell .timer, $shell_iterations runs per IP)"
    local tsql=$work/sqlite-timer.sql
    python3 - "$here" "$shell_iterations" "$popular" "$rare" >"$tsql" <<'EOF'
import sys
sys.path.insert(0, sys.argv[1])
import bench_util
q = " ".join(bench_util.WHO_SQL.split())
print(".timer on")   # "Run Time:" goes to stdout even with .output /dev/null
for ip in sys.argv[3:]:
    print(".output stdout")
    print(".print -- ip=%s" % ip)
    print(".output /dev/null")
    for _ in range(int(sys.argv[2])):
        print(q.replace("?", "'%s'" % ip.replace("'", "''")) + ";")
EOF
    sqlite3 -readonly "$db" <"$tsql" >"$work/sqlite-timer.txt" 2>&1
    python3 "$util" shell-timer "$work/sqlite-timer.txt" >"$work/sqlite-timer.jsonl"
    python3 - "$work/sqlite-query.jsonl" "$work/sqlite-timer.jsonl" <<'EOF'
import json, sys
qs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
tm = {d["ip"]: d for d in (json.loads(l) for l in open(sys.argv[2]) if l.strip())}
with open(sys.argv[1], "w") as f:
    for q in qs:
        q["shell_median_ms"] = tm.get(q["ip"], {}).get("median_ms")
        f.write(json.dumps(q) + "\n")
EOF
    local plans
    plans=$(python3 -c 'import json,sys; print("; ".join("%s: %s" % (d["ip"], d["plan"]) for d in map(json.loads, open(sys.argv[1]))))' "$work/sqlite-query.jsonl")
    python3 "$util" part "$results/part-sqlite-$key.json" system=sqlite \
        "version=sqlite3 $(sqlite3 --version | cut -d' ' -f1) shell" \
        "events=$events" "store_bytes=$bytes" "stored=$stored" "load_s=$load_s" \
        "notes=load = .import of the lines into a TEMP table + INSERT ... SELECT json_extract(...), without the index (median of runs); single-threaded ;; query latency measured in-process through Python's sqlite3 module on the same libsqlite3 (the shell's .timer has 1 ms resolution: its median is in parentheses) ;; query plans: $plans" \
        --runs "$runsf" --queries "$work/sqlite-query.jsonl"
}

# ------------------------------------------------------------------- duckdb
run_duckdb() {
    command -v node >/dev/null || { echo "ingest_bench: node is needed for the DuckDB baseline" >&2; return 1; }
    if [ ! -d "$here/node_modules/@duckdb/node-api" ]; then
        log "npm ci in bench/ (@duckdb/node-api)"
        (cd "$here" && npm ci --no-audit --no-fund >/dev/null 2>&1) || {
            echo "ingest_bench: npm ci in bench/ failed" >&2; return 1; }
    fi
    local db=$work/duck.duckdb runsf=$work/duckdb-runs.txt loads=() i t0 t1 rss cpu
    : >"$runsf"
    for i in $(seq 1 "$runs"); do
        rm -f "$db" "$db.wal"
        sync
        log "DuckDB load, run $i/$runs"
        t0=$(now)
        /usr/bin/time -v -o "$work/duckdb-time-$i.txt" \
            node "$here/duckdb_bench.mjs" load --db "$db" --input "$data" \
            >"$work/duckdb-load-$i.json" 2>"$work/duckdb-stderr-$i.txt" || {
            echo "ingest_bench: the DuckDB load failed (run $i):" >&2
            tail -n 20 "$work/duckdb-stderr-$i.txt" >&2
            return 1
        }
        t1=$(now)
        read -r rss cpu < <(python3 "$util" parse-time-v "$work/duckdb-time-$i.txt")
        echo "$(elapsed "$t0" "$t1") $rss $cpu" >>"$runsf"
        loads+=("$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["load_s"])' "$work/duckdb-load-$i.json")")
        log "  $(cat "$work/duckdb-load-$i.json")"
    done
    local last=$work/duckdb-load-$runs.json version bytes stored load_s info
    version=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["version"] + " (@duckdb/node-api), threads=%d" % d["threads"])' "$last")
    bytes=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["db_bytes"])' "$last")
    stored=$(python3 -c 'import json,sys; print("%d event rows" % json.load(open(sys.argv[1]))["rows"])' "$last")
    load_s=$(median_of "${loads[@]}")
    log "DuckDB who-talked-to queries ($duck_iterations runs per IP)"
    node "$here/duckdb_bench.mjs" query --db "$db" --iterations "$duck_iterations" \
        "$popular" "$rare" >"$work/duckdb-query.jsonl"
    info=$(python3 -c 'import json,sys; print("; ".join("%s: %s" % (d["ip"], d["plan"]) for d in map(json.loads, open(sys.argv[1]))))' "$work/duckdb-query.jsonl")
    python3 "$util" part "$results/part-duckdb-$key.json" system=duckdb \
        "version=$version" "events=$events" "store_bytes=$bytes" "stored=$stored" \
        "load_s=$load_s" \
        "notes=load = CREATE TABLE AS SELECT ... FROM read_json(explicit columns), without the index (median of runs); wall time includes starting node, the index and a CHECKPOINT ;; time_created cast to TIMESTAMPTZ keeps microseconds only ;; query plans: $info" \
        --runs "$runsf" --queries "$work/duckdb-query.jsonl"
}

failed=
for s in netwho sqlite duckdb; do
    if want "$s"; then
        "run_$s" || { failed="$failed $s"; log "$s: FAILED (see above)"; }
    fi
done

python3 "$util" report "$results" "$key" >"$results/latest.md"
cat "$results/latest.md"
if [ -n "$failed" ]; then
    echo "ingest_bench: failed:$failed" >&2
    exit 1
fi
