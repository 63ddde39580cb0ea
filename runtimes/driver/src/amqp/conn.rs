//! Opening one AMQP connection: TCP (or TLS), the connection handshake
//! (start, PLAIN login, tune, open), then channel 1 with publisher
//! confirms and a prefetch bound. The caller runs it under one deadline.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures_util::{AsyncReadExt, AsyncWriteExt};
use socketio_core::cluster::amqp::{
    encode_method, encode_protocol_header, AmqpDecoder, ClientMethod, FieldTable, FieldValue,
    Incoming, Method, FRAME_MIN_SIZE,
};

use super::config::AmqpConfig;
use super::AmqpError;
use crate::bus::connect_host;
use crate::runtime::{BoxStream, Runtime};

/// The one channel the bus uses.
pub(crate) const CHANNEL: u16 = 1;

/// An open connection with channel [`CHANNEL`] ready, and the decoder
/// holding whatever the broker sent past the handshake.
pub(crate) struct Conn {
    pub stream: BoxStream,
    pub decoder: AmqpDecoder,
    /// Negotiated largest frame.
    pub frame_max: u32,
    /// Negotiated heartbeat interval in seconds (0: none).
    pub heartbeat: u16,
}

fn client_properties() -> FieldTable {
    let s = |v: &'static str| FieldValue::LongStr(Bytes::from_static(v.as_bytes()));
    vec![
        ("product".into(), s("socketio-rs")),
        ("version".into(), s(env!("CARGO_PKG_VERSION"))),
        ("platform".into(), s("Rust")),
        (
            "capabilities".into(),
            FieldValue::Table(vec![
                ("publisher_confirms".into(), FieldValue::Bool(true)),
                ("consumer_cancel_notify".into(), FieldValue::Bool(true)),
                ("basic.nack".into(), FieldValue::Bool(true)),
                ("connection.blocked".into(), FieldValue::Bool(true)),
                // A refused login is a connection.close with its reason,
                // not a dropped socket.
                (
                    "authentication_failure_close".into(),
                    FieldValue::Bool(true),
                ),
            ]),
        ),
    ]
}

async fn send(stream: &mut BoxStream, out: &mut BytesMut) -> Result<(), AmqpError> {
    stream.write_all(out).await.map_err(AmqpError::io)?;
    stream.flush().await.map_err(AmqpError::io)?;
    out.clear();
    Ok(())
}

/// The next method (heartbeats skipped); a close from the broker is an
/// error with its reason.
async fn next_method(
    stream: &mut BoxStream,
    decoder: &mut AmqpDecoder,
) -> Result<Method, AmqpError> {
    let mut buf = [0u8; 4096];
    loop {
        match decoder.next()? {
            Some(Incoming::Heartbeat) => continue,
            Some(Incoming::Method {
                method: Method::ConnectionClose(reason) | Method::ChannelClose(reason),
                ..
            }) => return Err(AmqpError::Server(reason)),
            Some(Incoming::Method { method, .. }) => return Ok(method),
            Some(other) => return Err(AmqpError::Unexpected(format!("{other:?}"))),
            None => {}
        }
        let n = stream.read(&mut buf).await.map_err(AmqpError::io)?;
        if n == 0 {
            return Err(AmqpError::Closed);
        }
        decoder.feed(&buf[..n]);
    }
}

/// Connect and run the handshake (the caller sets the deadline).
pub(crate) async fn open(
    runtime: &Arc<dyn Runtime>,
    config: &AmqpConfig,
) -> Result<Conn, AmqpError> {
    let stream = connect_host::<AmqpError>(runtime, &config.host, config.port).await?;
    let mut stream = if config.tls {
        secure(config, stream).await?
    } else {
        stream
    };
    let mut decoder = AmqpDecoder::new(config.limits());
    let mut out = BytesMut::new();
    encode_protocol_header(&mut out);
    send(&mut stream, &mut out).await?;

    match next_method(&mut stream, &mut decoder).await? {
        Method::ConnectionStart {
            version_major: 0,
            version_minor: 9,
            mechanisms,
            server_properties,
            ..
        } => {
            if !mechanisms.split(|b| *b == b' ').any(|m| m == b"PLAIN") {
                return Err(AmqpError::Unexpected(format!(
                    "no PLAIN login offered (mechanisms {:?})",
                    String::from_utf8_lossy(&mechanisms)
                )));
            }
            let text = |key: &str| {
                server_properties.iter().find_map(|(k, v)| match v {
                    FieldValue::LongStr(b) if k == key => {
                        Some(String::from_utf8_lossy(b).into_owned())
                    }
                    _ => None,
                })
            };
            tracing::debug!(
                product = text("product").as_deref().unwrap_or("?"),
                version = text("version").as_deref().unwrap_or("?"),
                "AMQP broker"
            );
        }
        other => return Err(AmqpError::Unexpected(format!("{other:?}"))),
    }
    let mut response = Vec::with_capacity(config.user.len() + config.password.len() + 2);
    response.push(0);
    response.extend_from_slice(config.user.as_bytes());
    response.push(0);
    response.extend_from_slice(config.password.as_bytes());
    let properties = client_properties();
    encode_method(
        &mut out,
        0,
        &ClientMethod::ConnectionStartOk {
            client_properties: &properties,
            mechanism: "PLAIN",
            response: &response,
            locale: "en_US",
        },
    );
    send(&mut stream, &mut out).await?;

    let (channel_max, frame_max, heartbeat) = match next_method(&mut stream, &mut decoder).await? {
        Method::ConnectionTune {
            channel_max,
            frame_max,
            heartbeat,
        } => {
            let frame_max = match frame_max {
                0 => config.frame_max,
                n => n.min(config.frame_max),
            }
            .max(FRAME_MIN_SIZE);
            let heartbeat = match (config.heartbeat, heartbeat) {
                (0, _) => 0,
                (ours, 0) => ours,
                (ours, theirs) => ours.min(theirs),
            };
            (channel_max, frame_max, heartbeat)
        }
        Method::ConnectionSecure => {
            return Err(AmqpError::Unexpected("a SASL challenge to PLAIN".into()))
        }
        other => return Err(AmqpError::Unexpected(format!("{other:?}"))),
    };
    decoder.set_max_frame_size(frame_max);
    encode_method(
        &mut out,
        0,
        &ClientMethod::ConnectionTuneOk {
            channel_max,
            frame_max,
            heartbeat,
        },
    );
    encode_method(
        &mut out,
        0,
        &ClientMethod::ConnectionOpen {
            vhost: &config.vhost,
        },
    );
    send(&mut stream, &mut out).await?;
    expect(&mut stream, &mut decoder, |m| {
        matches!(m, Method::ConnectionOpenOk)
    })
    .await?;

    // Channel 1, publisher confirms, prefetch: pipelined, answered in order.
    encode_method(&mut out, CHANNEL, &ClientMethod::ChannelOpen);
    encode_method(&mut out, CHANNEL, &ClientMethod::ConfirmSelect);
    encode_method(
        &mut out,
        CHANNEL,
        &ClientMethod::BasicQos {
            prefetch_count: config.prefetch,
        },
    );
    send(&mut stream, &mut out).await?;
    expect(&mut stream, &mut decoder, |m| {
        matches!(m, Method::ChannelOpenOk)
    })
    .await?;
    expect(&mut stream, &mut decoder, |m| {
        matches!(m, Method::ConfirmSelectOk)
    })
    .await?;
    expect(&mut stream, &mut decoder, |m| {
        matches!(m, Method::BasicQosOk)
    })
    .await?;
    Ok(Conn {
        stream,
        decoder,
        frame_max,
        heartbeat,
    })
}

async fn expect(
    stream: &mut BoxStream,
    decoder: &mut AmqpDecoder,
    ok: impl Fn(&Method) -> bool,
) -> Result<(), AmqpError> {
    let m = next_method(stream, decoder).await?;
    if ok(&m) {
        Ok(())
    } else {
        Err(AmqpError::Unexpected(format!("{m:?}")))
    }
}

#[cfg(feature = "tls")]
async fn secure(config: &AmqpConfig, stream: BoxStream) -> Result<BoxStream, AmqpError> {
    let tls_config = match &config.tls_config {
        Some(c) => c.clone(),
        None => crate::tls::TlsClientConfig::new()
            .build()
            .map_err(|e| AmqpError::Tls(e.to_string()))?,
    };
    let tls = crate::tls::ClientTls::new(tls_config, &config.host)
        .map_err(|e| AmqpError::Tls(e.to_string()))?;
    tls.connect(stream)
        .await
        .map_err(|e| match crate::tls::TlsError::from_io(&e) {
            Some(t) => AmqpError::Tls(t.to_string()),
            None => AmqpError::io(e),
        })
}

#[cfg(not(feature = "tls"))]
async fn secure(_config: &AmqpConfig, _stream: BoxStream) -> Result<BoxStream, AmqpError> {
    Err(AmqpError::TlsUnavailable)
}
