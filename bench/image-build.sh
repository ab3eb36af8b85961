#!/usr/bin/env bash
# Measures a cold `kindling image build` (into a fresh store, so nothing is
# cached but the host's apt lists) and the cache hit after it, and writes
# bench/results/<date>-image.md with the machine it ran on.
#   bash bench/image-build.sh            (as root; downloads ~200 MB from Debian)
set -euo pipefail
cd "$(dirname "$0")/.."
store="$(mktemp -d /tmp/kindling-image-bench.XXXXXX)"
trap 'rm -rf "$store"' EXIT
kindling=./build/src/cli/kindling
cold_log="$store.cold.log"
start=$(date +%s%N)
"$kindling" image build --out "$store" | tee "$cold_log"
cold_ms=$(( ($(date +%s%N) - start) / 1000000 ))
start=$(date +%s%N)
"$kindling" image build --out "$store" >/dev/null
hit_ms=$(( ($(date +%s%N) - start) / 1000000 ))
manifest="$store/current/manifest.json"
out="bench/results/$(date -u +%Y-%m-%d)-image.md"
{
  echo "# kindling image build, $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  echo "Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(free -g | awk '/Mem:/{print $2}') GiB, Linux $(uname -r)"
  echo "Command: \`bash bench/image-build.sh\`"
  echo
  echo "| what | value |"
  echo "|---|---|"
  echo "| cold build (s) | $((cold_ms / 1000)).$(( (cold_ms % 1000) / 100 )) |"
  echo "| cache hit (s) | $((hit_ms / 1000)).$(( (hit_ms % 1000) / 100 )) |"
  node -e '
    const m = require(process.argv[1]);
    const mb = (b) => (b / 1e6).toFixed(1);
    console.log(`| Chromium | ${m.chromium_version} |`);
    console.log(`| packages | ${m.packages.length} |`);
    console.log(`| root, uncompressed (MB) | ${mb(m.rootfs_bytes)} |`);
    console.log(`| image, ${m.image.filesystem} ${m.image.compression} (MB) | ${mb(m.image.bytes)} |`);
    console.log(`| kernel ${m.boot.kernel_version} (MB) | ${mb(m.boot.kernel.bytes)} |`);
    console.log(`| initramfs, ${m.boot.modules.length} modules (MB) | ${mb(m.boot.initramfs.bytes)} |`);
    for (const [step, s] of Object.entries(m.step_seconds)) console.log(`| step: ${step} (s) | ${s.toFixed(1)} |`);
  ' "$manifest"
} | tee "$out"
rm -f "$cold_log"
echo "written: $out"
