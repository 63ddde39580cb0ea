//! The admin UI instrumentation (`Server::instrument`) against the
//! official `socket.io-client` 4.8 playing the UI
//! (`tests/interop/node/admin_client.js`, installed by
//! `tests/interop/setup.sh`), and against our own client.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{json, Value as Json};
use socketio::{
    AckSender, AdminAuth, AdminMode, AdminOptions, Args, Client, Error, RuntimeKind, Server,
    SocketRef, StaticFiles,
};

const STATS_INTERVAL: Duration = Duration::from_millis(150);
const SERVER_ID: &str = "admin-test";
/// The Node run's own waits end well before.
const NODE_DEADLINE: Duration = Duration::from_secs(60);
const WAIT: Duration = Duration::from_secs(5);
/// The features of the UI's actions, announced unless read-only.
const ACTIONS: [&str; 7] = [
    "EMIT",
    "JOIN",
    "LEAVE",
    "DISCONNECT",
    "MJOIN",
    "MLEAVE",
    "MDISCONNECT",
];

fn interop_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/interop")
}

/// Install the Node peers once per run (a no-op when up to date).
fn setup() {
    static SETUP: OnceLock<Result<(), String>> = OnceLock::new();
    let result = SETUP.get_or_init(|| {
        let output = Command::new(interop_dir().join("setup.sh"))
            .output()
            .map_err(|e| format!("setup.sh: {e}"))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&output.stderr).into_owned())
        }
    });
    if let Err(e) = result {
        panic!("interop setup failed: {e}");
    }
}

/// A server with a chat namespace and the admin UI on `/admin`.
async fn start(options: AdminOptions) -> (Server, String) {
    let server = Server::builder().build();
    server.ns("/", |ns| {
        ns.on(
            "join_room",
            |socket: SocketRef, args: Args, ack: Option<AckSender>| async move {
                let room: String = args.get(0).expect("a room");
                socket.join(&room).expect("joined");
                if let Some(ack) = ack {
                    let _ = ack.send(&());
                }
            },
        );
        ns.on(
            "rooms",
            |socket: SocketRef, _: Args, ack: Option<AckSender>| async move {
                let mut rooms = socket.rooms().expect("rooms");
                rooms.sort();
                if let Some(ack) = ack {
                    let _ = ack.send(&(rooms,));
                }
            },
        );
        ns.on(
            "say",
            |socket: SocketRef, args: Args, _: Option<AckSender>| async move {
                let text: String = args.get(0).expect("a text");
                let _ = socket.emit("said", &(text.clone(),));
                let _ = socket.server().of("/").emit("announced", &(text,));
            },
        );
    });
    server
        .instrument(
            options
                .server_id(SERVER_ID)
                .server_stats_interval(STATS_INTERVAL),
        )
        .expect("instrumented once");
    let addr = server
        .listen("127.0.0.1:0".parse().unwrap())
        .await
        .expect("listening");
    (server, format!("http://{addr}"))
}

/// Run the UI's part of `scenario` against `url`; its JSON report.
async fn play_ui(url: &str, scenario: &str) -> Json {
    setup();
    let script = interop_dir().join("node/admin_client.js");
    let mut child = Command::new("node")
        .arg(script)
        .args([url, scenario, "admin", "s3cret"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node starts");
    let give_up = Instant::now() + NODE_DEADLINE;
    // Poll instead of blocking: the server runs on this thread's runtime.
    while child.try_wait().expect("node state").is_none() {
        if Instant::now() > give_up {
            let _ = child.kill();
            let _ = child.wait();
            panic!("node did not finish within {NODE_DEADLINE:?}");
        }
        socketio::sleep(Duration::from_millis(50)).await;
    }
    let output = child.wait_with_output().expect("node output");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report: Json = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "node printed no report ({e}): {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    assert!(report.get("error").is_none(), "the UI failed: {report}");
    report
}

fn basic() -> AdminOptions {
    AdminOptions::new(AdminAuth::basic("admin", "s3cret"))
}

fn strings(value: &Json) -> Vec<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {value}"))
        .iter()
        .map(|v| v.as_str().expect("a string").to_owned())
        .collect()
}

/// The statistics counted every client and namespace.
fn check_stats(report: &Json) {
    let stats = &report["stats"];
    assert_eq!(stats["serverId"], SERVER_ID);
    assert_eq!(stats["pid"], std::process::id());
    assert!(stats["hostname"].as_str().is_some_and(|h| !h.is_empty()));
    assert!(stats["uptime"].as_f64().is_some_and(|u| u > 0.0));
    // The WebSocket chat client, the polling one and the admin client.
    assert_eq!(stats["clientsCount"], 3, "{stats}");
    assert_eq!(stats["pollingClientsCount"], 1, "{stats}");
    let namespaces = stats["namespaces"].as_array().expect("namespaces");
    assert!(namespaces.contains(&json!({"name": "/", "socketsCount": 2})));
    assert!(namespaces.contains(&json!({"name": "/admin", "socketsCount": 1})));
}

#[test]
fn development_mode_reports_everything_and_acts() {
    RuntimeKind::Tokio.block_on(async {
        let (server, url) = start(basic()).await;
        let report = play_ui(&url, "development").await;
        let chat = report["chatId"].as_str().unwrap();
        let poller = report["pollerId"].as_str().unwrap();

        assert_eq!(
            strings(&report["config"]["supportedFeatures"]),
            [ACTIONS.as_slice(), &["AGGREGATED_EVENTS", "ALL_EVENTS"]].concat()
        );
        let session = report["session"].as_str().expect("a session id");
        assert!(session.len() == 32 && session.bytes().all(|b| b.is_ascii_hexdigit()));

        let sockets = report["allSockets"].as_array().expect("all_sockets");
        let find = |id: &str| {
            sockets
                .iter()
                .find(|s| s["id"] == id)
                .unwrap_or_else(|| panic!("{id} not in {sockets:?}"))
        };
        let listed = find(chat);
        assert_eq!(listed["nsp"], "/");
        assert_eq!(listed["transport"], "websocket");
        assert!(listed["clientId"].as_str().is_some_and(|c| !c.is_empty()));
        let mut rooms = strings(&listed["rooms"]);
        rooms.sort();
        let mut expected = vec![chat.to_owned(), "lobby".to_owned()];
        expected.sort();
        assert_eq!(rooms, expected);
        let handshake = &listed["handshake"];
        assert_eq!(handshake["address"], "127.0.0.1");
        assert_eq!(handshake["query"]["EIO"], "4");
        assert!(handshake["url"]
            .as_str()
            .unwrap()
            .starts_with("/socket.io/"));
        assert!(handshake["headers"]["host"].as_str().is_some());
        assert!(handshake["issued"].as_u64().is_some_and(|t| t > 0));
        assert!(handshake["time"].as_str().unwrap().ends_with('Z'));
        assert!(handshake.get("auth").is_none(), "auth must not be shown");
        assert_eq!(find(poller)["transport"], "polling");
        check_stats(&report);

        assert_eq!(report["eventReceived"], json!(["say", "hello"]));
        assert_eq!(report["eventSent"], json!(["said", "hello"]));
        let mut announced_to = strings(&report["announcedTo"]);
        announced_to.sort();
        let mut chat_sockets = vec![chat.to_owned(), poller.to_owned()];
        chat_sockets.sort();
        assert_eq!(
            announced_to, chat_sockets,
            "a broadcast is reported per receiver"
        );

        assert_eq!(report["emitToOne"], json!(["to you", 1]));
        assert_eq!(report["emitToAll"], json!([["to all"], ["to all"]]));

        assert_eq!(report["roomJoined"][0], "/");
        assert_eq!(report["roomJoined"][2], chat);
        assert!(strings(&report["roomsAfterJoin"]).contains(&"room2".to_owned()));
        assert!(!strings(&report["pollerRoomsAfterJoin"]).contains(&"room2".to_owned()));
        assert_eq!(report["roomLeft"][2], chat);
        let after_leave = strings(&report["roomsAfterLeave"]);
        assert!(!after_leave.contains(&"room2".to_owned()));
        assert!(after_leave.contains(&"lobby".to_owned()));

        assert_eq!(report["lateConnected"]["handshake"]["query"]["tag"], "late");
        assert_eq!(report["lateUpdated"]["transport"], "websocket");
        assert_eq!(report["lateUpdated"]["nsp"], "/");

        assert_eq!(report["chatDisconnectReason"], "io server disconnect");
        assert_eq!(report["socketDisconnected"][0], "/");
        assert_eq!(
            report["socketDisconnected"][2],
            "server namespace disconnect"
        );
        assert_eq!(report["sessionAdmitted"], true);
        assert_eq!(
            strings(&report["aggregatedTypes"]),
            ["rawConnection", "rawDisconnection"]
        );
        let messages = strings(&report["messages"]);
        for message in [
            "all_sockets",
            "config",
            "event_received",
            "event_sent",
            "room_joined",
            "room_left",
            "server_stats",
            "session",
            "socket_connected",
            "socket_disconnected",
            "socket_updated",
        ] {
            assert!(messages.contains(&message.to_owned()), "no {message}");
        }
        server.shutdown().await;
    });
}

#[test]
fn read_only_refuses_the_actions() {
    RuntimeKind::Tokio.block_on(async {
        let (server, url) = start(basic().read_only(true)).await;
        let report = play_ui(&url, "read_only").await;
        assert_eq!(
            strings(&report["config"]["supportedFeatures"]),
            ["AGGREGATED_EVENTS", "ALL_EVENTS"]
        );
        assert!(!strings(&report["roomsAfterJoin"]).contains(&"room2".to_owned()));
        assert_eq!(report["chatConnected"], true);
        check_stats(&report);
        server.shutdown().await;
    });
}

#[test]
fn production_mode_sends_statistics_only() {
    RuntimeKind::Tokio.block_on(async {
        let (server, url) = start(basic().mode(AdminMode::Production)).await;
        let report = play_ui(&url, "production").await;
        assert_eq!(
            strings(&report["config"]["supportedFeatures"]),
            [ACTIONS.as_slice(), &["AGGREGATED_EVENTS"]].concat()
        );
        check_stats(&report);
        assert_eq!(
            strings(&report["messages"]),
            ["config", "server_stats", "session"]
        );
        server.shutdown().await;
    });
}

#[test]
fn wrong_password_is_refused() {
    RuntimeKind::Tokio.block_on(async {
        let (server, url) = start(basic()).await;
        let report = play_ui(&url, "wrong_password").await;
        assert_eq!(report["connected"], false);
        assert_eq!(report["message"], "invalid credentials");
        server.shutdown().await;
    });
}

/// Our own client as the UI: a check function decides, and the messages
/// come in the order the UI reads them.
#[test]
fn rust_client_with_a_check_function() {
    RuntimeKind::Tokio.block_on(async {
        let options = AdminOptions::new(AdminAuth::check(|auth| {
            auth.get("token").and_then(|t| t.as_str()) == Some("let-me-in")
        }))
        .namespace("ops");
        let (server, url) = start(options).await;
        let admin_url = format!("{url}/ops");

        let refused = Client::builder(&admin_url)
            .reconnection(false)
            .auth(&json!({"token": "nope"}))
            .connect_simple()
            .await;
        match refused {
            Err(Error::ConnectRefused { message, .. }) => {
                assert_eq!(message, "invalid credentials")
            }
            other => panic!("expected a refusal, got {other:?}"),
        }

        let admin = Client::builder(&admin_url)
            .reconnection(false)
            .auth(&json!({"token": "let-me-in"}))
            .connect_simple()
            .await
            .expect("admitted");
        let mut names = Vec::new();
        for _ in 0..3 {
            let (name, _) = admin.receive(Some(WAIT)).await.expect("a message");
            names.push(name);
        }
        assert_eq!(names, ["session", "config", "all_sockets"]);
        loop {
            let (name, args) = admin.receive(Some(WAIT)).await.expect("a message");
            if name == "server_stats" {
                let stats: Json = args.get(0).expect("stats");
                assert_eq!(stats["serverId"], SERVER_ID);
                break;
            }
        }
        assert!(server.instrument(basic()).is_err(), "instrumented twice");
        server.shutdown().await;
    });
}

/// One HTTP/1.1 GET on a thread of its own (the server runs on this
/// one's runtime); the status code and the body.
async fn http_get(url: &str, path: &str, authorization: Option<&str>) -> (u16, String) {
    let addr = url.trim_start_matches("http://").to_owned();
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(value) = authorization {
        request.push_str(&format!("Authorization: {value}\r\n"));
    }
    request.push_str("\r\n");
    let exchange = std::thread::spawn(move || {
        let mut stream = TcpStream::connect(&addr).expect("connects");
        stream.set_read_timeout(Some(WAIT)).unwrap();
        stream.write_all(request.as_bytes()).expect("request sent");
        let mut response = Vec::new();
        stream.read_to_end(&mut response).expect("response read");
        String::from_utf8_lossy(&response).into_owned()
    });
    while !exchange.is_finished() {
        socketio::sleep(Duration::from_millis(20)).await;
    }
    let response = exchange.join().expect("the request thread");
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response}"));
    let body = response
        .split_once("\r\n\r\n")
        .map(|(head, body)| {
            assert!(status != 401 || head.contains("www-authenticate: Basic realm="));
            body.to_owned()
        })
        .unwrap_or_default();
    (status, body)
}

/// A server whose static files are the UI's web app at `/admin-ui/`.
fn ui_server() -> Server {
    setup();
    let ui = interop_dir().join("node/node_modules/@socket.io/admin-ui/ui/dist");
    let options = basic();
    let server = Server::builder()
        .runtime(RuntimeKind::Tokio)
        .static_files(StaticFiles::new().admin_ui("/admin-ui/", &ui, &options))
        .build();
    server.instrument(options).expect("instrumented once");
    server
}

/// The UI's web app is served from the npm package, behind HTTP Basic with
/// the admin credentials; the Socket.IO path is not.
async fn check_ui(url: &str) {
    let (status, _) = http_get(url, "/admin-ui/", None).await;
    assert_eq!(status, 401);
    // "admin:wrong", then "admin:s3cret".
    let (status, _) = http_get(url, "/admin-ui/", Some("Basic YWRtaW46d3Jvbmc=")).await;
    assert_eq!(status, 401);
    // An escaped character does not get around the prefix.
    let (status, _) = http_get(url, "/%61dmin-ui/index.html", None).await;
    assert_eq!(status, 401);
    let good = Some("Basic YWRtaW46czNjcmV0");
    let (status, body) = http_get(url, "/admin-ui/", good).await;
    assert_eq!(status, 200);
    assert!(body.contains("<title>Socket.IO Admin UI</title>"), "{body}");
    let script = body
        .split("src=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the page loads a script");
    let (status, _) = http_get(url, &format!("/admin-ui/{script}"), good).await;
    assert_eq!(status, 200);
    let (status, _) = http_get(url, "/socket.io/?EIO=4&transport=polling", None).await;
    assert_eq!(status, 200);
}

#[test]
fn the_ui_is_served_behind_the_same_credentials() {
    RuntimeKind::Tokio.block_on(async {
        let server = ui_server();
        let addr = server
            .listen("127.0.0.1:0".parse().unwrap())
            .await
            .expect("listening");
        check_ui(&format!("http://{addr}")).await;
        server.shutdown().await;
    });
}

/// The same through the tower service mounted in axum.
#[cfg(feature = "tower")]
#[test]
fn the_ui_is_served_behind_the_same_credentials_when_mounted() {
    RuntimeKind::Tokio.block_on(async {
        let app = axum::Router::new().layer(socketio::SocketIoLayer::new(ui_server()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        check_ui(&url).await;
    });
}
