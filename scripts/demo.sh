#!/usr/bin/env bash
# The main job, end to end: install, build, start `kindling serve`, create a
# browser session through the API, drive it with Playwright over CDP, print the
# page title and the timings, release the session, stop the server.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then echo "run as root (the sandbox needs namespaces and cgroups)" >&2; exit 1; fi

bash scripts/install-deps.sh
bash scripts/build.sh
# Machines run from the guest image by default (docs/image.md): build it, or
# find it cached (unchanged inputs: a second). KINDLING_ROOT=host skips it.
if [ "${KINDLING_ROOT:-image}" = image ]; then
  echo "== guest image (kindling image build, cached)"
  ./build/src/cli/kindling image build
fi

port="${KINDLING_DEMO_PORT:-8600}"
data_dir="$(mktemp -d /tmp/kindling-demo.XXXXXX)"
log="$data_dir/serve.log"
: >"$log"
./build/src/cli/kindling serve --listen "127.0.0.1:$port" --data-dir "$data_dir" >"$log" 2>&1 &
server=$!
cleanup() {
  kill -TERM "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
  rm -rf "$data_dir"
}
trap cleanup EXIT

for _ in $(seq 100); do
  grep -q "listening on" "$log" && break
  kill -0 "$server" 2>/dev/null || { cat "$log"; exit 1; }
  sleep 0.1
done
echo "== server"
sed -n '1,4p' "$log"
echo "== demo"
node examples/demo.mjs --server "http://127.0.0.1:$port" --api-key "$(head -n1 "$data_dir/api-key")"
