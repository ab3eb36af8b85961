#!/usr/bin/env bash
# The whole test suite: install, build, then every unit, integration and e2e
# test through ctest. Extra arguments go to ctest (e.g. -R e2e -V).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then echo "run as root (tests create namespaces, cgroups and VMs)" >&2; exit 1; fi

bash scripts/install-deps.sh
bash scripts/build.sh
# Machines run from the guest image by default (docs/image.md): build it, or
# find it cached (unchanged inputs: a few seconds). KINDLING_ROOT=host skips it.
if [ "${KINDLING_ROOT:-image}" = image ]; then
  echo "== guest image (kindling image build, cached)"
  ./build/src/cli/kindling image build
fi
# Sanitizers and fuzzing first; KINDLING_SKIP_HARDENING=1 skips them for a
# quick run, and they are skipped when ctest arguments select tests.
if [ "${KINDLING_SKIP_HARDENING:-0}" != 1 ] && [ $# -eq 0 ]; then
  bash scripts/hardening.sh
fi
echo "== testing (ctest): unit, agent, node, vmm + guests, e2e"
cd build
ctest --output-on-failure --timeout 900 "$@"
