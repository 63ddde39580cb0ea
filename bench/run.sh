#!/usr/bin/env bash
# Server load benchmark: every server under test is started fresh for each
# workload, pinned to core 0; the load generator runs on core 1. Prints one
# table per workload with each server's figures and its ratio to ours on
# tokio. Takes about 5-6 minutes. Not run by CI.
#
#   bash bench/run.sh                 # everything
#   SERVERS="ours-tokio socketioxide" WORKLOADS="echo-8" bash bench/run.sh
#   IDLE_CLIENTS=10000 SECS=10 bash bench/run.sh
#
# Servers: ours-tokio ours-async-std ours-smol socketioxide node raw.
# Workloads: echo-1 echo-8 (100 clients), idle (IDLE_CLIENTS connections),
# broadcast-1 broadcast-32 (one sender, a room of 1000), burst-400.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

servers="${SERVERS:-ours-tokio ours-async-std ours-smol socketioxide node raw}"
workloads="${WORKLOADS:-echo-1 echo-8 idle broadcast-1 broadcast-32 burst-400}"
idle_clients="${IDLE_CLIENTS:-1000}"
secs="${SECS:-5}"

# 10,000 connections need 10,000 descriptors in each process.
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"

cargo build --release --quiet -p socketio-bench --bins
if [[ " $servers " == *" node "* ]]; then
    bash tests/interop/setup.sh
fi

bin="$root/target/release"
outdir="$root/target/bench-load"
mkdir -p "$outdir"
results="$outdir/results.tsv"
: >"$results"

port=$((20000 + RANDOM % 20000))
server_pid=""
stop_server() {
    if [[ -n "$server_pid" ]]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
        server_pid=""
    fi
}
trap stop_server EXIT

start_server() {
    local name="$1" log="$outdir/server.log"
    port=$((port + 1))
    case "$name" in
    ours-*) set -- "$bin/bench_server" --impl ours --runtime "${name#ours-}" --port "$port" ;;
    socketioxide | raw) set -- "$bin/bench_server" --impl "$name" --port "$port" ;;
    node) set -- node bench/node/server.js "$port" ;;
    *) echo "unknown server $name" >&2; exit 2 ;;
    esac
    taskset -c 0 "$@" >"$log" 2>&1 &
    server_pid=$!
    for _ in $(seq 100); do
        grep -q "listening on" "$log" && return 0
        if grep -q "in use" "$log"; then
            # The random port was taken: try the next one.
            stop_server
            start_server "$name"
            return 0
        fi
        sleep 0.1
    done
    echo "$name did not start:" >&2
    cat "$log" >&2
    exit 1
}

for workload in $workloads; do
    for server in $servers; do
        start_server "$server"
        common=(--addr "127.0.0.1:$port" --pid "$server_pid" --label "$server" --out "$results" --secs "$secs")
        [[ "$server" == raw ]] && common+=(--raw)
        case "$workload" in
        echo-*) args=(echo --clients 100 --inflight "${workload#echo-}") ;;
        idle) args=(idle --clients "$idle_clients") ;;
        broadcast-*) args=(broadcast --clients 1000 --inflight "${workload#broadcast-}") ;;
        burst-*) args=(burst --clients 1000 --inflight "${workload#burst-}") ;;
        *) echo "unknown workload $workload" >&2; exit 2 ;;
        esac
        taskset -c 1 "$bin/loadgen" "${args[@]}" "${common[@]}" ||
            echo "$workload $server: load generator failed" >&2
        stop_server
    done
done

"$bin/loadgen" report --out "$results"
