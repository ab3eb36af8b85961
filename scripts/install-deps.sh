#!/usr/bin/env bash
# Installs what Kindling needs to build, run and test, from Debian's packages
# and the npm registry only. Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  # build
  g++ cmake ninja-build pkg-config git
  libboost-dev nlohmann-json3-dev libspdlog-dev libfmt-dev libcli11-dev
  libsqlite3-dev libssl-dev zlib1g-dev libseccomp-dev libcap-dev libgtest-dev libgmock-dev
  clang libclang-rt-14-dev
  # run: the browser and the tools the node drives
  chromium fonts-liberation util-linux iproute2 nftables procps
  # the guest image (kindling image build, docs/image.md): mmdebstrap for the
  # root, mksquashfs to compress it (the initramfs is written by kindling)
  mmdebstrap squashfs-tools
  # clients and tests
  nodejs qemu-system-x86 python3 python3.11-doc
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "== installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
if ! command -v npm >/dev/null; then
  echo "== installing npm"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm
fi

# Node clients (Playwright, Puppeteer, ws) at the versions in package-lock.json.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "== installing npm packages (package-lock.json)"
  npm ci --no-audit --no-fund --loglevel=error
fi
