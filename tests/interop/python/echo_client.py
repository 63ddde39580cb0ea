"""Echo client of the interop contract (see ../README.md), on python-socketio.

    python echo_client.py --url U --transports polling|websocket|upgrade --nsp N
        [--auth JSON] [--parser json|msgpack] [--expect-reject] [--reconnect-check]

Prints one line starting with PASS or FAIL and exits 0 only on PASS.

`--reconnect-check` (not part of our examples' contract): after the first
round trip the client prints `RESTART-ME` and waits; the harness kills the
server and starts it again on the same port; the client must see the
transport drop, reconnect by itself and round-trip again.
`--runtime X` is accepted and ignored (plumbing tests of the harness).

python-socketio's client upgrades to WebSocket during `connect()` itself, so
an `upgrade` run is already on websocket once connected.
"""

import argparse
import asyncio
import json
import logging
import os
import sys

import socketio

OVERALL_TIMEOUT = 20.0
STEP_TIMEOUT = 8.0

# The payloads of the contract's `echo` round trips (same as the Node client).
ECHO_CASES = [
    ("unicode", ["héllo wörld ✓ 日本語 😀 𝄞", ""]),
    ("numbers", [0, -7, 3.25, 9007199254740991, -1e-7]),
    ("nested objects", [{"a": {"b": [1, 2, {"c": None}], "d": True}, "e": "x", "f": []}, [False, None]]),
    ("several binary arguments", [b"\x01\x02\x03", "between", b"", b"\xff\x00\x80"]),
    ("binary nested in objects", [{"file": b"hello", "meta": {"name": "x", "parts": [b"\x00", b"\x01\x02"]}}]),
    ("no arguments", []),
]


class Failure(Exception):
    pass


def parse_args():
    parser = argparse.ArgumentParser(prog="echo_client.py")
    parser.add_argument("--url", required=True)
    parser.add_argument("--transports", choices=("polling", "websocket", "upgrade"), required=True)
    parser.add_argument("--nsp", default="/")
    parser.add_argument("--auth", default=None)
    parser.add_argument("--parser", choices=("json", "msgpack"), default="json")
    parser.add_argument("--expect-reject", action="store_true")
    parser.add_argument("--reconnect-check", action="store_true")
    parser.add_argument("--runtime", default=None)
    args = parser.parse_args()
    args.auth = json.loads(args.auth) if args.auth is not None else None
    return args


def normalize(value):
    """Binary compares as hex, tuples as lists: what the wire can carry."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$bin": bytes(value).hex()}
    if isinstance(value, (list, tuple)):
        return [normalize(v) for v in value]
    if isinstance(value, dict):
        return {k: normalize(v) for k, v in value.items()}
    return value


def same_value(actual, expected, what):
    a, e = normalize(actual), normalize(expected)
    # type(..) too: True == 1 and 1 == 1.0 in Python, not on the wire.
    if a != e or json.dumps(a, sort_keys=True) != json.dumps(e, sort_keys=True):
        raise Failure(f"{what}: got {json.dumps(a)}, want {json.dumps(e)}")


class Inbox:
    """Events kept in arrival order, so that one that comes before we wait
    for it is not lost."""

    def __init__(self):
        self.events = []
        self.changed = asyncio.Event()
        self.question_error = None

    def push(self, name, args):
        self.events.append((name, args))
        self.changed.set()

    async def next(self, names, timeout=STEP_TIMEOUT):
        if isinstance(names, str):
            names = (names,)

        async def look():
            while True:
                for i, (name, args) in enumerate(self.events):
                    if name in names:
                        del self.events[i]
                        return name, args
                self.changed.clear()
                await self.changed.wait()

        try:
            return await asyncio.wait_for(look(), timeout)
        except asyncio.TimeoutError:
            raise Failure(f"timed out waiting for {' or '.join(names)}") from None

    async def args(self, name, timeout=STEP_TIMEOUT):
        return (await self.next(name, timeout))[1]


async def emit_with_ack(sio, nsp, event, args):
    acked = asyncio.get_running_loop().create_future()

    def on_ack(*reply):
        if not acked.done():
            acked.set_result(list(reply))

    await sio.emit(event, tuple(args), namespace=nsp, callback=on_ack)
    try:
        return await asyncio.wait_for(acked, STEP_TIMEOUT)
    except asyncio.TimeoutError:
        raise Failure(f"no ack for {event}") from None


async def round_trips(sio, inbox, opts, label):
    auth = await inbox.args("auth")
    same_value(auth, [opts.auth if opts.auth is not None else {}], f"{label}auth echo")

    for name, args in ECHO_CASES:
        ack = await emit_with_ack(sio, opts.nsp, "echo", args)
        same_value(ack, args, f"{label}echo ack ({name})")
        back = await inbox.args("echo-back")
        same_value(back, args, f"{label}echo-back ({name})")

    token = f"tok-{os.getpid()}-{len(label)}"
    answer = await emit_with_ack(sio, opts.nsp, "ask", [token])
    same_value(answer, [token + "!", b"\x07\x08\x09"], f"{label}ask ack")
    if inbox.question_error:
        raise inbox.question_error

    # shout-back goes to the whole namespace: wait for our own token.
    shout_token = f"shout-{os.getpid()}-{len(label)}"
    await sio.emit("shout", (shout_token, b"\x04\x02"), namespace=opts.nsp)
    while True:
        back = await inbox.args("shout-back")
        if back and back[0] == shout_token:
            same_value(back, [shout_token, b"\x04\x02"], f"{label}shout-back")
            break


async def run(opts):
    nsp = opts.nsp
    sio = socketio.AsyncClient(
        serializer="msgpack" if opts.parser == "msgpack" else "default",
        reconnection=opts.reconnect_check,
        reconnection_delay=0.2,
        reconnection_delay_max=1,
    )
    inbox = Inbox()

    async def any_event(event, *args):
        inbox.push(event, list(args))

    async def question(token, data=None, *_rest):
        try:
            same_value([token, data], [token, b"\x09\x08\x07"], "question")
        except Failure as err:
            inbox.question_error = err
        return token + "!", b"\x07\x08\x09"

    async def connect():
        inbox.push("$connect", [])

    async def connect_error(*data):
        inbox.push("$connect_error", list(data))

    async def disconnect(reason=None):
        inbox.push("$disconnect", [reason])

    sio.on("*", any_event, namespace=nsp)
    sio.on("question", question, namespace=nsp)
    sio.on("connect", connect, namespace=nsp)
    sio.on("connect_error", connect_error, namespace=nsp)
    sio.on("disconnect", disconnect, namespace=nsp)

    transports = {"polling": ["polling"], "websocket": ["websocket"], "upgrade": ["polling", "websocket"]}[
        opts.transports
    ]
    connect_kwargs = dict(namespaces=[nsp], transports=transports, wait_timeout=STEP_TIMEOUT)
    if opts.auth is not None:
        connect_kwargs["auth"] = opts.auth

    if opts.expect_reject:
        # Not awaited: after the refusal connect() closes the Engine.IO
        # session and, over polling against python-socketio's own server,
        # waits for a pending GET that server never answers after the close
        # packet (the Node server answers it with a noop at once).
        connecting = asyncio.ensure_future(sio.connect(opts.url, **connect_kwargs))
        connecting.add_done_callback(lambda task: task.cancelled() or task.exception())
        name, data = await inbox.next(("$connect", "$connect_error"))
        if name == "$connect":
            raise Failure("connected although a refusal was expected")
        # python-socketio hands the whole CONNECT_ERROR payload to the handler.
        refusal = data[0] if data else None
        message = refusal.get("message") if isinstance(refusal, dict) else refusal
        if message != "rejected by server":
            raise Failure(f"refused with {json.dumps(normalize(data))}")
        same_value(refusal.get("data"), {"code": 42}, "refusal data")
        return 'refused with "rejected by server"'

    try:
        await sio.connect(opts.url, **connect_kwargs)
    except socketio.exceptions.ConnectionError as err:
        raise Failure(f"connect failed: {err}") from None
    await inbox.next("$connect")
    await round_trips(sio, inbox, opts, "")

    if opts.reconnect_check:
        print("RESTART-ME", flush=True)
        (reason,) = await inbox.args("$disconnect", 15)
        # python-socketio has one reason for a lost transport: 'transport error'.
        if reason not in ("transport close", "transport error"):
            raise Failure(f"disconnect reason after the restart is {reason}")
        await inbox.next("$connect", 15)
        await round_trips(sio, inbox, opts, "after reconnect: ")

    transport = sio.transport()
    want = "polling" if opts.transports == "polling" else "websocket"
    if transport != want:
        raise Failure(f"final transport is {transport}, want {want}")

    await sio.emit("disconnect-me", namespace=nsp)
    (reason,) = await inbox.args("$disconnect")
    # The contract's `io server disconnect` is the JS client's name for this
    # reason; python-socketio's client calls it 'server disconnect'.
    if reason != socketio.AsyncClient.reason.SERVER_DISCONNECT:
        raise Failure(f"disconnect reason {reason}")
    # No sio.disconnect(): the namespace is gone and closing the session can
    # wait on the unanswered polling GET described above; main() exits hard.
    return f"{nsp} {opts.parser}, ended on {transport}" + (", reconnected" if opts.reconnect_check else "")


def main():
    opts = parse_args()
    # python-engineio's polling transport leaves aiohttp sessions for the
    # garbage collector; asyncio's "Unclosed client session" notes are noise.
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    if not opts.nsp.startswith("/"):
        print("FAIL --nsp must start with /", flush=True)
        sys.exit(2)
    try:
        summary = asyncio.run(asyncio.wait_for(run(opts), OVERALL_TIMEOUT))
    except Failure as err:
        print(f"FAIL {err}", flush=True)
        os._exit(1)
    except asyncio.TimeoutError:
        print(f"FAIL overall timeout of {OVERALL_TIMEOUT} s", flush=True)
        os._exit(1)
    except Exception as err:  # noqa: BLE001 - any other error is a failure too
        print(f"FAIL {type(err).__name__}: {err}", flush=True)
        os._exit(1)
    print(f"PASS {summary}", flush=True)
    # Leftover aiohttp sessions may delay a clean exit: the verdict is out.
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
