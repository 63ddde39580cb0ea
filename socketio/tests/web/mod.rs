//! A site on disk and the checks run against every server that serves it
//! (our own listener on each runtime, the tower service in axum).
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::raw::{get, request_with_headers, Frame, Ws};
use socketio::StaticFiles;

/// `public/` (served) next to `secret.txt` (not served), with a symbolic
/// link from inside `public/` to the secret; removed on drop.
pub struct Site {
    pub dir: PathBuf,
}

impl Site {
    pub fn new(name: &str) -> Site {
        let dir = std::env::temp_dir().join(format!("socketio-site-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("public/js")).unwrap();
        std::fs::write(dir.join("public/index.html"), "<h1>chat</h1>").unwrap();
        std::fs::write(dir.join("public/js/app.js"), "start()").unwrap();
        std::fs::write(dir.join("secret.txt"), "secret").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(dir.join("secret.txt"), dir.join("public/js/leak.txt")).unwrap();
        Site { dir }
    }

    /// `/` is the index, `/static/` the whole of `public/`, `/about` a
    /// file with an explicit content type.
    pub fn static_files(&self) -> StaticFiles {
        let public = self.dir.join("public");
        StaticFiles::new()
            .route("/", public.join("index.html"))
            .dir("/static", &public)
            .route("/about", public.join("index.html"))
            .content_type("/about", "text/plain")
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Every static-file rule over the wire, and the Socket.IO path beside
/// them (polling and WebSocket); returns how many checks ran.
pub fn check_site(addr: SocketAddr) -> usize {
    let mut checks = 0;
    let mut check = |ok: bool, what: &str| {
        assert!(ok, "{what}");
        checks += 1;
    };
    let home = get(addr, "/");
    check(
        home.status == 200 && home.text() == "<h1>chat</h1>",
        "index",
    );
    check(
        home.header("content-type") == Some("text/html; charset=utf-8"),
        "html type",
    );
    let app = get(addr, "/static/js/app.js");
    check(
        app.status == 200 && app.text() == "start()",
        "file in a directory",
    );
    check(
        app.header("content-type") == Some("text/javascript; charset=utf-8"),
        "js type",
    );
    check(
        get(addr, "/static/").text() == "<h1>chat</h1>",
        "directory index",
    );
    check(
        get(addr, "/about").header("content-type") == Some("text/plain"),
        "explicit content type",
    );
    for path in [
        "/static/../secret.txt",
        "/static/%2e%2e/secret.txt",
        "/static/..%2Fsecret.txt",
        "/static/js%2F..%2F..%2Fsecret.txt",
        "/static/js/leak.txt",
        "/static/missing.js",
        "/nothing",
    ] {
        check(get(addr, path).status == 404, path);
    }

    let etag = app.header("etag").expect("etag").to_owned();
    let modified = app
        .header("last-modified")
        .expect("last-modified")
        .to_owned();
    let conditional =
        |name, value| request_with_headers(addr, "GET", "/static/js/app.js", &[(name, value)], b"");
    let same = conditional("If-None-Match", &etag);
    check(same.status == 304 && same.body.is_empty(), "If-None-Match");
    let since = conditional("If-Modified-Since", &modified);
    check(since.status == 304, "If-Modified-Since");
    let other = conditional("If-None-Match", "\"other\"");
    check(other.status == 200, "another etag");

    let open = get(addr, "/socket.io/?EIO=4&transport=polling");
    check(
        open.status == 200 && open.text().starts_with("0{"),
        "polling handshake beside static files",
    );
    let mut ws = Ws::connect(addr, "/socket.io/?EIO=4&transport=websocket").expect("upgrade");
    check(
        matches!(ws.recv(), Frame::Text(open) if open.starts_with("0{")),
        "websocket beside static files",
    );
    checks
}
