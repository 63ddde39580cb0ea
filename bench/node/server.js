// Node socket.io 4.8 server of the load benchmark (bench/run.sh), with the
// modules tests/interop/setup.sh installs. Same events as bench_server:
// echo -> echo-back (same args), join(room) -> joined, broadcast(room,
// payload) -> bcast(payload) to the room.
// usage: node bench/node/server.js PORT
"use strict";
const path = require("path");
const http = require("http");
const { Server } = require(path.join(__dirname, "../../tests/interop/node/node_modules/socket.io"));

const port = Number(process.argv[2] || 0);
const httpServer = http.createServer();
const io = new Server(httpServer, { transports: ["websocket", "polling"] });
io.on("connection", (socket) => {
  socket.on("echo", (...args) => socket.emit("echo-back", ...args));
  socket.on("join", (room) => {
    socket.join(room);
    socket.emit("joined", room);
  });
  socket.on("broadcast", (room, payload) => io.to(room).emit("bcast", payload));
});
httpServer.listen(port, "127.0.0.1", () => {
  console.log(`listening on ${httpServer.address().port}`);
});
