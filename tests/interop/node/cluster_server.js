#!/usr/bin/env node
// Cluster server of the interop contract (see ../README.md, "Clusters"): the
// official socket.io server with @socket.io/redis-adapter, classic (PUBLISH /
// SUBSCRIBE) or sharded (SPUBLISH / SSUBSCRIBE, Redis 7+), or with
// @socket.io/redis-streams-adapter (XADD / XREAD, pub/sub for requests).
//
//   node cluster_server.js --port P --redis URL --adapter classic|sharded|streams
//       [--prefix socket.io] [--subscription-mode static|dynamic|dynamic-private]
//       [--state-recovery SECS]
//
// `--state-recovery` turns connectionStateRecovery on (skipMiddlewares),
// which the streams adapter carries across nodes.
// Prints `listening on P` once both Redis connections are up and the HTTP
// server listens. Namespaces `/` and `/custom`.
"use strict";

const http = require("http");
const { Server } = require("socket.io");
const { createClient } = require("redis");
const { createAdapter, createShardedAdapter } = require("@socket.io/redis-adapter");
const { createAdapter: createStreamsAdapter } = require("@socket.io/redis-streams-adapter");

function parseArgs(argv) {
  const opts = {
    port: null,
    redis: null,
    adapter: null,
    prefix: "socket.io",
    subscriptionMode: "dynamic",
    stateRecovery: null,
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = argv[i + 1];
    if (value === undefined) usage(`${flag} needs a value`);
    switch (flag) {
      case "--port":
        opts.port = Number(value);
        break;
      case "--redis":
        opts.redis = value;
        break;
      case "--adapter":
        opts.adapter = value;
        break;
      case "--prefix":
        opts.prefix = value;
        break;
      case "--subscription-mode":
        opts.subscriptionMode = value;
        break;
      case "--state-recovery":
        opts.stateRecovery = Number(value);
        break;
      default:
        usage(`unknown argument ${flag}`);
    }
    i++;
  }
  if (!Number.isInteger(opts.port) || opts.port <= 0) usage("--port is required");
  if (!opts.redis) usage("--redis is required");
  if (!["classic", "sharded", "streams"].includes(opts.adapter)) usage("--adapter classic|sharded|streams is required");
  if (opts.stateRecovery !== null && !(opts.stateRecovery > 0)) usage("--state-recovery takes seconds");
  if (!["static", "dynamic", "dynamic-private"].includes(opts.subscriptionMode)) {
    usage(`unknown subscription mode ${opts.subscriptionMode}`);
  }
  return opts;
}

function usage(message) {
  console.error(`cluster_server.js: ${message}`);
  console.error(
    "usage: cluster_server.js --port P --redis URL --adapter classic|sharded|streams " +
      "[--prefix socket.io] [--subscription-mode static|dynamic|dynamic-private] [--state-recovery SECS]",
  );
  process.exit(2);
}

function popAck(args) {
  return typeof args[args.length - 1] === "function" ? args.pop() : () => {};
}

// Answers compare as their JSON text, so that the order of a cluster's replies
// does not matter.
function sortedByJson(values) {
  return values
    .map((value) => [JSON.stringify(value), value])
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    .map((pair) => pair[1]);
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));

  const pubClient = createClient({ url: opts.redis });
  const subClient = pubClient.duplicate();
  for (const [name, client] of [["pub", pubClient], ["sub", subClient]]) {
    client.on("error", (err) => console.error(`cluster_server.js: redis ${name} client: ${err.message}`));
  }
  await Promise.all([pubClient.connect(), subClient.connect()]);

  // Every command on one connection is answered in order: once PING returns,
  // the adapter's earlier PUBLISH (fire-and-forget in socketsJoin and the
  // like) has reached Redis, so acking after it orders the cluster's view.
  const flushed = () => pubClient.ping();
  // Likewise on the subscriber connection: the adapter subscribes without
  // waiting (at start, and in the sharded "dynamic" modes whenever a room is
  // created); a subscription of our own made after it returns once Redis has
  // taken theirs.
  let barriers = 0;
  const subscribed = async () => {
    const channel = `cluster-server-barrier#${process.pid}#${barriers++}`;
    if (opts.adapter === "streams") {
      // The adapter subscribes on a connection of its own: wait until Redis
      // lists a subscriber of the public channel, ours at the latest.
      for (;;) {
        const counts = await pubClient.pubSubNumSub(`${opts.prefix}#/#`);
        if ((counts[`${opts.prefix}#/#`] || 0) > 0) break;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    } else if (opts.adapter === "classic") {
      await subClient.subscribe(channel, () => {});
      await subClient.unsubscribe(channel);
    } else {
      await subClient.sSubscribe(channel, () => {});
      await subClient.sUnsubscribe(channel);
    }
  };

  const adapter =
    opts.adapter === "classic"
      ? createAdapter(pubClient, subClient, { key: opts.prefix })
      : opts.adapter === "sharded"
        ? createShardedAdapter(pubClient, subClient, {
            channelPrefix: opts.prefix,
            subscriptionMode: opts.subscriptionMode,
          })
        : createStreamsAdapter(pubClient, { channelPrefix: opts.prefix });

  const httpServer = http.createServer();
  const serverOpts = { adapter };
  if (opts.stateRecovery !== null) {
    serverOpts.connectionStateRecovery = {
      maxDisconnectionDuration: opts.stateRecovery * 1000,
      skipMiddlewares: true,
    };
  }
  const io = new Server(httpServer, serverOpts);

  function setUp(nsp) {
    // Another node's `server-side-emit`.
    nsp.on("ping-servers", (data, ack) => {
      if (typeof ack === "function") ack(`pong:${data}`);
    });

    nsp.on("connection", (socket) => {
      socket.emit("hello", { sid: socket.id });

      socket.on("shout", (...args) => {
        popAck(args);
        nsp.emit("shout-back", ...args);
      });

      socket.on("join", async (room, ...rest) => {
        socket.join(room);
        await subscribed();
        popAck(rest)(true);
      });

      socket.on("shout-to", (room, data, ...rest) => {
        nsp.to(room).emit("shout-back", data);
        popAck(rest)(true);
      });

      socket.on("shout-except", (room, data, ...rest) => {
        nsp.except(room).emit("shout-back", data);
        popAck(rest)(true);
      });

      socket.on("enter-room", async (sid, room, ...rest) => {
        nsp.in(sid).socketsJoin(room);
        await flushed();
        popAck(rest)(true);
      });

      socket.on("leave-room", async (sid, room, ...rest) => {
        nsp.in(sid).socketsLeave(room);
        await flushed();
        popAck(rest)(true);
      });

      socket.on("disconnect-sid", async (sid, ...rest) => {
        nsp.in(sid).disconnectSockets(true);
        await flushed();
        popAck(rest)(true);
      });

      socket.on("call-sid", async (sid, data, ...rest) => {
        const ack = popAck(rest);
        try {
          // One response per socket reached: the socket's first ack argument.
          ack(await nsp.to(sid).timeout(5000).emitWithAck("question", data));
        } catch (err) {
          ack({ error: err.message });
        }
      });

      socket.on("fetch-sockets", async (room, ...rest) => {
        const ack = popAck(rest);
        try {
          const sockets = await nsp.in(room).fetchSockets();
          ack(sockets.map((s) => s.id).sort());
        } catch (err) {
          ack({ error: err.message });
        }
      });

      socket.on("server-side-emit", async (data, ...rest) => {
        const ack = popAck(rest);
        try {
          // The adapter has its own request timeout (5 s) and no per-call
          // one: the contract's 3 s limit is ours.
          let timer;
          const timedOut = new Promise((_, reject) => {
            timer = setTimeout(() => reject(new Error("no answer from every server within 3 s")), 3000);
          });
          try {
            ack(sortedByJson(await Promise.race([nsp.serverSideEmitWithAck("ping-servers", data), timedOut])));
          } finally {
            clearTimeout(timer);
          }
        } catch (err) {
          ack({ error: err.message });
        }
      });

      socket.on("broadcast-ack", async (room, data, timeoutMs, ...rest) => {
        const ack = popAck(rest);
        try {
          const responses = await nsp.to(room).timeout(timeoutMs).emitWithAck("question", data);
          ack({ responses: sortedByJson(responses) });
        } catch (err) {
          ack({ error: "timeout", message: err.message, responses: sortedByJson(err.responses || []) });
        }
      });

      socket.on("server-count", async (...rest) => {
        const ack = popAck(rest);
        try {
          ack(await nsp.adapter.serverCount());
        } catch (err) {
          ack({ error: err.message });
        }
      });
    });
  }

  setUp(io.of("/"));
  setUp(io.of("/custom"));
  await subscribed();
  if (opts.adapter === "streams") {
    // Its stream readers start from the newest entry once their own
    // connections are up (XREAD .. $): give them that moment.
    await new Promise((resolve) => setTimeout(resolve, 300));
  }

  // The test harness keeps our stdin open and sets this, so that the server
  // dies with the test process even when that is killed before it can clean up.
  if (process.env.INTEROP_EXIT_ON_STDIN_EOF === "1") {
    process.stdin.on("end", () => process.exit(0));
    process.stdin.on("error", () => process.exit(0));
    process.stdin.resume();
  }

  httpServer.on("error", (err) => {
    console.error(`cluster_server.js: ${err.message}`);
    process.exit(1);
  });
  httpServer.listen(opts.port, "127.0.0.1", () => {
    console.log(`listening on ${httpServer.address().port}`);
  });
}

main().catch((err) => {
  console.error(`cluster_server.js: ${err.stack || err}`);
  process.exit(1);
});
