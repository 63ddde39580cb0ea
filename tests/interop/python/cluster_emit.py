"""Write-only emitter of the cluster contract (see ../README.md, "Clusters"):
python-socketio's `RedisManager(url, write_only=True)`, with `--amqp URL`
its `KombuManager(url, write_only=True)` (RabbitMQ), with `--kafka URL` its
`KafkaManager(url, write_only=True)` (publish fixed, see kafka_manager.py),
with `--zmq URL` its `ZmqManager(url, write_only=True)` (python-socketio's
ZeroMQ broker).

    python cluster_emit.py (--redis URL | --amqp URL | --kafka URL | --zmq URL) [--channel socketio] [--nsp /] [--room R] EVENT JSON_ARGS

JSON_ARGS is a JSON array of the event's arguments (`{"$bin":"<hex>"}` stands
for binary): one argument is emitted as itself, any other count as a tuple
(python-socketio's way of saying "several arguments"). Exits 0 once Redis has
taken the PUBLISH, 1 when the manager logged that it could not publish.
"""

import argparse
import json
import logging
import sys

import redis
import socketio


def revive(value):
    """{"$bin": hex} -> bytes, recursively."""
    if isinstance(value, list):
        return [revive(v) for v in value]
    if isinstance(value, dict):
        if len(value) == 1 and isinstance(value.get("$bin"), str):
            return bytes.fromhex(value["$bin"])
        return {k: revive(v) for k, v in value.items()}
    return value


class ErrorFlag(logging.Handler):
    """Remembers the ERROR records: the manager logs its publish failures
    instead of raising them."""

    def __init__(self):
        super().__init__(level=logging.ERROR)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def main():
    parser = argparse.ArgumentParser(prog="cluster_emit.py")
    bus = parser.add_mutually_exclusive_group(required=True)
    bus.add_argument("--redis")
    bus.add_argument("--amqp")
    bus.add_argument("--kafka")
    bus.add_argument("--zmq")
    parser.add_argument("--channel", default="socketio")
    parser.add_argument("--nsp", default="/")
    parser.add_argument("--room", default=None)
    parser.add_argument("event")
    parser.add_argument("json_args")
    opts = parser.parse_args()
    try:
        args = json.loads(opts.json_args)
    except ValueError as err:
        parser.error(f"JSON_ARGS is not JSON: {err}")
    if not isinstance(args, list):
        parser.error("JSON_ARGS must be a JSON array")
    args = revive(args)
    data = args[0] if len(args) == 1 else tuple(args)

    # Fail loudly when the broker is unreachable (the manager would only log
    # it).
    if opts.redis:
        try:
            redis.Redis.from_url(opts.redis).ping()
        except redis.RedisError as err:
            print(f"cluster_emit.py: Redis at {opts.redis}: {err}", file=sys.stderr)
            sys.exit(1)

    errors = ErrorFlag()
    logger = logging.getLogger("cluster_emit")
    logger.addHandler(errors)
    logger.addHandler(logging.StreamHandler(sys.stderr))
    logger.setLevel(logging.INFO)
    if opts.redis:
        manager = socketio.RedisManager(opts.redis, channel=opts.channel, write_only=True, logger=logger)
    elif opts.zmq:
        manager = socketio.ZmqManager(opts.zmq, channel=opts.channel, write_only=True, logger=logger)
    elif opts.amqp:
        manager = socketio.KombuManager(opts.amqp, channel=opts.channel, write_only=True, logger=logger)
    else:
        from kafka_manager import FixedKafkaManager, kafka_urls

        manager = FixedKafkaManager(kafka_urls(opts.kafka), channel=opts.channel, write_only=True, logger=logger)
    manager.emit(opts.event, data=data, room=opts.room, namespace=opts.nsp)
    if opts.zmq:
        # The PUSH socket sends in the background: wait (5 s at most) until
        # the frame left before exiting.
        import zmq

        manager.sink.setsockopt(zmq.LINGER, 5000)
        context = manager.sink.context
        manager.sink.close()
        context.term()
    if errors.messages:
        print(f"cluster_emit.py: not published: {errors.messages}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
