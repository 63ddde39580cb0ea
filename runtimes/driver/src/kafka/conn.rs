//! One connection to a Kafka broker: requests answered in order, each
//! under a deadline.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use futures_util::{AsyncReadExt, AsyncWriteExt};
use socketio_core::cluster::kafka::{
    decode_response, encode_request, error_code, FrameDecoder, Request, Response,
};

use super::config::KafkaConfig;
use super::KafkaBusError;
use crate::bus::{connect_host, with_deadline};
use crate::runtime::{BoxStream, Runtime};

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
        let deadline = Instant::now() + config.bus.connect_timeout;
        with_deadline(runtime, deadline, "connecting to Kafka", async {
            let stream = connect_host::<KafkaBusError>(runtime, host, port).await?;
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
        let deadline = Instant::now() + self.config.bus.io_timeout + wait;
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
