"""Cluster server of the interop contract (see ../README.md, "Clusters") over
Kafka: python-socketio's sync Server (threading mode, served by Werkzeug) with
KafkaManager, which publishes the pub/sub JSON as records of one topic named
by the channel (`socketio` by default) and reads every record of it, without
a consumer group, from the end.

    python cluster_server_kafka.py --port P --kafka kafka://HOST:PORT [--channel socketio]

The topic must exist. Prints `listening on P` once the consumer has its
partitions and the HTTP server listens. Namespaces `/` and `/custom`.

python-socketio 5.18.1's KafkaManager hands kafka-python a `str` as the
record value, which kafka-python 2.x/3.x refuse ("Unsupported type for
serialized value"): `_publish` is fixed here, in a subclass, to send the
JSON text as UTF-8 bytes (what the receive side reads back).

Limits of python-socketio's bus, as in cluster_server.py: `shout-except`
skips only the sids this node knows; no node-only requests.
"""

import argparse
import os
import sys
import threading
import time

import socketio
from werkzeug.serving import make_server

NAMESPACES = ("/", "/custom")
CALL_TIMEOUT = 5.0


class FixedKafkaManager(socketio.KafkaManager):
    def _publish(self, data):
        self.producer.send(self.channel, value=self.json.dumps(data).encode())
        self.producer.flush()


def parse_args():
    parser = argparse.ArgumentParser(prog="cluster_server_kafka.py")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--kafka", required=True)
    parser.add_argument("--channel", default="socketio")
    return parser.parse_args()


def build_server(url, channel):
    urls = url.split(",")
    manager = FixedKafkaManager(urls if len(urls) > 1 else url, channel=channel)
    sio = socketio.Server(async_mode="threading", client_manager=manager, cors_allowed_origins="*")

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
            answered = threading.Event()
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


def wait_assigned(manager, deadline=20.0):
    """Waits until the consumer has partitions and a position in each (the
    end of the topic), so that a record published after `listening on`
    reaches this node. The consumer is polled by the manager's listener
    thread; this only looks at its state."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            parts = manager.consumer.assignment()
            if parts and all(manager.consumer._subscription.has_valid_position(p) for p in parts):
                return True
        except Exception:  # noqa: BLE001 - racing the listener thread
            pass
        time.sleep(0.05)
    return False


def exit_on_stdin_eof():
    def watch():
        try:
            while sys.stdin.buffer.read(4096):
                pass
        finally:
            os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


def main():
    args = parse_args()
    if os.environ.get("INTEROP_EXIT_ON_STDIN_EOF") == "1":
        exit_on_stdin_eof()
    sio = build_server(args.kafka, args.channel)
    # Start the listener now rather than on the first connection.
    sio.manager_initialized = True
    sio.manager.initialize()
    if not wait_assigned(sio.manager):
        print(f"cluster_server_kafka.py: no position on {args.channel} at {args.kafka} after 20 s", file=sys.stderr)
        sys.exit(1)
    app = socketio.WSGIApp(sio)
    try:
        server = make_server("127.0.0.1", args.port, app, threaded=True)
    except OSError as err:
        print(f"cluster_server_kafka.py: {err}", file=sys.stderr)
        sys.exit(1)
    print(f"listening on {args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
