//! The parsed representation of HTTP messages, independent of the wire codec.

use std::borrow::Cow;
use std::fmt;

use bytes::Bytes;
use smallvec::SmallVec;

use super::query::{query_pairs, query_param, QueryPairs};
use crate::Str;

/// A request method. The common ones have their own variant; anything else
/// is kept as sent in [`Method::Other`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    /// `GET`
    Get,
    /// `POST`
    Post,
    /// `HEAD`
    Head,
    /// `PUT`
    Put,
    /// `DELETE`
    Delete,
    /// `OPTIONS` (CORS preflight)
    Options,
    /// `PATCH`
    Patch,
    /// `CONNECT`
    Connect,
    /// `TRACE`
    Trace,
    /// Any other token, case preserved (methods are case-sensitive).
    Other(Str),
}

impl Method {
    /// The method as it appears on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Head => "HEAD",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Options => "OPTIONS",
            Method::Patch => "PATCH",
            Method::Connect => "CONNECT",
            Method::Trace => "TRACE",
            Method::Other(other) => other,
        }
    }
}

impl From<&str> for Method {
    fn from(method: &str) -> Self {
        match method {
            "GET" => Method::Get,
            "POST" => Method::Post,
            "HEAD" => Method::Head,
            "PUT" => Method::Put,
            "DELETE" => Method::Delete,
            "OPTIONS" => Method::Options,
            "PATCH" => Method::Patch,
            "CONNECT" => Method::Connect,
            "TRACE" => Method::Trace,
            other => Method::Other(Str::from(other)),
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The HTTP version of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Version {
    /// HTTP/1.0: connections close after each exchange unless
    /// `Connection: keep-alive`.
    Http10,
    /// HTTP/1.1: connections persist unless `Connection: close`.
    #[default]
    Http11,
}

impl Version {
    /// `"HTTP/1.0"` or `"HTTP/1.1"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        }
    }
}

/// Header fields in arrival order, names compared case-insensitively.
///
/// Names are kept as sent; values are raw bytes because HTTP allows
/// non-UTF-8 (obs-text) values, with [`Headers::get_str`] for the common case.
/// Parsed headers share the memory of the received head (no copy per field).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    entries: SmallVec<[(Str, Bytes); 8]>,
}

impl Headers {
    /// No headers.
    pub fn new() -> Self {
        Headers::default()
    }

    /// Number of fields (repeated names count once each).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no fields.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds a field after the existing ones, keeping any with the same name.
    pub fn append(&mut self, name: impl Into<Str>, value: impl Into<Bytes>) {
        self.entries.push((name.into(), value.into()));
    }

    /// Replaces every field named `name` with one field.
    pub fn insert(&mut self, name: impl Into<Str>, value: impl Into<Bytes>) {
        let name = name.into();
        self.remove(&name);
        self.entries.push((name, value.into()));
    }

    /// Removes every field named `name`; returns whether any was present.
    pub fn remove(&mut self, name: &str) -> bool {
        let before = self.entries.len();
        self.entries.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.entries.len() != before
    }

    /// The value of the first field named `name`.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.entries
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| &v[..])
    }

    /// The value of the first field named `name`, if it is UTF-8.
    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// The values of every field named `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.entries
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| &v[..])
    }

    /// Whether a field named `name` is present.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Whether the comma-separated list in the fields named `name` holds
    /// `token` (case-insensitive), as for `Connection: keep-alive, Upgrade`.
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.tokens(name)
            .any(|t| t.eq_ignore_ascii_case(token.as_bytes()))
    }

    /// The non-empty elements of the comma-separated lists in every field
    /// named `name`, trimmed of spaces and tabs.
    pub(crate) fn tokens<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.get_all(name)
            .flat_map(|v| v.split(|b| *b == b','))
            .map(trim_ows)
            .filter(|t| !t.is_empty())
    }

    /// Every field as (name, value), in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.entries.iter().map(|(n, v)| (&n[..], &v[..]))
    }
}

/// Trims optional whitespace (spaces and tabs) from both ends.
pub(crate) fn trim_ows(mut bytes: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = bytes {
        bytes = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = bytes {
        bytes = rest;
    }
    bytes
}

/// An HTTP request, whether parsed by [`ServerConn`](super::ServerConn),
/// built for [`ClientConn`](super::ClientConn), or converted from another
/// HTTP stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// The request target as sent: usually origin-form, a path with an
    /// optional `?query` (`/socket.io/?EIO=4&transport=polling`).
    pub target: Str,
    /// The protocol version.
    pub version: Version,
    /// The header fields.
    pub headers: Headers,
    /// The whole body, de-chunked; empty when there is none.
    pub body: Bytes,
}

impl Request {
    /// An HTTP/1.1 request with no headers and an empty body.
    pub fn new(method: Method, target: impl Into<Str>) -> Self {
        Request {
            method,
            target: target.into(),
            version: Version::Http11,
            headers: Headers::new(),
            body: Bytes::new(),
        }
    }

    /// Adds a header field (builder style).
    pub fn with_header(mut self, name: impl Into<Str>, value: impl Into<Bytes>) -> Self {
        self.headers.append(name, value);
        self
    }

    /// Sets the body (builder style).
    pub fn with_body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// The path part of the target, raw (not percent-decoded): everything
    /// before `?`. For an absolute-form target (`http://host/p?q`) the scheme
    /// and authority are skipped.
    pub fn path(&self) -> &str {
        let target = strip_authority(&self.target);
        match target.find('?') {
            Some(q) => &target[..q],
            None => target,
        }
    }

    /// The raw query string after `?`, if the target has one.
    pub fn query(&self) -> Option<&str> {
        self.target.find('?').map(|q| &self.target[q + 1..])
    }

    /// The first query parameter named `name` (compared after decoding),
    /// form-decoded (`%XX` escapes and `+` as space). `None` when absent;
    /// `Some("")` for `?name` or `?name=`.
    pub fn query_param(&self, name: &str) -> Option<Cow<'_, str>> {
        query_param(self.query()?, name)
    }

    /// Every query parameter, form-decoded, in order.
    pub fn query_pairs(&self) -> QueryPairs<'_> {
        query_pairs(self.query().unwrap_or(""))
    }

    /// Whether the request asks to keep the connection open afterwards:
    /// HTTP/1.1 unless `Connection: close`, HTTP/1.0 only with
    /// `Connection: keep-alive`.
    pub fn wants_keep_alive(&self) -> bool {
        keep_alive(self.version, &self.headers)
    }

    /// Whether this is a WebSocket upgrade request: `Upgrade: websocket` and
    /// `Connection: upgrade` (both case-insensitive, as list elements). The
    /// rest of the handshake (`Sec-WebSocket-Key`, version) is for the
    /// WebSocket layer to check.
    pub fn is_websocket_upgrade(&self) -> bool {
        self.headers.has_token("upgrade", "websocket")
            && self.headers.has_token("connection", "upgrade")
    }
}

fn strip_authority(target: &str) -> &str {
    let lower_starts = |prefix: &str| {
        target.len() >= prefix.len() && target[..prefix.len()].eq_ignore_ascii_case(prefix)
    };
    let after_scheme = if lower_starts("http://") {
        &target[7..]
    } else if lower_starts("https://") {
        &target[8..]
    } else {
        return target;
    };
    match after_scheme.find(['/', '?']) {
        Some(slash) if after_scheme.as_bytes()[slash] == b'/' => &after_scheme[slash..],
        _ => "/",
    }
}

/// The persistence rule shared by requests and responses.
pub(crate) fn keep_alive(version: Version, headers: &Headers) -> bool {
    match version {
        Version::Http11 => !headers.has_token("connection", "close"),
        Version::Http10 => {
            headers.has_token("connection", "keep-alive")
                && !headers.has_token("connection", "close")
        }
    }
}

/// An HTTP response, whether built for [`ServerConn`](super::ServerConn) or
/// parsed by [`ClientConn`](super::ClientConn).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The reason phrase; [`Response::new`] fills in the standard one.
    pub reason: Str,
    /// The protocol version (HTTP/1.1 for responses this codec writes).
    pub version: Version,
    /// The header fields. `Content-Length` and `Transfer-Encoding` are added
    /// by the codec when writing; it refuses them here.
    pub headers: Headers,
    /// The whole body, de-chunked.
    pub body: Bytes,
}

impl Response {
    /// A response with the standard reason phrase, no headers and no body.
    pub fn new(status: u16) -> Self {
        Response {
            status,
            reason: Str::from_static(reason_phrase(status)),
            version: Version::Http11,
            headers: Headers::new(),
            body: Bytes::new(),
        }
    }

    /// Adds a header field (builder style).
    pub fn with_header(mut self, name: impl Into<Str>, value: impl Into<Bytes>) -> Self {
        self.headers.append(name, value);
        self
    }

    /// Sets the body (builder style).
    pub fn with_body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }
}

/// The standard reason phrase of a status code, or `""` for an unknown one.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        413 => "Payload Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        417 => "Expectation Failed",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_case_insensitive_and_ordered() {
        let mut h = Headers::new();
        h.append("Content-Type", "text/plain");
        h.append("Set-Cookie", "a=1");
        h.append("set-cookie", "b=2");
        assert_eq!(h.get_str("content-type"), Some("text/plain"));
        assert_eq!(
            h.get_all("SET-COOKIE").collect::<Vec<_>>(),
            [b"a=1", b"b=2"]
        );
        h.insert("Set-Cookie", "c=3");
        assert_eq!(h.get_all("set-cookie").count(), 1);
        assert!(h.remove("CONTENT-TYPE"));
        assert!(!h.contains("content-type"));
        assert_eq!(h.len(), 1);
    }

    #[test]
    fn token_lists() {
        let mut h = Headers::new();
        h.append("Connection", "keep-alive, Upgrade");
        h.append("Connection", " ,close ");
        assert!(h.has_token("connection", "upgrade"));
        assert!(h.has_token("connection", "CLOSE"));
        assert!(!h.has_token("connection", "keep"));
    }

    #[test]
    fn path_and_query() {
        let r = Request::new(Method::Get, "/socket.io/?EIO=4&transport=polling&t=N8hyd6w");
        assert_eq!(r.path(), "/socket.io/");
        assert_eq!(r.query(), Some("EIO=4&transport=polling&t=N8hyd6w"));
        assert_eq!(r.query_param("EIO").as_deref(), Some("4"));
        assert_eq!(r.query_param("transport").as_deref(), Some("polling"));
        assert_eq!(r.query_param("t").as_deref(), Some("N8hyd6w"));
        assert_eq!(r.query_param("sid"), None);
        let r = Request::new(Method::Get, "/plain");
        assert_eq!((r.path(), r.query()), ("/plain", None));
        assert_eq!(r.query_param("x"), None);
        let r = Request::new(Method::Get, "http://example.com:3000/socket.io/?EIO=4");
        assert_eq!(r.path(), "/socket.io/");
        assert_eq!(r.query_param("EIO").as_deref(), Some("4"));
        let r = Request::new(Method::Get, "HTTPS://example.com");
        assert_eq!(r.path(), "/");
    }

    #[test]
    fn keep_alive_rules() {
        let mut r = Request::new(Method::Get, "/");
        assert!(r.wants_keep_alive());
        r.headers.append("Connection", "Close");
        assert!(!r.wants_keep_alive());
        let mut r = Request::new(Method::Get, "/");
        r.version = Version::Http10;
        assert!(!r.wants_keep_alive());
        r.headers.append("Connection", "Keep-Alive");
        assert!(r.wants_keep_alive());
    }

    #[test]
    fn websocket_upgrade_detection() {
        let r = Request::new(Method::Get, "/")
            .with_header("Connection", "keep-alive, Upgrade")
            .with_header("Upgrade", "WebSocket");
        assert!(r.is_websocket_upgrade());
        let r = Request::new(Method::Get, "/").with_header("Upgrade", "websocket");
        assert!(!r.is_websocket_upgrade());
        let r = Request::new(Method::Get, "/")
            .with_header("Connection", "upgrade")
            .with_header("Upgrade", "h2c");
        assert!(!r.is_websocket_upgrade());
    }

    #[test]
    fn methods_round_trip() {
        for m in [
            "GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH", "CONNECT", "TRACE",
            "PROPFIND",
        ] {
            assert_eq!(Method::from(m).as_str(), m);
        }
        assert_eq!(Method::from("get"), Method::Other(Str::from("get")));
        assert_eq!(Response::new(431).reason, "Request Header Fields Too Large");
    }
}
