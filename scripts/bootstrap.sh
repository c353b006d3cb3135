#!/usr/bin/env bash
# Install everything pyflow needs on Debian 12 and build it into .venv.
# Idempotent and quiet when there is nothing to do.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

APT_PACKAGES=(clang llvm libbpf-dev libxdp-dev libelf-dev zlib1g-dev libdpdk-dev dpdk dpdk-dev meson ninja-build
  pkg-config iproute2 ethtool procps util-linux iputils-arping tcpdump python3-venv python3-dev gcc make bpftool)
VENV=${PYFLOW_VENV:-.venv}

need=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if ((${#need[@]})); then
  echo "bootstrap: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "bootstrap: creating $VENV" >&2
  /usr/bin/python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
fi

# Rebuild only when a tracked source changed since the last install.
stamp="$VENV/.pyflow-build-stamp"
source_sum() {
  find native bpf pyflow tools conf meson.build meson.options pyproject.toml VERSION -type f \
    ! -name '*.pyc' -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1
}
sum=$(source_sum)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$sum" ] || ! (cd / && "$ROOT/$VENV/bin/python" -c 'import pyflow.native' 2>/dev/null); then
  echo "bootstrap: building pyflow" >&2
  log=$(mktemp)
  if ! "$VENV/bin/pip" install -q ".[test,bench]" >"$log" 2>&1; then
    grep -v "WARNING: Location" "$log" >&2; rm -f "$log"
    echo "bootstrap: build failed" >&2; exit 1
  fi
  rm -f "$log"
  (cd / && "$ROOT/$VENV/bin/python" -c 'import pyflow.native')
  echo "$sum" > "$stamp"
fi
