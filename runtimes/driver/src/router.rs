//! Several servers on one port: each connection goes to the server whose
//! path its first request names.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_io::{AsyncRead, AsyncWrite};
use futures_util::future::{select, Either};
use futures_util::io::{AsyncReadExt, AsyncWriteExt};

use crate::runtime::{BoxFuture, BoxStream, Listener, Runtime};

/// The longest first request line read to find the path.
const MAX_REQUEST_LINE: usize = 8 * 1024;
/// How long a new connection may take to send its request line.
const REQUEST_LINE_TIMEOUT: Duration = Duration::from_secs(10);

type Handler = Arc<dyn Fn(BoxStream, Option<SocketAddr>) + Send + Sync>;

/// Sends each accepted connection to the handler of the path prefix its
/// first request names (for example `/engine.io/` to an
/// [`crate::EngineDriver`] and `/socket.io/` to a [`crate::ServerDriver`]).
/// Routing is per connection: Engine.IO clients open separate connections
/// per server, and a keep-alive connection that later asks for another
/// path gets that first server's answer (an error). Connections naming no
/// known path go to the [fallback](Router::fallback), or get 404.
#[derive(Clone)]
pub struct Router {
    runtime: Arc<dyn Runtime>,
    routes: Vec<(String, Handler)>,
    fallback: Option<Handler>,
}

impl Router {
    /// A router with no routes.
    pub fn new(runtime: Arc<dyn Runtime>) -> Router {
        Router {
            runtime,
            routes: Vec::new(),
            fallback: None,
        }
    }

    /// Send connections whose first request's path starts with `prefix`
    /// (or is `prefix` without its trailing `/`) to `handler`, which
    /// gets the stream, first request included. The first matching route
    /// wins.
    pub fn route(
        mut self,
        prefix: &str,
        handler: impl Fn(BoxStream, Option<SocketAddr>) + Send + Sync + 'static,
    ) -> Router {
        self.routes.push((prefix.to_owned(), Arc::new(handler)));
        self
    }

    /// Send connections that match no route to `handler` (first request
    /// included) instead of answering them 404: static files, another web
    /// application. It gets the connection, so it should close it after
    /// its answer (a keep-alive connection would keep its route).
    pub fn fallback(
        mut self,
        handler: impl Fn(BoxStream, Option<SocketAddr>) + Send + Sync + 'static,
    ) -> Router {
        self.fallback = Some(Arc::new(handler));
        self
    }

    /// Serve `listener` in the background, for as long as the runtime
    /// runs.
    pub fn serve(self, listener: Box<dyn Listener>) {
        self.serve_until(listener, Box::pin(std::future::pending()))
    }

    /// Serve `listener` in the background until `stop` completes (the
    /// listener is dropped then; accepted connections go on).
    pub fn serve_until(self, mut listener: Box<dyn Listener>, stop: BoxFuture<'static, ()>) {
        let runtime = self.runtime.clone();
        runtime.spawn(Box::pin(async move {
            let mut stop = stop;
            loop {
                match select(listener.accept(), stop.as_mut()).await {
                    Either::Left((Ok((stream, remote)), _)) => {
                        self.handle_stream(stream, Some(remote))
                    }
                    Either::Left((Err(e), _)) => {
                        tracing::warn!(error = %e, "accept failed");
                        let at = Instant::now() + Duration::from_millis(50);
                        self.runtime.sleep_until(at).await;
                    }
                    Either::Right(_) => return,
                }
            }
        }));
    }

    /// Route one accepted stream (in the background: its request line is
    /// read first).
    pub fn handle_stream(&self, stream: BoxStream, remote: Option<SocketAddr>) {
        let router = self.clone();
        let deadline = Instant::now() + REQUEST_LINE_TIMEOUT;
        let timeout = self.runtime.sleep_until(deadline);
        self.runtime.spawn(Box::pin(async move {
            let read = Box::pin(read_request_line(stream));
            let (mut stream, head) = match select(read, timeout).await {
                Either::Left((Ok(read), _)) => read,
                Either::Left((Err(e), _)) => {
                    tracing::debug!(error = %e, "no request line");
                    return;
                }
                Either::Right(_) => return,
            };
            let path = request_path(&head);
            let route = path.and_then(|path| {
                router.routes.iter().find(|(prefix, _)| {
                    path.starts_with(prefix.as_str()) || path == prefix.trim_end_matches('/')
                })
            });
            let handler = route.map(|(_, handler)| handler).or(router.fallback.as_ref());
            match handler {
                Some(handler) => handler(
                    Box::new(Prefixed {
                        head,
                        at: 0,
                        inner: stream,
                    }),
                    remote,
                ),
                None => {
                    let _ = stream
                        .write_all(
                            b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                        )
                        .await;
                    let _ = stream.close().await;
                }
            }
        }));
    }
}

/// Read until the end of the first line (or [`MAX_REQUEST_LINE`] bytes);
/// returns the stream and everything read.
async fn read_request_line(mut stream: BoxStream) -> io::Result<(BoxStream, Vec<u8>)> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.contains(&b'\n') && head.len() < MAX_REQUEST_LINE {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        head.extend_from_slice(&buf[..n]);
    }
    Ok((stream, head))
}

/// The path of the request line at the start of `head` (the target up to
/// its query).
fn request_path(head: &[u8]) -> Option<&str> {
    let line = head.split(|&b| b == b'\n').next()?;
    let target = line.split(|&b| b == b' ').nth(1)?;
    let path = target.split(|&b| b == b'?').next()?;
    std::str::from_utf8(path).ok()
}

/// A stream whose first bytes, already read, are given back first.
struct Prefixed {
    head: Vec<u8>,
    at: usize,
    inner: BoxStream,
}

impl AsyncRead for Prefixed {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.at < this.head.len() {
            let n = buf.len().min(this.head.len() - this.at);
            buf[..n].copy_from_slice(&this.head[this.at..this.at + n]);
            this.at += n;
            if this.at == this.head.len() {
                this.head = Vec::new();
                this.at = 0;
            }
            return Poll::Ready(Ok(n));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Prefixed {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_paths() {
        assert_eq!(
            request_path(b"GET /engine.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x"),
            Some("/engine.io/")
        );
        assert_eq!(
            request_path(b"POST /socket.io/ HTTP/1.1\r\n"),
            Some("/socket.io/")
        );
        assert_eq!(request_path(b"GET"), None);
        assert_eq!(request_path(b"GET /\xff HTTP/1.1\r\n"), None);
    }

    #[test]
    fn prefixed_gives_the_head_back_first() {
        let inner: BoxStream = Box::new(futures_util::io::Cursor::new(b" world".to_vec()));
        let mut stream = Prefixed {
            head: b"hello".to_vec(),
            at: 0,
            inner,
        };
        // Every read of a cursor is ready at once.
        let mut cx = Context::from_waker(futures_util::task::noop_waker_ref());
        let mut out = Vec::new();
        let mut buf = [0u8; 3];
        loop {
            match Pin::new(&mut stream).poll_read(&mut cx, &mut buf) {
                Poll::Ready(Ok(0)) => break,
                Poll::Ready(Ok(n)) => out.extend_from_slice(&buf[..n]),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(out, b"hello world");
    }
}
