//! Echo client used by the interoperability tests: runs a fixed scenario
//! against an `echo_server` (this crate's or another implementation's) and
//! prints one line starting with PASS or FAIL.
//!
//! ```text
//! cargo run --release --example echo_client -- --url http://127.0.0.1:3000
//!     --transports polling|websocket|upgrade --nsp /custom [--auth JSON]
//!     [--parser json|msgpack] [--expect-reject] [--reconnect-check]
//!     [--runtime tokio|async-std|smol]
//! ```
//!
//! `--reconnect-check` (outside the examples' contract, used by the
//! interop harness): after the first round trips the client prints
//! `RESTART-ME`; the harness kills the server and starts it again on the
//! same port; the client must see the transport drop (`transport close` or
//! `transport error`), reconnect by itself and pass the round trips again.

use std::collections::VecDeque;
use std::future::Future;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use futures_channel::mpsc;
use futures_util::future::{select, Either};
use futures_util::StreamExt;
// socketio's tests include this file and echo_server.rs in one crate:
// both bring these modules.
#[path = "common/cli.rs"]
#[allow(clippy::duplicate_mod)]
mod cli;
#[path = "common/log.rs"]
#[allow(clippy::duplicate_mod)]
mod log;
#[path = "common/runtimes.rs"]
#[allow(clippy::duplicate_mod)]
mod runtimes;

use socketio::{
    AnyParser, Args, Binary, Bytes, Client, ClientAck, ClientSocket, ClientTransports, Error,
    JsonParser, MsgPackParser, Runtime, Str, Transport, Value,
};

/// Options of the echo client.
#[derive(Clone)]
pub struct ClientOptions {
    /// Server URL.
    pub url: String,
    /// Transports.
    pub transports: ClientTransports,
    /// Namespace.
    pub nsp: String,
    /// Auth object sent on connect.
    pub auth: Option<Value>,
    /// Wire format.
    pub parser: AnyParser,
    /// Pass only if the server refuses the connection.
    pub expect_reject: bool,
    /// Ask for a server restart after the first round trips and check the
    /// reconnection.
    pub reconnect_check: bool,
    /// The runtime.
    pub runtime: Arc<dyn Runtime>,
}

/// How long the whole scenario may take.
pub const OVERALL: Duration = Duration::from_secs(20);
/// How long it may take with `--reconnect-check` (the restart, and the
/// reconnection's back-off, come on top).
pub const OVERALL_WITH_RESTART: Duration = Duration::from_secs(40);
const STEP: Duration = Duration::from_secs(5);
/// How long the drop and the reconnection may each take after `RESTART-ME`.
const RESTART_STEP: Duration = Duration::from_secs(15);

pub async fn within<T>(limit: Duration, future: impl Future<Output = T>) -> Option<T> {
    let timer = Box::pin(socketio::sleep(limit));
    match select(Box::pin(future), timer).await {
        Either::Left((value, _)) => Some(value),
        Either::Right(_) => None,
    }
}

fn bytes(b: &[u8]) -> Value {
    Value::Binary(Bytes::copy_from_slice(b))
}

fn obj(pairs: Vec<(&str, Value)>) -> Value {
    Value::Object(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

/// Loose equality across implementations: numbers compare by value (a
/// peer may re-encode `-2.5e10` as an integer), objects by key.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => as_f64(x) == as_f64(y),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.iter().any(|(k2, v2)| k == k2 && same(v, v2)))
        }
        _ => a == b,
    }
}

fn as_f64(n: &socketio::core::value::Number) -> f64 {
    use socketio::core::value::Number;
    match *n {
        Number::PosInt(i) => i as f64,
        Number::NegInt(i) => i as f64,
        Number::Float(f) => f,
    }
}

fn same_args(a: &[Value], b: &[Value]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(a, b)| same(a, b))
}

/// The argument lists `echo` must round-trip.
fn vectors() -> Vec<Vec<Value>> {
    vec![
        vec![Value::from("héllo wörld ✓ 日本語 😀 𝄞 \u{10FFFF}")],
        vec![
            Value::from(0u64),
            Value::from(42u64),
            Value::from(-7i64),
            Value::from(1.5f64),
            Value::from(-2.5e10f64),
            Value::from(9_007_199_254_740_991u64),
        ],
        vec![obj(vec![
            (
                "a",
                obj(vec![
                    (
                        "b",
                        Value::Array(vec![Value::from(1u64), obj(vec![("c", Value::Null)])]),
                    ),
                    ("d", Value::Bool(true)),
                ]),
            ),
            ("e", Value::from("x")),
        ])],
        vec![
            bytes(&[1, 2, 3]),
            bytes(&[0, 255]),
            bytes(&[0xAB; 300]),
            Value::from("between"),
        ],
        vec![obj(vec![
            ("bin", bytes(&[4, 5, 6])),
            ("list", Value::Array(vec![bytes(&[7]), Value::from("s")])),
        ])],
        vec![],
    ]
}

type Seen = (String, Vec<Value>);

/// Received events, kept in arrival order: one that arrives before it is
/// waited for (python-socketio sends the `auth` echo even before its
/// CONNECT reply) is not lost.
struct Inbox {
    rx: mpsc::UnboundedReceiver<Seen>,
    kept: VecDeque<Seen>,
}

impl Inbox {
    /// The first event named `name`, waiting at most [`STEP`].
    async fn expect(&mut self, name: &str) -> Result<Vec<Value>, String> {
        self.expect_within(name, STEP).await
    }

    /// The first event named `name` (others are kept for later).
    async fn expect_within(&mut self, name: &str, limit: Duration) -> Result<Vec<Value>, String> {
        if let Some(at) = self.kept.iter().position(|(seen, _)| seen == name) {
            return Ok(self.kept.remove(at).expect("position is in range").1);
        }
        let wait = async {
            while let Some((seen, args)) = self.rx.next().await {
                if seen == name {
                    return Some(args);
                }
                self.kept.push_back((seen, args));
            }
            None
        };
        within(limit, wait)
            .await
            .flatten()
            .ok_or_else(|| format!("no {name} within {limit:?}"))
    }

    /// Forget what arrived so far.
    fn clear(&mut self) {
        self.kept.clear();
        while self.rx.try_recv().is_ok() {}
    }
}

/// Run the scenario; `Ok` holds the PASS detail.
pub async fn run(options: &ClientOptions) -> Result<String, String> {
    let (tx, rx) = mpsc::unbounded::<Seen>();
    let mut inbox = Inbox {
        rx,
        kept: VecDeque::new(),
    };
    let any_tx = tx.clone();
    let question_tx = tx.clone();
    let connect_tx = tx.clone();
    let disconnect_tx = tx.clone();
    let mut builder = Client::builder(&options.url)
        .transports(options.transports)
        .parser(options.parser)
        .custom_runtime(options.runtime.clone())
        .reconnection(options.reconnect_check)
        .reconnection_delay(Duration::from_millis(200))
        .reconnection_delay_max(Duration::from_secs(1))
        .wait_timeout(STEP)
        .on_any(
            move |_s: ClientSocket, name: Str, args: Args, _ack: Option<ClientAck>| {
                let tx = any_tx.clone();
                async move {
                    let values = args.to_values().unwrap_or_default();
                    let _ = tx.unbounded_send((name.to_string(), values));
                }
            },
        )
        .on(
            "question",
            move |_s: ClientSocket, args: Args, ack: Option<ClientAck>| {
                let tx = question_tx.clone();
                async move {
                    let values = args.to_values().unwrap_or_default();
                    let token = values.first().and_then(|v| v.as_str()).unwrap_or("");
                    let reply = (format!("{token}!"), Binary(Bytes::from_static(&[7, 8, 9])));
                    let answered = match ack {
                        Some(ack) => ack.send(&reply).is_ok(),
                        None => false,
                    };
                    let mut seen = values.clone();
                    seen.push(Value::Bool(answered));
                    let _ = tx.unbounded_send(("question".into(), seen));
                }
            },
        )
        .on_connect(move |_s: ClientSocket| {
            let tx = connect_tx.clone();
            async move {
                let _ = tx.unbounded_send(("#connect".into(), Vec::new()));
            }
        })
        .on_disconnect(move |_s: ClientSocket, reason| {
            let tx = disconnect_tx.clone();
            async move {
                let _ =
                    tx.unbounded_send(("#disconnect".into(), vec![Value::from(reason.as_str())]));
            }
        });
    builder = match &options.auth {
        Some(auth) => builder.namespace_with_auth(&options.nsp, auth),
        None => builder.namespace(&options.nsp),
    };
    let client = match builder.connect().await {
        Ok(client) => client,
        Err(Error::ConnectRefused { message, .. }) if options.expect_reject => {
            return if message == "rejected by server" {
                Ok("refused as expected".into())
            } else {
                Err(format!("refused with {message:?}"))
            };
        }
        Err(e) => return Err(format!("connect: {e}")),
    };
    if options.expect_reject {
        client.disconnect().await;
        return Err("connected although a refusal was expected".into());
    }
    let result = scenario(options, &client, &mut inbox).await;
    client.disconnect().await;
    result
}

async fn scenario(
    options: &ClientOptions,
    client: &Client,
    inbox: &mut Inbox,
) -> Result<String, String> {
    let socket = client.socket(&options.nsp);
    round_trips(options, &socket, inbox, "").await?;
    if options.reconnect_check {
        inbox.clear();
        println!("RESTART-ME");
        let _ = std::io::stdout().flush();
        let reason = inbox.expect_within("#disconnect", RESTART_STEP).await?;
        let dropped = ["transport close", "transport error"].map(Value::from);
        if !dropped
            .iter()
            .any(|r| same_args(&reason, std::slice::from_ref(r)))
        {
            return Err(format!("disconnect reason after the restart {reason:?}"));
        }
        inbox.expect_within("#connect", RESTART_STEP).await?;
        round_trips(options, &socket, inbox, "after reconnect: ").await?;
    }
    let wanted = match options.transports {
        ClientTransports::Polling => Transport::Polling,
        _ => Transport::WebSocket,
    };
    let mut transport = client.transport();
    for _ in 0..100 {
        if transport == Some(wanted) {
            break;
        }
        socketio::sleep(Duration::from_millis(50)).await;
        transport = client.transport();
    }
    if transport != Some(wanted) {
        return Err(format!("transport {transport:?}, expected {wanted:?}"));
    }
    socket
        .emit("disconnect-me", &())
        .map_err(|e| e.to_string())?;
    let reason = inbox.expect("#disconnect").await?;
    if !same_args(&reason, &[Value::from("io server disconnect")]) {
        return Err(format!("disconnect reason {reason:?}"));
    }
    Ok(format!("{} on {:?}", options.nsp, wanted))
}

/// Auth echo, every `echo` vector, `ask` and `shout`; `label` prefixes the
/// failures.
async fn round_trips(
    options: &ClientOptions,
    socket: &ClientSocket,
    inbox: &mut Inbox,
    label: &str,
) -> Result<(), String> {
    let expected_auth = options.auth.clone().unwrap_or(Value::Object(Vec::new()));
    let auth = inbox.expect("auth").await?;
    if !same_args(&auth, std::slice::from_ref(&expected_auth)) {
        return Err(format!(
            "{label}auth echo {auth:?}, expected {expected_auth:?}"
        ));
    }
    for (i, vector) in vectors().into_iter().enumerate() {
        let answer = socket
            .call("echo", &Args::from_values(vector.clone()), STEP)
            .await
            .map_err(|e| format!("{label}echo #{i}: {e}"))?;
        let answer = answer.to_values().map_err(|e| format!("{label}{e}"))?;
        if !same_args(&answer, &vector) {
            return Err(format!("{label}echo #{i} ack {answer:?}, sent {vector:?}"));
        }
        let back = inbox.expect("echo-back").await?;
        if !same_args(&back, &vector) {
            return Err(format!("{label}echo-back #{i} {back:?}, sent {vector:?}"));
        }
    }
    let token = "tok-123";
    let answer = socket
        .call("ask", &(token,), STEP)
        .await
        .map_err(|e| format!("{label}ask: {e}"))?
        .to_values()
        .map_err(|e| format!("{label}{e}"))?;
    let question = inbox.expect("question").await?;
    let expected_question = [Value::from(token), bytes(&[9, 8, 7]), Value::Bool(true)];
    if !same_args(&question, &expected_question) {
        return Err(format!("{label}question {question:?}"));
    }
    if !same_args(&answer, &[Value::from("tok-123!"), bytes(&[7, 8, 9])]) {
        return Err(format!("{label}ask answered {answer:?}"));
    }
    socket
        .emit("shout", &("hey", 1))
        .map_err(|e| format!("{label}{e}"))?;
    let shout = inbox.expect("shout-back").await?;
    if !same_args(&shout, &[Value::from("hey"), Value::from(1u64)]) {
        return Err(format!("{label}shout-back {shout:?}"));
    }
    Ok(())
}

/// `echo_client --help`.
static HELP: cli::Help = cli::Help {
    name: "echo_client",
    about: "runs the interoperability tests' echo scenario against an echo server and prints one line, PASS or FAIL",
    usage: "--url U --transports polling|websocket|upgrade --nsp N [options]",
    options: &[
        ("--url U", "the server (http://127.0.0.1:3000)"),
        ("--transports T", "polling, websocket, or upgrade (polling then websocket)"),
        ("--nsp N", "namespace to connect to (/ or /custom)"),
        ("--auth JSON", "auth payload of the CONNECT packet"),
        ("--parser json|msgpack", "wire format (json)"),
        ("--expect-reject", "pass if the server refuses the connection"),
        ("--reconnect-check", "print RESTART-ME, then expect the server to restart and reconnect by itself"),
        ("--runtime tokio|async-std|smol", "async runtime (tokio)"),
        log::LOG_OPTION,
    ],
    notes: "Exits 0 on PASS, 1 on FAIL.",
};

#[allow(dead_code)]
fn main() {
    let mut runtime = String::from("tokio");
    let mut url = None;
    let mut transports = None;
    let mut nsp = None;
    let mut options = ClientOptions {
        url: String::new(),
        transports: ClientTransports::Upgrade,
        nsp: String::new(),
        auth: None,
        parser: AnyParser::default(),
        expect_reject: false,
        reconnect_check: false,
        runtime: Arc::new(socketio_smol::SmolRuntime),
    };
    let mut log_filter = None;
    let mut args = HELP.args();
    while let Some(flag) = args.next_flag() {
        match flag.as_str() {
            "--url" => url = Some(args.value(&flag)),
            "--transports" => {
                transports = Some(match args.value(&flag).as_str() {
                    "polling" => ClientTransports::Polling,
                    "websocket" => ClientTransports::WebSocket,
                    "upgrade" => ClientTransports::Upgrade,
                    other => HELP.fail(format!("unknown transports {other}")),
                })
            }
            "--nsp" => nsp = Some(args.value(&flag)),
            "--auth" => {
                let text = args.value(&flag);
                let json: serde_json::Value = serde_json::from_str(&text)
                    .unwrap_or_else(|e| HELP.fail(format!("--auth is not JSON: {e}")));
                options.auth = Some(
                    socketio::core::value::to_value(&json)
                        .unwrap_or_else(|e| HELP.fail(format!("--auth: {e}"))),
                );
            }
            "--parser" => {
                options.parser = match args.value(&flag).as_str() {
                    "json" => JsonParser.into(),
                    "msgpack" => MsgPackParser.into(),
                    other => HELP.fail(format!("unknown parser {other}")),
                }
            }
            "--expect-reject" => options.expect_reject = true,
            "--reconnect-check" => options.reconnect_check = true,
            "--runtime" => {
                runtime = args.value(&flag);
                if runtimes::runtime_named(&runtime).is_none() {
                    HELP.fail(format!("unknown runtime {runtime}"));
                }
            }
            "--log" => log_filter = Some(args.value(&flag)),
            _ => args.unknown(&flag),
        }
    }
    options.url = url.unwrap_or_else(|| HELP.fail("--url is required"));
    options.transports = transports.unwrap_or_else(|| HELP.fail("--transports is required"));
    options.nsp = nsp.unwrap_or_else(|| HELP.fail("--nsp is required"));
    log::init(log_filter, None, &HELP);
    let overall = if options.reconnect_check {
        OVERALL_WITH_RESTART
    } else {
        OVERALL
    };
    let outcome = runtimes::block_on(&runtime.clone(), async move {
        options.runtime = socketio::current_runtime();
        within(overall, run(&options)).await
    });
    match outcome {
        Some(Ok(detail)) => {
            println!("PASS {detail}");
            std::process::exit(0)
        }
        Some(Err(why)) => println!("FAIL {why}"),
        None => println!("FAIL overall timeout of {overall:?}"),
    }
    std::process::exit(1)
}
