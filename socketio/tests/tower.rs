//! The server mounted in axum through the `tower` feature answers as our
//! own listener does (CORS, cookie, compression, limits, the WebSocket
//! 101), serves static files before the wrapped router, and leaves the
//! router's own routes alone.
#![cfg(feature = "tower")]

mod raw;
mod web;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::thread;

use raw::{get, request_with_headers, Response};
use socketio::core::engine::CookieConfig;
use socketio::{CorsOrigins, RuntimeKind, Server, SocketIoLayer, StaticFiles};

const ALLOWED: &str = "http://allowed.example";

/// A server with every per-request option on: a cookie, one allowed
/// origin, HTTP compression from the first byte, permessage-deflate.
fn configured(files: Option<StaticFiles>) -> Server {
    let mut builder = Server::builder()
        .runtime(RuntimeKind::Tokio)
        .max_payload(1000)
        .cors_allowed_origins(CorsOrigins::List(vec![ALLOWED.into()]))
        .engine_config(|c| {
            c.cookie = Some(CookieConfig::default());
            c.compression_threshold = 0;
            c.websocket_compression = true;
        });
    if let Some(files) = files {
        builder = builder.static_files(files);
    }
    builder.build()
}

/// Our own listener and the mounted server (same options), on tokio in a
/// thread of their own, for the whole file.
fn servers(files: Option<StaticFiles>) -> (SocketAddr, SocketAddr) {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        RuntimeKind::Tokio.block_on(async move {
            let own = configured(files.clone());
            let own_addr = own.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
            let mounted = configured(files);
            let app = axum::Router::new()
                .route("/api", axum::routing::get(|| async { "from axum" }))
                .route("/about", axum::routing::get(|| async { "shadowed" }))
                .layer(SocketIoLayer::new(mounted));
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let mounted_addr = listener.local_addr().unwrap();
            tokio::spawn(async move { axum::serve(listener, app).await });
            tx.send((own_addr, mounted_addr)).unwrap();
            std::future::pending::<()>().await;
        })
    });
    rx.recv().expect("servers start")
}

/// The headers that must agree (values with the session id cut off).
fn comparable(response: &Response) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = response
        .headers
        .iter()
        .filter(|(name, _)| !matches!(name.as_str(), "date" | "content-length" | "connection"))
        .map(|(name, value)| {
            let value = match name.as_str() {
                "set-cookie" => value
                    .split_once(';')
                    .map_or("", |(_, attrs)| attrs)
                    .to_owned(),
                _ => value.clone(),
            };
            (name.clone(), value)
        })
        .collect();
    headers.sort();
    headers
}

/// An upgrade request with a permessage-deflate offer; the 101's status
/// and headers.
fn upgrade(addr: SocketAddr, origin: &str) -> Response {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(raw::READ_TIMEOUT)).unwrap();
    let head = format!(
        "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {addr}\r\n\
         Upgrade: websocket\r\nConnection: Upgrade\r\nOrigin: {origin}\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).unwrap();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let status = line.split(' ').nth(1).unwrap().parse().unwrap();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').unwrap();
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    Response {
        status,
        headers,
        body: Vec::new(),
    }
}

#[test]
fn mounted_answers_as_our_own_listener_does() {
    let (own, mounted) = servers(None);
    let origin = [("Origin", ALLOWED), ("Accept-Encoding", "gzip")];
    let handshake = "/socket.io/?EIO=4&transport=polling";
    let exchanges: Vec<Box<dyn Fn(SocketAddr) -> Response>> = vec![
        // CORS, the cookie and gzip on the handshake.
        Box::new(move |addr| request_with_headers(addr, "GET", handshake, &origin, b"")),
        // A refused origin.
        Box::new(move |addr| {
            let other = [("Origin", "http://other.example")];
            request_with_headers(addr, "GET", handshake, &other, b"")
        }),
        // The preflight.
        Box::new(move |addr| {
            let preflight = [
                ("Origin", ALLOWED),
                ("Access-Control-Request-Method", "POST"),
                ("Access-Control-Request-Headers", "content-type"),
            ];
            request_with_headers(addr, "OPTIONS", handshake, &preflight, b"")
        }),
        // A body over max_payload.
        Box::new(move |addr| {
            let sid = polling_sid(addr);
            let target = format!("{handshake}&sid={sid}");
            request_with_headers(addr, "POST", &target, &origin, &[b'x'; 5000])
        }),
        // The 101: accept key, permessage-deflate, CORS, cookie.
        Box::new(|addr| upgrade(addr, ALLOWED)),
        // An upgrade from a refused origin.
        Box::new(|addr| upgrade(addr, "http://other.example")),
    ];
    for (i, exchange) in exchanges.iter().enumerate() {
        let (a, b) = (exchange(own), exchange(mounted));
        assert_eq!(a.status, b.status, "exchange {i}");
        assert_eq!(comparable(&a), comparable(&b), "exchange {i}");
        if a.status != 200 {
            assert_eq!(a.body, b.body, "exchange {i}");
        }
    }
    // The options really were on.
    let open = exchanges[0](mounted);
    assert_eq!(open.header("content-encoding"), Some("gzip"));
    assert_eq!(open.header("access-control-allow-origin"), Some(ALLOWED));
    assert!(open
        .header("set-cookie")
        .is_some_and(|c| c.starts_with("io=")));
    let switched = exchanges[4](mounted);
    assert_eq!(switched.status, 101);
    assert!(switched
        .header("sec-websocket-extensions")
        .is_some_and(|e| e.starts_with("permessage-deflate")));
}

fn polling_sid(addr: SocketAddr) -> String {
    let origin = [("Origin", ALLOWED)];
    let open = request_with_headers(
        addr,
        "GET",
        "/socket.io/?EIO=4&transport=polling",
        &origin,
        b"",
    );
    let json: serde_json::Value = serde_json::from_str(&open.text()[1..]).unwrap();
    json["sid"].as_str().unwrap().to_owned()
}

#[test]
fn static_files_then_the_wrapped_router() {
    let site = web::Site::new("tower");
    let (_, mounted) = servers(Some(site.static_files()));
    assert_eq!(web::check_site(mounted), 18);
    assert_eq!(get(mounted, "/api").text(), "from axum");
    // Static files come before the router's own routes.
    assert_eq!(get(mounted, "/about").text(), "<h1>chat</h1>");
}

/// Our client over each transport, the upgrade included, through axum.
#[test]
fn rust_client_over_every_transport_when_mounted() {
    use socketio::{AckSender, Args, Client, ClientTransports, SocketRef, Transport};
    use std::time::{Duration, Instant};

    RuntimeKind::Tokio.block_on(async {
        let server = Server::builder().runtime(RuntimeKind::Tokio).build();
        server.ns("/", |ns| {
            ns.on(
                "echo",
                |_: SocketRef, args: Args, ack: Option<AckSender>| async move {
                    if let Some(ack) = ack {
                        let _ = ack.send(&args);
                    }
                },
            );
        });
        let app = axum::Router::new().layer(SocketIoLayer::new(server));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        for (transports, settles_on) in [
            (ClientTransports::Polling, Transport::Polling),
            (ClientTransports::WebSocket, Transport::WebSocket),
            (ClientTransports::Upgrade, Transport::WebSocket),
        ] {
            let client = Client::builder(&url)
                .transports(transports)
                .connect()
                .await
                .expect("connects");
            let answer = client
                .call("echo", &("hi", 7), Duration::from_secs(5))
                .await
                .expect("acknowledged");
            assert_eq!(serde_json::to_string(&answer).unwrap(), r#"["hi",7]"#);
            let give_up = Instant::now() + Duration::from_secs(5);
            while client.transport() != Some(settles_on) && Instant::now() < give_up {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            assert_eq!(client.transport(), Some(settles_on), "{transports:?}");
            client.disconnect().await;
        }
    });
}
