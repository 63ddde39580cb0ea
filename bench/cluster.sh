#!/usr/bin/env bash
# Cluster benchmark (issue 11): several server nodes of one implementation
# sharing a fresh redis-server, a namespace-wide broadcast fanned out to the
# connections of every node. Not run by CI. Alone:
#
#   bash bench/cluster.sh                     # or WORKLOADS=cluster bash bench/run.sh
#   CLUSTER_SERVERS="ours-node node" CLUSTER_INFLIGHT=32 bash bench/cluster.sh
#
# Per implementation: a redis-server on a free port and NODES (3) nodes on
# free ports, all pinned to core 0; the load generator (loadgen cluster) on
# core 1 opens CLUSTER_CLIENTS (1000) WebSocket connections to each node,
# round-robin, and keeps CLUSTER_INFLIGHT broadcasts in flight (workloads
# `cluster-1` and `cluster-8` by default: "1 8"): `shout`,
# sent by the first connection of each node in turn, which that node answers
# with `shout-back` to every socket of `/` on every node. Measured over SECS
# (5) after 2 s of warm-up: deliveries/s, p50/p99 fan-out latency (until the
# last of the 3,000 connections has it), server CPU per delivery summed over
# the nodes; then, over every broadcast sent (the in-flight ones drained),
# Redis's CPU per broadcast, PUBLISH (+SPUBLISH) calls per broadcast from
# Redis's INFO commandstats, and deliveries missing.
#
# Servers (CLUSTER_SERVERS, default "ours-node ours-python node python"):
#   ours-node    bench_server --adapter redis-node (@socket.io/redis-adapter's format)
#   ours-python  bench_server --adapter redis-python (python-socketio's format)
#   node         tests/interop/node/cluster_server.js --adapter classic
#                (socket.io 4.8.4 + @socket.io/redis-adapter 8.3.0)
#   python       tests/interop/python/cluster_server.py (python-socketio 5.18
#                AsyncRedisManager on aiohttp)
# Ratios are against the first of ours measured (ours-node by default).
# Results are appended to RESULTS (target/bench-load/cluster.tsv, emptied
# first unless run.sh passes its own file).
set -euo pipefail
started=$SECONDS

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

servers="${CLUSTER_SERVERS:-ours-node ours-python node python}"
nodes="${NODES:-3}"
clients="${CLUSTER_CLIENTS:-1000}"
inflights="${CLUSTER_INFLIGHT:-1 8}"
secs="${SECS:-5}"

# Each node holds 1,000 connections, the load generator all of them.
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"

bin="${CARGO_TARGET_DIR:-$root/target}/release"
outdir="$root/target/bench-load"
mkdir -p "$outdir"
if [[ -n "${RESULTS:-}" ]]; then
    results="$RESULTS"
else
    results="$outdir/cluster.tsv"
    : >"$results"
fi
if [[ "${CLUSTER_BUILT:-0}" != 1 ]]; then
    cargo build --release --quiet -p socketio-bench --bins
    if [[ " $servers " == *" node "* || " $servers " == *" python "* ]]; then
        bash tests/interop/setup.sh
    fi
fi
command -v redis-server >/dev/null || { echo "redis-server not found (apt-get install redis-server)" >&2; exit 2; }

# Processes started here, stopped by their id on exit.
pids=()
stop_all() {
    # Nodes first, Redis (started first) last: a node losing its bus
    # complains.
    local i
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        kill "${pids[$i]}" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    pids=()
}
trap stop_all EXIT

# A port nobody listens on now (the kernel's pick; a start that still finds
# it taken fails and is retried on another).
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

redis_port=""
redis_pid=""
start_redis() {
    local dir="$outdir/redis" log="$outdir/redis.log"
    mkdir -p "$dir"
    for _ in 1 2 3; do
        redis_port="$(free_port)"
        taskset -c 0 redis-server --port "$redis_port" --bind 127.0.0.1 --save '' \
            --appendonly no --dir "$dir" --maxclients 1000 >"$log" 2>&1 &
        redis_pid=$!
        pids+=("$redis_pid")
        for _ in $(seq 50); do
            if [[ "$(redis-cli -p "$redis_port" ping 2>/dev/null)" == PONG ]]; then
                return 0
            fi
            kill -0 "$redis_pid" 2>/dev/null || break
            sleep 0.1
        done
    done
    echo "redis-server did not start:" >&2
    cat "$log" >&2
    exit 1
}

node_addrs=()
node_pids=()
start_node() {
    local name="$1" i="$2" log="$outdir/cluster-node-$2.log" redis="redis://127.0.0.1:$redis_port"
    for _ in 1 2 3; do
        local port
        port="$(free_port)"
        case "$name" in
        ours-node) set -- "$bin/bench_server" --impl ours --port "$port" --adapter redis-node --redis "$redis" ;;
        ours-python) set -- "$bin/bench_server" --impl ours --port "$port" --adapter redis-python --redis "$redis" ;;
        node) set -- node tests/interop/node/cluster_server.js --port "$port" --redis "$redis" --adapter classic ;;
        python) set -- tests/interop/.venv/bin/python tests/interop/python/cluster_server.py --port "$port" --redis "$redis" ;;
        *) echo "unknown cluster server $name" >&2; exit 2 ;;
        esac
        : >"$log"
        taskset -c 0 "$@" >"$log" 2>&1 &
        local pid=$!
        pids+=("$pid")
        for _ in $(seq 300); do
            if grep -q "listening on" "$log"; then
                node_addrs+=("127.0.0.1:$port")
                node_pids+=("$pid")
                return 0
            fi
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if ! grep -qi "in use" "$log"; then
            break
        fi
    done
    echo "$name node $i did not start:" >&2
    cat "$log" >&2
    exit 1
}

join() {
    local IFS=,
    echo "$*"
}

for inflight in $inflights; do
    for server in $servers; do
        start_redis
        node_addrs=()
        node_pids=()
        for i in $(seq "$nodes"); do
            start_node "$server" "$i"
        done
        echo "cluster $server: nodes $(join "${node_addrs[@]}"), redis 127.0.0.1:$redis_port (all on core 0), loadgen on core 1" >&2
        taskset -c 1 "$bin/loadgen" cluster --addr "$(join "${node_addrs[@]}")" \
            --pid "$(join "${node_pids[@]}")" --redis "127.0.0.1:$redis_port" --redis-pid "$redis_pid" \
            --clients "$clients" --inflight "$inflight" --secs "$secs" \
            --label "$server" --out "$results" ||
            echo "cluster $server: load generator failed" >&2
        stop_all
    done
done

if [[ -z "${RESULTS:-}" ]]; then
    "$bin/loadgen" report --out "$results"
    elapsed=$((SECONDS - started))
    echo
    echo "elapsed: $((elapsed / 60)) min $((elapsed % 60)) s"
fi
