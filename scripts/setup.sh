#!/usr/bin/env bash
# Installs what building and testing brisk needs and is not on a fresh Debian machine with
# the Rust toolchain: libclang-dev (bindgen, for RocksDB), for the fault harness fuse3
# (fusermount3, for the power-loss filesystem) and nftables (network partitions), and for the
# Redis compatibility suite and the deployment-file checks redis-server and a Python
# virtualenv with redis-py, pytest and PyYAML.
# Idempotent; quiet when all is present.
set -euo pipefail

need_apt=()
# libclang itself (libclang.so or libclang-NN.so), not libclang-cpp, which clang-sys cannot use.
have_libclang() {
  local f
  for f in /usr/lib/llvm-*/lib/libclang.so* /usr/lib/llvm-*/lib/libclang-[0-9]*.so* \
      /usr/lib/x86_64-linux-gnu/libclang.so* /usr/lib/x86_64-linux-gnu/libclang-[0-9]*.so*; do
    [ -e "$f" ] && return 0
  done
  return 1
}
if ! have_libclang; then
  need_apt+=(libclang-dev)
fi
command -v fusermount3 >/dev/null 2>&1 || need_apt+=(fuse3)
command -v nft >/dev/null 2>&1 || [ -x /usr/sbin/nft ] || need_apt+=(nftables)
# The Redis compatibility suite runs against a real redis-server too.
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
# promtool (Debian's prometheus package) lints the /metrics page in the tests.
command -v promtool >/dev/null 2>&1 || need_apt+=(prometheus)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing ${need_apt[*]}" >&2
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# One target directory outside the clone, so RocksDB's C++ build (the slow part) is done
# once per machine and reused by later clones and CI runs.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/brisk-target}"
mkdir -p "$CARGO_TARGET_DIR"

# The Python environment of the Redis compatibility suite (tests/redis): redis-py and pytest,
# pinned, in a virtualenv outside the clone.
export BRISK_VENV="${BRISK_VENV:-$HOME/.cache/brisk-venv}"
if ! "$BRISK_VENV/bin/python" -c "import redis, pytest, yaml" >/dev/null 2>&1; then
  echo "setup: creating the Python test environment in $BRISK_VENV" >&2
  python3 -m venv "$BRISK_VENV"
  "$BRISK_VENV/bin/pip" install -q redis==5.2.1 pytest==8.3.4 pyyaml==6.0.2
fi
