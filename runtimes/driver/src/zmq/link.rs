//! Opening one ZMTP link to the broker: TCP, greetings, `READY`s. The
//! caller runs it under one deadline.

use std::sync::Arc;

use futures_util::{AsyncReadExt, AsyncWriteExt};
use socketio_core::cluster::zmtp::{SocketType, ZmtpEvent, ZmtpLimits, ZmtpSocket};

use super::ZmqError;
use crate::bus::connect_host;
use crate::runtime::{BoxStream, Runtime};

/// A link whose handshake is done.
pub(crate) struct Link {
    pub stream: BoxStream,
    pub socket: ZmtpSocket,
    /// Events that came with the handshake's last bytes.
    pub early: Vec<ZmtpEvent>,
}

/// Connect to `host:port` as a `kind` socket (a SUB subscribes to
/// everything, as python's does) and wait for the broker's `READY`.
pub(crate) async fn open(
    runtime: &Arc<dyn Runtime>,
    host: &str,
    port: u16,
    kind: SocketType,
    limits: ZmtpLimits,
) -> Result<Link, ZmqError> {
    let mut stream = connect_host::<ZmqError>(runtime, host, port).await?;
    let mut socket = ZmtpSocket::new(kind, None, limits);
    if kind == SocketType::Sub {
        socket.subscribe(b"");
    }
    let mut early = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        while let Some(bytes) = socket.poll_transmit() {
            stream.write_all(&bytes).await.map_err(ZmqError::io)?;
        }
        stream.flush().await.map_err(ZmqError::io)?;
        while let Some(event) = socket.poll_event() {
            early.push(event);
        }
        if socket.is_open() {
            // The READY is the first event: the rest is the caller's.
            early.retain(|e| !matches!(e, ZmtpEvent::Ready { .. }));
            return Ok(Link {
                stream,
                socket,
                early,
            });
        }
        let n = stream.read(&mut buf).await.map_err(ZmqError::io)?;
        if n == 0 {
            return Err(ZmqError::Closed);
        }
        socket.handle_bytes(&buf[..n])?;
    }
}
