"""The ZeroMQ broker python-socketio's ZmqManager needs (its docstring
describes one; the user runs it): a PULL socket bound on the sink port, a PUB
socket bound on the publisher port, and every frame pulled is published.

    python zmq_broker.py --sink PORT --pub PORT

Prints `broker ready` once both sockets are bound, then forwards until it is
killed (or, with INTEROP_EXIT_ON_STDIN_EOF=1, until its stdin closes). Frames
are forwarded one by one, as the documented broker does.
"""

import argparse
import sys

import zmq

from stdin_watch import exit_on_stdin_eof


def main():
    parser = argparse.ArgumentParser(prog="zmq_broker.py")
    parser.add_argument("--sink", type=int, required=True)
    parser.add_argument("--pub", type=int, required=True)
    args = parser.parse_args()
    exit_on_stdin_eof()
    context = zmq.Context()
    sink = context.socket(zmq.PULL)
    publisher = context.socket(zmq.PUB)
    try:
        sink.bind(f"tcp://127.0.0.1:{args.sink}")
        publisher.bind(f"tcp://127.0.0.1:{args.pub}")
    except zmq.ZMQError as err:
        print(f"zmq_broker.py: {err}", file=sys.stderr)
        sys.exit(1)
    print("broker ready", flush=True)
    while True:
        publisher.send(sink.recv())


if __name__ == "__main__":
    main()
