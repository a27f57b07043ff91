#!/usr/bin/env bash
# Installs what building and testing brisk needs and is not on a fresh Debian machine with
# the Rust toolchain: libclang-dev (bindgen, for RocksDB), and for the fault harness fuse3
# (fusermount3, for the power-loss filesystem) and nftables (network partitions).
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
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing ${need_apt[*]}" >&2
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# One target directory outside the clone, so RocksDB's C++ build (the slow part) is done
# once per machine and reused by later clones and CI runs.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/brisk-target}"
mkdir -p "$CARGO_TARGET_DIR"
