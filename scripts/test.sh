#!/usr/bin/env bash
# The whole test suite: install, build, then every unit, integration and e2e
# test through ctest. Extra arguments go to ctest (e.g. -R e2e -V).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then echo "run as root (tests create namespaces, cgroups and VMs)" >&2; exit 1; fi

bash scripts/install-deps.sh
bash scripts/build.sh
# The guest image (docs/image.md): built once, then a cache hit while its
# inputs (recipe, Debian candidate versions, agent, init) stay the same. The
# build prints each step's time and the image size; ctest's image.build is
# then a cache hit, and image.check and every e2e test run from it.
echo "== guest image (kindling image build)"
time ./build/src/cli/kindling image build
# Sanitizers and fuzzing first; KINDLING_SKIP_HARDENING=1 skips them for a
# quick run, and they are skipped when ctest arguments select tests.
if [ "${KINDLING_SKIP_HARDENING:-0}" != 1 ] && [ $# -eq 0 ]; then
  bash scripts/hardening.sh
fi
echo "== testing (ctest): unit, agent, node, vmm + guests, e2e"
cd build
ctest --output-on-failure --timeout 900 "$@"
