#!/usr/bin/env bash
# Installs the Debian packages the project needs, if any is missing.
# Sourced by run-tests.sh and run-local.sh; safe to run on its own.
set -euo pipefail

AP_PACKAGES=(
  cmake g++ make pkg-config ccache
  libcaf-dev libboost-dev libboost-system-dev libboost-test-dev
  rapidjson-dev libpq-dev libcrypto++-dev libssl-dev libjemalloc-dev
  postgresql postgresql-client openssl
  prometheus curl systemd
)

ap_install_missing() {
  local missing=()
  for pkg in "${AP_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "installing: ${missing[*]}" >&2
  local sudo=()
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || { echo "missing packages (install them as root): ${missing[*]}" >&2; return 1; }
    sudo=(sudo)
  fi
  "${sudo[@]}" apt-get update -q
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# Configures and builds into build/ (two jobs: one CAF+Beast unit needs ~800 MB).
ap_build() {  # [TYPE [DIR [CMAKE_ARGS...]]]
  local type=${1:-RelWithDebInfo} dir=${2:-build}
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE="$type" "${@:3}" >/dev/null
  cmake --build "$dir" -j"${AP_BUILD_JOBS:-2}"
}

# Prints a TCP port on 127.0.0.1 that nothing listens on, from $1 upwards.
ap_free_port() {
  local port=$1
  while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done
  echo "$port"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  ap_install_missing
fi
