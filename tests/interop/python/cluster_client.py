"""Scriptable clients of the cluster contract (see ../README.md, "Clusters"),
on python-socketio's AsyncClient: one client per `--url`, driven by JSON lines
on stdin, reporting JSON lines on stdout.

    python cluster_client.py --url U [--url U2 ...] [--nsp /] [--transports websocket|polling]

Out: {"client":i,"connected":sid} | {"client":i,"event":name,"args":[...]}
     | {"client":i,"disconnected":reason} | {"client":i,"connect_error":message}
     | {"id":k,"ack":[...]} | {"id":k,"error":"..."}
In:  {"id":k,"client":i,"emit":name,"args":[...],"ack":true|false}
Binary travels as {"$bin":"<hex>"} both ways. Every client answers
`question(data)` with one ack argument, the array ["answer", data]. Exits when
stdin closes.

python-socketio's client names the reasons `server disconnect` (the JS
client's `io server disconnect`), `client disconnect` and `transport error`.
"""

import argparse
import asyncio
import json
import logging
import os
import sys
import threading

import socketio

ACK_TIMEOUT = 10.0
CONNECT_TIMEOUT = 10.0


def parse_args():
    parser = argparse.ArgumentParser(prog="cluster_client.py")
    parser.add_argument("--url", action="append", required=True)
    parser.add_argument("--nsp", default="/")
    parser.add_argument("--transports", choices=("websocket", "polling"), default="websocket")
    args = parser.parse_args()
    if not args.nsp.startswith("/"):
        parser.error("--nsp must start with /")
    return args


def normalize(value):
    """Binary -> {"$bin": hex}; tuples -> lists."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$bin": bytes(value).hex()}
    if isinstance(value, (list, tuple)):
        return [normalize(v) for v in value]
    if isinstance(value, dict):
        return {k: normalize(v) for k, v in value.items()}
    return value


def revive(value):
    """{"$bin": hex} -> bytes, recursively."""
    if isinstance(value, list):
        return [revive(v) for v in value]
    if isinstance(value, dict):
        if len(value) == 1 and isinstance(value.get("$bin"), str):
            return bytes.fromhex(value["$bin"])
        return {k: revive(v) for k, v in value.items()}
    return value


def out(line):
    sys.stdout.write(json.dumps(line, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def make_client(index, nsp):
    sio = socketio.AsyncClient(reconnection_delay=0.2, reconnection_delay_max=1)

    async def any_event(event, *args):
        out({"client": index, "event": event, "args": normalize(list(args))})

    async def question(*args):
        out({"client": index, "event": "question", "args": normalize(list(args))})
        # A list is one ack argument (a tuple would be several).
        return ["answer", args[0] if args else None]

    async def connect():
        out({"client": index, "connected": sio.get_sid(nsp)})

    async def connect_error(data=None):
        message = data.get("message") if isinstance(data, dict) else data
        out({"client": index, "connect_error": message})

    async def disconnect(reason=None):
        out({"client": index, "disconnected": reason})

    sio.on("*", any_event, namespace=nsp)
    sio.on("question", question, namespace=nsp)
    sio.on("connect", connect, namespace=nsp)
    sio.on("connect_error", connect_error, namespace=nsp)
    sio.on("disconnect", disconnect, namespace=nsp)
    return sio


async def start(index, sio, url, nsp, transports):
    try:
        await sio.connect(url, namespaces=[nsp], transports=[transports], wait_timeout=CONNECT_TIMEOUT)
    except Exception as err:  # noqa: BLE001 - reported, the harness decides
        out({"client": index, "connect_error": f"{type(err).__name__}: {err}"})


async def emit(clients, nsp, command):
    cid = command.get("id")
    index = command.get("client")
    name = command.get("emit")
    args = command.get("args", [])
    if not isinstance(index, int) or not 0 <= index < len(clients) or not isinstance(name, str) or not isinstance(
        args, list
    ):
        out({"id": cid, "error": f"bad command: {json.dumps(command)}"})
        return
    sio = clients[index]
    data = tuple(revive(args))
    try:
        if not command.get("ack"):
            await sio.emit(name, data, namespace=nsp)
            return
        acked = asyncio.get_running_loop().create_future()

        def on_ack(*reply):
            if not acked.done():
                acked.set_result(list(reply))

        await sio.emit(name, data, namespace=nsp, callback=on_ack)
        try:
            reply = await asyncio.wait_for(acked, ACK_TIMEOUT)
        except asyncio.TimeoutError:
            out({"id": cid, "error": f"no ack for {name} within {ACK_TIMEOUT} s"})
            return
        out({"id": cid, "ack": normalize(reply)})
    except Exception as err:  # noqa: BLE001 - e.g. not connected
        out({"id": cid, "error": f"{type(err).__name__}: {err}"})


async def main():
    opts = parse_args()
    loop = asyncio.get_running_loop()
    lines = asyncio.Queue()

    def read_stdin():
        for line in sys.stdin:
            loop.call_soon_threadsafe(lines.put_nowait, line)
        loop.call_soon_threadsafe(lines.put_nowait, None)

    threading.Thread(target=read_stdin, daemon=True).start()

    clients = [make_client(i, opts.nsp) for i in range(len(opts.url))]
    for i, (sio, url) in enumerate(zip(clients, opts.url)):
        asyncio.ensure_future(start(i, sio, url, opts.nsp, opts.transports))

    pending = set()
    while True:
        line = await lines.get()
        if line is None:
            break
        if not line.strip():
            continue
        try:
            command = json.loads(line)
        except ValueError as err:
            out({"error": f"bad input line: {err}", "line": line.rstrip("\n")})
            continue
        # One task per command, so that a pending ack does not hold the next
        # command; the emits themselves still leave in input order, because a
        # task runs up to its first await (the send) before the next starts.
        task = asyncio.ensure_future(emit(clients, opts.nsp, command))
        pending.add(task)
        task.add_done_callback(pending.discard)
        await asyncio.sleep(0)


if __name__ == "__main__":
    # python-engineio leaves aiohttp sessions for the garbage collector;
    # asyncio's "Unclosed client session" notes are noise.
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    sys.stdout.flush()
    # Exit without closing the sessions (a pending polling GET may hold a
    # graceful close for a ping interval).
    os._exit(0)
