#!/usr/bin/env bash
# Server load benchmark of issue 6. One command, about 5 minutes, not run by
# CI:
#
#   bash bench/run.sh
#
# Every server under test is started fresh for each workload, pinned to
# core 0; the load generator (bench/src/bin/loadgen/, a current-thread
# Rust client speaking raw Engine.IO) runs on core 1 and marks a figure
# INVALID when it used more than 90% of its core. Prints one table per
# workload with each server's figures and its ratio to ours on tokio, a
# table of our three runtimes, a table of the issue's targets, and the
# elapsed time. Raw results: target/bench-load/results.tsv.
#
#   SERVERS="ours-tokio socketioxide" WORKLOADS="echo-8 polling-8" bash bench/run.sh
#   IDLE_CLIENTS=5000 WORKLOADS=idle SECS=10 bash bench/run.sh
#
# Servers: ours-tokio ours-async-std ours-smol socketioxide node raw.
# Workloads (default: all but `idle`):
#   echo-1 echo-8        WebSocket echo, 100 clients, 1 or 8 events in flight
#   polling-1 polling-8  the same echo over HTTP long-polling (raw: skipped)
#   idle-1000 idle-10000 RSS growth per idle WebSocket connection
#   idle                 the same with IDLE_CLIENTS connections (1000)
#   broadcast-1 broadcast-32  one sender, a room of 1000, 1 or 32 in flight
#   burst-400            400 broadcasts at once to the room of 1000
#   cluster              bench/cluster.sh: 3 nodes over Redis, 1000 clients
#                        each, namespace-wide broadcasts (its own servers,
#                        CLUSTER_SERVERS; not in the default list)
set -euo pipefail
started=$SECONDS

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

servers="${SERVERS:-ours-tokio ours-async-std ours-smol socketioxide node raw}"
workloads="${WORKLOADS:-echo-1 echo-8 polling-1 polling-8 idle-1000 idle-10000 broadcast-1 broadcast-32 burst-400}"
idle_clients="${IDLE_CLIENTS:-1000}"
secs="${SECS:-5}"

# 10,000 connections need 10,000 descriptors in each process.
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"

cargo build --release --quiet -p socketio-bench --bins
if [[ " $servers " == *" node "* || " $workloads " == *" cluster "* ]]; then
    bash tests/interop/setup.sh
fi

bin="${CARGO_TARGET_DIR:-$root/target}/release"
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
    # Emptied here, not by the redirection in the child, so that the check
    # below cannot see the previous server's "listening on".
    : >"$log"
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
    if [[ "$workload" == cluster ]]; then
        # Its own servers (nodes of a cluster) and script.
        CLUSTER_BUILT=1 RESULTS="$results" SECS="$secs" bash bench/cluster.sh
        continue
    fi
    for server in $servers; do
        if [[ "$server" == raw && "$workload" == polling-* ]]; then
            # The ceiling server speaks WebSocket only.
            printf '%s\traw\tnote\tskipped: no polling\n' "$workload" >>"$results"
            continue
        fi
        start_server "$server"
        common=(--addr "127.0.0.1:$port" --pid "$server_pid" --label "$server" --out "$results" --secs "$secs")
        [[ "$server" == raw ]] && common+=(--raw)
        case "$workload" in
        echo-*) args=(echo --clients 100 --inflight "${workload#echo-}") ;;
        polling-*) args=(polling --clients 100 --inflight "${workload#polling-}") ;;
        idle) args=(idle --clients "$idle_clients") ;;
        idle-*) args=(idle --clients "${workload#idle-}") ;;
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
elapsed=$((SECONDS - started))
echo
echo "elapsed: $((elapsed / 60)) min $((elapsed % 60)) s"
