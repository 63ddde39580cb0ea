#!/usr/bin/env node
// Echo server of the interop contract (see ../README.md), on the official
// socket.io server.
//
//   node echo_server.js --port P [--parser json|msgpack] [--state-recovery SECS]
//
// `--runtime X` is accepted and ignored so that this program can stand in for
// our `echo_server` example when testing the harness's plumbing.
"use strict";

const http = require("http");
const { Server } = require("socket.io");

function parseArgs(argv) {
  const opts = { port: null, parser: "json", stateRecovery: null };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = argv[i + 1];
    switch (flag) {
      case "--port":
        opts.port = Number(value);
        i++;
        break;
      case "--parser":
        opts.parser = value;
        i++;
        break;
      case "--state-recovery":
        opts.stateRecovery = Number(value);
        i++;
        break;
      case "--runtime":
        i++;
        break;
      default:
        usage(`unknown argument ${flag}`);
    }
  }
  if (!Number.isInteger(opts.port) || opts.port <= 0) usage("--port is required");
  if (opts.parser !== "json" && opts.parser !== "msgpack") usage(`unknown parser ${opts.parser}`);
  if (opts.stateRecovery !== null && !(opts.stateRecovery >= 0)) usage("bad --state-recovery");
  return opts;
}

function usage(message) {
  console.error(`echo_server.js: ${message}`);
  console.error("usage: echo_server.js --port P [--parser json|msgpack] [--state-recovery SECS]");
  process.exit(2);
}

const opts = parseArgs(process.argv.slice(2));

const serverOptions = {};
if (opts.parser === "msgpack") serverOptions.parser = require("socket.io-msgpack-parser");
if (opts.stateRecovery !== null) {
  serverOptions.connectionStateRecovery = {
    maxDisconnectionDuration: opts.stateRecovery * 1000,
    skipMiddlewares: true,
  };
}

const httpServer = http.createServer();
const io = new Server(httpServer, serverOptions);

function popAck(args) {
  return typeof args[args.length - 1] === "function" ? args.pop() : null;
}

function setUp(nsp) {
  nsp.use((socket, next) => {
    const auth = socket.handshake.auth;
    if (auth && auth.reject === true) {
      const err = new Error("rejected by server");
      err.data = { code: 42 };
      next(err);
    } else {
      next();
    }
  });

  nsp.on("connection", (socket) => {
    socket.emit("auth", socket.handshake.auth || {});

    socket.on("echo", (...args) => {
      const ack = popAck(args);
      socket.emit("echo-back", ...args);
      if (ack) ack(...args);
    });

    socket.on("ask", (token, ...rest) => {
      const ack = popAck(rest);
      socket.emit("question", token, Buffer.from([9, 8, 7]), (...answer) => {
        if (ack) ack(...answer);
      });
    });

    socket.on("shout", (...args) => {
      popAck(args); // the contract does not ack `shout`
      nsp.emit("shout-back", ...args);
    });

    socket.on("disconnect-me", () => {
      socket.disconnect();
    });
  });
}

setUp(io.of("/"));
setUp(io.of("/custom"));

// The test harness keeps our stdin open and sets this, so that the server dies
// with the test process even when that is killed before it can clean up.
if (process.env.INTEROP_EXIT_ON_STDIN_EOF === "1") {
  process.stdin.on("end", () => process.exit(0));
  process.stdin.on("error", () => process.exit(0));
  process.stdin.resume();
}

httpServer.on("error", (err) => {
  console.error(`echo_server.js: ${err.message}`);
  process.exit(1);
});
httpServer.listen(opts.port, "127.0.0.1", () => {
  console.log(`listening on ${httpServer.address().port}`);
});
