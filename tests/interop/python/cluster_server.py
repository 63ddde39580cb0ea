"""Cluster server of the interop contract (see ../README.md, "Clusters"), on
python-socketio's AsyncServer (aiohttp) with AsyncRedisManager: JSON messages
published on one Redis channel (`socketio` by default).

    python cluster_server.py --port P --redis URL [--channel socketio]
    python cluster_server.py --port P --amqp URL --client aiopika|kombu [--channel socketio]
    python cluster_server.py --port P --zmq zmq+tcp://HOST:PORT1+PORT2 [--channel socketio]
    python cluster_server.py --port P --kafka kafka://HOST:PORT[,...] [--channel socketio]

With `--amqp` the bus is RabbitMQ (a fanout exchange named by the channel):
`--client aiopika` runs the AsyncServer with AsyncAioPikaManager;
`--client kombu` runs KombuManager, which is sync only, on a threaded
`socketio.Server` behind Werkzeug's threaded WSGI server.

With `--kafka` the bus is Kafka: KafkaManager (sync only, on the same threaded
server) publishes records on the topic named by the channel, which must exist,
and reads every record of it without a consumer group, from the end; its
publish is fixed (see kafka_manager.py).

With `--zmq` the bus is python-socketio's ZeroMQ broker (zmq_broker.py):
ZmqManager needs eventlet's green zmq, so that node runs `socketio.Server` in
eventlet mode behind eventlet's WSGI server.

Prints `listening on P` once the bus is subscribed and the HTTP server
listens. Namespaces `/` and `/custom`.

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
import json
import os
import sys
import time

import redis.asyncio
import socketio
from aiohttp import web

from stdin_watch import exit_on_stdin_eof

NAMESPACES = ("/", "/custom")
CALL_TIMEOUT = 5.0


def parse_args():
    parser = argparse.ArgumentParser(prog="cluster_server.py")
    parser.add_argument("--port", type=int, required=True)
    bus = parser.add_mutually_exclusive_group(required=True)
    bus.add_argument("--redis")
    bus.add_argument("--amqp")
    bus.add_argument("--zmq")
    bus.add_argument("--kafka")
    parser.add_argument("--client", choices=("aiopika", "kombu"), default="aiopika")
    parser.add_argument("--channel", default="socketio")
    return parser.parse_args()


def build_server(manager):
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


class ReadyAioPikaManager(socketio.AsyncAioPikaManager):
    """Tells when its queue is bound to the exchange: from then on every
    message published reaches this node."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.bound = asyncio.Event()

    async def _queue(self, channel, exchange):
        queue = await super()._queue(channel, exchange)
        self.bound.set()
        return queue


async def main(args):
    if args.redis:
        # The name marks this node's Redis connections (see wait_subscribed).
        client_name = f"cluster-server-py-{os.getpid()}"
        manager = socketio.AsyncRedisManager(
            args.redis, channel=args.channel, redis_options={"client_name": client_name}
        )
    else:
        manager = ReadyAioPikaManager(args.amqp, channel=args.channel)
    sio = build_server(manager)
    # python-socketio starts the manager's listener on the first client
    # connection; start it now, so that this node hears the bus before any
    # client of its own connects.
    sio.manager_initialized = True
    sio.manager.initialize()
    if args.redis:
        subscribed = await wait_subscribed(args.redis, client_name)
    else:
        try:
            await asyncio.wait_for(manager.bound.wait(), 10.0)
            subscribed = True
        except asyncio.TimeoutError:
            subscribed = False
    if not subscribed:
        bus = args.redis or args.amqp
        print(f"cluster_server.py: not subscribed to {args.channel} on {bus} after 10 s", file=sys.stderr)
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


def build_sync_server(manager, async_mode="threading"):
    """The same handlers on a socketio.Server (threads for KombuManager,
    eventlet for ZmqManager)."""
    sio = socketio.Server(async_mode=async_mode, client_manager=manager, cors_allowed_origins="*")

    def register(nsp):
        def connect(sid, environ, auth=None):
            sio.emit("hello", {"sid": sid}, to=sid, namespace=nsp)

        def shout(sid, *args):
            sio.emit("shout-back", args, namespace=nsp)

        def join(sid, room, *_rest):
            sio.enter_room(sid, room, namespace=nsp)
            return True

        def shout_to(sid, room, data=None, *_rest):
            sio.emit("shout-back", data, to=room, namespace=nsp)
            return True

        def shout_except(sid, room, data=None, *_rest):
            skip = [member for member, _eio in sio.manager.get_participants(nsp, room)]
            sio.emit("shout-back", data, namespace=nsp, skip_sid=skip)
            return True

        def enter_room(sid, target, room, *_rest):
            sio.enter_room(target, room, namespace=nsp)
            return True

        def leave_room(sid, target, room, *_rest):
            sio.leave_room(target, room, namespace=nsp)
            return True

        def disconnect_sid(sid, target, *_rest):
            sio.disconnect(target, namespace=nsp)
            return True

        def call_sid(sid, target, data=None, *_rest):
            # A threading or eventlet event, as the server's mode wants.
            answered = sio.eio.create_event()
            answer = []

            def on_answer(*args):
                if not answered.is_set():
                    answer.extend(args)
                    answered.set()

            sio.emit("question", data, to=target, namespace=nsp, callback=on_answer)
            if answered.wait(CALL_TIMEOUT):
                return list(answer)
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


def main_kombu(args):
    import kombu

    class ReadyKombuManager(socketio.KombuManager):
        """Remembers the name of the queue its listener declares."""

        queue_name = None

        def _queue(self):
            queue = super()._queue()
            ReadyKombuManager.queue_name = queue.name
            return queue

    manager = ReadyKombuManager(args.amqp, channel=args.channel)
    sio = build_sync_server(manager)
    sio.manager_initialized = True
    sio.manager.initialize()
    # Ready once the listener's queue exists (declared with its binding by
    # kombu's SimpleQueue): ask for it passively until the broker knows it.
    deadline = time.monotonic() + 10.0
    subscribed = False
    with kombu.Connection(args.amqp) as conn:
        while time.monotonic() < deadline and not subscribed:
            name = ReadyKombuManager.queue_name
            if name is not None:
                try:
                    conn.default_channel.queue_declare(queue=name, passive=True)
                    subscribed = True
                    break
                except Exception:
                    conn.close()
                    conn = kombu.Connection(args.amqp)
            time.sleep(0.05)
    if not subscribed:
        print(f"cluster_server.py: not subscribed to {args.channel} on {args.amqp} after 10 s", file=sys.stderr)
        sys.exit(1)
    # The binding follows the declaration at once.
    time.sleep(0.2)
    serve_sync(sio, args.port)


def serve_sync(sio, port):
    """Serves the threaded `sio` on Werkzeug's threaded WSGI server."""
    from werkzeug.serving import make_server

    try:
        server = make_server("127.0.0.1", port, socketio.WSGIApp(sio), threaded=True)
    except OSError as err:
        print(f"cluster_server.py: {err}", file=sys.stderr)
        sys.exit(1)
    print(f"listening on {port}", flush=True)
    server.serve_forever()


def main_kafka(args):
    from kafka_manager import FixedKafkaManager, kafka_urls

    manager = FixedKafkaManager(kafka_urls(args.kafka), channel=args.channel)
    sio = build_sync_server(manager)
    sio.manager_initialized = True
    sio.manager.initialize()
    # Ready once the consumer has partitions and a position in each (the
    # end of the topic): a record published after `listening on` reaches
    # this node. The listener thread polls the consumer; this only looks.
    deadline = time.monotonic() + 20.0
    subscribed = False
    while time.monotonic() < deadline and not subscribed:
        try:
            parts = manager.consumer.assignment()
            subscribed = bool(parts) and all(
                manager.consumer._subscription.has_valid_position(p) for p in parts
            )
        except Exception:  # noqa: BLE001 - racing the listener thread
            pass
        time.sleep(0.05)
    if not subscribed:
        print(f"cluster_server.py: no position on {args.channel} at {args.kafka} after 20 s", file=sys.stderr)
        sys.exit(1)
    serve_sync(sio, args.port)
def main_zmq(args):
    import eventlet
    import eventlet.wsgi

    probe = json.dumps({"type": "cluster-server-py.probe", "channel": str(os.getpid())}).encode()

    class ReadyZmqManager(socketio.ZmqManager):
        """Notes when its own probe comes back through the broker (a frame
        of a `type` every listener skips): its subscription is then in effect
        at the publisher."""

        heard = False

        def zmq_listen(self):
            for message in super().zmq_listen():
                if message == probe:
                    ReadyZmqManager.heard = True
                yield message

    manager = ReadyZmqManager(args.zmq, channel=args.channel)
    sio = build_sync_server(manager, async_mode="eventlet")
    sio.manager_initialized = True
    sio.manager.initialize()
    deadline = time.monotonic() + 10.0
    while not ReadyZmqManager.heard and time.monotonic() < deadline:
        manager.sink.send(probe)
        eventlet.sleep(0.1)
    if not ReadyZmqManager.heard:
        print(f"cluster_server.py: no probe back from {args.zmq} after 10 s", file=sys.stderr)
        sys.exit(1)
    try:
        listener = eventlet.listen(("127.0.0.1", args.port))
    except OSError as err:
        print(f"cluster_server.py: {err}", file=sys.stderr)
        sys.exit(1)
    print(f"listening on {args.port}", flush=True)
    eventlet.wsgi.server(listener, socketio.WSGIApp(sio), log_output=False)


if __name__ == "__main__":
    cli = parse_args()
    exit_on_stdin_eof()
    try:
        if cli.zmq:
            main_zmq(cli)
        elif cli.amqp and cli.client == "kombu":
            main_kombu(cli)
        elif cli.kafka:
            main_kafka(cli)
        else:
            asyncio.run(main(cli))
    except KeyboardInterrupt:
        pass
