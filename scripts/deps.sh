#!/usr/bin/env bash
# Installs what netwho needs to build, test and run, from Debian's packages.
# Idempotent: installs only what is missing.  Needs root (or sudo).
set -euo pipefail

pkgs=(gcc make cmake pkg-config libsqlite3-dev libcjson-dev libmicrohttpd-dev check
      nettle-dev zlib1g-dev
      python3 sqlite3 curl)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
# The API contract (openapi.yaml) is checked with @redocly/cli from the npm
# registry; use the machine's Node.js if it has one, else Debian's.
if ! command -v npm >/dev/null 2>&1; then
    missing+=(nodejs npm)
fi
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
echo "netwho: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
