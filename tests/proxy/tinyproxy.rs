//! A real HTTP proxy for the proxy tests: Debian's `tinyproxy`, started on
//! a free port with a temporary configuration (optionally with Basic
//! authentication) and stopped on drop. Included with `#[path]` by the
//! proxy tests of the async and the blocking clients.
//!
//! A missing `tinyproxy` is installed with `tests/proxy/setup.sh`; when
//! that fails the test fails (a proxy test that skips cannot fail).

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Tests that read or change `http_proxy` and friends hold this (the
/// environment is the process's).
pub static ENV_LOCK: Mutex<()> = Mutex::new(());

/// Every proxy variable, to clear before and after a test.
pub const PROXY_VARS: [&str; 6] = [
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "no_proxy",
    "NO_PROXY",
];

/// Set the given proxy variables (clearing the others) until dropped.
pub struct ProxyEnv<'a> {
    _lock: std::sync::MutexGuard<'a, ()>,
}

impl ProxyEnv<'_> {
    pub fn set(vars: &[(&str, &str)]) -> ProxyEnv<'static> {
        let lock = ENV_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        for var in PROXY_VARS {
            std::env::remove_var(var);
        }
        for (name, value) in vars {
            std::env::set_var(name, value);
        }
        ProxyEnv { _lock: lock }
    }
}

impl Drop for ProxyEnv<'_> {
    fn drop(&mut self) {
        for var in PROXY_VARS {
            std::env::remove_var(var);
        }
    }
}

fn binary() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").into_iter().flat_map(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("tinyproxy"))
            .collect::<Vec<_>>()
    });
    on_path
        .chain(["/usr/bin/tinyproxy".into(), "/usr/sbin/tinyproxy".into()])
        .find(|p| p.is_file())
}

/// The `tinyproxy` binary, installed first when missing.
fn ensure_installed() -> PathBuf {
    if let Some(path) = binary() {
        return path;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/proxy/setup.sh");
    let status = Command::new("bash").arg(&script).status();
    match binary() {
        Some(path) => path,
        None => panic!(
            "tinyproxy is missing and {} could not install it ({status:?}): \
             the proxy tests need it (apt-get install tinyproxy)",
            script.display()
        ),
    }
}

/// A running tinyproxy.
pub struct Tinyproxy {
    child: Child,
    port: u16,
    dir: PathBuf,
    credentials: Option<(String, String)>,
}

impl Tinyproxy {
    /// Without authentication.
    pub fn start() -> Tinyproxy {
        Tinyproxy::spawn(None)
    }

    /// Requiring `Proxy-Authorization: Basic` with these credentials.
    pub fn with_basic_auth(user: &str, password: &str) -> Tinyproxy {
        Tinyproxy::spawn(Some((user.to_owned(), password.to_owned())))
    }

    fn spawn(credentials: Option<(String, String)>) -> Tinyproxy {
        static STARTED: AtomicUsize = AtomicUsize::new(0);
        let binary = ensure_installed();
        let dir = std::env::temp_dir().join(format!(
            "socketio-tinyproxy-{}-{}",
            std::process::id(),
            STARTED.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        // A free port: bound by us, then released for tinyproxy (which
        // cannot report a port it picked itself).
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let log = dir.join("tinyproxy.log");
        // No ConnectPort line: CONNECT is allowed to every port (our
        // servers listen on ephemeral ones).
        let mut config = format!(
            "Port {port}\nListen 127.0.0.1\nTimeout 60\nMaxClients 200\n\
             LogLevel Connect\nLogfile \"{}\"\nPidFile \"{}\"\nAllow 127.0.0.1\n\
             DisableViaHeader Yes\n",
            log.display(),
            dir.join("tinyproxy.pid").display(),
        );
        if let Some((user, password)) = &credentials {
            config.push_str(&format!("BasicAuth {user} {password}\n"));
        }
        let conf = dir.join("tinyproxy.conf");
        std::fs::write(&conf, config).expect("write the config");
        let child = Command::new(&binary)
            .arg("-d")
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", binary.display()));
        let mut proxy = Tinyproxy {
            child,
            port,
            dir,
            credentials,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = proxy.child.try_wait() {
                panic!("tinyproxy exited at start ({status}): {}", proxy.log());
            }
            assert!(
                Instant::now() < deadline,
                "tinyproxy did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        proxy
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:port`, without credentials.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The URL with the right credentials.
    pub fn url_with_credentials(&self) -> String {
        let (user, password) = self.credentials.as_ref().expect("an auth proxy");
        format!("http://{user}:{password}@127.0.0.1:{}", self.port)
    }

    /// What tinyproxy logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("tinyproxy.log")).unwrap_or_default()
    }

    /// How many tunnels to `host:port` tinyproxy was asked for.
    pub fn tunnels_to(&self, host: &str, port: u16) -> usize {
        let request = format!(": CONNECT {host}:{port} HTTP/1.1");
        self.log().lines().filter(|l| l.contains(&request)).count()
    }
}

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
