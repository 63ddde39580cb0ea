//! Cross-origin checks for the Engine.IO server, with python-socketio's
//! `cors_allowed_origins` semantics: same origin by default, any origin, or
//! an allow-list. Requests without `Origin` always pass (non-browser
//! clients send none).

use crate::http::{Headers, Request};

use super::config::{CorsOrigins, ServerConfig};

/// Methods a preflight request is told the endpoint accepts (as
/// python-socketio answers).
const ALLOWED_METHODS: &str = "OPTIONS, GET, POST";

/// The CORS headers for a request whose origin is allowed, or `None` when
/// its `Origin` is refused.
pub(crate) fn cors_headers(config: &ServerConfig, request: &Request) -> Option<Headers> {
    let mut headers = Headers::new();
    let Some(origin) = request.headers.get("origin") else {
        return Some(headers);
    };
    let origin = std::str::from_utf8(origin).ok()?;
    let allowed = match &config.cors_allowed_origins {
        CorsOrigins::Any => true,
        CorsOrigins::List(list) => list.iter().any(|allowed| allowed == origin),
        CorsOrigins::SameOrigin => is_same_origin(origin, request),
    };
    if !allowed {
        return None;
    }
    headers.append("Access-Control-Allow-Origin", origin.to_owned());
    headers.append("Vary", "Origin");
    if config.cors_credentials {
        headers.append("Access-Control-Allow-Credentials", "true");
    }
    Some(headers)
}

/// Adds what a preflight (`OPTIONS`) answer carries beyond
/// [`cors_headers`]: the allowed methods, and the requested headers echoed.
pub(crate) fn add_preflight_headers(request: &Request, headers: &mut Headers) {
    headers.append("Access-Control-Allow-Methods", ALLOWED_METHODS);
    if let Some(requested) = request.headers.get("access-control-request-headers") {
        headers.append(
            "Access-Control-Allow-Headers",
            bytes::Bytes::copy_from_slice(requested),
        );
    }
}

/// Whether `origin` (`scheme://host[:port]`) names the host the request was
/// sent to: its `Host` header, or the `X-Forwarded-Host` a proxy added.
fn is_same_origin(origin: &str, request: &Request) -> bool {
    let Some(authority) = strip_scheme(origin) else {
        return false;
    };
    ["host", "x-forwarded-host"].iter().any(|name| {
        request
            .headers
            .get_str(name)
            .is_some_and(|host| host.trim().eq_ignore_ascii_case(authority))
    })
}

fn strip_scheme(origin: &str) -> Option<&str> {
    let (scheme, rest) = origin.split_once("://")?;
    if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") {
        Some(rest)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Method;

    fn request(origin: Option<&str>, host: &str) -> Request {
        let mut r = Request::new(Method::Get, "/socket.io/").with_header("Host", host.to_owned());
        if let Some(origin) = origin {
            r.headers.append("Origin", origin.to_owned());
        }
        r
    }

    #[test]
    fn same_origin_default() {
        let config = ServerConfig::default();
        assert!(cors_headers(&config, &request(None, "a.com"))
            .unwrap()
            .is_empty());
        let ok = cors_headers(&config, &request(Some("http://a.com:3000"), "a.com:3000")).unwrap();
        assert_eq!(
            ok.get_str("access-control-allow-origin"),
            Some("http://a.com:3000")
        );
        assert_eq!(ok.get_str("access-control-allow-credentials"), Some("true"));
        assert!(cors_headers(&config, &request(Some("https://A.com"), "a.com")).is_some());
        assert!(cors_headers(&config, &request(Some("http://b.com"), "a.com")).is_none());
        assert!(cors_headers(&config, &request(Some("http://a.com:1"), "a.com")).is_none());
        assert!(cors_headers(&config, &request(Some("null"), "a.com")).is_none());
        let proxied = request(Some("https://pub.com"), "internal:8000")
            .with_header("X-Forwarded-Host", "pub.com");
        assert!(cors_headers(&config, &proxied).is_some());
    }

    #[test]
    fn any_and_list() {
        let config = ServerConfig {
            cors_allowed_origins: CorsOrigins::Any,
            cors_credentials: false,
            ..ServerConfig::default()
        };
        let h = cors_headers(&config, &request(Some("http://x.org"), "a.com")).unwrap();
        assert_eq!(
            h.get_str("access-control-allow-origin"),
            Some("http://x.org")
        );
        assert!(!h.contains("access-control-allow-credentials"));
        let config = ServerConfig {
            cors_allowed_origins: CorsOrigins::List(vec!["http://x.org".into()]),
            ..ServerConfig::default()
        };
        assert!(cors_headers(&config, &request(Some("http://x.org"), "a.com")).is_some());
        assert!(cors_headers(&config, &request(Some("http://y.org"), "a.com")).is_none());
        assert!(cors_headers(&config, &request(Some("http://a.com"), "a.com")).is_none());
    }
}
