#!/bin/sh
# Prints the path of the tansu binary (an Apache Kafka-compatible broker from
# crates.io, the Kafka broker of the tests), installing it first when missing:
#
#   cargo install tansu --version 0.6.0 --locked --features dynostore
#
# (`dynostore` brings the in-memory storage the tests use; several minutes of
# compiling, once). Used by .ci/run (in the background, early), by the cluster
# harness (tests/src/kafka.rs) and by the driver's Kafka tests, so that all
# three agree on where it is.
#
#   $SOCKETIO_TANSU         a tansu binary to use instead (nothing installed)
#   $SOCKETIO_TANSU_ROOT    the install root (default ~/.cache/socketio-tansu)
#
# Parallel callers wait for one install (flock). Exits non-zero, with
# cargo's output on stderr, when the install fails or takes over an hour.
set -eu
if [ -n "${SOCKETIO_TANSU:-}" ]; then
  if [ ! -x "$SOCKETIO_TANSU" ]; then
    echo "tansu.sh: SOCKETIO_TANSU=$SOCKETIO_TANSU is not an executable" >&2
    exit 1
  fi
  echo "$SOCKETIO_TANSU"
  exit 0
fi
root="${SOCKETIO_TANSU_ROOT:-${HOME:?HOME is not set}/.cache/socketio-tansu}"
bin="$root/bin/tansu"
if [ ! -x "$bin" ]; then
  mkdir -p "$root"
  exec 9>"$root.lock"
  # Another caller's install holds the lock for at most its own deadline.
  flock -w 3700 9 || { echo "tansu.sh: $root.lock still held after 3700 s" >&2; exit 1; }
  if [ ! -x "$bin" ]; then
    echo "tansu.sh: installing tansu into $root (cargo install, several minutes)" >&2
    # A build directory of its own (removed by cargo afterwards): never the
    # workspace's, whose lock a running `cargo test` may hold.
    # `timeout` runs the install in a process group of its own: a signal
    # to this script is passed on to it (and by it to cargo and rustc).
    env -u CARGO_TARGET_DIR -u CARGO_BUILD_TARGET_DIR \
      timeout 3600 nice -n 10 "${CARGO:-cargo}" install tansu --version 0.6.0 \
      --locked --features dynostore --root "$root" >&2 &
    install=$!
    trap 'kill -TERM "$install" 2>/dev/null' TERM INT HUP
    status=0
    wait "$install" || status=$?
    if [ "$status" -gt 128 ] && kill -0 "$install" 2>/dev/null; then
      # Interrupted: wait for the install to stop.
      wait "$install" || true
    fi
    trap - TERM INT HUP
    if [ "$status" -ne 0 ]; then
      echo "tansu.sh: cargo install tansu failed (status $status)" >&2
      exit "$status"
    fi
  fi
  exec 9>&-
fi
"$bin" --version >/dev/null
echo "$bin"
