#!/usr/bin/env bash
# Installs the interop peers: the Node packages (npm ci from the committed
# package-lock.json into node/node_modules) and a Python venv (.venv, from the
# fully pinned python/requirements.txt). Idempotent: each part is redone only
# when missing or when its lock file changed (a stamp holds the lock file's
# checksum). Quiet on success; on failure prints the installer's output and
# exits non-zero. Safe to run concurrently (flock).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# die, need, checksum, $log; the lock taken.
source "$here/../setup-lib.sh"
setup_begin interop "$here"

# --- Node: socket.io, socket.io-client, socket.io-msgpack-parser, redis-adapter, redis-emitter, redis-streams-adapter, redis ---
need node "Node.js 18 or later is required"
need npm "npm is required"
node_sum="$(checksum node/package.json node/package-lock.json)"
node_stamp="node/node_modules/.interop-stamp"
if [ ! -f "$node_stamp" ] || [ "$(cat "$node_stamp")" != "$node_sum" ]; then
    rm -rf node/node_modules
    (cd node && npm ci --no-audit --no-fund --loglevel=error) >"$log" 2>&1 \
        || die "npm ci failed in $here/node"
    (cd node && node -e 'for (const m of ["socket.io", "socket.io-client", "socket.io-msgpack-parser", "@socket.io/redis-adapter", "@socket.io/redis-emitter", "@socket.io/redis-streams-adapter", "redis"]) require(m)') \
        >"$log" 2>&1 || die "the Node packages do not load after npm ci"
    echo "$node_sum" >"$node_stamp"
fi

# --- Python: python-socketio, its aiohttp transport, redis-py, kombu, aio-pika, kafka-python, pyzmq, eventlet, Werkzeug ---
python="${PYTHON:-python3}"
need "$python" "Python 3.8 or later is required (set PYTHON to choose one)"
py_sum="$(checksum python/requirements.txt)"
py_stamp=".venv/.interop-stamp"
if [ ! -f "$py_stamp" ] || [ "$(cat "$py_stamp")" != "$py_sum" ] || [ ! -x .venv/bin/python ]; then
    rm -rf .venv
    "$python" -m venv .venv >"$log" 2>&1 || die "could not create the venv (is python3-venv installed?)"
    .venv/bin/python -m pip install --disable-pip-version-check --no-input --quiet \
        -r python/requirements.txt >"$log" 2>&1 \
        || die "pip install -r python/requirements.txt failed"
    .venv/bin/python -c 'import socketio, aiohttp, msgpack, redis, redis.asyncio, kombu, aio_pika, kafka, werkzeug, zmq, eventlet, eventlet.green.zmq' >"$log" 2>&1 \
        || die "the Python packages do not import after pip install"
    echo "$py_sum" >"$py_stamp"
fi
