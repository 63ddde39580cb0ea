//! The options of [`crate::Server::instrument`], named after
//! python-socketio's `instrument()` arguments.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use socketio_core::Value;

/// Who may connect to the admin namespace.
#[derive(Clone)]
pub enum AdminAuth {
    /// Anyone (python-socketio's `auth=False`): only for a trusted network.
    None,
    /// A client whose auth object is `{"username": .., "password": ..}`
    /// with these values (what the admin UI's login form sends).
    Basic {
        /// The expected user name.
        username: String,
        /// The expected password, in clear.
        password: String,
    },
    /// A function deciding on the client's auth object (`Value::Null` when
    /// the client sent none).
    Check(Arc<dyn Fn(&Value) -> bool + Send + Sync>),
}

impl AdminAuth {
    /// Username and password, as the admin UI's login form sends them.
    pub fn basic(username: impl Into<String>, password: impl Into<String>) -> AdminAuth {
        AdminAuth::Basic {
            username: username.into(),
            password: password.into(),
        }
    }

    /// Let `check` decide on the client's auth object.
    pub fn check(check: impl Fn(&Value) -> bool + Send + Sync + 'static) -> AdminAuth {
        AdminAuth::Check(Arc::new(check))
    }
}

impl fmt::Debug for AdminAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the password.
        match self {
            AdminAuth::None => f.write_str("None"),
            AdminAuth::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .finish_non_exhaustive(),
            AdminAuth::Check(_) => f.write_str("Check(..)"),
        }
    }
}

/// How much the admin UI is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AdminMode {
    /// Everything: every socket with its details, each connection,
    /// disconnection, room change and event in and out. Costs an emit to
    /// the admin namespace per event.
    #[default]
    Development,
    /// Server statistics only (counts and connection rates).
    Production,
}

/// Options of [`crate::Server::instrument`].
#[derive(Debug, Clone)]
pub struct AdminOptions {
    pub(crate) auth: AdminAuth,
    pub(crate) mode: AdminMode,
    pub(crate) read_only: bool,
    pub(crate) server_id: Option<String>,
    pub(crate) namespace: String,
    pub(crate) server_stats_interval: Duration,
}

impl AdminOptions {
    /// The defaults, with `auth` (there is no default for it, as in
    /// python-socketio: [`AdminAuth::None`] must be asked for).
    pub fn new(auth: AdminAuth) -> AdminOptions {
        AdminOptions {
            auth,
            mode: AdminMode::default(),
            read_only: false,
            server_id: None,
            namespace: "/admin".to_owned(),
            server_stats_interval: Duration::from_secs(2),
        }
    }

    /// How much the UI is told ([`AdminMode::Development`]).
    pub fn mode(mut self, mode: AdminMode) -> Self {
        self.mode = mode;
        self
    }

    /// Refuse the UI's actions (join, leave, disconnect, emit) (false).
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// The name the UI shows for this server (the cluster node id, else
    /// the host name).
    pub fn server_id(mut self, id: impl Into<String>) -> Self {
        self.server_id = Some(id.into());
        self
    }

    /// The namespace the UI connects to (`/admin`).
    pub fn namespace(mut self, nsp: &str) -> Self {
        self.namespace = if nsp.starts_with('/') {
            nsp.to_owned()
        } else {
            format!("/{nsp}")
        };
        self
    }

    /// Time between two `server_stats` messages (2 s).
    pub fn server_stats_interval(mut self, interval: Duration) -> Self {
        self.server_stats_interval = interval;
        self
    }
}
