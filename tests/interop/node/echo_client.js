#!/usr/bin/env node
// Echo client of the interop contract (see ../README.md), on the official
// socket.io client.
//
//   node echo_client.js --url U --transports polling|websocket|upgrade --nsp N
//        [--auth JSON] [--parser json|msgpack] [--expect-reject] [--reconnect-check]
//
// Prints one line starting with PASS or FAIL and exits 0 only on PASS.
//
// `--reconnect-check` (not part of our examples' contract): after the first
// round trip the client prints `RESTART-ME` and waits; the harness kills the
// server and starts it again on the same port; the client must see the
// transport drop, reconnect by itself and round-trip again.
// `--disconnect-reason R` (not part of the contract) changes the reason
// expected after `disconnect-me`: against python-socketio with MessagePack it
// is `parse error`, because python writes the DISCONNECT packet with
// `data: nil`, which socket.io-msgpack-parser refuses.
// `--runtime X` is accepted and ignored (plumbing tests of the harness).
"use strict";

const { io } = require("socket.io-client");
const assert = require("assert");

const OVERALL_TIMEOUT_MS = 20000;
const STEP_TIMEOUT_MS = 8000;

function parseArgs(argv) {
  const opts = {
    url: null,
    transports: null,
    nsp: "/",
    auth: undefined,
    parser: "json",
    expectReject: false,
    reconnectCheck: false,
    disconnectReason: "io server disconnect",
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = argv[i + 1];
    switch (flag) {
      case "--url":
        opts.url = value;
        i++;
        break;
      case "--transports":
        opts.transports = value;
        i++;
        break;
      case "--nsp":
        opts.nsp = value;
        i++;
        break;
      case "--auth":
        opts.auth = JSON.parse(value);
        i++;
        break;
      case "--parser":
        opts.parser = value;
        i++;
        break;
      case "--expect-reject":
        opts.expectReject = true;
        break;
      case "--reconnect-check":
        opts.reconnectCheck = true;
        break;
      case "--disconnect-reason":
        opts.disconnectReason = value;
        i++;
        break;
      case "--runtime":
        i++;
        break;
      default:
        fail(`unknown argument ${flag}`, 2);
    }
  }
  if (!opts.url) fail("--url is required", 2);
  if (!["polling", "websocket", "upgrade"].includes(opts.transports)) {
    fail("--transports must be polling, websocket or upgrade", 2);
  }
  if (!["json", "msgpack"].includes(opts.parser)) fail(`unknown parser ${opts.parser}`, 2);
  if (!opts.nsp.startsWith("/")) fail("--nsp must start with /", 2);
  return opts;
}

function fail(message, code = 1) {
  console.log(`FAIL ${message}`);
  exitNow(code);
}

// Exits without waiting for open handles (stdout to a pipe or file is
// synchronous on Linux, so the verdict is out): against python-socketio over
// polling, a GET pending at the close is never answered (that server ignores
// the close packet for it) and would keep Node alive for a ping interval.
function exitNow(code) {
  process.exit(code);
}

// Binary compares by content whatever its JS type (Buffer, ArrayBuffer, typed
// array): the JSON and MessagePack parsers do not hand back the same type.
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

function sameValue(actual, expected, what) {
  try {
    assert.deepStrictEqual(normalize(actual), normalize(expected));
  } catch (_) {
    throw new Error(
      `${what}: got ${JSON.stringify(normalize(actual))}, want ${JSON.stringify(normalize(expected))}`,
    );
  }
}

function withTimeout(promise, what, ms = STEP_TIMEOUT_MS) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// Events kept in arrival order so that one arriving before we wait for it
// (e.g. the `auth` echo, which python-socketio sends even before its CONNECT
// reply) is not lost.
class Inbox {
  constructor() {
    this.events = [];
    this.waiter = null;
    this.questionError = null;
  }
  push(name, args) {
    this.events.push([name, args]);
    if (this.waiter) this.waiter();
  }
  // Resolves with `[name, args]` of the first kept event named in `names`.
  next(names, ms = STEP_TIMEOUT_MS) {
    if (typeof names === "string") names = [names];
    return new Promise((resolve, reject) => {
      const look = () => {
        const at = this.events.findIndex(([name]) => names.includes(name));
        if (at < 0) return false;
        const [event] = this.events.splice(at, 1);
        clearTimeout(timer);
        this.waiter = null;
        resolve(event);
        return true;
      };
      const timer = setTimeout(() => {
        this.waiter = null;
        reject(new Error(`timed out waiting for ${names.join(" or ")}`));
      }, ms);
      if (!look()) this.waiter = look;
    });
  }
  async args(name, ms) {
    return (await this.next(name, ms))[1];
  }
}

// The payloads of the contract's `echo` round trips.
const ECHO_CASES = [
  ["unicode", ["héllo wörld ✓ 日本語 😀 𝄞", ""]],
  ["numbers", [0, -7, 3.25, 9007199254740991, -1e-7]],
  ["nested objects", [{ a: { b: [1, 2, { c: null }], d: true }, e: "x", f: [] }, [false, null]]],
  ["several binary arguments", [Buffer.from([1, 2, 3]), "between", Buffer.from([]), Buffer.from([255, 0, 128])]],
  ["binary nested in objects", [{ file: Buffer.from("hello"), meta: { name: "x", parts: [Buffer.from([0]), Buffer.from([1, 2])] } }]],
  ["no arguments", []],
];

function emitWithAck(socket, event, args) {
  return withTimeout(
    new Promise((resolve, reject) => {
      socket.timeout(STEP_TIMEOUT_MS).emit(event, ...args, (err, ...reply) => {
        if (err) reject(new Error(`no ack for ${event}`));
        else resolve(reply);
      });
    }),
    `ack of ${event}`,
  );
}

async function roundTrips(socket, inbox, opts, label) {
  const expectedAuth = opts.auth === undefined ? {} : opts.auth;
  const [auth] = await inbox.args("auth");
  sameValue(auth, expectedAuth, `${label}auth echo`);

  for (const [name, args] of ECHO_CASES) {
    const ack = await emitWithAck(socket, "echo", args);
    sameValue(ack, args, `${label}echo ack (${name})`);
    const back = await inbox.args("echo-back");
    sameValue(back, args, `${label}echo-back (${name})`);
  }

  const token = `tok-${process.pid}-${label.length}`;
  const answer = await emitWithAck(socket, "ask", [token]);
  sameValue(answer, [`${token}!`, Buffer.from([7, 8, 9])], `${label}ask ack`);
  if (inbox.questionError) throw inbox.questionError;

  // shout-back goes to the whole namespace: wait for our own token.
  const shoutToken = `shout-${process.pid}-${label.length}`;
  socket.emit("shout", shoutToken, Buffer.from([4, 2]));
  for (;;) {
    const back = await inbox.args("shout-back");
    if (back[0] === shoutToken) {
      sameValue(back, [shoutToken, Buffer.from([4, 2])], `${label}shout-back`);
      break;
    }
  }
}

// The transport in use at the end, once an `upgrade` run has upgraded.
async function finalTransport(socket, opts) {
  const engine = socket.io.engine;
  const want = opts.transports === "polling" ? "polling" : "websocket";
  if (opts.transports === "upgrade" && engine.transport.name !== "websocket") {
    await withTimeout(new Promise((resolve) => engine.once("upgrade", resolve)), "upgrade to websocket");
  }
  const name = socket.io.engine.transport.name;
  if (name !== want) throw new Error(`final transport is ${name}, want ${want}`);
  return name;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const overall = setTimeout(() => fail(`overall timeout of ${OVERALL_TIMEOUT_MS} ms`), OVERALL_TIMEOUT_MS);

  const options = {
    transports: opts.transports === "upgrade" ? ["polling", "websocket"] : [opts.transports],
    upgrade: opts.transports === "upgrade",
    reconnection: opts.reconnectCheck,
    reconnectionDelay: 200,
    reconnectionDelayMax: 1000,
    timeout: STEP_TIMEOUT_MS,
    forceNew: true,
  };
  if (opts.auth !== undefined) options.auth = opts.auth;
  if (opts.parser === "msgpack") options.parser = require("socket.io-msgpack-parser");

  const base = opts.url.replace(/\/+$/, "");
  const socket = io(opts.nsp === "/" ? base : base + opts.nsp, options);
  const inbox = new Inbox();
  socket.onAny((event, ...args) => {
    if (typeof args[args.length - 1] === "function") return; // `question`, handled below
    inbox.push(event, args);
  });
  socket.on("question", (token, bytes, ack) => {
    try {
      sameValue([token, bytes], [token, Buffer.from([9, 8, 7])], "question");
    } catch (err) {
      inbox.questionError = err;
    }
    if (typeof ack !== "function") {
      inbox.questionError = new Error("question did not ask for an ack");
      return;
    }
    ack(`${token}!`, Buffer.from([7, 8, 9]));
  });
  socket.on("connect", () => inbox.push("$connect", []));
  socket.on("connect_error", (err) => inbox.push("$connect_error", [err]));
  socket.on("disconnect", (reason) => inbox.push("$disconnect", [reason]));

  if (opts.expectReject) {
    const [name, [err]] = await inbox.next(["$connect", "$connect_error"]);
    if (name === "$connect") throw new Error("connected although a refusal was expected");
    if (err.message !== "rejected by server") throw new Error(`refused with ${JSON.stringify(err.message)}`);
    sameValue(err.data, { code: 42 }, "refusal data");
    console.log(`PASS refused with "${err.message}"`);
    exitNow(0);
  }

  const [name, [err]] = await inbox.next(["$connect", "$connect_error"]);
  if (name === "$connect_error") throw new Error(`connect_error: ${err.message}`);
  await roundTrips(socket, inbox, opts, "");

  if (opts.reconnectCheck) {
    console.log("RESTART-ME");
    const [reason] = await inbox.args("$disconnect", 15000);
    if (reason !== "transport close" && reason !== "transport error") {
      throw new Error(`disconnect reason after the restart is ${reason}`);
    }
    await inbox.next("$connect", 15000);
    await roundTrips(socket, inbox, opts, "after reconnect: ");
  }

  const transport = await finalTransport(socket, opts);

  socket.emit("disconnect-me");
  const [reason] = await inbox.args("$disconnect");
  if (reason !== opts.disconnectReason) {
    throw new Error(`disconnect reason ${reason}, want ${opts.disconnectReason}`);
  }
  clearTimeout(overall);
  console.log(`PASS ${opts.nsp} ${opts.parser}, ended on ${transport}${opts.reconnectCheck ? ", reconnected" : ""}`);
  exitNow(0);
}

main().catch((err) => fail(err && err.message ? err.message : String(err)));
