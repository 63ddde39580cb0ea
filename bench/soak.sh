#!/usr/bin/env bash
# Soak and churn benchmark of issue 16 (bench/README.md). Not run by CI.
#
#   bash bench/soak.sh                          # 5,000 clients, 30 minutes
#   bash bench/soak.sh --minutes 2 --clients 1000
#
# Builds the echo server and the soak client in release, then runs
# bench/src/bin/soak.rs with these arguments. Exit status 0 when RSS and
# open files pass; samples and plot under target/soak/.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# 5,000 connections need 5,000 descriptors in each process.
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
cargo build --release --quiet -p socketio --example echo_server
cargo build --release --quiet -p socketio-bench --bin soak
bin="${CARGO_TARGET_DIR:-$root/target}/release"
exec "$bin/soak" --server "$bin/examples/echo_server" "$@"
