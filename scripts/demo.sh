#!/usr/bin/env bash
# Installs dependencies, builds netwho, ingests the bundled sample into a
# local store (./demo-store) and asks it a first question.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
store=demo-store
rm -rf "$store"
echo "== ingest: the provider's real example events and a generated sample"
./build/netwho ingest --store "$store" --host DEMO-HOST --quiet \
    tests/data/kernel_network_seed_examples.jsonl tests/data/sample.ndjson
echo
echo "== who talked to 10.2.10.11 (the seed capture's DNS server)?"
./build/netwho who --store "$store" --ip 10.2.10.11 -o table
echo
echo "== connections with port 5985 (WinRM) at either end"
./build/netwho query --store "$store" --port 5985 -o table
