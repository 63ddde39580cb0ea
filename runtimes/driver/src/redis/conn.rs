//! Opening one connection to Redis: address (DNS, sentinel), TCP or Unix
//! socket, TLS, `AUTH`, `SELECT`. Each step runs under one deadline.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::BytesMut;
use futures_util::{AsyncReadExt, AsyncWriteExt};
use socketio_core::cluster::resp::{encode_command, RespDecoder, RespValue};

use super::config::{RedisAddr, RedisConfig};
use super::RedisError;
use crate::bus::{connect_any, resolve};
use crate::runtime::{BoxStream, Runtime};

/// Where to connect this time (a sentinel lookup resolves to `Tcp`).
pub(crate) enum Target {
    Tcp {
        addrs: Vec<SocketAddr>,
        /// For TLS: the name the certificate must carry.
        host: String,
        tls: bool,
    },
    Unix(PathBuf),
}

/// A connected, authenticated link and the decoder holding whatever the
/// broker sent past the handshake replies.
pub(crate) struct Conn {
    pub stream: BoxStream,
    pub decoder: RespDecoder,
}

/// Send one command and read its reply.
pub(crate) async fn request(conn: &mut Conn, args: &[&[u8]]) -> Result<RespValue, RedisError> {
    let mut out = BytesMut::new();
    encode_command(&mut out, args);
    conn.stream.write_all(&out).await.map_err(RedisError::io)?;
    conn.stream.flush().await.map_err(RedisError::io)?;
    let mut buf = [0u8; 4096];
    loop {
        if let Some(value) = conn.decoder.next()? {
            return Ok(value);
        }
        let n = conn.stream.read(&mut buf).await.map_err(RedisError::io)?;
        if n == 0 {
            return Err(RedisError::Closed);
        }
        conn.decoder.feed(&buf[..n]);
    }
}

/// Where to connect: the URL's address, or the master a sentinel names.
pub(crate) async fn target(
    runtime: &Arc<dyn Runtime>,
    config: &RedisConfig,
) -> Result<Target, RedisError> {
    match &config.addr {
        RedisAddr::Tcp { host, port, tls } => Ok(Target::Tcp {
            addrs: resolve::<RedisError>(host, *port).await?,
            host: host.clone(),
            tls: *tls,
        }),
        RedisAddr::Unix(path) => Ok(Target::Unix(path.clone())),
        RedisAddr::Sentinel { sentinels, service } => {
            let mut why = Vec::new();
            for (host, port) in sentinels {
                match ask_sentinel(runtime, config, host, *port, service).await {
                    Ok((master, master_port)) => {
                        tracing::debug!(%host, port, %master, master_port, "sentinel named the master");
                        return Ok(Target::Tcp {
                            addrs: resolve::<RedisError>(&master, master_port).await?,
                            host: master,
                            tls: false,
                        });
                    }
                    Err(e) => why.push(format!("{host}:{port}: {e}")),
                }
            }
            Err(RedisError::Sentinel(why.join("; ")))
        }
    }
}

async fn ask_sentinel(
    runtime: &Arc<dyn Runtime>,
    config: &RedisConfig,
    host: &str,
    port: u16,
    service: &str,
) -> Result<(String, u16), RedisError> {
    let stream = crate::bus::connect_host::<RedisError>(runtime, host, port).await?;
    let mut conn = Conn {
        stream,
        decoder: RespDecoder::new(config.resp_limits),
    };
    let reply = request(
        &mut conn,
        &[b"SENTINEL", b"get-master-addr-by-name", service.as_bytes()],
    )
    .await?;
    let _ = conn.stream.close().await;
    match reply {
        RespValue::Array(items) if items.len() == 2 => {
            let text = |v: &RespValue| {
                v.as_bytes()
                    .and_then(|b| std::str::from_utf8(b).ok())
                    .map(str::to_string)
            };
            let master = text(&items[0]);
            let master_port = text(&items[1]).and_then(|p| p.parse::<u16>().ok());
            match (master, master_port) {
                (Some(h), Some(p)) if !h.is_empty() => Ok((h, p)),
                _ => Err(RedisError::Unexpected(format!("{items:?}"))),
            }
        }
        RespValue::Null => Err(RedisError::Sentinel(format!("unknown service {service:?}"))),
        RespValue::Error(e) => Err(RedisError::Server(String::from_utf8_lossy(&e).into())),
        other => Err(RedisError::Unexpected(format!("{other:?}"))),
    }
}

/// Open, secure and authenticate one link; `select` sends `SELECT db`.
pub(crate) async fn open(
    runtime: &Arc<dyn Runtime>,
    config: &RedisConfig,
    target: &Target,
    select: bool,
) -> Result<Conn, RedisError> {
    let stream = match target {
        Target::Tcp { addrs, host, tls } => {
            let stream = connect_any::<RedisError>(runtime, addrs).await?;
            if *tls {
                secure(config, host, stream).await?
            } else {
                stream
            }
        }
        Target::Unix(path) => runtime.connect_unix(path).await.map_err(RedisError::io)?,
    };
    let mut conn = Conn {
        stream,
        decoder: RespDecoder::new(config.resp_limits),
    };
    if let Some(password) = &config.password {
        let reply = match &config.user {
            Some(user) => {
                request(&mut conn, &[b"AUTH", user.as_bytes(), password.as_bytes()]).await?
            }
            None => request(&mut conn, &[b"AUTH", password.as_bytes()]).await?,
        };
        expect_ok(reply)?;
    }
    if select && config.db != 0 {
        let db = config.db.to_string();
        expect_ok(request(&mut conn, &[b"SELECT", db.as_bytes()]).await?)?;
    }
    // One round trip proves a Redis is there before the link counts as up
    // (without AUTH or SELECT nothing else would).
    match request(&mut conn, &[b"PING"]).await? {
        RespValue::Simple(s) if &s[..] == b"PONG" => Ok(conn),
        RespValue::Error(e) => Err(RedisError::Server(String::from_utf8_lossy(&e).into())),
        other => Err(RedisError::Unexpected(format!("{other:?}"))),
    }
}

fn expect_ok(reply: RespValue) -> Result<(), RedisError> {
    match reply {
        RespValue::Simple(s) if &s[..] == b"OK" => Ok(()),
        RespValue::Error(e) => Err(RedisError::Server(String::from_utf8_lossy(&e).into())),
        other => Err(RedisError::Unexpected(format!("{other:?}"))),
    }
}

#[cfg(feature = "tls")]
async fn secure(
    config: &RedisConfig,
    host: &str,
    stream: BoxStream,
) -> Result<BoxStream, RedisError> {
    let tls_config = match &config.tls {
        Some(c) => c.clone(),
        None => crate::tls::TlsClientConfig::new()
            .build()
            .map_err(|e| RedisError::Tls(e.to_string()))?,
    };
    let tls =
        crate::tls::ClientTls::new(tls_config, host).map_err(|e| RedisError::Tls(e.to_string()))?;
    tls.connect(stream)
        .await
        .map_err(|e| match crate::tls::TlsError::from_io(&e) {
            Some(t) => RedisError::Tls(t.to_string()),
            None => RedisError::io(e),
        })
}

#[cfg(not(feature = "tls"))]
async fn secure(
    _config: &RedisConfig,
    _host: &str,
    _stream: BoxStream,
) -> Result<BoxStream, RedisError> {
    Err(RedisError::TlsUnavailable)
}
