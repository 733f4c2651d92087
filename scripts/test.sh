#!/usr/bin/env bash
# Installs dependencies, builds netwho with AddressSanitizer and
# UndefinedBehaviorSanitizer from scratch, and runs every test (ctest).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh
build=build-test
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Debug -DNETWHO_SANITIZE=ON >/dev/null
cmake --build "$build" -j"$(nproc)"
# Leaks fail the run; UB stops at the first report with a stack.
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
cd "$build"
ctest --output-on-failure --timeout 300 -j2
