//! HTTP proxies, sans-IO: which proxy a connection goes through (the
//! `http_proxy` / `https_proxy` / `no_proxy` conventions of curl, Python's
//! `requests` and most command-line tools) and the `CONNECT` handshake that
//! opens a tunnel through it.
//!
//! Every connection, plain or TLS, polling or WebSocket, goes through a
//! `CONNECT` tunnel: the bytes inside are then exactly those of a direct
//! connection. (Python's `requests` and `aiohttp` send plain-`http://`
//! requests to the proxy in absolute form instead; `websocket-client`, and
//! the usual Node agents such as `https-proxy-agent` and undici's
//! `ProxyAgent`, tunnel everything as we do.)
//!
//! Nothing here reads the environment or a socket: [`proxy_for`] takes the
//! variable lookup as a function, [`connect_request`] returns the bytes to
//! write and [`ConnectResponse`] is fed the bytes read.

use std::fmt;
use std::net::IpAddr;

use base64::Engine as _;

/// Largest proxy response head accepted (status line and headers): a proxy
/// that sends more without ending its head is refused.
pub const MAX_CONNECT_RESPONSE_HEAD: usize = 8 * 1024;

/// Most headers in the proxy's response.
const MAX_CONNECT_RESPONSE_HEADERS: usize = 64;

/// Longest value accepted from an environment variable or option.
const MAX_SETTING_LEN: usize = 4096;

/// Why a proxy URL or a `no_proxy` list could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyUrlError {
    /// Where the URL came from (`https_proxy`, `the proxy option`, ...).
    pub source: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl fmt::Display for ProxyUrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid proxy URL in {}: {}", self.source, self.reason)
    }
}

impl std::error::Error for ProxyUrlError {}

/// An HTTP proxy: `http://[user:password@]host[:port]` (port 80 when not
/// given, as curl and `requests` do; a URL without a scheme is taken as
/// `http://`). Credentials are percent-decoded and sent as
/// `Proxy-Authorization: Basic`. The password is never displayed.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyUrl {
    host: String,
    port: u16,
    credentials: Option<(String, String)>,
}

impl ProxyUrl {
    /// Parse `url`; `source` names where it came from, for the error.
    pub fn parse(url: &str, source: &str) -> Result<ProxyUrl, ProxyUrlError> {
        let bad = |reason| ProxyUrlError {
            source: source.to_owned(),
            reason,
        };
        let url = url.trim();
        if url.len() > MAX_SETTING_LEN {
            return Err(bad("too long"));
        }
        let rest = match url.split_once("://") {
            Some((scheme, rest)) => match scheme.to_ascii_lowercase().as_str() {
                "http" => rest,
                "https" => return Err(bad("TLS to the proxy (https://) is not supported")),
                _ => return Err(bad("only http:// proxies are supported")),
            },
            None => url,
        };
        // A trailing path (`http://proxy:3128/`) means nothing for a proxy.
        let authority = rest.split('/').next().unwrap_or_default();
        let (credentials, hostport) = match authority.rsplit_once('@') {
            Some((userinfo, hostport)) => {
                let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
                let user = percent_decode(user).ok_or_else(|| bad("bad %-escape in the user"))?;
                let password =
                    percent_decode(password).ok_or_else(|| bad("bad %-escape in the password"))?;
                (Some((user, password)), hostport)
            }
            None => (None, authority),
        };
        let (host, port) = split_host_port(hostport).ok_or_else(|| bad("bad host or port"))?;
        if host.is_empty() {
            return Err(bad("no host"));
        }
        Ok(ProxyUrl {
            host: host.to_owned(),
            port: port.unwrap_or(80),
            credentials,
        })
    }

    /// The proxy's host name or address (IPv6 without brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The proxy's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether the URL carries credentials (sent as
    /// `Proxy-Authorization: Basic`).
    pub fn has_credentials(&self) -> bool {
        self.credentials.is_some()
    }

    /// The `Proxy-Authorization` header value, when the URL has
    /// credentials.
    fn authorization(&self) -> Option<String> {
        let (user, password) = self.credentials.as_ref()?;
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        Some(format!("Basic {encoded}"))
    }
}

impl fmt::Display for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("http://")?;
        if let Some((user, _)) = &self.credentials {
            write!(f, "{user}:***@")?;
        }
        write!(f, "{}", Authority(&self.host, self.port))
    }
}

impl fmt::Debug for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProxyUrl({self})")
    }
}

/// `host:port`, with IPv6 addresses in brackets.
struct Authority<'a>(&'a str, u16);

impl fmt::Display for Authority<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.contains(':') {
            write!(f, "[{}]:{}", self.0, self.1)
        } else {
            write!(f, "{}:{}", self.0, self.1)
        }
    }
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`.
fn split_host_port(s: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if let Some(v6) = s.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        match after {
            "" => (host, None),
            p => (host, Some(p.strip_prefix(':')?)),
        }
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => (h, Some(p)),
            // A bare IPv6 address (no_proxy entries are written so).
            Some(_) => (s, None),
            None => (s, None),
        }
    };
    let port = match port {
        None => None,
        Some(p) => Some(p.parse::<u16>().ok()?),
    };
    Some((host, port))
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// One `no_proxy` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
enum NoProxyEntry {
    /// `*`: no proxy for any host.
    All,
    /// A domain: the host itself and every subdomain (`example.com`,
    /// `.example.com` and `*.example.com` all mean that, as in curl).
    Domain(String, Option<u16>),
    /// An address, or a network in CIDR notation.
    Network(IpAddr, u8, Option<u16>),
}

/// The hosts to reach directly: a `no_proxy` list (comma or space
/// separated domains, IP addresses, CIDR networks, each optionally with
/// `:port`; `*` for every host).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NoProxy {
    entries: Vec<NoProxyEntry>,
}

impl NoProxy {
    /// Parse a `no_proxy` value; entries that mean nothing are skipped (as
    /// every tool does: one typo must not send everything via the proxy
    /// or nothing).
    pub fn parse(list: &str) -> NoProxy {
        let list = &list[..floor_char_boundary(list, MAX_SETTING_LEN)];
        let entries = list
            .split(|c: char| c == ',' || c.is_ascii_whitespace())
            .filter(|e| !e.is_empty())
            .filter_map(NoProxyEntry::parse)
            .collect();
        NoProxy { entries }
    }

    /// Whether `host` (a name, or an address without brackets) on `port`
    /// is to be reached directly.
    pub fn matches(&self, host: &str, port: u16) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let ip = host.parse::<IpAddr>().ok();
        self.entries.iter().any(|entry| match entry {
            NoProxyEntry::All => true,
            NoProxyEntry::Domain(domain, p) => {
                p.map_or(true, |p| p == port)
                    && (host == *domain
                        || host
                            .strip_suffix(domain.as_str())
                            .is_some_and(|sub| sub.ends_with('.')))
            }
            NoProxyEntry::Network(net, bits, p) => {
                p.map_or(true, |p| p == port) && ip.is_some_and(|ip| in_network(ip, *net, *bits))
            }
        })
    }
}

impl NoProxyEntry {
    fn parse(entry: &str) -> Option<NoProxyEntry> {
        if entry == "*" {
            return Some(NoProxyEntry::All);
        }
        let (entry, bits) = match entry.split_once('/') {
            Some((addr, bits)) => (addr, Some(bits.parse::<u8>().ok()?)),
            None => (entry, None),
        };
        let (host, port) = split_host_port(entry)?;
        if let Ok(ip) = host.parse::<IpAddr>() {
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let bits = bits.unwrap_or(max);
            return (bits <= max).then_some(NoProxyEntry::Network(ip, bits, port));
        }
        if bits.is_some() {
            return None;
        }
        let domain = host
            .trim_start_matches("*.")
            .trim_start_matches('.')
            .trim_end_matches('.')
            .to_ascii_lowercase();
        (!domain.is_empty()).then_some(NoProxyEntry::Domain(domain, port))
    }
}

fn in_network(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

fn floor_char_boundary(s: &str, at: usize) -> usize {
    let mut at = at.min(s.len());
    while !s.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// The proxy for a connection to `host:port` (`secure`: `https://` or
/// `wss://`), from the environment as `lookup` reads it: `https_proxy` for
/// secure targets, `http_proxy` for the others (lower case first, then
/// upper case, as curl and `requests` read them; an empty value counts as
/// unset), unless `no_proxy` (or `NO_PROXY`) lists the host. `None`: connect
/// directly.
pub fn proxy_for(
    secure: bool,
    host: &str,
    port: u16,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Option<ProxyUrl>, ProxyUrlError> {
    let read = |name: &str| {
        let upper = name.to_ascii_uppercase();
        [name.to_owned(), upper].into_iter().find_map(|var| {
            lookup(&var)
                .filter(|v| !v.trim().is_empty())
                .map(|v| (var, v))
        })
    };
    let Some((var, url)) = read(if secure { "https_proxy" } else { "http_proxy" }) else {
        return Ok(None);
    };
    if let Some((_, list)) = read("no_proxy") {
        if NoProxy::parse(&list).matches(host, port) {
            return Ok(None);
        }
    }
    ProxyUrl::parse(&url, &var).map(Some)
}

/// The `CONNECT` request that asks `proxy` for a tunnel to `host:port`,
/// with `Proxy-Authorization: Basic` when the proxy URL has credentials.
pub fn connect_request(proxy: &ProxyUrl, host: &str, port: u16) -> Vec<u8> {
    let target = Authority(host, port);
    let mut request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
    if let Some(authorization) = proxy.authorization() {
        request.push_str("Proxy-Authorization: ");
        request.push_str(&authorization);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    request.into_bytes()
}

/// Why a proxy did not open the tunnel.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TunnelError {
    /// The proxy answered with a status other than 2xx (407: credentials
    /// missing or wrong; 403: the target is not allowed; 502/503/504: the
    /// proxy could not reach the target).
    Refused {
        /// The status code.
        status: u16,
        /// The reason phrase the proxy gave.
        reason: String,
    },
    /// The response head grew past [`MAX_CONNECT_RESPONSE_HEAD`] bytes or
    /// its header count past the limit.
    HeadTooLarge,
    /// The response is not HTTP.
    Malformed,
    /// The proxy sent bytes after its `200` before the client spoke (a
    /// proxy that does not tunnel).
    DataAfterResponse,
    /// The proxy closed the connection before answering.
    Closed,
}

impl fmt::Display for TunnelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TunnelError::Refused { status, reason } => write!(f, "refused: {status} {reason}"),
            TunnelError::HeadTooLarge => write!(
                f,
                "response head larger than {MAX_CONNECT_RESPONSE_HEAD} bytes or with too many headers"
            ),
            TunnelError::Malformed => f.write_str("malformed response (not HTTP)"),
            TunnelError::DataAfterResponse => f.write_str("sent data after its response"),
            TunnelError::Closed => f.write_str("closed the connection before answering"),
        }
    }
}

impl std::error::Error for TunnelError {}

/// The proxy's answer to [`connect_request`], fed as it arrives.
#[derive(Debug, Default)]
pub struct ConnectResponse {
    head: Vec<u8>,
}

impl ConnectResponse {
    /// Nothing received yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feed bytes read from the proxy: `Ok(true)` once the tunnel is open
    /// (a 2xx status), `Ok(false)` while the head is incomplete.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<bool, TunnelError> {
        self.head.extend_from_slice(bytes);
        let mut headers = [httparse::EMPTY_HEADER; MAX_CONNECT_RESPONSE_HEADERS];
        let mut response = httparse::Response::new(&mut headers);
        let parsed = match response.parse(&self.head) {
            Ok(parsed) => parsed,
            Err(httparse::Error::TooManyHeaders) => return Err(TunnelError::HeadTooLarge),
            Err(_) => return Err(TunnelError::Malformed),
        };
        let end = match parsed {
            httparse::Status::Partial if self.head.len() >= MAX_CONNECT_RESPONSE_HEAD => {
                return Err(TunnelError::HeadTooLarge)
            }
            httparse::Status::Partial => return Ok(false),
            httparse::Status::Complete(end) => end,
        };
        if end > MAX_CONNECT_RESPONSE_HEAD {
            return Err(TunnelError::HeadTooLarge);
        }
        let status = response.code.unwrap_or(0);
        if !(200..300).contains(&status) {
            let reason = response.reason.unwrap_or_default();
            let reason = reason[..floor_char_boundary(reason, 200)].to_owned();
            return Err(TunnelError::Refused { status, reason });
        }
        if end < self.head.len() {
            return Err(TunnelError::DataAfterResponse);
        }
        self.head = Vec::new();
        Ok(true)
    }

    /// The proxy closed the connection: the head was never complete.
    pub fn eof(&self) -> TunnelError {
        TunnelError::Closed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn proxy_urls() {
        let p = ProxyUrl::parse("http://u%40x:p%3Aw@proxy.example:3128/", "test").unwrap();
        assert_eq!((p.host(), p.port()), ("proxy.example", 3128));
        assert_eq!(p.authorization().unwrap(), "Basic dUB4OnA6dw==");
        assert_eq!(p.to_string(), "http://u@x:***@proxy.example:3128");
        let p = ProxyUrl::parse("[::1]", "test").unwrap();
        assert_eq!(
            (p.host(), p.port(), p.has_credentials()),
            ("::1", 80, false)
        );
        assert_eq!(p.to_string(), "http://[::1]:80");
        for bad in [
            "https://p:1",
            "socks5://p:1",
            "http://",
            "http://p:x",
            "http://u:%zz@p",
        ] {
            assert!(ProxyUrl::parse(bad, "test").is_err(), "{bad}");
        }
    }

    #[test]
    fn environment_selection() {
        let vars = [
            ("http_proxy", "http://lower:1"),
            ("HTTP_PROXY", "http://upper:2"),
            ("HTTPS_PROXY", "upper-secure:3"),
            ("no_proxy", "internal.example, 10.0.0.0/8,.corp,[::1]:8080"),
        ];
        let lookup = env(&vars);
        let via = |secure, host, port| {
            proxy_for(secure, host, port, &lookup)
                .unwrap()
                .map(|p| p.host().to_owned())
        };
        assert_eq!(via(false, "example.com", 80).as_deref(), Some("lower"));
        assert_eq!(
            via(true, "example.com", 443).as_deref(),
            Some("upper-secure")
        );
        assert_eq!(via(false, "internal.example", 80), None);
        assert_eq!(via(false, "a.internal.example", 80), None);
        assert_eq!(
            via(false, "xinternal.example", 80).as_deref(),
            Some("lower")
        );
        assert_eq!(via(false, "10.1.2.3", 80), None);
        assert_eq!(via(false, "11.1.2.3", 80).as_deref(), Some("lower"));
        assert_eq!(via(false, "host.corp", 80), None);
        assert_eq!(via(false, "::1", 8080), None);
        assert_eq!(via(false, "::1", 8081).as_deref(), Some("lower"));

        let empty = [("http_proxy", ""), ("HTTP_PROXY", "http://upper:2")];
        assert_eq!(
            proxy_for(false, "h", 80, env(&empty))
                .unwrap()
                .unwrap()
                .host(),
            "upper"
        );
        let all = [("http_proxy", "p:1"), ("NO_PROXY", "*")];
        assert_eq!(proxy_for(false, "h", 80, env(&all)).unwrap(), None);
        let bad = [("https_proxy", "socks5://p:1")];
        let err = proxy_for(true, "h", 443, env(&bad)).unwrap_err();
        assert_eq!(err.source, "https_proxy");
        assert_eq!(proxy_for(false, "h", 80, env(&bad)).unwrap(), None);
    }

    #[test]
    fn connect_request_carries_credentials() {
        let p = ProxyUrl::parse("http://alice:s3cret@p:1", "test").unwrap();
        let request = String::from_utf8(connect_request(&p, "::1", 443)).unwrap();
        assert_eq!(
            request,
            "CONNECT [::1]:443 HTTP/1.1\r\nHost: [::1]:443\r\n\
             Proxy-Authorization: Basic YWxpY2U6czNjcmV0\r\n\r\n"
        );
    }

    #[test]
    fn connect_responses() {
        let mut r = ConnectResponse::new();
        assert_eq!(r.feed(b"HTTP/1.0 200 Conn"), Ok(false));
        assert_eq!(r.feed(b"ection established\r\n\r\n"), Ok(true));

        let mut r = ConnectResponse::new();
        let refused = r.feed(b"HTTP/1.1 407 Proxy Authentication Required\r\nA: b\r\n\r\nbody");
        assert_eq!(
            refused,
            Err(TunnelError::Refused {
                status: 407,
                reason: "Proxy Authentication Required".into()
            })
        );
        assert_eq!(
            ConnectResponse::new().feed(b"HTTP/1.1 200 OK\r\n\r\nextra"),
            Err(TunnelError::DataAfterResponse)
        );
        assert_eq!(
            ConnectResponse::new().feed(b"SSH-2.0-OpenSSH\r\n"),
            Err(TunnelError::Malformed)
        );

        // An endless head is refused once past the limit, not buffered.
        let mut r = ConnectResponse::new();
        r.feed(b"HTTP/1.1 200 OK\r\n").unwrap();
        let line = b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
        let outcome = (0..1000).find_map(|_| r.feed(line).err());
        assert_eq!(outcome, Some(TunnelError::HeadTooLarge));
        assert!(r.head.len() < MAX_CONNECT_RESPONSE_HEAD + 2 * line.len());
    }
}
