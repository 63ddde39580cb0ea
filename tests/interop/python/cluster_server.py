"""Cluster server of the interop contract (see ../README.md, "Clusters"), on
python-socketio's AsyncServer (aiohttp) with AsyncRedisManager: JSON messages
published on one Redis channel (`socketio` by default).

    python cluster_server.py --port P --redis URL [--channel socketio]

Prints `listening on P` once Redis answered and the HTTP server listens.
Namespaces `/` and `/custom`.

Limits of python-socketio's bus that shape this peer:
- `shout-except` can only skip sids: this node sends to every socket except
  the members of the room it knows (its own); members of the room on other
  nodes still get the event. Test it with the room's members on the node
  that receives `shout-except`.
- there is no cluster-wide fetch-sockets, server-side emit, broadcast with
  acks or server count: the node-only events of the contract are absent.
"""

import argparse
import asyncio
import os
import sys
import threading

import redis.asyncio
import socketio
from aiohttp import web

NAMESPACES = ("/", "/custom")
CALL_TIMEOUT = 5.0


def parse_args():
    parser = argparse.ArgumentParser(prog="cluster_server.py")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis", required=True)
    parser.add_argument("--channel", default="socketio")
    return parser.parse_args()


def build_server(url, channel, client_name):
    # The name marks this node's Redis connections (see wait_subscribed).
    manager = socketio.AsyncRedisManager(url, channel=channel, redis_options={"client_name": client_name})
    sio = socketio.AsyncServer(async_mode="aiohttp", client_manager=manager, cors_allowed_origins="*")

    def register(nsp):
        async def connect(sid, environ, auth=None):
            await sio.emit("hello", {"sid": sid}, to=sid, namespace=nsp)

        async def shout(sid, *args):
            await sio.emit("shout-back", args, namespace=nsp)

        async def join(sid, room, *_rest):
            await sio.enter_room(sid, room, namespace=nsp)
            return True

        async def shout_to(sid, room, data=None, *_rest):
            await sio.emit("shout-back", data, to=room, namespace=nsp)
            return True

        async def shout_except(sid, room, data=None, *_rest):
            # The bus carries sids to skip, not rooms: the members this node
            # knows of.
            skip = [member for member, _eio in sio.manager.get_participants(nsp, room)]
            await sio.emit("shout-back", data, namespace=nsp, skip_sid=skip)
            return True

        async def enter_room(sid, target, room, *_rest):
            # Published on the bus when `target` lives on another node.
            await sio.enter_room(target, room, namespace=nsp)
            return True

        async def leave_room(sid, target, room, *_rest):
            await sio.leave_room(target, room, namespace=nsp)
            return True

        async def disconnect_sid(sid, target, *_rest):
            await sio.disconnect(target, namespace=nsp)
            return True

        async def call_sid(sid, target, data=None, *_rest):
            answered = asyncio.get_running_loop().create_future()

            def on_answer(*answer):
                if not answered.done():
                    answered.set_result(list(answer))

            # The manager keeps the callback and routes the remote node's
            # answer back to this host over the bus.
            await sio.emit("question", data, to=target, namespace=nsp, callback=on_answer)
            try:
                return await asyncio.wait_for(answered, CALL_TIMEOUT)
            except asyncio.TimeoutError:
                return {"error": f"no answer within {CALL_TIMEOUT} s"}

        sio.on("connect", connect, namespace=nsp)
        sio.on("shout", shout, namespace=nsp)
        sio.on("join", join, namespace=nsp)
        sio.on("shout-to", shout_to, namespace=nsp)
        sio.on("shout-except", shout_except, namespace=nsp)
        sio.on("enter-room", enter_room, namespace=nsp)
        sio.on("leave-room", leave_room, namespace=nsp)
        sio.on("disconnect-sid", disconnect_sid, namespace=nsp)
        sio.on("call-sid", call_sid, namespace=nsp)

    for nsp in NAMESPACES:
        register(nsp)
    return sio


async def wait_subscribed(url, name, deadline=10.0):
    """Waits until the connection named `name` has subscribed (Redis's
    CLIENT LIST shows `sub=1` for it), so that a message published right after
    `listening on` reaches this node. False past the deadline."""
    client = redis.asyncio.Redis.from_url(url)
    try:
        loop = asyncio.get_running_loop()
        end = loop.time() + deadline
        while loop.time() < end:
            for entry in await client.client_list():
                if entry.get("name") == name and int(entry.get("sub", 0)) > 0:
                    return True
            await asyncio.sleep(0.05)
        return False
    finally:
        await client.aclose()


def exit_on_stdin_eof():
    """The test harness keeps our stdin open and sets INTEROP_EXIT_ON_STDIN_EOF,
    so that the server dies with the test process even when that is killed
    before it can clean up."""

    def watch():
        try:
            while sys.stdin.buffer.read(4096):
                pass
        finally:
            os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


async def main():
    args = parse_args()
    if os.environ.get("INTEROP_EXIT_ON_STDIN_EOF") == "1":
        exit_on_stdin_eof()
    client_name = f"cluster-server-py-{os.getpid()}"
    sio = build_server(args.redis, args.channel, client_name)
    # python-socketio starts the manager's listener on the first client
    # connection; start it now, so that this node hears the bus before any
    # client of its own connects.
    sio.manager_initialized = True
    sio.manager.initialize()
    if not await wait_subscribed(args.redis, client_name):
        print(f"cluster_server.py: not subscribed to {args.channel} on {args.redis} after 10 s", file=sys.stderr)
        sys.exit(1)
    app = web.Application()
    sio.attach(app)
    runner = web.AppRunner(app, handle_signals=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", args.port)
    try:
        await site.start()
    except OSError as err:
        print(f"cluster_server.py: {err}", file=sys.stderr)
        sys.exit(1)
    print(f"listening on {args.port}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
