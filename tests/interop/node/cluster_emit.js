#!/usr/bin/env node
// Write-only emitter of the cluster contract (see ../README.md, "Clusters"):
// @socket.io/redis-emitter, which publishes in the classic redis-adapter's
// format.
//
//   node cluster_emit.js --redis URL [--prefix socket.io] [--nsp /] [--room R] EVENT JSON_ARGS
//
// JSON_ARGS is a JSON array of the event's arguments; `{"$bin":"<hex>"}`
// stands for binary. Exits 0 once Redis has taken the PUBLISH, 1 on error.
"use strict";

const { createClient } = require("redis");
const { Emitter } = require("@socket.io/redis-emitter");

function usage(message) {
  console.error(`cluster_emit.js: ${message}`);
  console.error("usage: cluster_emit.js --redis URL [--prefix socket.io] [--nsp /] [--room R] EVENT JSON_ARGS");
  process.exit(2);
}

function parseArgs(argv) {
  const opts = { redis: null, prefix: "socket.io", nsp: "/", room: null };
  const positional = [];
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    if (!flag.startsWith("--")) {
      positional.push(flag);
      continue;
    }
    const value = argv[i + 1];
    if (value === undefined) usage(`${flag} needs a value`);
    i++;
    switch (flag) {
      case "--redis":
        opts.redis = value;
        break;
      case "--prefix":
        opts.prefix = value;
        break;
      case "--nsp":
        opts.nsp = value;
        break;
      case "--room":
        opts.room = value;
        break;
      default:
        usage(`unknown argument ${flag}`);
    }
  }
  if (!opts.redis) usage("--redis is required");
  if (positional.length !== 2) usage("EVENT and JSON_ARGS are required");
  [opts.event] = positional;
  try {
    opts.args = JSON.parse(positional[1]);
  } catch (err) {
    usage(`JSON_ARGS is not JSON: ${err.message}`);
  }
  if (!Array.isArray(opts.args)) usage("JSON_ARGS must be a JSON array");
  return opts;
}

// `{"$bin":"<hex>"}` -> Buffer, recursively.
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

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const client = createClient({ url: opts.redis });
  let lastError = null;
  client.on("error", (err) => {
    lastError = err;
  });
  await client.connect();
  let emitter = new Emitter(client, { key: opts.prefix }).of(opts.nsp);
  if (opts.room !== null) emitter = emitter.to(opts.room);
  emitter.emit(opts.event, ...revive(opts.args));
  // The emitter publishes without waiting; QUIT is answered after every
  // command queued before it.
  await client.quit();
  if (lastError) throw lastError;
}

main().catch((err) => {
  console.error(`cluster_emit.js: ${err.stack || err}`);
  process.exit(1);
});
