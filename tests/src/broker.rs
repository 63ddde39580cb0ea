//! What the broker guards of the cluster tests share
//! ([`RedisServer`](crate::cluster::RedisServer),
//! [`RabbitServer`](crate::rabbit::RabbitServer)): installing the server
//! with apt-get, a scratch directory, the child process with its watchdog
//! across restarts, and the restart loop.

use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::Proc;

/// Installs Debian's `package` with apt-get (after `apt-get update`) unless
/// `installed()` already holds, behind `flock` so that parallel test
/// processes do not fight over dpkg's lock; `present` is the shell test run
/// under the lock (another process may have installed it meanwhile).
/// Callers keep the outcome in a `OnceLock` of their own.
pub(crate) fn apt_install(
    package: &str,
    present: &str,
    installed: impl Fn() -> bool,
) -> Result<(), String> {
    if installed() {
        return Ok(());
    }
    let lock = std::env::temp_dir().join("socketio-interop-apt.lock");
    let output = Command::new("flock")
        .arg(&lock)
        .args([
            "sh",
            "-c",
            &format!("{present} || {{ apt-get update && apt-get install -y {package}; }}"),
        ])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdin(Stdio::null())
        .output()
        .map_err(|err| format!("cannot run flock/apt-get: {err}"))?;
    if !output.status.success() || !installed() {
        return Err(format!(
            "{package} is missing and `apt-get install -y {package}` failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(())
}

/// A fresh path `socketio-interop-NAME-PID-SEQ` in the temporary directory
/// (not created).
pub(crate) fn scratch_dir(name: &str) -> PathBuf {
    static SEQ: AtomicUsize = AtomicUsize::new(0);
    std::env::temp_dir().join(format!(
        "socketio-interop-{name}-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ))
}

/// A broker's child process and its watchdog, across restarts, with the
/// output of the runs that were killed (for failure messages).
///
/// The watchdog is a shell holding a pipe from this process: it kills the
/// broker when the test process dies before the guard stops it.
#[derive(Default)]
pub(crate) struct Guarded {
    proc: Option<Proc>,
    watchdog: Option<Proc>,
    /// The broker's process group, killed as a whole on stop.
    group: Option<u32>,
    past_output: String,
}

impl Guarded {
    /// Takes `proc` as the running broker and starts its watchdog, which
    /// kills the process group `group` if given, else `proc` alone.
    pub(crate) fn watch(&mut self, proc: Proc, group: Option<u32>) -> Result<(), String> {
        let target = match group {
            Some(pgid) => format!("-{pgid}"),
            None => proc.child.id().to_string(),
        };
        self.proc = Some(proc);
        self.group = group;
        // Exits when its stdin (held by us) closes, killing the broker then;
        // killed first (SIGKILL, so it kills nothing) on stop.
        let watchdog = Proc::spawn(
            &["sh".into(), "-c".into()],
            &[format!("cat >/dev/null; kill -9 {target} 2>/dev/null")],
            true,
        )?;
        self.watchdog = Some(watchdog);
        Ok(())
    }

    /// The exit status of the broker's process if it has exited.
    pub(crate) fn exited(&mut self) -> Option<ExitStatus> {
        self.proc
            .as_mut()
            .and_then(|proc| proc.child.try_wait().ok().flatten())
    }

    /// Kills the watchdog, then the broker's process group (if any) and
    /// process; keeps the broker's output.
    pub(crate) fn stop(&mut self) {
        if let Some(mut watchdog) = self.watchdog.take() {
            watchdog.kill();
        }
        if let Some(pgid) = self.group.take() {
            let _ = Command::new("kill")
                .args(["-9", "--", &format!("-{pgid}")])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        if let Some(mut proc) = self.proc.take() {
            proc.kill();
            self.past_output.push_str(&proc.output());
            self.past_output.push_str("----- (killed) -----\n");
        }
    }

    /// What the broker printed, from every run since it first started.
    pub(crate) fn output(&self) -> String {
        let mut output = self.past_output.clone();
        if let Some(proc) = &self.proc {
            output.push_str(&proc.output());
        }
        output
    }
}

/// Calls `launch` until it succeeds, for `patience`, pausing `pause` between
/// tries (the port may linger for a moment after a kill); the error names
/// `what` restarted on `port`.
pub(crate) fn relaunch(
    what: &str,
    port: u16,
    patience: Duration,
    pause: Duration,
    mut launch: impl FnMut() -> Result<(), String>,
) -> Result<(), String> {
    let deadline = Instant::now() + patience;
    loop {
        match launch() {
            Ok(()) => return Ok(()),
            Err(err) if Instant::now() >= deadline => {
                return Err(format!("{what} restart on port {port} failed: {err}"))
            }
            Err(_) => thread::sleep(pause),
        }
    }
}
