//! What the client evaluates again before every connection attempt: the
//! URL, the auth object and headers given as closures (python-socketio's
//! callables), so a token refreshed meanwhile is the one sent.

use std::sync::Arc;

use socketio_core::endpoint::SessionHook;
use socketio_core::engine;
use socketio_core::parser::AnyParser;
use socketio_core::socket;
use socketio_core::Value;
use socketio_driver::ClientTarget;

use super::url::{parse_url, Url};
use crate::error::Result;

/// A value made again at every connection attempt.
pub(super) type Source<T> = Arc<dyn Fn() -> T + Send + Sync>;

/// The closures and what they add to.
pub(super) struct Refresh {
    pub(super) url: Source<String>,
    pub(super) auth: Option<Source<Option<Value>>>,
    pub(super) headers: Option<Source<Vec<(String, String)>>>,
    /// Headers and query given once, kept before the closures' own.
    pub(super) base_headers: Vec<(String, String)>,
    pub(super) base_query: Vec<(String, String)>,
    /// The namespaces that take the client's auth (not one of their own).
    pub(super) global_auth: Vec<String>,
    /// The proxy dialed instead of the URL's host, when going through one
    /// (its tunnel keeps the first URL's host and port).
    pub(super) proxy_address: Option<(String, u16)>,
    /// The TLS configuration, for `https://` URLs.
    #[cfg(feature = "tls")]
    pub(super) tls: Option<Arc<socketio_driver::tls::rustls::ClientConfig>>,
}

impl Refresh {
    /// Where `url` points the driver: its host, or the proxy.
    pub(super) fn target(&self, url: &Url) -> Result<ClientTarget> {
        let (host, port) = match &self.proxy_address {
            Some((host, port)) => (host.clone(), *port),
            None => (url.host.clone(), url.port),
        };
        Ok(ClientTarget {
            host,
            port,
            #[cfg(feature = "tls")]
            tls: match &self.tls {
                Some(config) if url.secure => Some(socketio_driver::tls::ClientTls::new(
                    config.clone(),
                    &url.host,
                )?),
                _ => None,
            },
        })
    }

    /// The Engine.IO options `url` sets: the `Host` header and the query.
    pub(super) fn apply_url(&self, config: &mut engine::ClientConfig, url: &Url) {
        config.host = url.host_header.clone();
        config.query.clone_from(&self.base_query);
        config.query.extend(url.query.iter().cloned());
    }

    /// The hook the endpoint runs before each session: evaluates the
    /// closures and applies what they give.
    pub(super) fn into_hook(
        self,
        set_target: impl Fn(ClientTarget) + Send + Sync + 'static,
    ) -> SessionHook<AnyParser> {
        Box::new(
            move |config: &mut engine::ClientConfig, client: &mut socket::Client<AnyParser>| {
                if let Some(auth) = &self.auth {
                    let auth = auth();
                    for nsp in &self.global_auth {
                        // A namespace given up meanwhile is not wanted: fine.
                        let _ = client.set_auth(nsp, auth.clone());
                    }
                }
                if let Some(headers) = &self.headers {
                    config.headers.clone_from(&self.base_headers);
                    config.headers.extend(headers());
                }
                let text = (self.url)();
                match parse_url(&text).and_then(|url| Ok((self.target(&url)?, url))) {
                    Ok((target, url)) => {
                        self.apply_url(config, &url);
                        set_target(target);
                    }
                    Err(error) => {
                        tracing::warn!(%error, "the URL made for this connection is not valid: keeping the previous one")
                    }
                }
            },
        )
    }
}
