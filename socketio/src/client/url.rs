//! The client's URL: `http://host[:port][/namespace][?query]`.

use crate::error::{Error, Result};

/// A URL taken apart.
pub(crate) struct Url {
    /// `https://` or `wss://` (never without the `tls` feature).
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    pub(crate) secure: bool,
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) host_header: String,
    pub(crate) namespace: String,
    pub(crate) query: Vec<(String, String)>,
}

/// `http://host[:port][/namespace][?query]` (`ws://`, and with the `tls`
/// feature `https://` and `wss://`, too).
pub(crate) fn parse_url(url: &str) -> Result<Url> {
    let bad = || Error::InvalidUrl(url.to_owned());
    let (secure, rest) = if let Some(rest) = strip_scheme(url, "http").or(strip_scheme(url, "ws")) {
        (false, rest)
    } else if let Some(rest) = strip_scheme(url, "https").or(strip_scheme(url, "wss")) {
        if cfg!(not(feature = "tls")) {
            return Err(Error::InvalidUrl(format!(
                "{url}: https:// and wss:// need the `tls` feature of socketio"
            )));
        }
        (true, rest)
    } else if !url.contains("://") {
        return Err(Error::InvalidUrl(format!(
            "{url}: no scheme (write http://{url}, or https:// for TLS)"
        )));
    } else {
        return Err(bad());
    };
    let default_port = if secure { 443 } else { 80 };
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, q),
        None => (rest, ""),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => {
            (h, p.parse::<u16>().map_err(|_| bad())?)
        }
        _ => (authority, default_port),
    };
    if host.is_empty() {
        return Err(bad());
    }
    let host_header = if port == default_port {
        host.to_owned()
    } else {
        format!("{host}:{port}")
    };
    let namespace = match path.trim_end_matches('/') {
        "" => "/".to_owned(),
        p => p.to_owned(),
    };
    let query = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => (p.to_owned(), String::new()),
        })
        .collect();
    Ok(Url {
        secure,
        host: host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned(),
        port,
        host_header,
        namespace,
        query,
    })
}

/// `url` without `scheme://` (scheme case-insensitive), if it has it.
fn strip_scheme<'a>(url: &'a str, scheme: &str) -> Option<&'a str> {
    let rest = url.get(scheme.len()..)?.strip_prefix("://")?;
    url[..scheme.len()]
        .eq_ignore_ascii_case(scheme)
        .then_some(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_host_port_namespace_and_query() {
        let u = parse_url("http://127.0.0.1:3000/custom?token=abc&x").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("127.0.0.1", 3000));
        assert_eq!(u.host_header, "127.0.0.1:3000");
        assert_eq!(u.namespace, "/custom");
        assert_eq!(
            u.query,
            vec![("token".into(), "abc".into()), ("x".into(), String::new())]
        );
        let u = parse_url("http://localhost").unwrap();
        assert_eq!((u.port, u.namespace.as_str()), (80, "/"));
        assert!(!u.secure);
        assert_eq!(parse_url("https://x").is_ok(), cfg!(feature = "tls"));
        assert!(parse_url("ftp://x").is_err());
        let hint = parse_url("localhost:3000").err().unwrap().to_string();
        assert!(hint.contains("http://localhost:3000"), "{hint}");
        assert!(parse_url("http://:1").is_err());
        assert!(parse_url("http://h:notaport").is_err());
    }

    #[cfg(feature = "tls")]
    #[test]
    fn secure_urls_default_to_port_443() {
        let u = parse_url("https://example.com/chat").unwrap();
        assert!(u.secure);
        assert_eq!((u.port, u.host_header.as_str()), (443, "example.com"));
        assert_eq!(u.namespace, "/chat");
        let u = parse_url("WSS://[::1]:8443").unwrap();
        assert!(u.secure);
        assert_eq!((u.host.as_str(), u.port), ("::1", 8443));
        assert_eq!(u.host_header, "[::1]:8443");
        let u = parse_url("http://example.com:443").unwrap();
        assert_eq!(u.host_header, "example.com:443");
    }
}
