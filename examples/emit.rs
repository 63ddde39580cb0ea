//! A write-only member of a cluster: emits one event to the clients of
//! every server sharing a Redis, a RabbitMQ, a Kafka topic or a ZeroMQ
//! broker, then exits (the command-line counterpart of python-socketio's
//! `RedisManager(write_only=True)`, `KombuManager(write_only=True)`,
//! `KafkaManager(write_only=True)` and `ZmqManager(write_only=True)`, and
//! of Node's `@socket.io/redis-emitter`).
//!
//! ```text
//! cargo run --release --example emit -- --redis URL --format python|node|node-sharded|streams
//!     (or --amqp URL: RabbitMQ, python format)
//!     (or --kafka URL[,URL...]: Kafka, python format, the topic named by the channel)
//!     (or --zmq zmq+tcp://HOST:PORT1+PORT2: ZeroMQ, python format)
//!     [--channel NAME] [--nsp /] [--room R] EVENT JSON_ARGS
//! ```
//!
//! `JSON_ARGS` is a JSON array: its elements are the event's arguments;
//! an object `{"$bin": "<hex>"}` anywhere in it stands for binary data
//! (the interop tests' convention).
//! Exits 0 once the broker took the message, 1 if it could not be published
//! within 10 s, 2 on bad usage.

use std::time::Duration;

#[path = "common/cli.rs"]
mod cli;
#[path = "common/log.rs"]
mod log;

use socketio::{AmqpAdapter, Emitter, KafkaAdapter, RedisAdapter, RuntimeKind, Value, ZmqAdapter};

/// `emit --help`.
static HELP: cli::Help = cli::Help {
    name: "emit",
    about: "emits one event to the clients of every server of a cluster, through its broker, then exits",
    usage: "(--redis URL --format F | --amqp URL | --kafka URL[,URL...] | --zmq URL) [options] EVENT JSON_ARGS",
    options: &[
        ("--redis URL", "Redis server (redis://host:port); needs --format"),
        ("--format F", "Redis message format: python, node, node-sharded or streams"),
        ("--amqp URL", "RabbitMQ server (amqp://host:port), python-socketio's format"),
        ("--kafka URL[,URL...]", "Kafka brokers, python-socketio's format; the topic is the channel"),
        ("--zmq URL", "ZeroMQ broker (zmq+tcp://HOST:PORT1+PORT2), python-socketio's format"),
        ("--channel NAME", "cluster channel (python-socketio's default)"),
        ("--nsp N", "namespace (/)"),
        ("--room R", "only the clients in room R (default: every client of the namespace)"),
        log::LOG_OPTION,
        ("EVENT", "the event's name"),
        ("JSON_ARGS", "a JSON array of the event's arguments; {\"$bin\": \"<hex>\"} stands for binary"),
    ],
    notes: "Exits 0 once the broker took the message, 1 if it could not be published within 10 s, 2 on bad usage.",
};

/// `{"$bin": "<hex>"}` objects become binary, anywhere in the tree.
fn with_binary(value: Value) -> Value {
    match value {
        Value::Object(map) => match map.as_slice() {
            [(key, Value::String(hex))] if key == "$bin" && hex.len() % 2 == 0 => {
                let bytes: Option<Vec<u8>> = (0..hex.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
                    .collect();
                match bytes {
                    Some(bytes) => Value::Binary(bytes.into()),
                    None => Value::Object(map),
                }
            }
            _ => Value::Object(map.into_iter().map(|(k, v)| (k, with_binary(v))).collect()),
        },
        Value::Array(items) => Value::Array(items.into_iter().map(with_binary).collect()),
        other => other,
    }
}

fn main() {
    let (mut redis, mut format, mut channel, mut nsp, mut room) =
        (None, None, None, String::from("/"), None);
    let (mut amqp, mut kafka, mut zmq) = (None, None::<String>, None);
    let mut positional = Vec::new();
    let mut log_filter = None;
    let mut args = HELP.args();
    while let Some(arg) = args.next_flag() {
        match arg.as_str() {
            "--redis" => redis = Some(args.value(&arg)),
            "--amqp" => amqp = Some(args.value(&arg)),
            "--kafka" => kafka = Some(args.value(&arg)),
            "--zmq" => zmq = Some(args.value(&arg)),
            "--format" => format = Some(args.value(&arg)),
            "--channel" => channel = Some(args.value(&arg)),
            "--nsp" => nsp = args.value(&arg),
            "--room" => room = Some(args.value(&arg)),
            "--log" => log_filter = Some(args.value(&arg)),
            flag if flag.starts_with("--") => args.unknown(flag),
            _ => positional.push(arg),
        }
    }
    let [event, json] = positional.as_slice() else {
        HELP.fail("EVENT and JSON_ARGS are required")
    };
    let values: Vec<Value> = serde_json::from_str(json)
        .unwrap_or_else(|e| HELP.fail(format!("JSON_ARGS is not a JSON array: {e}")));
    let adapter: Box<dyn socketio::Adapter> = match (redis, amqp, kafka, zmq) {
        (None, Some(url), None, None) => {
            let mut a =
                AmqpAdapter::python(&url).unwrap_or_else(|e| HELP.fail(format!("bad --amqp: {e}")));
            if let Some(channel) = channel {
                a = a.channel(&channel);
            }
            Box::new(a)
        }
        (None, None, Some(urls), None) => {
            let mut a = KafkaAdapter::python(&urls)
                .unwrap_or_else(|e| HELP.fail(format!("bad --kafka: {e}")));
            if let Some(channel) = channel {
                a = a.channel(&channel);
            }
            Box::new(a)
        }
        (Some(url), None, None, None) => {
            let adapter = match format.as_deref() {
                Some("python") => RedisAdapter::python(&url),
                Some("node") => RedisAdapter::node(&url),
                Some("node-sharded") => RedisAdapter::node_sharded(&url),
                // An entry on the stream, as the streams adapter appends
                // them (there is no streams emitter package).
                Some("streams") => RedisAdapter::node_streams(&url),
                _ => HELP.fail("--format python|node|node-sharded|streams is required"),
            };
            let mut a = adapter.unwrap_or_else(|e| HELP.fail(format!("bad --redis: {e}")));
            if let Some(channel) = channel {
                a = a.channel(&channel);
            }
            Box::new(a)
        }
        (None, None, None, Some(url)) => {
            let mut a =
                ZmqAdapter::python(&url).unwrap_or_else(|e| HELP.fail(format!("bad --zmq: {e}")));
            if let Some(channel) = channel {
                a = a.channel(&channel);
            }
            Box::new(a)
        }
        _ => HELP.fail("one of --redis, --amqp, --kafka and --zmq is required"),
    };
    log::init(log_filter, None, &HELP);
    let code = RuntimeKind::default().block_on(async move {
        let emitter = Emitter::new(&*adapter);
        let mut target = emitter.of(&nsp);
        if let Some(room) = &room {
            target = target.to(room);
        }
        // The arguments spread: one per element of the array.
        let args = socketio::Args::from_values(values.into_iter().map(with_binary).collect());
        if let Err(e) = target.emit(event, &args) {
            eprintln!("cannot emit: {e}");
            return 1;
        }
        match emitter.flush(Duration::from_secs(10)).await {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("not published: {e}");
                1
            }
        }
    });
    std::process::exit(code);
}
