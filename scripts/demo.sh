#!/usr/bin/env bash
# Installs dependencies, builds netwho, ingests the bundled sample into a
# local store (./demo-store), asks it a first question, then serves the REST
# API on http://127.0.0.1:8080 until Ctrl-C.  --no-serve stops after the
# first answers; PORT=9090 picks another port.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
store=demo-store
rm -rf "$store"
echo "== ingest: the provider's real example events, a generated sample, and real"
echo "   Kernel-Process and Sysmon (1, 3, 5) events that name the processes"
./build/netwho ingest --store "$store" --host DEMO-HOST --quiet \
    tests/data/kernel_network_seed_examples.jsonl tests/data/sample.ndjson \
    tests/data/kernel_process_start_detectionwiki_example.json tests/data/sysmon_*.jsonl
echo
echo "== who talked to 10.2.10.11 (the seed capture's DNS server)?"
./build/netwho who --store "$store" --ip 10.2.10.11 --limit 5 -o table
echo
echo "== connections with port 5985 (WinRM) at either end"
./build/netwho query --store "$store" --port 5985 --limit 5 -o table
echo
echo "== which connections did powershell.exe make? (PowerShell remoting, real Sysmon data)"
./build/netwho query --store "$store" --process powershell.exe --limit 5 -o table
if [ "${1:-}" = "--no-serve" ]; then
    exit 0
fi
port=${PORT:-8080}
echo
echo "== serving $store on http://127.0.0.1:$port (Ctrl-C stops). Try:"
echo "   curl 'http://127.0.0.1:$port/api/v1/ips/10.2.10.11/processes'"
echo "   curl 'http://127.0.0.1:$port/api/v1/connections?port=5985&limit=3'"
echo "   curl 'http://127.0.0.1:$port/api/v1/stats/top?by=remote_ip&limit=5'"
echo "   curl 'http://127.0.0.1:$port/api/v1/export/sysmon?process=powershell.exe&format=xml'"
exec ./build/netwhod --store "$store" --listen "127.0.0.1:$port"
