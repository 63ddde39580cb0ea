// Plays the Socket.IO Admin UI (@socket.io/admin-ui 0.5's web app) against
// a server instrumented with `Server::instrument`, next to chat clients,
// with the official socket.io-client 4.8. Prints one JSON line with what it
// saw; the Rust test (socketio/tests/admin.rs) judges it. Every wait has a
// deadline: a missing message ends the run with {"error": ...}.
//
// usage: node admin_client.js URL SCENARIO USER PASSWORD
//   SCENARIO: development | read_only | production | wrong_password
//
// The server's "/" namespace must answer "join_room" (room) and "rooms"
// (acknowledged with the socket's rooms), and answer "say" (text) by
// emitting "said" (text) back.
"use strict";

const { io } = require("socket.io-client");

const [url, scenario, username, password] = process.argv.slice(2);
const WAIT_MS = 10000;

const finish = (result) => {
  process.stdout.write(JSON.stringify(result) + "\n");
  process.exit(0);
};
setTimeout(() => finish({ error: "the whole run took over 50 s" }), 50000).unref();

// Every message the admin client got, in order, and waiters on them.
const received = [];
let waiters = [];
const record = (name, args) => {
  received.push({ name, args });
  waiters = waiters.filter((w) => !w.check());
};

// Resolves with the first message (already received or to come) named
// `name` whose args satisfy `accept`.
const waitFor = (name, accept = () => true) =>
  new Promise((resolve, reject) => {
    const check = () => {
      const found = received.find((m) => m.name === name && accept(m.args));
      if (found) {
        clearTimeout(timer);
        resolve(found.args);
        return true;
      }
      return false;
    };
    const timer = setTimeout(
      () => reject(new Error(`no ${name} message within ${WAIT_MS} ms`)),
      WAIT_MS,
    );
    if (!check()) waiters.push({ check });
  });

const connect = (nsp, options) =>
  new Promise((resolve, reject) => {
    const socket = io(url + nsp, { forceNew: true, reconnection: false, ...options });
    const timer = setTimeout(() => reject(new Error(`no connection to ${nsp}`)), WAIT_MS);
    socket.once("connect", () => {
      clearTimeout(timer);
      resolve(socket);
    });
    socket.once("connect_error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });

const ask = (socket, event, ...args) => socket.timeout(WAIT_MS).emitWithAck(event, ...args);

// Two more statistics messages: the server had a full interval to act on
// what was sent before (its stats timer runs after it read our packets).
const twoMoreStats = async () => {
  const seen = received.filter((m) => m.name === "server_stats").length;
  await waitFor("server_stats", () => received.filter((m) => m.name === "server_stats").length >= seen + 2);
};

const adminOptions = (auth) => ({ auth, transports: ["websocket"] });

async function wrongPassword() {
  try {
    const admin = await connect("/admin", adminOptions({ username, password: password + "x" }));
    admin.close();
    return { connected: true };
  } catch (err) {
    return { connected: false, message: err.message };
  }
}

async function main() {
  if (scenario === "wrong_password") return wrongPassword();
  const chat = await connect("/", { transports: ["websocket"] });
  await ask(chat, "join_room", "lobby");
  const poller = await connect("/", { transports: ["polling"] });

  const admin = io(url + "/admin", {
    forceNew: true,
    reconnection: false,
    ...adminOptions({ username, password }),
  });
  admin.onAny((name, ...args) => record(name, args));
  await new Promise((resolve, reject) => {
    admin.once("connect", resolve);
    admin.once("connect_error", reject);
  });

  const result = { chatId: chat.id, pollerId: poller.id, adminId: admin.id };
  [result.config] = await waitFor("config");
  [result.session] = await waitFor("session");
  if (scenario !== "production") {
    [result.allSockets] = await waitFor("all_sockets");
  }
  // Statistics once both chat sockets and the admin socket are counted.
  [result.stats] = await waitFor("server_stats", ([s]) =>
    s.namespaces.some((n) => n.name === "/" && n.socketsCount === 2) &&
    s.namespaces.some((n) => n.name === "/admin" && n.socketsCount === 1));

  if (scenario === "development") {
    chat.emit("say", "hello");
    [, , result.eventReceived] = await waitFor("event_received", ([, id, args]) => id === chat.id && args[0] === "say");
    [, , result.eventSent] = await waitFor("event_sent", ([, id, args]) => id === chat.id && args[0] === "said");
    const [[, first], [, second]] = await Promise.all([chat.id, poller.id].map((id) =>
      waitFor("event_sent", ([, to, args]) => to === id && args[0] === "announced")));
    result.announcedTo = [first, second];

    // "emit": to one socket (its id as the room filter), then to all.
    const notice = (socket) => new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("no notice event")), WAIT_MS);
      socket.once("notice", (...args) => {
        clearTimeout(timer);
        resolve(args);
      });
    });
    const chatNotice = notice(chat);
    admin.emit("emit", "/", chat.id, "notice", "to you", 1);
    result.emitToOne = await chatNotice;
    const noticed = [notice(chat), notice(poller)];
    admin.emit("emit", "/", null, "notice", "to all");
    result.emitToAll = await Promise.all(noticed);

    admin.emit("join", "/", "room2", chat.id);
    result.roomJoined = await waitFor("room_joined", ([, room]) => room === "room2");
    result.roomsAfterJoin = await ask(chat, "rooms");
    result.pollerRoomsAfterJoin = await ask(poller, "rooms");

    admin.emit("leave", "/", "room2", chat.id);
    result.roomLeft = await waitFor("room_left", ([, room]) => room === "room2");
    result.roomsAfterLeave = await ask(chat, "rooms");

    // A new chat socket is announced with its details, and again when it
    // moved from polling to WebSocket.
    const late = await connect("/", { query: { tag: "late" } });
    [result.lateConnected] = await waitFor("socket_connected", ([s]) => s.id === late.id);
    [result.lateUpdated] = await waitFor("socket_updated", ([s]) => s.id === late.id);

    const reason = new Promise((resolve) => chat.once("disconnect", resolve));
    admin.emit("_disconnect", "/", false, chat.id);
    result.chatDisconnectReason = await reason;
    // (The client forgets its id once disconnected.)
    result.socketDisconnected = await waitFor("socket_disconnected", ([, id]) => id === result.chatId);
    late.close();
    await twoMoreStats();
    result.aggregatedTypes = [...new Set(received
      .filter((m) => m.name === "server_stats")
      .flatMap((m) => m.args[0].aggregatedEvents.map((e) => e.type)))].sort();

    // The session id lets the UI back in without the password.
    const again = await connect("/admin", adminOptions({ sessionId: result.session }));
    result.sessionAdmitted = again.connected;
    again.close();
  } else if (scenario === "read_only") {
    admin.emit("join", "/", "room2", chat.id);
    admin.emit("_disconnect", "/", false, chat.id);
    await twoMoreStats();
    result.roomsAfterJoin = await ask(chat, "rooms");
    result.chatConnected = chat.connected;
  } else if (scenario === "production") {
    chat.emit("say", "hello");
    await ask(chat, "rooms");
    await twoMoreStats();
  }
  result.messages = [...new Set(received.map((m) => m.name))].sort();
  admin.close();
  chat.close();
  poller.close();
  return result;
}

main().then(finish, (err) => finish({ error: err.message, messages: received.map((m) => m.name) }));
