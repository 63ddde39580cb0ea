//! Harness of the interop tests: runs echo servers and echo clients of one
//! shared command-line contract (see `tests/interop/README.md`) against each
//! other and judges the client's verdict.
//!
//! The peers are the official Node `socket.io` / `socket.io-client` 4.8 and
//! python-socketio 5.18, installed by `tests/interop/setup.sh` (run once per
//! test process); ours are the `echo_server` and `echo_client` examples, built
//! once per test process with `cargo build --release`.
//!
//! Every process is killed when its guard drops, every wait has a deadline,
//! and a failure message carries the output of both sides.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod broker;
pub mod cluster;
pub mod kafka;
pub mod rabbit;
pub mod scene;
pub mod zmq;

use std::ffi::OsString;
use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// How long a server may take to print `listening on`.
const SERVER_READY_TIMEOUT: Duration = Duration::from_secs(20);
/// Hard limit on one client run; the clients give up by themselves after
/// about 20 s, this only catches a client that hangs.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(45);
/// How long a client may take to exit once it printed its verdict.
const EXIT_AFTER_VERDICT: Duration = Duration::from_secs(5);
/// How long a restarted server may wait for its port to be free again.
const RESTART_PORT_TIMEOUT: Duration = Duration::from_secs(5);
/// Environment variable that names the command standing in for our
/// `echo_server` example (whitespace-separated, relative to the workspace),
/// e.g. `node tests/interop/node/echo_server.js`: tests the plumbing of the
/// OUR×PEER cases without our examples.
pub const OUR_SERVER_ENV: &str = "SOCKETIO_INTEROP_OUR_SERVER";
/// Like [`OUR_SERVER_ENV`], for our `echo_client` example.
pub const OUR_CLIENT_ENV: &str = "SOCKETIO_INTEROP_OUR_CLIENT";

/// An async runtime our examples run on (`--runtime`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runtime {
    /// tokio
    Tokio,
    /// async-std
    AsyncStd,
    /// smol
    Smol,
    /// tokio, the server mounted in an axum router (`--mount axum`).
    TokioAxum,
}

impl Runtime {
    /// The value of the examples' `--runtime` flag.
    pub fn flag(self) -> &'static str {
        match self {
            Runtime::Tokio => "tokio",
            Runtime::AsyncStd => "async-std",
            Runtime::Smol => "smol",
            Runtime::TokioAxum => "tokio",
        }
    }

    /// The examples' arguments for this runtime (`--runtime`, and
    /// `--mount axum` for a server mounted in axum; our clients ignore
    /// it: they run on tokio).
    fn args(self, server: bool) -> Vec<String> {
        let mut args = vec!["--runtime".to_string(), self.flag().to_string()];
        if server && self == Runtime::TokioAxum {
            args.extend(["--mount".into(), "axum".into()]);
        }
        args
    }
}

/// One implementation of the echo contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peer {
    /// Node socket.io / socket.io-client 4.8 (`tests/interop/node`).
    Node,
    /// python-socketio 5.18 on aiohttp (`tests/interop/python`).
    Python,
    /// Our `echo_server` / `echo_client` examples on the given runtime.
    Ours(Runtime),
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Peer::Node => f.write_str("node"),
            Peer::Python => f.write_str("python"),
            Peer::Ours(Runtime::TokioAxum) => f.write_str("ours(tokio, mounted in axum)"),
            Peer::Ours(runtime) => write!(f, "ours({})", runtime.flag()),
        }
    }
}

/// The client's `--transports` choice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// HTTP long-polling only.
    Polling,
    /// WebSocket only.
    Websocket,
    /// Polling first, then the upgrade to WebSocket (must end on WebSocket).
    Upgrade,
}

impl Transport {
    /// The value of the clients' `--transports` flag.
    pub fn flag(self) -> &'static str {
        match self {
            Transport::Polling => "polling",
            Transport::Websocket => "websocket",
            Transport::Upgrade => "upgrade",
        }
    }
}

/// The Socket.IO parser both sides use (`--parser`). CBOR is missing on
/// purpose: python-socketio 5.18 does not implement it and Node has no
/// official CBOR parser, so it can only be tested ours against ours.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parser {
    /// The default parser: JSON text plus binary attachments.
    Json,
    /// `socket.io-msgpack-parser` 3.x / python-socketio `serializer='msgpack'`.
    Msgpack,
}

impl Parser {
    /// The value of the `--parser` flag.
    pub fn flag(self) -> &'static str {
        match self {
            Parser::Json => "json",
            Parser::Msgpack => "msgpack",
        }
    }
}

/// The `tests/` package directory.
fn package_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The workspace root: every command runs from there.
pub fn workspace_dir() -> PathBuf {
    package_dir()
        .parent()
        .expect("the tests package sits inside the workspace")
        .to_path_buf()
}

/// `tests/interop`: the peers, their lock files and `setup.sh`.
pub fn interop_dir() -> PathBuf {
    package_dir().join("interop")
}

/// Runs `tests/interop/setup.sh` once per process; later calls return the
/// first outcome.
pub fn setup() -> Result<(), String> {
    static SETUP: OnceLock<Result<(), String>> = OnceLock::new();
    SETUP
        .get_or_init(|| {
            let script = interop_dir().join("setup.sh");
            let output = Command::new("bash")
                .arg(&script)
                .stdin(Stdio::null())
                .output()
                .map_err(|err| format!("cannot run {}: {err}", script.display()))?;
            if output.status.success() {
                Ok(())
            } else {
                Err(format!(
                    "{} failed ({}):\n{}{}",
                    script.display(),
                    output.status,
                    String::from_utf8_lossy(&output.stdout),
                    String::from_utf8_lossy(&output.stderr)
                ))
            }
        })
        .clone()
}

/// Builds our examples once per process (`cargo build --release
/// --all-features --example echo_server --example echo_client`: every runtime
/// feature, since the examples choose the runtime with `--runtime`) and
/// returns their paths as `[server, client]`. Running cargo from inside a test is fine: the outer
/// `cargo test` holds the build lock only while it builds.
fn our_examples() -> Result<[PathBuf; 2], String> {
    static BUILT: OnceLock<Result<[PathBuf; 2], String>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
            let output = Command::new(cargo)
                .current_dir(workspace_dir())
                .args([
                    "build",
                    "--release",
                    "--all-features",
                    "--example",
                    "echo_server",
                    "--example",
                    "echo_client",
                    "--message-format=json-render-diagnostics",
                ])
                .stdin(Stdio::null())
                .output()
                .map_err(|err| format!("cannot run cargo: {err}"))?;
            let stderr = String::from_utf8_lossy(&output.stderr);
            if !output.status.success() {
                for name in ["echo_server", "echo_client"] {
                    if stderr.contains(&format!("no example target named `{name}`")) {
                        return Err(format!(
                            "example {name} not found: our examples are missing \
                             (cargo build --release --example {name}):\n{stderr}"
                        ));
                    }
                }
                return Err(format!(
                    "cargo build --release of our examples failed:\n{stderr}"
                ));
            }
            let mut found: [Option<PathBuf>; 2] = [None, None];
            for line in String::from_utf8_lossy(&output.stdout).lines() {
                let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else {
                    continue;
                };
                if message["reason"] != "compiler-artifact" {
                    continue;
                }
                let Some(executable) = message["executable"].as_str() else {
                    continue;
                };
                for (slot, name) in found.iter_mut().zip(["echo_server", "echo_client"]) {
                    if message["target"]["name"] == name {
                        *slot = Some(PathBuf::from(executable));
                    }
                }
            }
            match found {
                [Some(server), Some(client)] => Ok([server, client]),
                [server, _] => Err(format!(
                    "example {} not found in cargo's output",
                    if server.is_none() {
                        "echo_server"
                    } else {
                        "echo_client"
                    }
                )),
            }
        })
        .clone()
}

/// The command line for one of our examples: the override from
/// [`OUR_SERVER_ENV`] / [`OUR_CLIENT_ENV`] if set, else the built binary.
fn our_program(server: bool) -> Result<Vec<OsString>, String> {
    let var = if server {
        OUR_SERVER_ENV
    } else {
        OUR_CLIENT_ENV
    };
    if let Some(command) = std::env::var_os(var) {
        let words: Vec<OsString> = command
            .to_string_lossy()
            .split_whitespace()
            .map(OsString::from)
            .collect();
        if words.is_empty() {
            return Err(format!("{var} is empty"));
        }
        return Ok(words);
    }
    let [server_path, client_path] = our_examples()?;
    Ok(vec![if server { server_path } else { client_path }.into()])
}

/// The command line of `peer`'s echo server or client, without arguments.
fn program(peer: Peer, server: bool) -> Result<Vec<OsString>, String> {
    let role = if server { "echo_server" } else { "echo_client" };
    match peer {
        Peer::Node => {
            setup()?;
            Ok(vec![
                "node".into(),
                interop_dir().join("node").join(format!("{role}.js")).into(),
            ])
        }
        Peer::Python => {
            setup()?;
            Ok(vec![
                interop_dir().join(".venv/bin/python").into(),
                interop_dir()
                    .join("python")
                    .join(format!("{role}.py"))
                    .into(),
            ])
        }
        Peer::Ours(_) => our_program(server),
    }
}

/// A free TCP port on 127.0.0.1 (free when asked; a server that then loses
/// the race for it is retried on another one).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("bind an ephemeral port on 127.0.0.1")
}

/// A child process whose output is collected; killed on drop.
struct Proc {
    label: String,
    child: Child,
    /// Kept open so that our peers, which exit when their stdin closes, die
    /// with the test process even if it is killed before the guards drop
    /// (and written to by the cluster clients, which take commands there).
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    log: Arc<Mutex<String>>,
}

impl Proc {
    fn spawn(words: &[OsString], args: &[String], keep_stdin: bool) -> Result<Proc, String> {
        let label = words
            .iter()
            .map(|word| word.to_string_lossy().into_owned())
            .chain(args.iter().cloned())
            .collect::<Vec<_>>()
            .join(" ");
        let mut command = Command::new(&words[0]);
        command
            .args(&words[1..])
            .args(args)
            .current_dir(workspace_dir())
            .env("INTEROP_EXIT_ON_STDIN_EOF", "1")
            .stdin(if keep_stdin {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .map_err(|err| format!("cannot start `{label}`: {err}"))?;
        let log = Arc::new(Mutex::new(String::new()));
        let (line_tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().expect("stdout is piped");
        let stdout_log = Arc::clone(&log);
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                push_log(&stdout_log, "", &line);
                if line_tx.send(line).is_err() {
                    // Nobody waits for lines any more; keep collecting the log.
                }
            }
        });
        let mut stderr = child.stderr.take().expect("stderr is piped");
        let stderr_log = Arc::clone(&log);
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                match stderr.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                        for line in text.lines() {
                            push_log(&stderr_log, "stderr| ", line);
                        }
                    }
                }
            }
        });
        let stdin = child.stdin.take();
        Ok(Proc {
            label,
            child,
            stdin,
            lines,
            log,
        })
    }

    /// The next stdout line, or `None` at end of output or past `deadline`.
    fn next_line(&self, deadline: Instant) -> Result<Option<String>, String> {
        let left = deadline.saturating_duration_since(Instant::now());
        match self.lines.recv_timeout(left) {
            Ok(line) => Ok(Some(line)),
            Err(RecvTimeoutError::Disconnected) => Ok(None),
            Err(RecvTimeoutError::Timeout) => Err("timed out".into()),
        }
    }

    /// Waits for the process to exit, killing it past `deadline`.
    fn wait(&mut self, deadline: Instant) -> Result<ExitStatus, String> {
        loop {
            if let Some(status) = self.child.try_wait().map_err(|err| err.to_string())? {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                self.kill();
                return Err("timed out: killed".into());
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// What the process printed so far (the last 8 KiB).
    fn output(&self) -> String {
        self.output_tail(8192)
    }

    /// What the process printed so far (the last `max` bytes).
    fn output_tail(&self, max: usize) -> String {
        let log = self
            .log
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let start = log.len().saturating_sub(max);
        let start = (start..=log.len())
            .find(|&at| log.is_char_boundary(at))
            .unwrap_or(log.len());
        format!("$ {}\n{}", self.label, &log[start..])
    }
}

fn push_log(log: &Mutex<String>, prefix: &str, line: &str) {
    let mut log = log.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    log.push_str(prefix);
    log.push_str(line);
    log.push('\n');
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A running echo server; killed on drop.
pub struct Server {
    peer: Peer,
    parser: Parser,
    port: u16,
    proc: Proc,
}

impl Server {
    /// Starts `peer`'s echo server on a free port and waits until it listens.
    pub fn start(peer: Peer, parser: Parser) -> Result<Server, String> {
        let mut last_error = String::new();
        for _ in 0..3 {
            match Server::start_on(peer, parser, free_port()) {
                Ok(server) => return Ok(server),
                // Most likely lost the port to a parallel test: try another.
                Err(err) => last_error = err,
            }
        }
        Err(last_error)
    }

    fn start_on(peer: Peer, parser: Parser, port: u16) -> Result<Server, String> {
        let words = program(peer, true)?;
        let mut args = vec!["--port".to_string(), port.to_string()];
        if parser != Parser::Json {
            args.extend(["--parser".into(), parser.flag().into()]);
        }
        if let Peer::Ours(runtime) = peer {
            args.extend(runtime.args(true));
        }
        let proc = Proc::spawn(&words, &args, true)?;
        let deadline = Instant::now() + SERVER_READY_TIMEOUT;
        loop {
            match proc.next_line(deadline) {
                Ok(Some(line)) if line.starts_with("listening on") => break,
                Ok(Some(_)) => continue,
                Ok(None) => {
                    return Err(format!(
                        "{peer} server exited before listening\n{}",
                        proc.output()
                    ))
                }
                Err(err) => {
                    return Err(format!(
                        "{peer} server did not print `listening on`: {err}\n{}",
                        proc.output()
                    ))
                }
            }
        }
        Ok(Server {
            peer,
            parser,
            port,
            proc,
        })
    }

    /// Kills the server and starts it again on the same port.
    pub fn restart(&mut self) -> Result<(), String> {
        self.proc.kill();
        let deadline = Instant::now() + RESTART_PORT_TIMEOUT;
        loop {
            match Server::start_on(self.peer, self.parser, self.port) {
                Ok(fresh) => {
                    *self = fresh;
                    return Ok(());
                }
                Err(err) if Instant::now() >= deadline => {
                    return Err(format!("restart on port {} failed: {err}", self.port))
                }
                Err(_) => thread::sleep(Duration::from_millis(200)),
            }
        }
    }

    /// The server's base URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// What the server printed so far.
    pub fn output(&self) -> String {
        self.proc.output()
    }
}

/// What a client run should do and expect.
#[derive(Clone, Debug)]
pub struct Case {
    /// The client implementation.
    pub client: Peer,
    /// The server implementation.
    pub server: Peer,
    /// `--transports`.
    pub transport: Transport,
    /// `--nsp`.
    pub nsp: &'static str,
    /// `--parser`, the same on both sides.
    pub parser: Parser,
    /// `--auth`, if any.
    pub auth: Option<&'static str>,
    /// Pass `--expect-reject` (and the refused auth).
    pub expect_reject: bool,
    /// Pass `--reconnect-check` and restart the server when the client
    /// prints `RESTART-ME`.
    pub reconnect: bool,
}

/// Auth sent on `/custom` in the echo cases (on `/` the client sends none,
/// so both the given and the absent auth are echoed somewhere).
pub const CUSTOM_AUTH: &str = r#"{"token":"abc","n":[1,2.5],"u":"é😀"}"#;
/// Auth that the echo servers refuse.
pub const REJECT_AUTH: &str = r#"{"reject":true}"#;

impl Case {
    /// The full echo round trip on `nsp` (with [`CUSTOM_AUTH`] off `/`).
    pub fn echo(
        client: Peer,
        server: Peer,
        transport: Transport,
        nsp: &'static str,
        parser: Parser,
    ) -> Case {
        Case {
            client,
            server,
            transport,
            nsp,
            parser,
            auth: (nsp != "/").then_some(CUSTOM_AUTH),
            expect_reject: false,
            reconnect: false,
        }
    }

    /// The refused connection.
    pub fn reject(
        client: Peer,
        server: Peer,
        transport: Transport,
        nsp: &'static str,
        parser: Parser,
    ) -> Case {
        Case {
            auth: Some(REJECT_AUTH),
            expect_reject: true,
            ..Case::echo(client, server, transport, nsp, parser)
        }
    }

    /// Round trip, server restart on the same port, reconnection, round trip.
    pub fn reconnect(client: Peer, server: Peer, transport: Transport) -> Case {
        Case {
            reconnect: true,
            ..Case::echo(client, server, transport, "/", Parser::Json)
        }
    }

    /// Extra client arguments forced by known quirks of one pair of peers.
    fn quirk_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if self.client == Peer::Node
            && self.server == Peer::Python
            && self.parser == Parser::Msgpack
        {
            // python-socketio writes DISCONNECT as `{type:1, nsp, data:nil}`;
            // socket.io-msgpack-parser refuses `data: null` on a DISCONNECT, so
            // the JS client closes with `parse error` instead of
            // `io server disconnect`. (Our client must read nil as absent.)
            args.extend(["--disconnect-reason".into(), "parse error".into()]);
        }
        args
    }

    fn client_args(&self, url: &str) -> Vec<String> {
        let mut args = vec![
            "--url".to_string(),
            url.to_string(),
            "--transports".into(),
            self.transport.flag().into(),
            "--nsp".into(),
            self.nsp.into(),
        ];
        if let Some(auth) = self.auth {
            args.extend(["--auth".into(), auth.into()]);
        }
        if self.parser != Parser::Json {
            args.extend(["--parser".into(), self.parser.flag().into()]);
        }
        if self.expect_reject {
            args.push("--expect-reject".into());
        }
        if self.reconnect {
            args.push("--reconnect-check".into());
        }
        if let Peer::Ours(runtime) = self.client {
            args.extend(runtime.args(false));
        }
        args.extend(self.quirk_args());
        args
    }

    /// Runs the case: starts the server, runs the client to its verdict.
    /// `Err` carries the reason and the output of both sides.
    pub fn run(&self) -> Result<String, String> {
        let mut server = Server::start(self.server, self.parser)?;
        let words = program(self.client, false)?;
        let mut client = Proc::spawn(&words, &self.client_args(&server.url()), false)?;
        let mut deadline = Instant::now() + CLIENT_TIMEOUT;
        let mut verdict: Option<String> = None;
        let failure = loop {
            match client.next_line(deadline) {
                Ok(Some(line)) if line == "RESTART-ME" && self.reconnect => {
                    if let Err(err) = server.restart() {
                        break Some(err);
                    }
                }
                Ok(Some(line)) => {
                    if verdict.is_none() && (line.starts_with("PASS") || line.starts_with("FAIL")) {
                        verdict = Some(line);
                        // The verdict is out: exiting may not take long.
                        deadline = deadline.min(Instant::now() + EXIT_AFTER_VERDICT);
                    }
                }
                Ok(None) => break None,
                Err(err) if verdict.is_some() => {
                    break Some(format!(
                        "client did not exit within {EXIT_AFTER_VERDICT:?} of its verdict ({err})"
                    ))
                }
                Err(err) => break Some(format!("client {err} after {CLIENT_TIMEOUT:?}")),
            }
        };
        let status = client.wait(deadline);
        let failure = failure.or_else(|| match (&status, &verdict) {
            (Ok(status), Some(line)) if status.success() && line.starts_with("PASS") => None,
            (Ok(status), Some(line)) => {
                Some(format!("client said `{line}` and exited with {status}"))
            }
            (Ok(status), None) => Some(format!(
                "client printed no verdict and exited with {status}"
            )),
            (Err(err), _) => Some(format!("client {err}")),
        });
        match failure {
            None => Ok(verdict.unwrap_or_default()),
            Some(reason) => Err(format!(
                "{self}: {reason}\n----- client -----\n{}\n----- server -----\n{}",
                client.output(),
                server.output()
            )),
        }
    }
}

impl fmt::Display for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} client -> {} server, {} {} {}",
            self.client,
            self.server,
            self.transport.flag(),
            self.nsp,
            self.parser.flag()
        )?;
        if self.expect_reject {
            f.write_str(", expecting the refusal")?;
        }
        if self.reconnect {
            f.write_str(", across a server restart")?;
        }
        Ok(())
    }
}

/// Runs `case` and panics with both sides' output if it fails.
pub fn check(case: Case) {
    if let Err(report) = case.run() {
        panic!("{report}");
    }
}
