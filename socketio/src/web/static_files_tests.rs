use std::sync::Arc;

use super::*;

fn files() -> StaticFiles {
    StaticFiles::new()
        .route("/", "site/index.html")
        .route("/about", "site/about.txt")
        .dir("/static", "site/assets")
        .route("/docs/", "site/docs/")
        .content_type("/about", "text/markdown")
}

fn resolved(files: &StaticFiles, path: &str) -> Option<(String, String)> {
    files
        .resolve(path)
        .map(|r| (r.file.to_string_lossy().into_owned(), r.content_type))
}

#[test]
fn exact_paths_and_explicit_content_types() {
    let files = files();
    assert_eq!(
        resolved(&files, "/"),
        Some(("site/index.html".into(), "text/html; charset=utf-8".into()))
    );
    assert_eq!(
        resolved(&files, "/about"),
        Some(("site/about.txt".into(), "text/markdown".into()))
    );
    // The query is not part of the path.
    assert_eq!(
        resolved(&files, "/about?x=1").map(|r| r.0),
        Some("site/about.txt".into())
    );
}

#[test]
fn directory_prefixes_and_index() {
    let files = files();
    assert_eq!(
        resolved(&files, "/static/js/app.js"),
        Some((
            "site/assets/js/app.js".into(),
            "text/javascript; charset=utf-8".into()
        ))
    );
    assert_eq!(
        resolved(&files, "/static/").map(|r| r.0),
        Some("site/assets/index.html".into())
    );
    // A key with a trailing slash serves the paths under it.
    assert_eq!(
        resolved(&files, "/docs/guide.html").map(|r| r.0),
        Some("site/docs/guide.html".into())
    );
    assert_eq!(
        resolved(&files, "/docs/").map(|r| r.0),
        Some("site/docs/index.html".into())
    );
    // Unknown extension.
    assert_eq!(
        resolved(&files, "/static/blob.bin").map(|r| r.1),
        Some("application/octet-stream".into())
    );
    // No key matches: falls through.
    assert_eq!(resolved(&StaticFiles::new().route("/a", "x"), "/b/c"), None);
}

#[test]
fn the_index_key_replaces_index_html() {
    let files = StaticFiles::new()
        .dir("/", "site")
        .index("home.htm", Some("text/html"));
    assert_eq!(
        resolved(&files, "/"),
        Some(("site/home.htm".into(), "text/html".into()))
    );
    assert_eq!(
        resolved(&files, "/sub/").map(|r| r.0),
        Some("site/sub/home.htm".into())
    );
    assert_eq!(
        resolved(&files, "/a.css").map(|r| r.0),
        Some("site/a.css".into())
    );
}

#[test]
fn plus_and_bad_escapes_stay_literal() {
    let files = files();
    assert_eq!(
        resolved(&files, "/static/a+b%20c.txt").map(|r| r.0),
        Some("site/assets/a+b c.txt".into())
    );
    assert_eq!(
        resolved(&files, "/static/%zz").map(|r| r.0),
        Some("site/assets/%zz".into())
    );
}

#[test]
fn traversal_is_refused_before_the_file_system() {
    let files = files();
    for path in [
        "/static/../Cargo.toml",
        "/static/%2e%2e/Cargo.toml",
        "/static/%2E%2E/Cargo.toml",
        "/static/.%2e/Cargo.toml",
        "/static/..%2FCargo.toml",
        "/static/%2e%2e%2fCargo.toml",
        "/static/..%5cCargo.toml",
        "/static/./x",
        "/static/a%00b",
        "static/x",
    ] {
        assert_eq!(files.resolve(path), None, "{path}");
    }
}

fn file_data(modified_secs: u64) -> FileData {
    FileData {
        body: Bytes::from_static(b"hello"),
        modified: UNIX_EPOCH + std::time::Duration::from_secs(modified_secs),
        content_type: "text/plain".into(),
    }
}

fn header<'a>(response: &'a StaticResponse, name: &str) -> Option<&'a str> {
    response
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

#[test]
fn conditional_requests() {
    let plain = decide(file_data(1_700_000_000), &Conditions::default());
    assert_eq!(plain.status, 200);
    assert_eq!(plain.body, Bytes::from_static(b"hello"));
    assert_eq!(header(&plain, "content-type"), Some("text/plain"));
    let etag = header(&plain, "etag").unwrap().to_owned();
    let last_modified = header(&plain, "last-modified").unwrap().to_owned();
    assert_eq!(last_modified, "Tue, 14 Nov 2023 22:13:20 GMT");

    let same_tag = Conditions {
        if_none_match: Some(format!("\"other\", {etag}")),
        ..Conditions::default()
    };
    let response = decide(file_data(1_700_000_000), &same_tag);
    assert_eq!(response.status, 304);
    assert!(response.body.is_empty());
    assert_eq!(header(&response, "etag"), Some(etag.as_str()));

    // A changed file has another tag; If-None-Match wins over the date.
    let changed = Conditions {
        if_none_match: Some(etag.clone()),
        if_modified_since: Some(last_modified.clone()),
        ..Conditions::default()
    };
    assert_eq!(decide(file_data(1_700_000_001), &changed).status, 200);

    let since = |date: &str| Conditions {
        if_modified_since: Some(date.to_owned()),
        ..Conditions::default()
    };
    let response = decide(file_data(1_700_000_000), &since(&last_modified));
    assert_eq!(response.status, 304);
    let earlier = "Tue, 14 Nov 2023 22:13:19 GMT";
    assert_eq!(
        decide(file_data(1_700_000_000), &since(earlier)).status,
        200
    );
    assert_eq!(
        decide(file_data(1_700_000_000), &since("garbage")).status,
        200
    );
}

/// A directory of its own under the target dir, removed at the end.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir =
            std::env::temp_dir().join(format!("socketio-static-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("public/sub")).unwrap();
        std::fs::write(dir.join("public/index.html"), "<h1>home</h1>").unwrap();
        std::fs::write(dir.join("public/sub/app.js"), "app()").unwrap();
        std::fs::write(dir.join("secret.txt"), "secret").unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn serve(files: &Arc<StaticFiles>, method: &str, path: &str) -> Option<StaticResponse> {
    wait(files.respond(method, path, Conditions::default()))
}

/// Polls `future` to completion on this thread (`blocking::unblock`
/// completes on a pool thread, which wakes us).
fn wait<T>(future: impl std::future::Future<Output = T>) -> T {
    use std::task::{Context, Poll, Wake, Waker};
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    let give_up = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if let Poll::Ready(value) = future.as_mut().poll(&mut cx) {
            return value;
        }
        assert!(
            std::time::Instant::now() < give_up,
            "file read never finished"
        );
        std::thread::park_timeout(std::time::Duration::from_millis(100));
    }
}

#[test]
fn files_are_read_inside_their_root_only() {
    let tmp = TempDir::new("root");
    let public = tmp.0.join("public");
    #[cfg(unix)]
    std::os::unix::fs::symlink(tmp.0.join("secret.txt"), public.join("leak.txt")).unwrap();
    let files = Arc::new(
        StaticFiles::new()
            .dir("/", &public)
            .route("/secret", tmp.0.join("secret.txt")),
    );
    let home = serve(&files, "GET", "/").unwrap();
    assert_eq!(home.status, 200);
    assert_eq!(home.body, Bytes::from_static(b"<h1>home</h1>"));
    let app = serve(&files, "GET", "/sub/app.js").unwrap();
    assert_eq!(app.body, Bytes::from_static(b"app()"));
    assert_eq!(serve(&files, "HEAD", "/sub/app.js"), Some(app));
    // Explicitly routed: served.
    assert_eq!(serve(&files, "GET", "/secret").unwrap().status, 200);
    // Missing, a directory, another method, a symlink out of the root.
    assert_eq!(serve(&files, "GET", "/nope.js"), None);
    assert_eq!(serve(&files, "GET", "/sub"), None);
    assert_eq!(serve(&files, "POST", "/"), None);
    #[cfg(unix)]
    assert_eq!(serve(&files, "GET", "/leak.txt"), None);
    assert_eq!(serve(&files, "GET", "/../secret.txt"), None);
    assert_eq!(serve(&files, "GET", "/%2e%2e/secret.txt"), None);

    let small = Arc::new(StaticFiles::new().dir("/", &public).max_file_size(3));
    assert_eq!(serve(&small, "GET", "/sub/app.js").unwrap().status, 500);
}
