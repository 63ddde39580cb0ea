//! Static files on our own listener: a [`Router`] sends connections for
//! the Socket.IO path to the server and the others here, where one request
//! is read, answered from [`StaticFiles`] (or 404) and the connection
//! closed, so that the client's next request is routed afresh.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use futures_util::future::{select, Either};
use futures_util::io::{AsyncReadExt, AsyncWriteExt};
use socketio_core::http::{Limits, Request, Response, ServerConn, ServerEvent};
use socketio_core::parser::AnyParser;
use socketio_driver::{BoxFuture, BoxStream, Listener, Router, Runtime, ServerDriver};

use super::static_files::{Conditions, StaticFiles, StaticResponse};

/// How long a connection may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest request body read (static files take none).
const MAX_BODY: usize = 64 * 1024;

/// Serve `listener` until `stop`: the Socket.IO path (`path`) to `driver`,
/// everything else to `files`.
pub(crate) fn serve_with_static_files(
    driver: ServerDriver<AnyParser>,
    files: Arc<StaticFiles>,
    path: &str,
    listener: Box<dyn Listener>,
    stop: BoxFuture<'static, ()>,
) {
    let runtime = driver.runtime().clone();
    let spawner = runtime.clone();
    Router::new(runtime.clone())
        .route(path, move |stream, remote| {
            driver.handle_stream(stream, remote)
        })
        .fallback(move |stream, _| {
            let task = serve_static_connection(files.clone(), spawner.clone(), stream);
            spawner.spawn(Box::pin(task));
        })
        .serve_until(listener, stop);
}

/// Answer one request on `stream` from `files`, then close it.
async fn serve_static_connection(
    files: Arc<StaticFiles>,
    runtime: Arc<dyn Runtime>,
    mut stream: BoxStream,
) {
    let mut conn = ServerConn::new(Limits {
        max_body_size: MAX_BODY,
        ..Limits::default()
    });
    let timeout = runtime.sleep_until(Instant::now() + REQUEST_TIMEOUT);
    let read = Box::pin(read_request(&mut conn, &mut stream));
    let read = match select(read, timeout).await {
        Either::Left((read, _)) => read,
        Either::Right(_) => return,
    };
    let request = match read {
        Ok(Some(request)) => request,
        Ok(None) => return,
        Err(response) => return write_and_close(&mut conn, &mut stream, &response).await,
    };
    let conditions = Conditions {
        if_none_match: request.headers.get_str("if-none-match").map(str::to_owned),
        if_modified_since: request
            .headers
            .get_str("if-modified-since")
            .map(str::to_owned),
        authorization: request.headers.get_str("authorization").map(str::to_owned),
    };
    let response = files
        .respond(request.method.as_str(), request.path(), conditions)
        .await
        .map(to_core_response)
        .unwrap_or_else(not_found);
    write_and_close(&mut conn, &mut stream, &response).await;
}

/// The first request on the connection; `Err` is the response to an
/// invalid one, `None` a connection closed first.
async fn read_request(
    conn: &mut ServerConn,
    stream: &mut BoxStream,
) -> Result<Option<Request>, Response> {
    let mut buf = [0u8; 4096];
    loop {
        match conn.poll_request() {
            Ok(Some(ServerEvent::Request(request))) => return Ok(Some(request)),
            // Not an upgrade we serve: answered (and closed) like any
            // other request.
            Ok(Some(ServerEvent::Upgrade { request, .. })) => return Ok(Some(request)),
            Ok(Some(ServerEvent::PeerClosed)) => return Ok(None),
            Ok(None) => {}
            Err(e) => return Err(e.to_response()),
        }
        match stream.read(&mut buf).await {
            Ok(0) => conn.feed_eof(),
            Ok(n) => conn.feed(&buf[..n]),
            Err(_) => return Ok(None),
        }
    }
}

async fn write_and_close(conn: &mut ServerConn, stream: &mut BoxStream, response: &Response) {
    let mut out = BytesMut::new();
    if let Err(e) = conn.write_response(response, &mut out) {
        tracing::warn!(error = %e, "static response not written");
        return;
    }
    let _ = stream.write_all(&out).await;
    let _ = stream.close().await;
}

fn to_core_response(response: StaticResponse) -> Response {
    let mut out = Response::new(response.status).with_header("Connection", "close");
    for (name, value) in response.headers {
        out.headers.append(name, value);
    }
    out.with_body(response.body)
}

fn not_found() -> Response {
    Response::new(404)
        .with_header("Connection", "close")
        .with_header("Content-Type", "text/plain; charset=UTF-8")
        .with_body("Not Found")
}
