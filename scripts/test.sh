#!/usr/bin/env bash
# Runs the whole test suite: unit tests, multi-process cluster tests, crash and corruption
# tests, then the fault harness's short suite (brisk-torture --quick). Installs what is
# missing first.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
# crash-points compiles the named crash points into the test build of the binary.
if command -v cargo-nextest >/dev/null 2>&1; then
  cargo nextest run --workspace --features brisk/crash-points --no-fail-fast "$@"
else
  cargo test --workspace --features brisk/crash-points --no-fail-fast "$@"
fi
# The short fault-injection suite against the binaries just built: every fault kind, the
# history checked for linearizability and lost writes.
# (Skipped when the tests were filtered with arguments.)
if [ $# -eq 0 ]; then
  "$CARGO_TARGET_DIR/debug/brisk-torture" --quick --out-dir "$CARGO_TARGET_DIR/torture"
fi
