#!/usr/bin/env bash
# Configures and builds Kindling into ./build (Release with debug info).
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== building (cmake + ninja) into ./build"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"
