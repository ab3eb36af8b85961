#!/usr/bin/env bash
# The hardening half of the test suite: the parsers and the VMM under
# AddressSanitizer + UBSan, and every libFuzzer target for a bounded time.
# Called by scripts/test.sh after the main build's tests.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzz_seconds="${KINDLING_FUZZ_SECONDS:-15}"

echo "== sanitizer build (ASan + UBSan) into ./build-asan"
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DKINDLING_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$(nproc)" --target unit_tests agent_parsers_test kindling-vmm vmm_unit_tests vmm_guest_tests
(cd build-asan && ctest --output-on-failure --timeout 300 -R '^(unit|vmm)\.' -E 'fuzz')
build-asan/tests/agent/agent_parsers_test --gtest_brief=1

echo "== fuzzing (libFuzzer, clang), ${fuzz_seconds} s per target"
CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKINDLING_FUZZ=ON >/dev/null
fuzzers=(fuzz_api_request fuzz_extension_archive fuzz_profile_archive fuzz_agent_frames fuzz_agent_host_input fuzz_forward_proxy vmm_fuzz_http_request_parser vmm_fuzz_virtqueue vmm_fuzz_block_request vmm_fuzz_vsock_packet vmm_fuzz_net_frame vmm_fuzz_snapshot)
cmake --build build-fuzz -j"$(nproc)" --target "${fuzzers[@]}"
for f in "${fuzzers[@]}"; do
  bin=$(find build-fuzz -type f -name "$f" -perm -u+x | head -n1)
  corpus="build-fuzz/corpus/$f"
  mkdir -p "$corpus"
  echo "-- $f"
  "$bin" -max_total_time="$fuzz_seconds" -max_len=65536 -print_final_stats=0 "$corpus" 2>&1 | tail -n 2
done
echo "fuzzing: ${#fuzzers[@]} targets ran ${fuzz_seconds} s each without a crash"
