"""Echo server of the interop contract (see ../README.md), on python-socketio.

    python echo_server.py --port P [--parser json|msgpack]

Known differences from the Node peer, which our clients must cope with:
- the `auth` echo emitted from the connect handler reaches the client BEFORE
  the CONNECT reply (python-socketio runs the handler first);
- with `--parser msgpack` DISCONNECT and data-less packets carry `data: nil`;
- JSON text escapes non-ASCII (`ensure_ascii`), astral characters as UTF-16
  surrogate pairs (`\\ud83d\\ude00`);
- no connection state recovery: `--state-recovery` is refused (exit 2);
- no CBOR serializer in 5.18;
- its client names the `io server disconnect` reason 'server disconnect' and
  a lost transport 'transport error'.
`--runtime X` is accepted and ignored (plumbing tests of the harness).
"""

import argparse
import asyncio
import sys

import msgpack
import socketio
from aiohttp import web

from stdin_watch import exit_on_stdin_eof

NAMESPACES = ("/", "/custom")


def parse_args():
    parser = argparse.ArgumentParser(prog="echo_server.py")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--parser", choices=("json", "msgpack"), default="json")
    parser.add_argument("--state-recovery", type=float, default=None)
    parser.add_argument("--runtime", default=None)
    args = parser.parse_args()
    if args.state_recovery is not None:
        parser.error("python-socketio has no connection state recovery")
    return args


def build_server(serializer):
    sio = socketio.AsyncServer(
        async_mode="aiohttp",
        serializer="msgpack" if serializer == "msgpack" else "default",
        cors_allowed_origins="*",
    )

    def register(nsp):
        async def connect(sid, environ, auth):
            if isinstance(auth, dict) and auth.get("reject") is True:
                raise socketio.exceptions.ConnectionRefusedError(
                    "rejected by server", {"code": 42}
                )
            # socket.io-client over socket.io-msgpack-parser sends a CONNECT
            # without auth as `data: undefined`, which the JS encoder writes as
            # fixext type 0; python's msgpack hands that over as an ExtType (a
            # tuple, which emit() would spread). Treat it as no auth, as the
            # Node server does.
            if auth is None or isinstance(auth, msgpack.ExtType):
                auth = {}
            await sio.emit("auth", auth, to=sid, namespace=nsp)

        async def echo(sid, *args):
            await sio.emit("echo-back", args, to=sid, namespace=nsp)
            return args

        async def ask(sid, token, *_rest):
            answered = asyncio.get_running_loop().create_future()

            def on_answer(*answer):
                if not answered.done():
                    answered.set_result(answer)

            await sio.emit(
                "question",
                (token, b"\x09\x08\x07"),
                to=sid,
                namespace=nsp,
                callback=on_answer,
            )
            return await asyncio.wait_for(answered, 10)

        async def shout(sid, *args):
            await sio.emit("shout-back", args, namespace=nsp)

        async def disconnect_me(sid, *_args):
            await sio.disconnect(sid, namespace=nsp)

        sio.on("connect", connect, namespace=nsp)
        sio.on("echo", echo, namespace=nsp)
        sio.on("ask", ask, namespace=nsp)
        sio.on("shout", shout, namespace=nsp)
        sio.on("disconnect-me", disconnect_me, namespace=nsp)

    for nsp in NAMESPACES:
        register(nsp)
    return sio


async def main():
    args = parse_args()
    exit_on_stdin_eof()
    sio = build_server(args.parser)
    app = web.Application()
    sio.attach(app)
    runner = web.AppRunner(app, handle_signals=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", args.port)
    try:
        await site.start()
    except OSError as err:
        print(f"echo_server.py: {err}", file=sys.stderr)
        sys.exit(1)
    print(f"listening on {args.port}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
