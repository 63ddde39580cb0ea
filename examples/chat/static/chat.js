// The chat page: the terminal client's features in a browser, over the
// official socket.io-client. Query parameters: `nick`, `room` (lobby),
// `transports` (`polling`, `websocket`, or both, comma-separated) and
// `server` (another origin's chat server; the page's own by default).
"use strict";

const HELP = "commands: /join ROOM, /leave, /rooms, /nick NAME, /help; anything else is a message";
const params = new URLSearchParams(location.search);
const log = document.getElementById("log");
const statusLine = document.getElementById("status");
const me = document.getElementById("me");
const line = document.getElementById("line");

// Who we want to be and where, kept across reconnections.
const wanted = { nick: params.get("nick"), room: params.get("room") || "lobby" };
let everConnected = false;
let ready = false; // connected, nickname and room taken back
const waiting = []; // lines typed while disconnected
const MAX_WAITING = 100;

function show(text, kind, nick) {
  const item = document.createElement("li");
  item.className = kind;
  if (nick !== undefined) {
    const who = document.createElement("span");
    who.className = "nick";
    who.textContent = `<${nick}> `;
    item.append(who);
  }
  item.append(text);
  log.append(item);
  log.scrollTop = log.scrollHeight;
}
const notice = (text) => show(`* ${text}`, "notice");
const problem = (text) => show(`! ${text}`, "error");

function setStatus(state, text) {
  statusLine.dataset.state = state;
  statusLine.textContent = text;
}

function whoAmI() {
  me.textContent = wanted.room ? `${wanted.nick} in #${wanted.room}` : `${wanted.nick}, in no room`;
}

if (typeof io === "undefined") {
  setStatus("failed", "no socket.io client");
  problem("the server does not serve the socket.io-client bundle (socket.io.min.js): see the chat server's output");
  throw new Error("socket.io.min.js missing");
}

const transports = (params.get("transports") || "polling,websocket").split(",");
const socket = io(params.get("server") || undefined, { transports });
// For the browser tests (and the curious, in the console).
window.chatSocket = socket;

/// Send a request; resolves to its value, rejects with the server's reason.
async function request(event, ...args) {
  const reply = await socket.timeout(5000).emitWithAck(event, ...args);
  if (reply && "ok" in reply) return reply.ok;
  throw new Error(reply && reply.error ? reply.error : `unexpected answer ${JSON.stringify(reply)}`);
}

const roomLine = (room) => `#${room.name}: ${room.users.join(", ")}`;

// On every connection: take back the nickname and the room, then send
// what waited.
socket.on("welcome", async (given) => {
  ready = false;
  let nick = given;
  if (wanted.nick && wanted.nick !== given) {
    try {
      nick = await request("nick", wanted.nick);
    } catch (e) {
      problem(`cannot be ${wanted.nick}: ${e.message}`);
    }
  }
  wanted.nick = nick;
  setStatus("connected", everConnected ? "reconnected" : "connected");
  notice(everConnected ? `reconnected as ${nick}` : `connected as ${nick} (${HELP})`);
  everConnected = true;
  if (wanted.room) {
    try {
      notice(roomLine(await request("join", wanted.room)));
    } catch (e) {
      problem(`cannot join #${wanted.room}: ${e.message}`);
      wanted.room = null;
    }
  }
  whoAmI();
  ready = true;
  while (ready && waiting.length > 0) await typed(waiting.shift());
});

socket.on("message", (m) => show(m.text, "message", m.nick));
socket.on("user joined", (n) => notice(`${n.nick} joined #${n.room}`));
socket.on("user left", (n) => notice(`${n.nick} left #${n.room}`));
socket.on("nick changed", (c) => notice(`${c.old} is now known as ${c.new} (#${c.room})`));
socket.on("disconnect", (reason) => {
  ready = false;
  if (reason === "io server disconnect") {
    setStatus("failed", "disconnected by the server");
  } else {
    setStatus("disconnected", "reconnecting…");
    notice(`disconnected (${reason}); reconnecting… (what you type waits)`);
  }
});
socket.on("connect_error", (e) => {
  setStatus(socket.active ? "disconnected" : "failed", socket.active ? "reconnecting…" : "refused");
  if (!socket.active) problem(`refused: ${e.message}`);
});
socket.io.on("reconnect_attempt", (n) => setStatus("disconnected", `reconnecting (attempt ${n})…`));

async function typed(text) {
  text = text.trim();
  if (text === "") return;
  const [word, ...rest] = text.split(/\s+/);
  const arg = rest.join(" ");
  const command = word.startsWith("/") ? word : null;
  if (command === "/help") return notice(HELP);
  if (command && !["/join", "/leave", "/rooms", "/nick"].includes(command)) {
    return problem(`unknown command ${command} (${HELP})`);
  }
  if ((command === "/join" || command === "/nick") && !arg) {
    return problem(`usage: ${command} ${command === "/join" ? "ROOM" : "NAME"}`);
  }
  if (!ready) {
    if (waiting.length >= MAX_WAITING) return problem(`not connected, and ${MAX_WAITING} lines already wait: not sent`);
    waiting.push(text);
    return notice("not connected: sent when reconnected");
  }
  try {
    switch (command) {
      case "/join": {
        const room = await request("join", arg);
        wanted.room = room.name;
        notice(roomLine(room));
        break;
      }
      case "/leave":
        notice(`you left #${await request("leave")}`);
        wanted.room = null;
        break;
      case "/rooms": {
        const rooms = await request("rooms");
        if (rooms.length === 0) notice("no rooms yet: /join one");
        rooms.forEach((room) => notice(roomLine(room)));
        break;
      }
      case "/nick":
        wanted.nick = await request("nick", arg);
        notice(`you are now ${wanted.nick}`);
        break;
      default:
        await request("message", text);
        show(text, "message mine", wanted.nick);
    }
  } catch (e) {
    problem(e.message);
  }
  whoAmI();
}

document.getElementById("say").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = line.value;
  line.value = "";
  typed(text);
});
