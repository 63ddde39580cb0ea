//! The blocking client against the `custom_event_loop` example's server,
//! run in-process on a thread; with `--redis`, two of them as a cluster
//! over a `redis-server` child.

#[allow(dead_code)]
#[path = "../../../examples/custom_event_loop.rs"]
mod custom_event_loop;

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde_json::json;
use socketio_blocking::{
    to_args, AnyParser, Binary, Bytes, Client, ClientOptions, ClientTransports, Error, Event,
    JsonParser, MsgPackParser, Transport, Value,
};

const WAIT: Duration = Duration::from_secs(5);

/// The example's loop on a thread; stopped and joined on drop.
struct Server {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl Server {
    fn start(parser: AnyParser) -> Server {
        Server::start_on(0, parser)
    }

    fn start_on(port: u16, parser: AnyParser) -> Server {
        Server::spawn(port, parser, None)
    }

    /// One node of a cluster over the Redis at `redis` (`--redis`).
    fn start_clustered(redis: &str) -> Server {
        Server::spawn(0, JsonParser.into(), Some(redis.to_owned()))
    }

    fn spawn(port: u16, parser: AnyParser, redis: Option<String>) -> Server {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind");
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = thread::spawn(move || {
            let result = custom_event_loop::serve(listener, parser, redis.as_deref(), &flag);
            if let Err(e) = &result {
                eprintln!("server loop: {e}");
            }
            result
        });
        Server {
            port,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Waits for the loop to end by itself (it was not told to stop).
    fn ended(mut self) -> io::Result<()> {
        let thread = self.thread.take().unwrap();
        wait_until("the server loop to end", || thread.is_finished());
        thread.join().expect("server thread")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn value(v: serde_json::Value) -> Value {
    serde_json::from_value(v).unwrap()
}

/// Receive until an event named `name` on `nsp` arrives.
fn receive_named(client: &Client, nsp: &str, name: &str) -> Event {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let event = client
            .receive(Some(left))
            .unwrap_or_else(|e| panic!("waiting for {name} on {nsp}: {e}"));
        if event.nsp == nsp && event.name == name {
            return event;
        }
    }
}

fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(10));
    }
}

/// The `question` handler of the contract: answer `(token + "!", 07 08 09)`.
fn answer_questions(options: ClientOptions) -> ClientOptions {
    options.on("question", |args| {
        let (token, bytes): (String, Binary) = args.deserialize().ok()?;
        assert_eq!(&bytes[..], &[9, 8, 7]);
        to_args(&(format!("{token}!"), Binary(Bytes::from_static(&[7, 8, 9])))).ok()
    })
}

fn round_trips(transports: ClientTransports, parser: AnyParser) {
    let server = Server::start(parser);
    round_trips_with(&server.url(), transports, parser);
}

/// The same round trips against any server of the interop echo contract,
/// for example `node tests/interop/node/echo_server.js --port 3000`:
/// `SOCKETIO_BLOCKING_URL=http://127.0.0.1:3000 [SOCKETIO_BLOCKING_PARSER=msgpack]
/// cargo test -p socketio-blocking -- --ignored`.
#[test]
#[ignore = "needs an external echo server: set SOCKETIO_BLOCKING_URL"]
fn external_server() {
    let url = std::env::var("SOCKETIO_BLOCKING_URL").expect("SOCKETIO_BLOCKING_URL");
    let parser: AnyParser = match std::env::var("SOCKETIO_BLOCKING_PARSER").as_deref() {
        Ok("msgpack") => MsgPackParser.into(),
        _ => JsonParser.into(),
    };
    for transports in [
        ClientTransports::Polling,
        ClientTransports::WebSocket,
        ClientTransports::Upgrade,
    ] {
        round_trips_with(&url, transports, parser);
    }
}

fn round_trips_with(url: &str, transports: ClientTransports, parser: AnyParser) {
    let auth_root = value(json!({"token": "root"}));
    let auth_custom = value(json!({"token": "custom", "n": 1}));
    let options = answer_questions(
        ClientOptions::default()
            .transports(transports)
            .parser(parser)
            .namespace("/", Some(auth_root.clone()))
            .namespace("/custom", Some(auth_custom.clone())),
    );
    let client = Client::connect(url, options).expect("connect");
    assert!(client.connected());
    let root_sid = client.sid("/").expect("sid of /");
    let custom_sid = client.sid("/custom").expect("sid of /custom");
    assert_ne!(root_sid, custom_sid);

    // The server echoes each namespace's auth on connect.
    let auth: (Value,) = receive_named(&client, "/", "auth")
        .args
        .deserialize()
        .unwrap();
    assert_eq!(auth.0, auth_root);
    let auth: (Value,) = receive_named(&client, "/custom", "auth")
        .args
        .deserialize()
        .unwrap();
    assert_eq!(auth.0, auth_custom);

    for nsp in ["/", "/custom"] {
        // emit + receive.
        client.emit_in(nsp, "echo", &("hello", 42, "😀")).unwrap();
        let back = receive_named(&client, nsp, "echo-back");
        let (text, n, emoji): (String, i64, String) = back.args.deserialize().unwrap();
        assert_eq!((text.as_str(), n, emoji.as_str()), ("hello", 42, "😀"));

        // call with binary and nested objects.
        let blob = Binary(Bytes::from_static(&[0, 1, 2, 255]));
        let nested = value(json!({"a": [1, {"b": null}], "c": "d"}));
        let answer = client
            .call_in(nsp, "echo", &(blob.clone(), nested.clone(), true), WAIT)
            .unwrap();
        let (got_blob, got_nested, flag): (Binary, Value, bool) = answer.deserialize().unwrap();
        assert_eq!((got_blob, got_nested, flag), (blob.clone(), nested, true));
        let back = receive_named(&client, nsp, "echo-back");
        assert_eq!(back.args.len(), 3);

        // Binary nested inside an object.
        let object = Value::Object(vec![
            ("bin".into(), Value::Binary(blob.0.clone())),
            (
                "list".into(),
                Value::Array(vec![Value::Binary(blob.0.clone())]),
            ),
        ]);
        let answer = client
            .call_in(nsp, "echo", &(object.clone(),), WAIT)
            .unwrap();
        let (got,): (Value,) = answer.deserialize().unwrap();
        assert_eq!(got, object);
        let _ = receive_named(&client, nsp, "echo-back");

        // A server-requested ack, answered by the handler on the IO thread.
        let answer = client.call_in(nsp, "ask", &("tok",), WAIT).unwrap();
        let (text, bytes): (String, Binary) = answer.deserialize().unwrap();
        assert_eq!((text.as_str(), &bytes[..]), ("tok!", &[7u8, 8, 9][..]));
    }

    // The default namespace is the first one.
    let answer = client.call("echo", &(), WAIT).unwrap();
    assert!(answer.is_empty());

    let expected = match transports {
        ClientTransports::Polling => Transport::Polling,
        ClientTransports::WebSocket | ClientTransports::Upgrade => Transport::WebSocket,
    };
    wait_until("the final transport", || {
        client.transport() == Some(expected)
    });

    client.disconnect().unwrap();
    assert!(!client.connected());
    assert_eq!(client.sid("/"), None);
    assert!(matches!(client.emit("echo", &()), Err(Error::Disconnected)));
}

#[test]
fn polling_json() {
    round_trips(ClientTransports::Polling, JsonParser.into());
}

#[test]
fn websocket_json() {
    round_trips(ClientTransports::WebSocket, JsonParser.into());
}

#[test]
fn upgrade_json() {
    round_trips(ClientTransports::Upgrade, JsonParser.into());
}

#[test]
fn polling_msgpack() {
    round_trips(ClientTransports::Polling, MsgPackParser.into());
}

#[test]
fn websocket_msgpack() {
    round_trips(ClientTransports::WebSocket, MsgPackParser.into());
}

#[test]
fn upgrade_msgpack() {
    round_trips(ClientTransports::Upgrade, MsgPackParser.into());
}

#[test]
fn url_path_names_the_namespace_and_auth_defaults_to_empty() {
    let server = Server::start(JsonParser.into());
    let client = Client::connect(
        &format!("{}/custom", server.url()),
        ClientOptions::default().transports(ClientTransports::WebSocket),
    )
    .unwrap();
    assert!(client.sid("/custom").is_some());
    let auth: (Value,) = receive_named(&client, "/custom", "auth")
        .args
        .deserialize()
        .unwrap();
    assert_eq!(auth.0, Value::Object(Vec::new()));
    client.emit("echo", &"x").unwrap();
    let back = receive_named(&client, "/custom", "echo-back");
    assert_eq!(back.args.get::<String>(0).unwrap(), "x");
}

#[test]
fn handler_registered_after_connect_answers_the_server() {
    let server = Server::start(JsonParser.into());
    let client = Client::connect(&server.url(), ClientOptions::default()).unwrap();
    client.on("question", |_| to_args(&("late",)).ok()).unwrap();
    let answer = client.call("ask", &("t",), WAIT).unwrap();
    assert_eq!(answer.get::<String>(0).unwrap(), "late");
    // Without a handler the question goes to `receive` and is acked with
    // nothing.
    let server2 = Server::start(JsonParser.into());
    let plain = Client::connect(&server2.url(), ClientOptions::default()).unwrap();
    let answer = plain.call("ask", &("t",), WAIT).unwrap();
    assert!(answer.is_empty());
    let question = receive_named(&plain, "/", "question");
    assert_eq!(question.args.get::<String>(0).unwrap(), "t");
}

#[test]
fn receive_times_out() {
    let server = Server::start(JsonParser.into());
    let client = Client::connect(&server.url(), ClientOptions::default()).unwrap();
    let _ = receive_named(&client, "/", "auth");
    let start = Instant::now();
    assert!(matches!(
        client.receive(Some(Duration::from_millis(200))),
        Err(Error::Timeout)
    ));
    let waited = start.elapsed();
    assert!(waited >= Duration::from_millis(200), "{waited:?}");
    assert!(waited < Duration::from_secs(2), "{waited:?}");
}

#[test]
fn refusal_is_a_typed_error() {
    let server = Server::start(JsonParser.into());
    let err = Client::connect(
        &server.url(),
        ClientOptions::default().namespace("/custom", Some(value(json!({"reject": true})))),
    )
    .unwrap_err();
    match err {
        Error::ConnectRefused { nsp, message, data } => {
            assert_eq!(nsp, "/custom");
            assert_eq!(message, "rejected by server");
            assert_eq!(data, Some(value(json!({"code": 42}))));
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn nothing_listening() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let err = Client::connect(&url, ClientOptions::default().reconnection(false)).unwrap_err();
    assert!(matches!(err, Error::ConnectFailed), "{err:?}");
    let start = Instant::now();
    let err = Client::connect(
        &url,
        ClientOptions::default().wait_timeout(Duration::from_millis(300)),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            Error::ConnectTimeout {
                last_error: Some(_)
            }
        ),
        "{err:?}"
    );
    assert!(start.elapsed() < Duration::from_secs(3));
    // https:// needs the `tls` feature; with it, nothing listens there.
    let secure = Client::connect(
        "https://127.0.0.1:1",
        ClientOptions::default().reconnection(false),
    );
    if cfg!(feature = "tls") {
        assert!(matches!(secure, Err(Error::ConnectFailed)), "{secure:?}");
    } else {
        assert!(matches!(secure, Err(Error::InvalidUrl(_))), "{secure:?}");
    }
}

#[test]
fn server_disconnect_ends_the_client() {
    let server = Server::start(JsonParser.into());
    let client = Client::connect(&server.url(), ClientOptions::default()).unwrap();
    let _ = receive_named(&client, "/", "auth");
    client.emit("disconnect-me", &()).unwrap();
    // No namespace left: the IO thread stops and `receive` says so.
    assert!(matches!(
        client.receive(Some(WAIT)),
        Err(Error::Disconnected)
    ));
    assert!(!client.connected());
}

#[test]
fn reconnects_when_the_server_restarts_on_the_same_port() {
    for transports in [ClientTransports::Polling, ClientTransports::WebSocket] {
        let server = Server::start(JsonParser.into());
        let port = server.port;
        let options = ClientOptions::default()
            .transports(transports)
            .namespace("/", None)
            .namespace("/custom", None)
            .reconnection_delay(Duration::from_millis(100), Duration::from_millis(200));
        let client = Client::connect(&server.url(), options).unwrap();
        let first = client.sid("/").unwrap();
        drop(server);
        wait_until("the client to notice", || !client.connected());
        let _server = Server::start_on(port, JsonParser.into());
        wait_until("the client to reconnect", || client.connected());
        let second = client.sid("/").unwrap();
        assert_ne!(first, second, "{transports:?}");
        let answer = client.call_in("/custom", "echo", &(1, 2), WAIT).unwrap();
        assert_eq!(answer.deserialize::<(i64, i64)>().unwrap(), (1, 2));
    }
}

/// A hand-written polling server whose second poll carries an event with
/// invalid JSON arguments: the client must drop the session (`parse error`)
/// and reconnect, never hand the event over.
#[test]
fn invalid_json_arguments_close_the_session() {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::sync::atomic::AtomicUsize;

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handshakes = Arc::new(AtomicUsize::new(0));
    let polls = Arc::new(AtomicUsize::new(0));
    {
        let handshakes = handshakes.clone();
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let handshakes = handshakes.clone();
                let polls = polls.clone();
                thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut stream = stream;
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let (mut len, mut header) = (0usize, String::new());
                        while {
                            header.clear();
                            reader.read_line(&mut header).unwrap_or(0) > 2
                        } {
                            if let Some(v) =
                                header.to_ascii_lowercase().strip_prefix("content-length:")
                            {
                                len = v.trim().parse().unwrap();
                            }
                        }
                        let mut body = vec![0; len];
                        reader.read_exact(&mut body).unwrap();
                        let reply = if line.starts_with("POST") {
                            "ok".to_owned()
                        } else if !line.contains("sid=") {
                            handshakes.fetch_add(1, Ordering::SeqCst);
                            r#"0{"sid":"abcdefghijklmnopqrst","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#.to_owned()
                        } else if polls.fetch_add(1, Ordering::SeqCst) % 2 == 0 {
                            "40{\"sid\":\"s1\"}\u{1e}42[\"ev\",{bad]".to_owned()
                        } else {
                            // Hold the poll as a quiet server would.
                            thread::sleep(Duration::from_secs(3));
                            "6".to_owned()
                        };
                        let response = format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Length: {}\r\n\r\n{reply}",
                            reply.len()
                        );
                        if stream.write_all(response.as_bytes()).is_err() {
                            return;
                        }
                    }
                });
            }
        });
    }
    let client = Client::connect(
        &format!("http://127.0.0.1:{port}"),
        ClientOptions::default()
            .transports(ClientTransports::Polling)
            .reconnection_delay(Duration::from_millis(50), Duration::from_millis(50)),
    )
    .unwrap();
    wait_until("a reconnection after the parse error", || {
        handshakes.load(Ordering::SeqCst) >= 2
    });
    assert!(matches!(
        client.receive(Some(Duration::from_millis(100))),
        Err(Error::Timeout)
    ));
    drop(client);
}

/// A `redis-server` child on a free port, persisting nothing; killed on
/// drop.
struct RedisServer {
    port: u16,
    child: Child,
}

impl RedisServer {
    fn start() -> RedisServer {
        let port = free_port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server (installed with the `redis-server` package) must be on PATH");
        let server = RedisServer { port, child };
        wait_until("redis-server to answer PING", || server.ping());
        server
    }

    fn ping(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
        let mut reply = [0u8; 7];
        stream.write_all(b"PING\r\n").is_ok()
            && stream.read_exact(&mut reply).is_ok()
            && &reply == b"+PONG\r\n"
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A port that was just free.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Two nodes over Redis: a `shout` on either reaches the clients of both,
/// in its namespace only, and the sender's own node sends it once.
#[test]
fn cluster_over_redis_relays_broadcasts() {
    let redis = RedisServer::start();
    let a = Server::start_clustered(&redis.url());
    let b = Server::start_clustered(&redis.url());
    let connect = |server: &Server| {
        let options = ClientOptions::default()
            .transports(ClientTransports::WebSocket)
            .namespace("/", None)
            .namespace("/custom", None);
        let client = Client::connect(&server.url(), options).expect("connect");
        let _ = receive_named(&client, "/", "auth");
        let _ = receive_named(&client, "/custom", "auth");
        client
    };
    // Connected means served, and a node serves once Redis confirmed its
    // subscription: both nodes hear each other from here on.
    let on_a = connect(&a);
    let on_b = connect(&b);

    on_a.emit("shout", &("from a", 1)).unwrap();
    for client in [&on_b, &on_a] {
        let back = receive_named(client, "/", "shout-back");
        let args: (String, i64) = back.args.deserialize().unwrap();
        assert_eq!(args, ("from a".to_owned(), 1));
    }

    on_b.emit_in("/custom", "shout", &("from b",)).unwrap();
    for client in [&on_a, &on_b] {
        let back = receive_named(client, "/custom", "shout-back");
        assert_eq!(back.args.get::<String>(0).unwrap(), "from b");
    }

    // Nothing else arrives: no copy from the bus of a node's own broadcast,
    // no broadcast in the other namespace.
    for client in [&on_a, &on_b] {
        match client.receive(Some(Duration::from_millis(300))) {
            Err(Error::Timeout) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// Without Redis the node does not start; when Redis goes away the loop
/// ends with an error (this example does not reconnect).
#[test]
fn cluster_over_redis_fails_clearly() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let nowhere = format!("redis://127.0.0.1:{}", free_port());
    let err = custom_event_loop::serve(
        listener,
        JsonParser.into(),
        Some(&nowhere),
        &AtomicBool::new(false),
    )
    .unwrap_err();
    assert!(err.to_string().contains("Redis"), "{err}");

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let err = custom_event_loop::serve(
        listener,
        JsonParser.into(),
        Some("http://127.0.0.1:6379"),
        &AtomicBool::new(false),
    )
    .unwrap_err();
    assert!(err.to_string().contains("Redis URL"), "{err}");

    let mut redis = RedisServer::start();
    let server = Server::start_clustered(&redis.url());
    let client = Client::connect(&server.url(), ClientOptions::default()).unwrap();
    let _ = receive_named(&client, "/", "auth");
    redis.kill();
    let err = server.ended().unwrap_err();
    assert!(err.to_string().contains("Redis"), "{err}");
}
