#!/usr/bin/env node
// Scriptable clients of the cluster contract (see ../README.md, "Clusters"),
// on the official socket.io client: one socket per `--url`, driven by JSON
// lines on stdin, reporting JSON lines on stdout.
//
//   node cluster_client.js --url U [--url U2 ...] [--nsp /] [--transports websocket|polling]
//
// Out: {"client":i,"connected":sid,"recovered":bool} | {"client":i,"event":name,"args":[...]}
//      | {"client":i,"disconnected":reason} | {"client":i,"connect_error":message}
//      | {"id":k,"ack":[...]} | {"id":k,"error":"..."}
// In:  {"id":k,"client":i,"emit":name,"args":[...],"ack":true|false}
//      | {"id":k,"client":i,"cut":true} (closes the transport and stops
//        reconnecting; acked once disconnected)
//      | {"id":k,"client":i,"reconnect":url} (connects again, to `url`: with
//        connection state recovery, the session's pid and last offset go along)
// Binary travels as {"$bin":"<hex>"} both ways. Every client answers
// `question(data)` with one ack argument, the array ["answer", data]. Exits
// when stdin closes.
"use strict";

const readline = require("readline");
const { io } = require("socket.io-client");

const ACK_TIMEOUT_MS = 10000;

function usage(message) {
  console.error(`cluster_client.js: ${message}`);
  console.error("usage: cluster_client.js --url U [--url U2 ...] [--nsp /] [--transports websocket|polling]");
  process.exit(2);
}

function parseArgs(argv) {
  const opts = { urls: [], nsp: "/", transports: "websocket" };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = argv[i + 1];
    if (value === undefined) usage(`${flag} needs a value`);
    i++;
    switch (flag) {
      case "--url":
        opts.urls.push(value);
        break;
      case "--nsp":
        opts.nsp = value;
        break;
      case "--transports":
        opts.transports = value;
        break;
      default:
        usage(`unknown argument ${flag}`);
    }
  }
  if (opts.urls.length === 0) usage("at least one --url is required");
  if (!opts.nsp.startsWith("/")) usage("--nsp must start with /");
  if (!["websocket", "polling"].includes(opts.transports)) usage("--transports must be websocket or polling");
  return opts;
}

// Binary -> {"$bin": hex}, whatever its JS type.
function normalize(value) {
  if (Buffer.isBuffer(value)) return { $bin: value.toString("hex") };
  if (value instanceof ArrayBuffer) return { $bin: Buffer.from(value).toString("hex") };
  if (ArrayBuffer.isView(value)) {
    return { $bin: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("hex") };
  }
  if (Array.isArray(value)) return value.map(normalize);
  if (value && typeof value === "object") {
    const out = {};
    for (const key of Object.keys(value)) out[key] = normalize(value[key]);
    return out;
  }
  return value;
}

// {"$bin": hex} -> Buffer, recursively.
function revive(value) {
  if (Array.isArray(value)) return value.map(revive);
  if (value && typeof value === "object") {
    const keys = Object.keys(value);
    if (keys.length === 1 && keys[0] === "$bin" && typeof value.$bin === "string") {
      return Buffer.from(value.$bin, "hex");
    }
    const out = {};
    for (const key of keys) out[key] = revive(value[key]);
    return out;
  }
  return value;
}

let closing = false;

function out(line) {
  if (closing) return; // stdin closed: what the sockets report now is noise
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

const opts = parseArgs(process.argv.slice(2));

const sockets = opts.urls.map((url, client) => {
  const base = url.replace(/\/+$/, "");
  const socket = io(base + opts.nsp, {
    transports: [opts.transports],
    forceNew: true, // one connection per client, even to the same URL
    reconnectionDelay: 200,
    reconnectionDelayMax: 1000,
  });
  socket.on("connect", () => out({ client, connected: socket.id, recovered: socket.recovered === true }));
  socket.on("disconnect", (reason) => out({ client, disconnected: reason }));
  socket.on("connect_error", (err) => out({ client, connect_error: err.message }));
  socket.onAny((event, ...args) => {
    if (typeof args[args.length - 1] === "function") {
      const ack = args.pop();
      if (event === "question") {
        ack(["answer", args[0] === undefined ? null : args[0]]);
      }
    }
    out({ client, event, args: normalize(args) });
  });
  return socket;
});

function handle(line) {
  if (line.trim() === "") return;
  let command;
  try {
    command = JSON.parse(line);
  } catch (err) {
    out({ error: `bad input line: ${err.message}`, line });
    return;
  }
  const { id, client, emit, args = [], ack = false } = command;
  const socket = sockets[client];
  if (socket && command.cut === true) {
    // A transport-level cut, as a network failure looks to the server.
    socket.io.reconnection(false);
    if (!socket.connected) {
      out({ id, error: "not connected" });
      return;
    }
    socket.once("disconnect", () => out({ id, ack: [] }));
    socket.io.engine.close();
    return;
  }
  if (socket && typeof command.reconnect === "string") {
    socket.io.uri = command.reconnect.replace(/\/+$/, "") + opts.nsp;
    socket.io.reconnection(true);
    socket.connect();
    out({ id, ack: [] });
    return;
  }
  if (!socket || typeof emit !== "string" || !Array.isArray(args)) {
    out({ id, error: `bad command: ${line}` });
    return;
  }
  if (ack) {
    socket.timeout(ACK_TIMEOUT_MS).emit(emit, ...revive(args), (err, ...answer) => {
      if (err) out({ id, error: err.message });
      else out({ id, ack: normalize(answer) });
    });
  } else {
    socket.emit(emit, ...revive(args));
  }
}

const input = readline.createInterface({ input: process.stdin });
input.on("line", handle);
input.on("close", () => {
  closing = true;
  for (const socket of sockets) socket.disconnect();
  process.exit(0);
});
