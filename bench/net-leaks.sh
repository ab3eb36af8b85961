#!/usr/bin/env bash
# Network teardown under many cycles (issue 3): runs tests/e2e/network-leaks
# with KINDLING_NET_CYCLES create/release cycles (default 500) against the
# built server, and prints the machine and the result. CI runs the same test
# with 30 cycles.
#   bash bench/net-leaks.sh [cycles]
set -euo pipefail
cd "$(dirname "$0")/.."
cycles="${1:-500}"
echo "machine: $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r), $(date -u +%FT%TZ)"
echo "command: bash bench/net-leaks.sh $cycles"
KINDLING_NET_CYCLES="$cycles" KINDLING_BIN="${KINDLING_BIN:-$PWD/build/src/cli/kindling}" \
  node --test --test-reporter=spec tests/e2e/network-leaks.test.mjs
