//! The chat server with its web side: the chat page and the
//! `socket.io-client` bundle it loads, cross-origin rules, connection state
//! recovery, and the Admin UI.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use socketio::{CorsOrigins, Server, StaticFiles};

use crate::admin::Admin;

/// Where the page's own files are.
const PAGE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/chat/static");
/// Where `tests/browser/setup.sh` installs the npm packages.
const NODE_MODULES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/browser/node_modules");
/// Names the `socket.io-client` bundle when `--client-js` is not given.
pub const CLIENT_JS_ENV: &str = "SOCKETIO_CLIENT_JS";
/// Names the Admin UI's directory when `--admin-ui` is not given.
pub const ADMIN_UI_ENV: &str = "SOCKETIO_ADMIN_UI";

/// The server's options (see `chat --help`).
#[derive(Default)]
pub struct WebOptions {
    /// The `socket.io-client` browser bundle (`socket.io.min.js`).
    pub client_js: Option<PathBuf>,
    /// Origins whose pages may connect, besides the server's own; `*`
    /// for any.
    pub allowed_origins: Vec<String>,
    /// Connection state recovery's window.
    pub recover: Option<Duration>,
    /// The Admin UI's user name and password.
    pub admin: Option<(String, String)>,
    /// The Admin UI's built files (`ui/dist` of `@socket.io/admin-ui`).
    pub admin_ui: Option<PathBuf>,
}

/// `given`, else the path in `env`, else `default`; an error naming all
/// three when the file is not there.
fn locate(
    given: &Option<PathBuf>,
    flag: &str,
    env: &str,
    default: &str,
    what: &str,
) -> Result<PathBuf, String> {
    let (path, from) = match (given, std::env::var_os(env)) {
        (Some(path), _) => (path.clone(), flag.to_owned()),
        (None, Some(path)) => (PathBuf::from(path), format!("${env}")),
        (None, None) => (PathBuf::from(default), "the default".to_owned()),
    };
    if path.exists() {
        Ok(path)
    } else {
        Err(format!(
            "{what} is missing: {} ({from}) does not exist. Run `bash tests/browser/setup.sh` \
             to install it, or give its path with {flag} or ${env}",
            path.display()
        ))
    }
}

/// The static files: the page at `/`, the client bundle beside it, and the
/// Admin UI under `/admin-ui/` when asked for.
fn static_files(options: &WebOptions, admin: Option<&Admin>) -> Result<StaticFiles, String> {
    let mut files = StaticFiles::new().dir("/", PAGE_DIR);
    let client_js = locate(
        &options.client_js,
        "--client-js",
        CLIENT_JS_ENV,
        &format!("{NODE_MODULES}/socket.io-client/dist/socket.io.min.js"),
        "the socket.io-client browser bundle (socket.io.min.js) that the chat page loads",
    );
    match client_js {
        Ok(path) => files = files.route("/socket.io.min.js", path),
        // A server for terminal clients is still useful: say what the page
        // lacks (the page says it too) unless the file was asked for.
        Err(why) if options.client_js.is_none() => {
            tracing::warn!("{why}; the chat page will not work");
        }
        Err(why) => return Err(why),
    }
    if let Some(admin) = admin {
        let ui = locate(
            &options.admin_ui,
            "--admin-ui",
            ADMIN_UI_ENV,
            &format!("{NODE_MODULES}/@socket.io/admin-ui/ui/dist"),
            "the Admin UI (ui/dist of the npm package @socket.io/admin-ui)",
        )?;
        files = crate::admin::serve_ui(files, &ui, admin);
    }
    Ok(files)
}

/// Build the chat server as `options` say and serve it on `addr`; returns
/// it and the bound address.
pub async fn start(addr: SocketAddr, options: &WebOptions) -> Result<(Server, SocketAddr), String> {
    // Bound first: the allowed origins name the port.
    let listener = socketio::current_runtime()
        .listen(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let bound = listener
        .local_addr()
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let admin = match &options.admin {
        Some((user, password)) => Some(crate::admin::admin(user, password)?),
        None => None,
    };
    let mut builder = Server::builder().static_files(static_files(options, admin.as_ref())?);
    if !options.allowed_origins.is_empty() {
        builder = builder.cors_allowed_origins(allowed_origins(&options.allowed_origins, bound));
    }
    if let Some(window) = options.recover {
        builder = builder.max_disconnection_duration(window);
    }
    let server = builder.build();
    crate::server::install(&server);
    if let Some(admin) = admin {
        crate::admin::instrument(&server, admin)?;
    }
    server
        .serve(listener)
        .map_err(|e| format!("cannot serve on {bound}: {e}"))?;
    Ok((server, bound))
}

/// `--allow-origin`'s origins, plus the server's own page's: a list
/// replaces the default same-origin rule, and the chat page served here
/// must still get in.
fn allowed_origins(given: &[String], bound: SocketAddr) -> CorsOrigins {
    if given.iter().any(|o| o == "*") {
        return CorsOrigins::Any;
    }
    let port = bound.port();
    let mut origins = given.to_vec();
    if bound.ip().is_unspecified() || bound.ip().is_loopback() {
        origins.push(format!("http://127.0.0.1:{port}"));
        origins.push(format!("http://localhost:{port}"));
    }
    if !bound.ip().is_unspecified() {
        origins.push(format!("http://{bound}"));
    }
    CorsOrigins::List(origins)
}
