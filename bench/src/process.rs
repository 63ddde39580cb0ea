//! A server under test run as a child process (`abuse`, `soak`), and what
//! `/proc` says about it.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use crate::wire::{status_kb, Failure};

/// How long a server may take to print `listening on PORT`.
const STARTUP: Duration = Duration::from_secs(20);

/// A server started by [`ServerProcess::start`]; killed when dropped.
pub struct ServerProcess {
    child: Child,
    /// Its process id.
    pub pid: u32,
    /// `127.0.0.1:PORT`, from its `listening on PORT` line.
    pub addr: String,
}

impl ServerProcess {
    /// Start `program args`, its stderr into `log`, and wait for it to print
    /// `listening on PORT` on stdout (the servers of this repository do).
    pub fn start(program: &Path, args: &[&str], log: &Path) -> Result<ServerProcess, Failure> {
        if let Some(dir) = log.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log)?)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", program.display()))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (port_tx, port_rx) = mpsc::channel();
        // Reads stdout to its end, so that the server never blocks on a
        // full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(port) = line.strip_prefix("listening on ") {
                    let _ = port_tx.send(port.trim().to_owned());
                }
            }
        });
        let pid = child.id();
        let mut server = ServerProcess {
            child,
            pid,
            addr: String::new(),
        };
        match port_rx.recv_timeout(STARTUP) {
            Ok(port) => server.addr = format!("127.0.0.1:{port}"),
            Err(_) => {
                return Err(format!(
                    "{} printed no `listening on` (see {})",
                    program.display(),
                    log.display()
                )
                .into())
            }
        }
        Ok(server)
    }

    /// Its resident set size, in kB (0 once it is gone).
    pub fn rss_kb(&self) -> u64 {
        status_kb(self.pid, "VmRSS")
    }

    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A thread reading a process's `VmRSS` every `period`, keeping the
/// highest value since the last [`RssSampler::reset_peak`]. Stops when
/// dropped.
pub struct RssSampler {
    peak_kb: Arc<AtomicU64>,
    pid: u32,
    stop: Arc<AtomicBool>,
}

impl RssSampler {
    /// Start sampling process `pid`.
    pub fn start(pid: u32, period: Duration) -> RssSampler {
        let peak_kb = Arc::new(AtomicU64::new(status_kb(pid, "VmRSS")));
        let stop = Arc::new(AtomicBool::new(false));
        let (peak, stopped) = (peak_kb.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                peak.fetch_max(status_kb(pid, "VmRSS"), Ordering::Relaxed);
                std::thread::sleep(period);
            }
        });
        RssSampler { peak_kb, pid, stop }
    }

    /// The highest RSS (kB) seen since the start or the last reset.
    pub fn peak_kb(&self) -> u64 {
        self.peak_kb.load(Ordering::Relaxed)
    }

    /// Start a new peak from the current RSS, which it returns.
    pub fn reset_peak(&self) -> u64 {
        let now = status_kb(self.pid, "VmRSS");
        self.peak_kb.store(now, Ordering::Relaxed);
        now
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
