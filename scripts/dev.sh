#!/usr/bin/env bash
# Builds brisk and starts a local 3-node cluster (brisk dev) on 127.0.0.1:7001-7003,
# data in ./brisk-data. Ctrl-C stops it; running it again resumes the same cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cargo build --bin brisk
exec "$CARGO_TARGET_DIR/debug/brisk" dev "$@"
