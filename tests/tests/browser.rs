//! The chat example in a real browser: headless Chromium (Debian's
//! `chromium`) driven by `playwright-core`, loading the chat page and the
//! Admin UI that our `chat` server serves, with the official
//! `socket.io-client` browser bundle. The scenarios are in
//! `tests/browser/chat_scenarios.js`; each test here runs one.
//!
//! `tests/browser/setup.sh` is run first (it installs Chromium with apt
//! when missing, and the pinned npm packages). When Chromium cannot be had
//! the tests fail, unless `SOCKETIO_BROWSER_TESTS=skip` says to skip them.
//! `SOCKETIO_SCREENSHOTS=DIR` keeps the screenshots of the chat and the
//! Admin UI there (the README's are made so: `docs/screenshots`).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use socketio_interop::cluster::our_example;
use socketio_interop::workspace_dir;
/// Set to `skip` to skip these tests where Chromium cannot be installed.
const OPT_OUT_ENV: &str = "SOCKETIO_BROWSER_TESTS";
/// Where to keep the screenshots.
const SCREENSHOTS_ENV: &str = "SOCKETIO_SCREENSHOTS";
/// Hard limit on one scenario (each of its waits has a 20 s deadline).
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(120);
/// Most output kept from one scenario, in bytes.
const MAX_OUTPUT: u64 = 1 << 20;

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("browser")
}

/// Runs `tests/browser/setup.sh` once per process: `Ok(false)` when it
/// failed and the opt-out variable says to skip.
fn setup() -> Result<bool, String> {
    static SETUP: OnceLock<Result<(), String>> = OnceLock::new();
    let outcome = SETUP.get_or_init(|| {
        // Quiet when it succeeds; when it fails, the installer's output
        // goes to this process's stderr.
        let script = browser_dir().join("setup.sh");
        let status = Command::new("bash")
            .arg(&script)
            .stdin(Stdio::null())
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit())
            .status()
            .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!(
                "{} failed ({status}): see its output above",
                script.display()
            ))
        }
    });
    match outcome {
        Ok(()) => Ok(true),
        Err(why) if std::env::var(OPT_OUT_ENV).as_deref() == Ok("skip") => {
            eprintln!("browser tests skipped ({OPT_OUT_ENV}=skip): {why}");
            Ok(false)
        }
        Err(why) => Err(format!(
            "{why}\n(set {OPT_OUT_ENV}=skip to skip the browser tests where Chromium cannot be had)"
        )),
    }
}

/// The scenario's process, killed if it outlives its deadline.
struct Scenario {
    child: Child,
}

impl Drop for Scenario {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads a pipe whole (up to [`MAX_OUTPUT`]) on a thread of its own.
fn collect(pipe: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut text = String::new();
        let _ = pipe.take(MAX_OUTPUT).read_to_string(&mut text);
        text
    })
}

/// Runs one scenario of `chat_scenarios.js`; panics with its output when
/// it fails.
fn run(scenario: &str) {
    // One Chromium at a time: the scenarios are timing-tolerant, but the
    // machines running them are small.
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    match setup() {
        Ok(true) => {}
        Ok(false) => return,
        Err(why) => panic!("{why}"),
    }
    // Release, with every feature (the Admin UI's `admin` among them), as
    // the other tests build our examples: one build for all.
    let chat = our_example("chat").unwrap_or_else(|why| panic!("{why}"));
    let mut command = Command::new("node");
    command
        .current_dir(browser_dir())
        .arg("chat_scenarios.js")
        .arg(scenario)
        .arg("--chat")
        .arg(&chat)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(dir) = std::env::var_os(SCREENSHOTS_ENV) {
        command.arg("--screenshots").arg(workspace_dir().join(dir));
    }
    let mut process = Scenario {
        child: command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run node: {e}")),
    };
    let stdout = collect(process.child.stdout.take().expect("piped"));
    let stderr = collect(process.child.stderr.take().expect("piped"));
    let give_up = Instant::now() + SCENARIO_TIMEOUT;
    let status = loop {
        if let Some(status) = process.child.try_wait().expect("the scenario's status") {
            break Some(status);
        }
        if Instant::now() > give_up {
            break None;
        }
        thread::sleep(Duration::from_millis(100));
    };
    drop(process); // kills it if still running, so that the pipes close
    let output = format!(
        "{}{}",
        stdout.join().unwrap_or_default(),
        stderr.join().unwrap_or_default()
    );
    match status {
        Some(status) if status.success() && output.contains(&format!("ok {scenario}")) => {}
        Some(status) => panic!("browser scenario {scenario} failed ({status}):\n{output}"),
        None => {
            panic!("browser scenario {scenario} still ran after {SCENARIO_TIMEOUT:?}:\n{output}")
        }
    }
}

/// Two pages in #lobby talk both ways; a third in #rust hears nothing.
#[test]
fn two_pages_in_a_room_and_one_elsewhere() {
    run("rooms");
}

/// A page of another origin: refused by default, accepted when allowed.
#[test]
fn another_origin_is_refused_unless_allowed() {
    run("cross_origin");
}

/// The server is killed and restarted: the pages reconnect, nick and room
/// taken back, and what was typed meanwhile is sent.
#[test]
fn pages_come_back_after_a_server_restart() {
    run("restart");
}

/// Connection state recovery: a dropped page gets what it missed.
#[test]
fn a_dropped_page_recovers_what_it_missed() {
    run("recovery");
}

/// HTTP long-polling only.
#[test]
fn chat_over_polling_only() {
    run("polling");
}

/// WebSocket only.
#[test]
fn chat_over_websocket_only() {
    run("websocket");
}

/// The Admin UI lists the chat's sockets and rooms and disconnects one.
#[test]
fn admin_ui_lists_and_disconnects() {
    run("admin");
}
