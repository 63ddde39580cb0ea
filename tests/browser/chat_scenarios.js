// Browser scenarios of the chat example: our `chat` server, its page in
// headless Chromium (Debian's, driven by playwright-core; no browser
// download), and the official socket.io-client browser bundle.
//
//   node chat_scenarios.js SCENARIO --chat PATH [--screenshots DIR]
//
// SCENARIO: rooms, cross_origin, restart, recovery, polling, websocket,
// admin. PATH is the built `chat` example. Prints `ok SCENARIO` and exits 0
// when the scenario passed; otherwise prints why, with the server's output,
// and exits 1. Every wait has a deadline; every process and the browser are
// closed on the way out.
"use strict";

const { spawn } = require("node:child_process");
const fs = require("node:fs");
const http = require("node:http");
const path = require("node:path");
const { chromium } = require("playwright-core");

/// How long one expected thing may take (a reconnection waits for the
/// client's backoff, up to 5 s).
const WAIT_MS = 20000;
/// How long something that must not happen is watched for.
const QUIET_MS = 1000;
const PAGE_DIR = path.join(__dirname, "..", "..", "examples", "chat", "static");
const MDI_FONT = path.join(__dirname, "node_modules", "@mdi", "font");
const CLIENT_JS = path.join(__dirname, "node_modules", "socket.io-client", "dist", "socket.io.min.js");

function parseArgs(argv) {
  const args = { scenario: argv[0], chat: null, screenshots: null };
  for (let i = 1; i < argv.length; i += 2) {
    const value = argv[i + 1];
    if (value === undefined) throw new Error(`${argv[i]} needs a value`);
    if (argv[i] === "--chat") args.chat = value;
    else if (argv[i] === "--screenshots") args.screenshots = value;
    else throw new Error(`unknown argument ${argv[i]}`);
  }
  if (!args.scenario || !args.chat) {
    throw new Error("usage: node chat_scenarios.js SCENARIO --chat PATH [--screenshots DIR]");
  }
  return args;
}

/// Our chat server, started with `args`; its output is kept for failures.
class ChatServer {
  constructor(binary, args) {
    this.binary = binary;
    this.args = args;
    this.output = [];
  }

  /// Start (on `port`, or a free one) and wait for `chat server on ADDR`.
  async start(port = 0) {
    const args = ["--port", String(port), ...this.args];
    this.output.push(`$ chat ${args.join(" ")}`);
    const child = spawn(this.binary, args, { stdio: ["ignore", "pipe", "pipe"] });
    this.child = child;
    const exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
    this.exited = exited;
    let buffer = "";
    const listening = new Promise((resolve, reject) => {
      child.stdout.on("data", (data) => {
        buffer += data;
        const found = /chat server on ([\d.]+):(\d+)/.exec(buffer);
        if (found) resolve(Number(found[2]));
      });
      exited.then(({ code, signal }) => reject(new Error(`the chat server exited (${code ?? signal})`)));
    });
    for (const stream of [child.stdout, child.stderr]) {
      stream.on("data", (data) => this.output.push(...String(data).trimEnd().split("\n")));
    }
    this.port = await deadline(listening, "the chat server to listen");
    this.url = `http://127.0.0.1:${this.port}`;
    return this;
  }

  /// Kill it outright (SIGKILL): no goodbye to the clients.
  async kill() {
    if (this.child && this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill("SIGKILL");
      await deadline(this.exited, "the chat server to die");
    }
  }
}

/// `promise`, or an error naming `what` after WAIT_MS.
function deadline(promise, what, ms = WAIT_MS) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/// The page's chat log, one string per line.
const logOf = (page) => page.$$eval("#log li", (items) => items.map((li) => li.textContent));

/// Wait until a line of `page`'s log matches `pattern` (a string is a
/// whole line); returns it.
async function shows(page, pattern, what = String(pattern)) {
  const test = typeof pattern === "string" ? (line) => line === pattern : (line) => pattern.test(line);
  const give_up = Date.now() + WAIT_MS;
  for (;;) {
    const lines = await logOf(page);
    const line = lines.find(test);
    if (line !== undefined) return line;
    if (Date.now() > give_up) {
      throw new Error(`${page.label} never showed ${what}; its log:\n  ${lines.join("\n  ")}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/// Wait until the status badge says `text`.
async function status(page, text) {
  await page
    .locator("#status", { hasText: text })
    .waitFor({ timeout: WAIT_MS })
    .catch(async () => {
      throw new Error(`${page.label}'s status never became "${text}" (it is "${await page.textContent("#status")}")`);
    });
}

/// Type a line in the page's input and send it.
async function say(page, text) {
  await page.fill("#line", text);
  await page.press("#line", "Enter");
}

/// Nothing in `page`'s log matches `pattern` for QUIET_MS.
async function neverShows(page, pattern) {
  await new Promise((resolve) => setTimeout(resolve, QUIET_MS));
  const line = (await logOf(page)).find((l) => pattern.test(l));
  if (line !== undefined) throw new Error(`${page.label} should not have seen: ${line}`);
}

function check(condition, why) {
  if (!condition) throw new Error(why);
}

class Browser {
  static async launch() {
    const browser = new Browser();
    browser.chromium = await chromium.launch({
      executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
      // No network beyond this machine: without these, Chromium keeps
      // trying to reach Google's services.
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
    return browser;
  }

  /// A page of its own (own cookies and storage) at `url`, named `label`
  /// in failures.
  async open(url, label, viewport = { width: 720, height: 420 }, httpCredentials = undefined) {
    const context = await this.chromium.newContext({ viewport, httpCredentials });
    // Only this machine: the Admin UI asks for web fonts from CDNs.
    await context.route(/^https?:\/\/(?!127\.0\.0\.1[:/])/, (route) => route.abort());
    // ... except its icon font, served from the npm package instead.
    await context.route(/^https:\/\/cdn\.jsdelivr\.net\/npm\/@mdi\/font@[^/]+\/(css|fonts)\/([\w.-]+)/, (route) => {
      const [, dir, name] = /@mdi\/font@[^/]+\/(css|fonts)\/([\w.-]+)/.exec(route.request().url());
      route.fulfill({ path: path.join(MDI_FONT, dir, name) });
    });
    const page = await context.newPage();
    page.label = label;
    page.errors = [];
    page.on("pageerror", (e) => page.errors.push(String(e)));
    await page.goto(url);
    return page;
  }

  /// A chat page as `nick` in `room`.
  async chat(base, nick, room, extra = "") {
    const page = await this.open(`${base}/?nick=${nick}&room=${room}${extra}`, nick);
    await shows(page, new RegExp(`^\\* connected as ${nick} `), `connected as ${nick}`);
    await shows(page, new RegExp(`^\\* #${room}: .*\\b${nick}\\b`), `#${room} joined`);
    return page;
  }

  async close() {
    await this.chromium.close();
  }
}

async function screenshot(page, args, name) {
  if (!args.screenshots) return;
  fs.mkdirSync(args.screenshots, { recursive: true });
  await page.screenshot({ path: path.join(args.screenshots, name) });
}

/// Two pages in a room talk both ways; a third page in another room hears
/// nothing of it.
async function rooms({ browser, server, args }) {
  await server.start();
  const alice = await browser.chat(server.url, "alice", "lobby");
  const bob = await browser.chat(server.url, "bob", "lobby");
  const carol = await browser.chat(server.url, "carol", "rust");
  await shows(alice, "* bob joined #lobby");
  await say(alice, "hi bob");
  await shows(bob, "<alice> hi bob");
  await say(bob, "hello alice, how are you?");
  await shows(alice, "<bob> hello alice, how are you?");
  await say(carol, "anyone in #rust?");
  await say(alice, "/nick alicia");
  await shows(bob, "* alice is now known as alicia (#lobby)");
  await say(alice, "/foo");
  await shows(alice, /^! unknown command \/foo /);
  await neverShows(carol, /hi bob|hello alice|alicia/);
  await neverShows(alice, /anyone in #rust/);
  await say(alice, "/rooms");
  await shows(alice, "* #rust: carol");
  await screenshot(alice, args, "chat.png");
}

/// Serve the page and the client bundle from another origin (a second
/// tiny HTTP server), pointing at our server with `?server=`.
async function otherOrigin() {
  const files = { "/": path.join(PAGE_DIR, "index.html"), "/socket.io.min.js": CLIENT_JS };
  for (const name of ["chat.js", "chat.css"]) files[`/${name}`] = path.join(PAGE_DIR, name);
  const types = { ".html": "text/html", ".js": "text/javascript", ".css": "text/css" };
  const site = http.createServer((req, res) => {
    const file = files[new URL(req.url, "http://x").pathname];
    if (!file) return res.writeHead(404).end();
    res.writeHead(200, { "content-type": types[path.extname(file)] });
    fs.createReadStream(file).pipe(res);
  });
  await new Promise((resolve) => site.listen(0, "127.0.0.1", resolve));
  site.url = `http://127.0.0.1:${site.address().port}`;
  return site;
}

/// A page of another origin is refused by the default same-origin rule,
/// and accepted once the server allows that origin.
async function cross_origin({ browser, server, binary, cleanup }) {
  const site = await otherOrigin();
  cleanup.push(() => new Promise((resolve) => site.close(resolve)));
  await server.start();
  for (const transports of ["polling", "websocket"]) {
    const refused = await browser.open(`${site.url}/?nick=eve&transports=${transports}&server=${server.url}`, `eve (${transports})`);
    const error = await deadline(
      refused.evaluate(() => new Promise((resolve) => chatSocket.once("connect_error", (e) => resolve(e.message)))),
      "a connect_error"
    );
    check(!(await refused.evaluate(() => chatSocket.connected)), "a page of another origin connected");
    await neverShows(refused, /connected as/);
    console.log(`refused over ${transports}: ${error}`);
    await refused.context().close();
  }

  const allowing = new ChatServer(binary, ["--allow-origin", site.url]);
  cleanup.push(() => allowing.kill());
  await allowing.start();
  const url = `${site.url}/?nick=eve&room=lobby&server=${allowing.url}`;
  const eve = await browser.open(url, "eve");
  await shows(eve, /^\* connected as eve /, "connected as eve");
  const local = await browser.chat(allowing.url, "frank", "lobby");
  await say(eve, "hello from another origin");
  await shows(local, "<eve> hello from another origin");
}

/// The server is killed and started again on its port: the pages say so,
/// reconnect under their nicknames into their rooms, and what was typed
/// meanwhile is sent then.
async function restart({ browser, server }) {
  await server.start();
  const alice = await browser.chat(server.url, "alice", "lobby");
  const bob = await browser.chat(server.url, "bob", "lobby");
  await say(bob, "/nick robert");
  await shows(bob, "* you are now robert");
  await server.kill();
  await status(alice, "reconnecting");
  await shows(alice, /^\* disconnected \(transport (close|error)\); reconnecting/, "disconnected");
  await say(alice, "/rooms");
  await shows(alice, "* not connected: sent when reconnected");

  await server.start(server.port);
  await shows(alice, "* reconnected as alice");
  await shows(bob, "* reconnected as robert");
  await status(alice, "reconnected");
  // The `/rooms` that waited ran after the room was taken back.
  await shows(alice, /^\* #lobby: (alice|alice, robert)$/, "the waiting /rooms");
  // Whoever came back second finds the other there.
  await shows(bob, /^\* (#lobby: alice, robert|alice joined #lobby)$/, "alice back in #lobby");
  await say(alice, "you are back, robert");
  await shows(bob, "<alice> you are back, robert");
  await say(bob, "so are you");
  await shows(alice, "<robert> so are you");
}

/// With connection state recovery, a page whose connection dropped gets
/// the messages sent meanwhile.
async function recovery({ browser, server }) {
  server.args.push("--recover", "60");
  await server.start();
  const alice = await browser.chat(server.url, "alice", "lobby");
  const bob = await browser.chat(server.url, "bob", "lobby");
  await say(bob, "before the drop");
  await shows(alice, "<bob> before the drop");
  // Drop alice's connection, as a network failure would.
  await alice.evaluate(() => chatSocket.io.engine.close());
  await shows(alice, /^\* disconnected \(/, "disconnected");
  // The server has seen it go (it tells the room).
  await shows(bob, "* alice left #lobby");
  await say(bob, "while you were away");
  await shows(alice, "* reconnected as alice");
  check(await alice.evaluate(() => chatSocket.recovered), "the connection was not recovered");
  await shows(alice, "<bob> while you were away");
  await say(alice, "back");
  await shows(bob, "<alice> back");
}

/// Two pages over one transport only.
async function oneTransport({ browser, server }, transport) {
  await server.start();
  const extra = `&transports=${transport}`;
  const alice = await browser.chat(server.url, "alice", "lobby", extra);
  const bob = await browser.chat(server.url, "bob", "lobby", extra);
  for (const page of [alice, bob]) {
    const used = await page.evaluate(() => chatSocket.io.engine.transport.name);
    check(used === transport, `${page.label} is on ${used}, not ${transport}`);
  }
  await say(alice, `over ${transport}`);
  await shows(bob, `<alice> over ${transport}`);
  await say(bob, `${transport} too`);
  await shows(alice, `<bob> ${transport} too`);
}

/// The Admin UI, served by the chat server: logs in, lists the sockets
/// and rooms of the running chat, and disconnects one.
async function admin({ browser, server, args }) {
  server.args.push("--admin", "admin:s3cret");
  await server.start();
  const alice = await browser.chat(server.url, "alice", "lobby");
  const bob = await browser.chat(server.url, "bob", "rust");
  // The UI's files are behind the same credentials (HTTP Basic).
  const refused = await fetch(`${server.url}/admin-ui/`);
  check(refused.status === 401, `the Admin UI without credentials: ${refused.status}, not 401`);
  const login = { username: "admin", password: "s3cret" };
  const ui = await browser.open(`${server.url}/admin-ui/`, "admin UI", { width: 1280, height: 600 }, login);
  ui.setDefaultTimeout(WAIT_MS);
  // The login dialog opens by itself the first time.
  const dialog = ui.locator(".v-dialog");
  await dialog.getByLabel("Server URL").fill(server.url);
  await dialog.getByLabel("Username").fill("admin");
  await dialog.getByLabel("Password").fill("s3cret");
  await dialog.getByRole("button", { name: /connect/i }).click();
  await ui.locator(".v-dialog").waitFor({ state: "hidden" });

  await ui.goto(`${server.url}/admin-ui/#/rooms`);
  for (const room of ["lobby", "rust"]) await ui.getByText(room, { exact: true }).first().waitFor();

  await ui.goto(`${server.url}/admin-ui/#/sockets`);
  const aliceId = await alice.evaluate(() => chatSocket.id);
  const bobId = await bob.evaluate(() => chatSocket.id);
  for (const id of [aliceId, bobId]) await ui.getByText(id, { exact: true }).waitFor();
  await ui.waitForTimeout(500); // the page fades in
  await screenshot(ui, args, "admin-ui.png");

  // Disconnect bob: the button of his row.
  await ui.locator("tr", { hasText: bobId }).getByRole("button").click();
  await status(bob, "disconnected by the server");
  check(await alice.evaluate(() => chatSocket.connected), "alice was disconnected too");
  // The server agrees: bob and his room are gone.
  await say(alice, "/rooms");
  await shows(alice, "* #lobby: alice");
  await neverShows(alice, /#rust/);
}

const SCENARIOS = {
  rooms,
  cross_origin,
  restart,
  recovery,
  polling: (context) => oneTransport(context, "polling"),
  websocket: (context) => oneTransport(context, "websocket"),
  admin,
};

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const scenario = SCENARIOS[args.scenario];
  if (!scenario) throw new Error(`unknown scenario ${args.scenario}; known: ${Object.keys(SCENARIOS).join(", ")}`);
  const server = new ChatServer(args.chat, []);
  const cleanup = [() => server.kill()];
  let browser;
  try {
    browser = await Browser.launch();
    cleanup.push(() => browser.close());
    await scenario({ browser, server, binary: args.chat, args, cleanup });
    console.log(`ok ${args.scenario}`);
  } catch (e) {
    console.log(`FAILED ${args.scenario}: ${e.stack || e}`);
    console.log(`----- chat server output -----\n${server.output.join("\n")}`);
    process.exitCode = 1;
  } finally {
    for (const step of cleanup.reverse()) await step().catch(() => {});
  }
}

main().catch((e) => {
  console.log(`FAILED: ${e.stack || e}`);
  process.exit(1);
});
