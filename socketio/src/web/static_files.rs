//! Static files served next to the Socket.IO endpoint, with
//! python-engineio's `static_files` rules, by our own listener and by the
//! tower service alike.
//!
//! # Rules
//! A [`StaticFiles`] maps URL paths to files or directories:
//! - **Exact paths**: [`StaticFiles::route`]`("/", "public/index.html")`
//!   serves that file for `/`.
//! - **Directory prefixes**: a request that matches no key exactly is cut at
//!   its last `/` until a prefix is a key (`/static`, or `/static/`); the
//!   rest of the path is appended to that key's target.
//!   [`StaticFiles::dir`]`("/static", "public/")` serves
//!   `public/js/app.js` for `/static/js/app.js`.
//! - **Directories**: a target ending in `/` gets the index file appended
//!   (`index.html`, or [`StaticFiles::index`]: python's `''` key).
//! - **Content types**: the entry's own
//!   ([`StaticFiles::content_type`]), the index's for an index, else by
//!   extension (`application/octet-stream` when unknown).
//! - **Precedence**: the Socket.IO path first, then static files, then the
//!   fallback (the wrapped service when mounted; 404 on our own listener).
//!   A key that matches but names no readable file inside its root falls
//!   through, as in python-engineio.
//!
//! # Safety
//! Request paths are percent-decoded per segment; a segment that decodes
//! to `.`, `..`, or contains `/`, `\` or NUL is refused, and the file found
//! must, once symbolic links are resolved, lie inside its entry's target
//! (a symbolic link out of a served directory is not followed). Only `GET`
//! and `HEAD` are served.
//!
//! # Caching
//! Responses carry `ETag` (size and modification time) and
//! `Last-Modified`; `If-None-Match` (checked first) and
//! `If-Modified-Since` give `304 Not Modified`.
//!
//! # Reading
//! Files are read whole, up to [`StaticFiles::max_file_size`] (larger ones
//! are answered `500` with a log line), on the `blocking` crate's thread
//! pool: the driver's [`crate::Runtime`] has no `spawn_blocking`, and this
//! keeps file system calls off the executor on every runtime.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use socketio_core::http::form_decode;

/// The default largest file served, in bytes.
const DEFAULT_MAX_FILE_SIZE: u64 = 32 * 1024 * 1024;

/// One key of the mapping.
#[derive(Debug, Clone)]
struct Entry {
    /// A file, or a directory when it ends in `/`.
    target: String,
    content_type: Option<String>,
}

/// Files served for URL paths outside the Socket.IO path (see the module
/// documentation for the rules). Give it to
/// [`crate::ServerBuilder::static_files`].
///
/// ```
/// use socketio::StaticFiles;
///
/// let files = StaticFiles::new()
///     .route("/", "public/index.html")
///     .dir("/static", "public/")
///     .content_type("/", "text/html; charset=utf-8");
/// # let _ = files;
/// ```
#[derive(Debug, Clone)]
pub struct StaticFiles {
    entries: BTreeMap<String, Entry>,
    index: Entry,
    max_file_size: u64,
    /// Paths that need credentials (the admin UI's).
    guards: Vec<Guard>,
}

impl Default for StaticFiles {
    fn default() -> Self {
        StaticFiles::new()
    }
}

impl StaticFiles {
    /// No files; `index.html` for directories.
    pub fn new() -> StaticFiles {
        StaticFiles {
            entries: BTreeMap::new(),
            index: Entry {
                target: "index.html".to_owned(),
                content_type: None,
            },
            max_file_size: DEFAULT_MAX_FILE_SIZE,
            guards: Vec::new(),
        }
    }

    /// Serve `target` for `url` (python's `static_files[url] = target`).
    /// The rest of a longer path is appended to `target`, so a target
    /// ending in `/` is a directory.
    pub fn route(mut self, url: &str, target: impl AsRef<Path>) -> StaticFiles {
        let target = target.as_ref().to_string_lossy().into_owned();
        self.entries.insert(
            url.to_owned(),
            Entry {
                target,
                content_type: None,
            },
        );
        self
    }

    /// Serve the files under directory `dir` for the paths under `url`
    /// (`/static/a/b.js` is `dir/a/b.js`; `/static/` is `dir/index.html`).
    pub fn dir(self, url: &str, dir: impl AsRef<Path>) -> StaticFiles {
        let mut target = dir.as_ref().to_string_lossy().into_owned();
        if !target.ends_with('/') {
            target.push('/');
        }
        let url = match url.trim_end_matches('/') {
            "" => "/",
            trimmed => trimmed,
        };
        self.route(url, target)
    }

    /// The `Content-Type` of what `url` (a key given to
    /// [`StaticFiles::route`] or [`StaticFiles::dir`]) serves, instead of
    /// the one guessed from the extension. Does nothing for an unknown key.
    pub fn content_type(mut self, url: &str, content_type: &str) -> StaticFiles {
        let key = match self.entries.contains_key(url) {
            true => url.to_owned(),
            false => url.trim_end_matches('/').to_owned(),
        };
        if let Some(entry) = self.entries.get_mut(&key) {
            entry.content_type = Some(content_type.to_owned());
        }
        self
    }

    /// The file served for a directory (python's `''` key;
    /// `index.html`), and optionally its content type.
    pub fn index(mut self, file: &str, content_type: Option<&str>) -> StaticFiles {
        self.index = Entry {
            target: file.to_owned(),
            content_type: content_type.map(str::to_owned),
        };
        self
    }

    /// The largest file served, in bytes (32 MiB): files are read whole.
    pub fn max_file_size(mut self, bytes: u64) -> StaticFiles {
        self.max_file_size = bytes;
        self
    }

    /// The file a request path names, if a key matches (pure: the file
    /// may not exist).
    pub(crate) fn resolve(&self, raw_path: &str) -> Option<Resolved> {
        let path = decode_path(raw_path)?;
        let (entry, mut extra) = self.lookup(&path)?;
        let mut file = entry.target.clone();
        if file.ends_with('/') && extra.starts_with('/') {
            extra.remove(0);
        }
        file.push_str(&extra);
        let mut content_type = entry.content_type.clone();
        if file.ends_with('/') {
            file.push_str(&self.index.target);
            if self.index.content_type.is_some() {
                content_type = self.index.content_type.clone();
            }
        }
        let content_type = content_type.unwrap_or_else(|| guess_content_type(&file).to_owned());
        Some(Resolved {
            file: PathBuf::from(file),
            root: PathBuf::from(&entry.target),
            content_type,
        })
    }

    /// The entry for `path` and the rest of the path after its key.
    fn lookup(&self, path: &str) -> Option<(&Entry, String)> {
        if let Some(entry) = self.entries.get(path) {
            return Some((entry, String::new()));
        }
        let mut prefix = path;
        while let Some(cut) = prefix.rfind('/') {
            prefix = &prefix[..cut];
            let extra = &path[cut..];
            if let Some(entry) = self.entries.get(prefix) {
                return Some((entry, extra.to_owned()));
            }
            if let Some(entry) = self.entries.get(&format!("{prefix}/")) {
                return Some((entry, extra[1..].to_owned()));
            }
        }
        None
    }

    /// The response to a request for `raw_path`, or `None` when static
    /// files do not serve it (the request falls through). Reads the file
    /// off the executor.
    pub(crate) async fn respond(
        &self,
        method: &str,
        raw_path: &str,
        conditions: Conditions,
    ) -> Option<StaticResponse> {
        // The HTTP stacks drop the body of a `HEAD` response themselves.
        if method != "GET" && method != "HEAD" {
            return None;
        }
        if let Some(refusal) = self.refusal(raw_path, conditions.authorization.as_deref()) {
            return Some(refusal);
        }
        let resolved = self.resolve(raw_path)?;
        let max = self.max_file_size;
        let loaded = blocking::unblock(move || load(&resolved, max)).await;
        let response = match loaded {
            Loaded::Missing => return None,
            Loaded::TooLarge => {
                tracing::warn!(path = raw_path, "static file over max_file_size");
                StaticResponse::empty(500)
            }
            Loaded::File(file) => decide(file, &conditions),
        };
        tracing::debug!(path = raw_path, status = response.status, "static file");
        Some(response)
    }
}

/// Where a request path leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Resolved {
    /// The file to serve.
    pub(crate) file: PathBuf,
    /// The entry's target: the file must lie inside (or be) it.
    pub(crate) root: PathBuf,
    pub(crate) content_type: String,
}

/// The conditional request headers.
#[derive(Debug, Clone, Default)]
pub(crate) struct Conditions {
    pub(crate) if_none_match: Option<String>,
    pub(crate) if_modified_since: Option<String>,
    /// `Authorization`, for the paths behind a [`Guard`].
    pub(crate) authorization: Option<String>,
}

/// A static response, turned into the HTTP stack's own type by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StaticResponse {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(&'static str, String)>,
    /// Empty for 304.
    pub(crate) body: Bytes,
}

impl StaticResponse {
    fn empty(status: u16) -> StaticResponse {
        StaticResponse {
            status,
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }
}

/// A file read from disk.
#[derive(Debug, Clone)]
pub(crate) struct FileData {
    pub(crate) body: Bytes,
    pub(crate) modified: SystemTime,
    pub(crate) content_type: String,
}

#[derive(Debug)]
enum Loaded {
    Missing,
    TooLarge,
    File(FileData),
}

/// Read the resolved file if it is a regular file inside its root
/// (blocking).
fn load(resolved: &Resolved, max: u64) -> Loaded {
    let (Ok(root), Ok(file)) = (
        std::fs::canonicalize(&resolved.root),
        std::fs::canonicalize(&resolved.file),
    ) else {
        return Loaded::Missing;
    };
    if !file.starts_with(&root) {
        tracing::debug!(file = %file.display(), "static file outside its root");
        return Loaded::Missing;
    }
    let Ok(opened) = std::fs::File::open(&file) else {
        return Loaded::Missing;
    };
    let Ok(meta) = opened.metadata() else {
        return Loaded::Missing;
    };
    if !meta.is_file() {
        return Loaded::Missing;
    }
    if meta.len() > max {
        return Loaded::TooLarge;
    }
    let mut body = Vec::with_capacity(meta.len() as usize);
    // Bounded even if the file grows while read.
    if opened.take(max + 1).read_to_end(&mut body).is_err() || body.len() as u64 > max {
        return Loaded::Missing;
    }
    Loaded::File(FileData {
        body: body.into(),
        modified: meta.modified().unwrap_or(UNIX_EPOCH),
        content_type: resolved.content_type.clone(),
    })
}

/// 200 or 304, with the validators.
pub(crate) fn decide(file: FileData, conditions: &Conditions) -> StaticResponse {
    let since_epoch = file.modified.duration_since(UNIX_EPOCH).unwrap_or_default();
    let etag = format!(
        "W/\"{:x}-{:x}\"",
        file.body.len(),
        since_epoch.as_nanos() & u128::from(u64::MAX)
    );
    // HTTP dates have whole seconds.
    let modified_secs = since_epoch.as_secs();
    let last_modified =
        httpdate::fmt_http_date(UNIX_EPOCH + std::time::Duration::from_secs(modified_secs));
    let not_modified = match (&conditions.if_none_match, &conditions.if_modified_since) {
        (Some(tags), _) => etag_matches(tags, &etag),
        (None, Some(since)) => httpdate::parse_http_date(since)
            .ok()
            .and_then(|since| since.duration_since(UNIX_EPOCH).ok())
            .is_some_and(|since| modified_secs <= since.as_secs()),
        (None, None) => false,
    };
    let mut headers = vec![("ETag", etag), ("Last-Modified", last_modified)];
    if not_modified {
        return StaticResponse {
            status: 304,
            headers,
            body: Bytes::new(),
        };
    }
    headers.push(("Content-Type", file.content_type));
    StaticResponse {
        status: 200,
        headers,
        body: file.body,
    }
}

/// `If-None-Match` against our tag, with the weak comparison (RFC 9110
/// §13.1.2).
fn etag_matches(header: &str, etag: &str) -> bool {
    let ours = etag.trim_start_matches("W/");
    header
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.trim_start_matches("W/") == ours)
}

/// Percent-decode a request path (its query cut off); `None` when it
/// could escape its directory.
fn decode_path(raw: &str) -> Option<String> {
    let raw = raw.split(['?', '#']).next()?;
    if !raw.starts_with('/') {
        return None;
    }
    let mut out = String::with_capacity(raw.len());
    for (i, segment) in raw.split('/').enumerate() {
        // Form decoding but for `+`, which a path keeps (invalid escapes
        // stay literal, invalid UTF-8 becomes U+FFFD: neither can climb).
        let segment = segment.replace('+', "%2B");
        let decoded = form_decode(&segment);
        if matches!(decoded.as_ref(), "." | "..") || decoded.contains(['/', '\\', '\0']) {
            return None;
        }
        if i > 0 {
            out.push('/');
        }
        out.push_str(&decoded);
    }
    Some(out)
}

/// The content type of a file name by its extension.
fn guess_content_type(file: &str) -> &'static str {
    let name = file.rsplit('/').next().unwrap_or(file);
    let ext = name
        .rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase());
    match ext.as_deref() {
        Some("html" | "htm") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("json" | "map") => "application/json",
        Some("txt") => "text/plain; charset=utf-8",
        Some("xml") => "application/xml",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("ico") => "image/x-icon",
        Some("wasm") => "application/wasm",
        Some("woff") => "font/woff",
        Some("woff2") => "font/woff2",
        Some("pdf") => "application/pdf",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
#[path = "static_files_tests.rs"]
mod tests;

/// Requests for paths under `prefix` (once decoded) are served only when
/// `allows` accepts their `Authorization` header; the others are answered
/// 401 with `challenge` as `WWW-Authenticate`.
#[derive(Clone)]
pub(crate) struct Guard {
    pub(crate) prefix: String,
    pub(crate) challenge: String,
    pub(crate) allows: AuthorizationCheck,
}

/// Decides on an `Authorization` header (absent: `None`).
pub(crate) type AuthorizationCheck = std::sync::Arc<dyn Fn(Option<&str>) -> bool + Send + Sync>;

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl StaticFiles {
    /// Put the paths under `guard.prefix` behind it.
    #[cfg_attr(not(feature = "admin"), allow(dead_code))]
    pub(crate) fn guard(mut self, guard: Guard) -> StaticFiles {
        self.guards.push(guard);
        self
    }

    /// The 401 answer to a request its guard refuses. The decoded path is
    /// checked, so an escaped character cannot slip past the prefix.
    fn refusal(&self, raw_path: &str, authorization: Option<&str>) -> Option<StaticResponse> {
        let path = decode_path(raw_path).unwrap_or_else(|| raw_path.to_owned());
        let guard = self.guards.iter().find(|g| {
            path.strip_prefix(g.prefix.trim_end_matches('/'))
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        })?;
        if (guard.allows)(authorization) {
            return None;
        }
        Some(StaticResponse {
            status: 401,
            headers: vec![("www-authenticate", guard.challenge.clone())],
            body: Bytes::new(),
        })
    }
}
