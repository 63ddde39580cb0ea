//! The server mounted in hyper 1.x or axum 0.8 as a `tower` service, the
//! way python-socketio's `ASGIApp` mounts in an ASGI application (feature
//! `tower`).
//!
//! [`SocketIoLayer`] wraps another service (an axum `Router`, any
//! `tower::Service` over `http::Request`): requests under the Socket.IO
//! path go to the server, then [`StaticFiles`] given to
//! [`crate::ServerBuilder::static_files`] are served, and everything else
//! falls through to the wrapped service. [`SocketIoService::new`] without
//! a wrapped service answers 404 there.
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! use axum::{routing::get, Router};
//! use socketio::{Server, SocketIoLayer};
//!
//! let server = Server::builder().build();
//! let app = Router::new()
//!     .route("/health", get(|| async { "ok" }))
//!     .layer(SocketIoLayer::new(server));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await
//! # }
//! ```
//!
//! # One code path with our own listener
//! The core parses HTTP/1 and WebSocket bytes itself, and holds every
//! Engine.IO rule (CORS, cookies, compression, limits, backpressure). So
//! rather than translating hyper's parsed request into the core's types
//! and the core's answers back (a second code path), each request is
//! written back to HTTP/1 bytes and handed to the server as a connection
//! of its own (an in-memory pipe, [`Server::handle_stream`]) exactly as an
//! accepted TCP stream; the core's HTTP/1 response is parsed back into a
//! hyper response. Hop-by-hop headers (`Connection`, framing) stay on
//! hyper's side.
//!
//! A WebSocket upgrade goes the same way: the core reads the upgrade
//! request and writes its `101 Switching Protocols`, whose headers
//! (`Sec-WebSocket-Accept`, the negotiated `permessage-deflate`, CORS, the
//! cookie) become hyper's 101 response, so what the client sees is what
//! the core decided. Once hyper has switched the connection
//! (`hyper::upgrade::on`), its bytes are copied to and from the pipe. A
//! request without hyper's upgrade handle (not served by hyper) is answered
//! 400 before the core sees it.
//!
//! Costs of the design: the request is serialized once more, and bytes
//! pass through the pipe (64 KiB each way), which adds that much slack to
//! the core's backpressure accounting; the rest is the same as on our own
//! listener.
//!
//! # Runtime
//! hyper and axum run on tokio, and so does this service (the upgrade copy
//! is a tokio task). The server itself may run on any runtime; our own
//! listener ([`Server::listen`]) remains the way to serve on async-std or
//! smol. HTTP/2 requests are served (polling); WebSocket over HTTP/2
//! (extended CONNECT) is not.
//!
//! # Peer address
//! hyper does not say who the peer is; a `std::net::SocketAddr` in the
//! request's extensions (set by a layer of yours) becomes the socket's
//! remote address.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{HeaderName, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, Either, Full, Limited};
use hyper_util::rt::TokioIo;
use socketio_core::engine;
use socketio_core::http::{self as core_http, ClientConn, ClientEvent, Limits, Method};
use socketio_driver::{BoxStream, EngineDriver};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio_util::compat::TokioAsyncReadCompatExt;

use super::static_files::{Conditions, StaticResponse};
use super::StaticFiles;
use crate::Server;

/// Bytes buffered by the in-memory pipe, each way.
const PIPE_CAPACITY: usize = 64 * 1024;

/// The response body of [`SocketIoService`]: ours, or the wrapped
/// service's.
pub type SocketIoBody<B> = Either<Full<Bytes>, B>;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What a mounted server is: where its connections go, and its options.
struct Mount {
    serve: Box<dyn Fn(BoxStream, Option<SocketAddr>) + Send + Sync>,
    path: String,
    max_payload: usize,
    response_deadline: Duration,
    static_files: Option<Arc<StaticFiles>>,
}

impl Mount {
    fn server(server: Server) -> Arc<Mount> {
        let web = server.web();
        Arc::new(Mount {
            path: web.path.clone(),
            max_payload: web.max_payload,
            response_deadline: web.response_deadline,
            static_files: web.static_files.clone(),
            serve: Box::new(move |stream, remote| server.handle_stream(stream, remote)),
        })
    }
}

/// A `tower::Layer` putting the server in front of a service (see the
/// [module documentation](self)).
#[derive(Clone)]
pub struct SocketIoLayer {
    mount: Arc<Mount>,
}

impl SocketIoLayer {
    /// Serve `server` (and its static files) in front of the wrapped
    /// service.
    pub fn new(server: Server) -> SocketIoLayer {
        SocketIoLayer {
            mount: Mount::server(server),
        }
    }

    /// Serve a raw Engine.IO server ([`EngineDriver`]) the same way;
    /// `config` is the one its [`engine::Server`] was built with (its path,
    /// `max_payload` and ping settings).
    pub fn engine_io(driver: EngineDriver, config: &engine::ServerConfig) -> SocketIoLayer {
        let web = super::WebConfig::new(config, None);
        SocketIoLayer {
            mount: Arc::new(Mount {
                path: web.path,
                max_payload: web.max_payload,
                response_deadline: web.response_deadline,
                static_files: None,
                serve: Box::new(move |stream, remote| driver.handle_stream(stream, remote)),
            }),
        }
    }
}

impl<S> ::tower::Layer<S> for SocketIoLayer {
    type Service = SocketIoService<S>;

    fn layer(&self, inner: S) -> SocketIoService<S> {
        SocketIoService {
            mount: self.mount.clone(),
            inner,
        }
    }
}

/// The server as a `tower::Service` over `http::Request`s: the Socket.IO
/// path, then static files, then the wrapped service `S`.
#[derive(Clone)]
pub struct SocketIoService<S = NotFound> {
    mount: Arc<Mount>,
    inner: S,
}

impl SocketIoService<NotFound> {
    /// The server alone: 404 outside its path and static files.
    pub fn new(server: Server) -> SocketIoService<NotFound> {
        SocketIoService {
            mount: Mount::server(server),
            inner: NotFound,
        }
    }
}

impl<S, ReqBody, ResBody> ::tower::Service<Request<ReqBody>> for SocketIoService<S>
where
    S: ::tower::Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Body + Send + 'static,
    ReqBody::Data: Send,
    ReqBody::Error: Into<BoxError>,
{
    type Response = Response<SocketIoBody<ResBody>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        // The instance polled ready serves this call; a clone waits for
        // the next one.
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        let mount = self.mount.clone();
        Box::pin(async move {
            if request.uri().path().starts_with(mount.path.as_str()) {
                return Ok(exchange(&mount, request).await.map(Either::Left));
            }
            if let Some(files) = mount.static_files.clone() {
                let conditions = Conditions {
                    if_none_match: header_str(&request, "if-none-match"),
                    if_modified_since: header_str(&request, "if-modified-since"),
                    authorization: header_str(&request, "authorization"),
                };
                let method = request.method().as_str().to_owned();
                let path = request.uri().path().to_owned();
                if let Some(response) = files.respond(&method, &path, conditions).await {
                    return Ok(static_response(response).map(Either::Left));
                }
            }
            let response = inner.call(request).await?;
            Ok(response.map(Either::Right))
        })
    }
}

/// The service behind a [`SocketIoService`] made with
/// [`SocketIoService::new`]: 404 for everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NotFound;

impl<B> ::tower::Service<Request<B>> for NotFound {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Response<Full<Bytes>>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<B>) -> Self::Future {
        std::future::ready(Ok(plain(StatusCode::NOT_FOUND, "Not Found")))
    }
}

fn header_str<B>(request: &Request<B>, name: &str) -> Option<String> {
    request
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=UTF-8"),
    );
    response
}

fn static_response(response: StaticResponse) -> Response<Full<Bytes>> {
    let mut out = Response::new(Full::new(response.body));
    *out.status_mut() = StatusCode::from_u16(response.status).unwrap_or(StatusCode::OK);
    for (name, value) in response.headers {
        if let Ok(value) = HeaderValue::try_from(value) {
            out.headers_mut().append(name, value);
        }
    }
    out
}

/// Headers that describe one hop (the connection, the framing): hyper's
/// business on its side, the core's on ours.
fn hop_by_hop(name: &str) -> bool {
    [
        "connection",
        "keep-alive",
        "content-length",
        "transfer-encoding",
        "upgrade",
    ]
    .iter()
    .any(|hop| name.eq_ignore_ascii_case(hop))
}

/// One request to the server over a pipe of its own; its response.
async fn exchange<B>(mount: &Mount, mut request: Request<B>) -> Response<Full<Bytes>>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let upgrading = request
        .headers()
        .get(http::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let on_upgrade = upgrading.then(|| {
        request
            .extensions_mut()
            .remove::<hyper::upgrade::OnUpgrade>()
    });
    if let Some(None) = on_upgrade {
        tracing::debug!("websocket upgrade without hyper's upgrade handle");
        return plain(StatusCode::BAD_REQUEST, "Bad request");
    }
    let remote = request.extensions().get::<SocketAddr>().copied();
    let (parts, body) = request.into_parts();
    let body = match Limited::new(body, mount.max_payload).collect().await {
        Ok(body) => body.to_bytes(),
        Err(e) => {
            tracing::debug!(error = %e, "request body refused");
            // The core's own answer to a body over its limit.
            return hyper_response(core_http::HttpError::BodyTooLarge.to_response(), false);
        }
    };
    let Some(head) = core_request(&parts, body, upgrading) else {
        return plain(StatusCode::BAD_REQUEST, "Bad request");
    };
    let limits = Limits {
        max_body_size: mount
            .max_payload
            .saturating_mul(2)
            .max(Limits::default().max_body_size),
        ..Limits::default()
    };
    let mut client = ClientConn::new(limits);
    let mut bytes = BytesMut::new();
    if let Err(e) = client.write_request(&head, &mut bytes) {
        tracing::debug!(error = %e, "request not representable in HTTP/1");
        return plain(StatusCode::BAD_REQUEST, "Bad request");
    }
    let (ours, theirs) = tokio::io::duplex(PIPE_CAPACITY);
    (mount.serve)(Box::new(theirs.compat()), remote);
    let (mut reader, mut writer) = tokio::io::split(ours);
    let write = async {
        // A failure means the core closed the connection: its answer, if
        // any, is read below.
        let _ = writer.write_all(&bytes).await;
    };
    let read = read_response(&mut client, &mut reader);
    let deadline = mount.response_deadline;
    let ((), answer) =
        futures_util::future::join(write, async { tokio::time::timeout(deadline, read).await })
            .await;
    match answer {
        Ok(Some(ClientEvent::Response(response))) => hyper_response(response, false),
        Ok(Some(ClientEvent::Upgrade { response, leftover })) => {
            let mut rest = BytesMut::from(&leftover[..]);
            rest.extend_from_slice(&client.take_buffered());
            if let Some(Some(on_upgrade)) = on_upgrade {
                let pipe = reader.unsplit(writer);
                tokio::spawn(relay(on_upgrade, pipe, rest.freeze()));
            }
            hyper_response(response, true)
        }
        Ok(_) => plain(StatusCode::BAD_GATEWAY, "Bad Gateway"),
        Err(_) => {
            tracing::warn!("no answer from the server within its deadline");
            plain(StatusCode::GATEWAY_TIMEOUT, "Gateway Timeout")
        }
    }
}

/// The request in the core's terms (HTTP/1.1, with `Host`).
fn core_request(
    parts: &http::request::Parts,
    body: Bytes,
    upgrading: bool,
) -> Option<core_http::Request> {
    let method = Method::from(parts.method.as_str());
    let target = parts.uri.path_and_query()?.as_str().to_owned();
    let mut request = core_http::Request::new(method, target).with_body(body);
    for (name, value) in &parts.headers {
        let keep = !hop_by_hop(name.as_str())
            || (upgrading && matches!(name.as_str(), "connection" | "upgrade"));
        if keep {
            request.headers.append(
                name.as_str().to_owned(),
                Bytes::copy_from_slice(value.as_bytes()),
            );
        }
    }
    if !request.headers.contains("host") {
        let host = parts.uri.authority().map_or("localhost", |a| a.as_str());
        request.headers.append("Host", host.to_owned());
    }
    Some(request)
}

/// Read until the core's response is complete (`None`: the connection
/// ended first, or the response was invalid).
async fn read_response(
    client: &mut ClientConn,
    reader: &mut tokio::io::ReadHalf<DuplexStream>,
) -> Option<ClientEvent> {
    let mut buf = vec![0u8; 16 * 1024];
    let mut ended = false;
    loop {
        match client.poll_response() {
            Ok(Some(ClientEvent::PeerClosed)) => return None,
            Ok(Some(event)) => return Some(event),
            Ok(None) if ended => return None,
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, "invalid response from the server");
                return None;
            }
        }
        match reader.read(&mut buf).await {
            Ok(0) | Err(_) => {
                client.feed_eof();
                ended = true;
            }
            Ok(n) => client.feed(&buf[..n]),
        }
    }
}

fn hyper_response(response: core_http::Response, upgrade: bool) -> Response<Full<Bytes>> {
    let mut out = Response::new(Full::new(response.body.clone()));
    *out.status_mut() = StatusCode::from_u16(response.status).unwrap_or(StatusCode::BAD_GATEWAY);
    for (name, value) in response.headers.iter() {
        // The 101 keeps `Connection: Upgrade` and `Upgrade: websocket`.
        if hop_by_hop(name)
            && !(upgrade && matches!(name.to_ascii_lowercase().as_str(), "connection" | "upgrade"))
        {
            continue;
        }
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::from_bytes(value))
        {
            out.headers_mut().append(name, value);
        }
    }
    out
}

/// Once hyper switched the connection: the core's first WebSocket bytes,
/// then bytes both ways until either side closes.
async fn relay(on_upgrade: hyper::upgrade::OnUpgrade, mut pipe: DuplexStream, first: Bytes) {
    let upgraded = match on_upgrade.await {
        Ok(upgraded) => upgraded,
        Err(e) => {
            tracing::debug!(error = %e, "upgrade failed");
            return;
        }
    };
    let mut io = TokioIo::new(upgraded);
    if io.write_all(&first).await.is_err() {
        return;
    }
    if let Err(e) = tokio::io::copy_bidirectional(&mut io, &mut pipe).await {
        tracing::debug!(error = %e, "websocket relay ended");
    }
}
