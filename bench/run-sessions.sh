#!/usr/bin/env bash
# Runs the session-start benchmark against a fresh `kindling serve` with a
# standby pool, and writes bench/results/<date>-sessions.md.
#   bash bench/run-sessions.sh [extra args for bench/sessions.mjs]
set -euo pipefail
cd "$(dirname "$0")/.."
pool_min="${POOL_MIN:-4}"
pool_max="${POOL_MAX:-16}"
data_dir="$(mktemp -d /tmp/kindling-bench.XXXXXX)"
./build/src/cli/kindling serve --listen 127.0.0.1:0 --data-dir "$data_dir" --max-sessions 64 \
  --pool-min "$pool_min" --pool-max "$pool_max" >"$data_dir/serve.log" 2>&1 &
server=$!
trap 'kill -TERM $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$data_dir"' EXIT
for _ in $(seq 100); do grep -q "listening on" "$data_dir/serve.log" && break; sleep 0.1; done
url=$(grep -o 'http://[0-9.:]*' "$data_dir/serve.log" | head -1)
node bench/sessions.mjs --server "$url" --api-key "$(head -n1 "$data_dir/api-key")" \
  --command "POOL_MIN=$pool_min POOL_MAX=$pool_max bash bench/run-sessions.sh $*" "$@"
