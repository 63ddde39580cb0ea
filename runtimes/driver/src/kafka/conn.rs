//! One connection to a Kafka broker: requests answered in order, each
//! under a deadline.

use std::future::Future;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use futures_util::future::{select, Either};
use futures_util::{AsyncReadExt, AsyncWriteExt};
use socketio_core::cluster::kafka::{
    decode_response, encode_request, error_code, FrameDecoder, Request, Response,
};

use super::config::KafkaConfig;
use super::KafkaBusError;
use crate::runtime::{BoxStream, Runtime};

/// `fut`, or [`KafkaBusError::Timeout`] at `deadline`.
pub(crate) async fn with_deadline<T>(
    runtime: &Arc<dyn Runtime>,
    deadline: Instant,
    what: &'static str,
    fut: impl Future<Output = Result<T, KafkaBusError>>,
) -> Result<T, KafkaBusError> {
    let fut = std::pin::pin!(fut);
    match select(fut, runtime.sleep_until(deadline)).await {
        Either::Left((result, _)) => result,
        Either::Right(_) => Err(KafkaBusError::Timeout(what)),
    }
}

/// Resolve a host name off the async threads: the system resolver blocks.
async fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, KafkaBusError> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let (tx, rx) = futures_channel::oneshot::channel();
    let name = host.to_string();
    std::thread::Builder::new()
        .name("socketio-kafka-dns".into())
        .spawn(move || {
            let _ = tx.send((name.as_str(), port).to_socket_addrs().map(Vec::from_iter));
        })
        .map_err(KafkaBusError::io)?;
    match rx.await {
        Ok(Ok(addrs)) if !addrs.is_empty() => Ok(addrs),
        Ok(Ok(_)) => Err(KafkaBusError::Dns(format!("{host}: no address"))),
        Ok(Err(e)) => Err(KafkaBusError::Dns(format!("{host}: {e}"))),
        Err(_) => Err(KafkaBusError::Dns(format!("{host}: resolver thread died"))),
    }
}

/// A connected broker whose `ApiVersions` accept every request used.
pub(crate) struct Conn {
    runtime: Arc<dyn Runtime>,
    config: Arc<KafkaConfig>,
    stream: BoxStream,
    decoder: FrameDecoder,
    next_id: i32,
    /// `host:port`, for logs.
    pub(crate) addr: String,
}

impl Conn {
    /// Connect to `host:port` and check its versions, under the connect
    /// timeout.
    pub(crate) async fn open(
        runtime: &Arc<dyn Runtime>,
        config: &Arc<KafkaConfig>,
        host: &str,
        port: u16,
    ) -> Result<Conn, KafkaBusError> {
        let deadline = Instant::now() + config.connect_timeout;
        with_deadline(runtime, deadline, "connecting to Kafka", async {
            let mut last = None;
            let mut stream = None;
            for addr in resolve(host, port).await? {
                match runtime.connect(addr).await {
                    Ok(s) => {
                        stream = Some(s);
                        break;
                    }
                    Err(e) => last = Some(e),
                }
            }
            let stream = match (stream, last) {
                (Some(s), _) => s,
                (None, Some(e)) => return Err(KafkaBusError::io(e)),
                (None, None) => return Err(KafkaBusError::Dns(format!("{host}: no address"))),
            };
            let mut conn = Conn {
                runtime: runtime.clone(),
                config: config.clone(),
                stream,
                decoder: FrameDecoder::new(config.limits),
                next_id: 0,
                addr: format!("{host}:{port}"),
            };
            match conn.request(&Request::ApiVersions, Duration::ZERO).await? {
                Response::ApiVersions(v) if v.error_code != error_code::NONE => {
                    Err(KafkaBusError::Unsupported(format!(
                        "ApiVersions v0 refused (error {})",
                        v.error_code
                    )))
                }
                Response::ApiVersions(v) => match v.missing() {
                    Some(key) => Err(KafkaBusError::Unsupported(format!(
                        "{key:?} v{} not accepted",
                        key.version()
                    ))),
                    None => Ok(conn),
                },
                _ => Err(KafkaBusError::Unsupported("ApiVersions answered".into())),
            }
        })
        .await
    }

    /// Connect to the first bootstrap broker that answers.
    pub(crate) async fn bootstrap(
        runtime: &Arc<dyn Runtime>,
        config: &Arc<KafkaConfig>,
    ) -> Result<Conn, KafkaBusError> {
        let mut last = KafkaBusError::Dns("no bootstrap broker".into());
        for (host, port) in &config.bootstrap {
            match Conn::open(runtime, config, host, *port).await {
                Ok(c) => return Ok(c),
                Err(e) => {
                    tracing::debug!(broker = %format!("{host}:{port}"), "Kafka bootstrap broker: {e}");
                    last = e;
                }
            }
        }
        Err(last)
    }

    /// Send `request` and read its response, within the I/O timeout plus
    /// `wait` (a fetch's time on the broker).
    pub(crate) async fn request(
        &mut self,
        request: &Request,
        wait: Duration,
    ) -> Result<Response, KafkaBusError> {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1) & i32::MAX;
        let mut out = BytesMut::new();
        encode_request(&mut out, id, &self.config.client_id, request)?;
        let deadline = Instant::now() + self.config.io_timeout + wait;
        let runtime = self.runtime.clone();
        let api = request.api_key();
        with_deadline(&runtime, deadline, "Kafka request", async {
            self.stream
                .write_all(&out)
                .await
                .map_err(KafkaBusError::io)?;
            self.stream.flush().await.map_err(KafkaBusError::io)?;
            let mut buf = vec![0u8; 64 << 10];
            let frame = loop {
                if let Some(frame) = self.decoder.next_frame()? {
                    break frame;
                }
                let n = self
                    .stream
                    .read(&mut buf)
                    .await
                    .map_err(KafkaBusError::io)?;
                if n == 0 {
                    return Err(KafkaBusError::Closed);
                }
                self.decoder.feed(&buf[..n]);
            };
            let (got, response) = decode_response(api, &frame, &self.config.limits)?;
            if got != id {
                return Err(KafkaBusError::Correlation { expected: id, got });
            }
            Ok(response)
        })
        .await
    }
}
