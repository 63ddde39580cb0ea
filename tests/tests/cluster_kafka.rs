//! A mixed cluster over Kafka: two of our nodes (`echo_server --adapter
//! kafka`, tokio and smol) and one python-socketio 5.18.1 node
//! (`KafkaManager`, sync, see `python/cluster_server_kafka.py`) on a real
//! Kafka-protocol broker (tansu, see `socketio_interop::kafka`), a Node and a
//! Python client on every node.
//!
//! Checks broadcasts to all / to a room / except a room (exactly once where
//! they should arrive, nowhere else), rooms joined and left from other
//! nodes, acks asked of sockets on other nodes both ways, our write-only
//! emitter, hostile records on the topic, remote disconnections, and the
//! broker restarted mid-run (traffic from our nodes resumes and reaches the
//! python node too; see [`broker_restart`] for why not from python's).

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use socketio_interop::cluster::{
    run_emitter, ClientKind, ClusterClients, EmitTarget, EmitterKind, NodeKind, OurFormat,
};
use socketio_interop::kafka::{KafkaCluster, TansuBroker};
use socketio_interop::Runtime;

const DELIVERY: Duration = Duration::from_secs(8);
/// Longer than with Redis: a waiting fetch may be answered at its deadline
/// rather than when a record arrives.
const QUIET: Duration = Duration::from_millis(1000);
const NODES: usize = 3;
/// How long the cluster may take to carry messages again after the broker
/// restarted (kafka-python's reconnection back-off included).
const RECOVERY: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Who(usize, usize);

const NODE_CLIENTS: usize = 0;
const PYTHON_CLIENTS: usize = 1;
/// The python node's index.
const PY: usize = 1;

fn everyone() -> Vec<Who> {
    (0..2)
        .flat_map(|proc| (0..NODES).map(move |client| Who(proc, client)))
        .collect()
}

fn all_but(except: &[Who]) -> Vec<Who> {
    everyone()
        .into_iter()
        .filter(|who| !except.contains(who))
        .collect()
}

struct Scene {
    cluster: KafkaCluster,
    clients: Vec<ClusterClients>,
    sids: Vec<Vec<String>>,
}

macro_rules! ok {
    ($scene:expr, $result:expr) => {
        match $result {
            Ok(value) => value,
            Err(reason) => $scene.fail(reason),
        }
    };
}

impl Scene {
    fn start(broker: TansuBroker, kinds: [NodeKind; NODES]) -> Scene {
        let cluster = KafkaCluster::start_on(broker, &kinds).unwrap_or_else(|err| panic!("{err}"));
        let urls = cluster.urls();
        let mut scene = Scene {
            cluster,
            clients: Vec::new(),
            sids: Vec::new(),
        };
        for client_kind in [ClientKind::Node, ClientKind::Python] {
            let clients = ok!(scene, ClusterClients::spawn(client_kind, &urls));
            scene.clients.push(clients);
        }
        for proc in 0..2 {
            let sids = ok!(scene, scene.clients[proc].wait_connected());
            scene.sids.push(sids);
        }
        scene
    }

    fn fail(&self, reason: String) -> ! {
        let mut report = format!("{reason}\n\n===== everything =====\n");
        for clients in &self.clients {
            report.push_str(&format!(
                "----- {} clients -----\n{}\n",
                clients.kind(),
                clients.output()
            ));
        }
        report.push_str(&self.cluster.output());
        panic!("{report}");
    }

    fn sid(&self, who: Who) -> String {
        self.sids[who.0][who.1].clone()
    }

    fn call(&mut self, who: Who, event: &str, args: &[Value]) -> Value {
        ok!(self, self.clients[who.0].call(who.1, event, args))
    }

    fn emit(&mut self, who: Who, event: &str, args: &[Value]) {
        ok!(self, self.clients[who.0].emit(who.1, event, args))
    }

    /// `name(args...)` reaches every client of `to` exactly once and no
    /// other client at all.
    fn delivered(&mut self, name: &str, args: &Value, to: &[Who]) {
        for &who in to {
            ok!(
                self,
                self.clients[who.0].expect_event(who.1, name, args, DELIVERY)
            );
        }
        for proc in 0..self.clients.len() {
            ok!(self, self.clients[proc].settle(QUIET));
        }
        for who in everyone() {
            let count = ok!(self, self.clients[who.0].count(who.1, name, args));
            let want = usize::from(to.contains(&who));
            if count != want {
                self.fail(format!(
                    "{who:?} ({}) received {name}{args} {count} times, want {want}",
                    self.sid(who)
                ));
            }
        }
    }

    fn clear(&mut self) {
        for proc in 0..self.clients.len() {
            ok!(self, self.clients[proc].clear_events());
        }
    }

    /// Broadcasts from `from`, ten at a time, until every client heard one
    /// of them (each node's consumer and `from`'s producer work again).
    ///
    /// Many may be needed for the python node: the restarted broker's log
    /// starts again from offset 0, tansu answers a fetch past the end of a
    /// log with no records and no error, and kafka-python keeps its old
    /// position, so the python node hears again only once the new log has
    /// passed it. (Our nodes notice the new log and read it from its start.)
    fn until_everyone_hears(&mut self, from: Who, tag: &str, to: &[Who]) {
        let deadline = Instant::now() + RECOVERY;
        for n in 0.. {
            for k in 0..10 {
                self.emit(from, "shout", &[json!(format!("{tag}-{n}-{k}"))]);
            }
            let wait = Instant::now() + Duration::from_secs(2);
            let mut missing = to.to_vec();
            while !missing.is_empty() && Instant::now() < wait {
                // Read what the clients received meanwhile.
                for proc in 0..self.clients.len() {
                    ok!(self, self.clients[proc].settle(Duration::from_millis(50)));
                }
                let mut still = Vec::new();
                for who in missing {
                    let heard = ok!(self, self.clients[who.0].events(who.1, "shout-back"))
                        .iter()
                        .any(|args| {
                            args.get(0)
                                .and_then(Value::as_str)
                                .is_some_and(|a| a.starts_with(&format!("{tag}-")))
                        });
                    if !heard {
                        still.push(who);
                    }
                }
                missing = still;
            }
            if missing.is_empty() {
                return;
            }
            if Instant::now() >= deadline {
                self.fail(format!(
                    "after the broker restart, {missing:?} heard none of {} broadcasts from {from:?} in {RECOVERY:?}",
                    n + 1
                ));
            }
        }
    }
}

/// Broadcasts, rooms, except, acks across nodes (python and ours both
/// asking and answering), leaving across nodes.
fn common(scene: &mut Scene) {
    for who in everyone() {
        let hello = json!([{"sid": scene.sid(who)}]);
        ok!(
            scene,
            scene.clients[who.0].expect_event(who.1, "hello", &hello, DELIVERY)
        );
    }

    // Broadcast to all from every node, binary included.
    let args = json!(["all-1", {"$bin": "0102ff"}, {"n": [1, 2.5, null]}]);
    let list = args.as_array().unwrap().clone();
    scene.emit(Who(NODE_CLIENTS, 0), "shout", &list);
    scene.delivered("shout-back", &args, &everyone());
    let args = json!(["all-py", {"$bin": "ff00"}, [true]]);
    let list = args.as_array().unwrap().clone();
    scene.emit(Who(PYTHON_CLIENTS, PY), "shout", &list);
    scene.delivered("shout-back", &args, &everyone());
    scene.emit(Who(PYTHON_CLIENTS, 2), "shout", &[json!("all-2")]);
    scene.delivered("shout-back", &json!(["all-2"]), &everyone());

    // Room "r": one member joins on the python node, one on node 2 is made
    // to join from node 0 (ours to ours).
    let joined = scene.call(Who(NODE_CLIENTS, PY), "join", &[json!("r")]);
    assert_eq!(joined, json!([true]), "join ack");
    let target = scene.sid(Who(PYTHON_CLIENTS, 2));
    let entered = scene.call(
        Who(NODE_CLIENTS, 0),
        "enter-room",
        &[json!(target), json!("r")],
    );
    assert_eq!(entered, json!([true]), "enter-room ack");
    let members = [Who(NODE_CLIENTS, PY), Who(PYTHON_CLIENTS, 2)];
    scene.call(
        Who(PYTHON_CLIENTS, 0),
        "shout-to",
        &[json!("r"), json!("to-r")],
    );
    scene.delivered("shout-back", &json!(["to-r"]), &members);
    // The python node makes a socket of ours join room "k"; ours broadcasts.
    let target = scene.sid(Who(PYTHON_CLIENTS, 0));
    let entered = scene.call(
        Who(NODE_CLIENTS, PY),
        "enter-room",
        &[json!(target), json!("k")],
    );
    assert_eq!(entered, json!([true]), "enter-room ack (python)");
    // From the node that published the join: one node's messages stay in
    // order on the bus (one partition), so the join is applied everywhere
    // before this broadcast (another node's broadcast could overtake it).
    scene.call(
        Who(PYTHON_CLIENTS, PY),
        "shout-to",
        &[json!("k"), json!("to-k")],
    );
    scene.delivered("shout-back", &json!(["to-k"]), &[Who(PYTHON_CLIENTS, 0)]);

    // Except room "x", members on the node that broadcasts (python's bus
    // skips sids only), once from ours and once from python.
    scene.call(Who(NODE_CLIENTS, 2), "join", &[json!("x")]);
    scene.call(Who(PYTHON_CLIENTS, 2), "join", &[json!("x")]);
    let x_members = [Who(NODE_CLIENTS, 2), Who(PYTHON_CLIENTS, 2)];
    scene.call(
        Who(NODE_CLIENTS, 2),
        "shout-except",
        &[json!("x"), json!("except-x")],
    );
    scene.delivered("shout-back", &json!(["except-x"]), &all_but(&x_members));
    scene.call(Who(PYTHON_CLIENTS, PY), "join", &[json!("y")]);
    scene.call(
        Who(NODE_CLIENTS, PY),
        "shout-except",
        &[json!("y"), json!("except-y")],
    );
    scene.delivered(
        "shout-back",
        &json!(["except-y"]),
        &all_but(&[Who(PYTHON_CLIENTS, PY)]),
    );

    // Acks of sockets on other nodes: ours asks python, python asks ours,
    // ours asks ours; each answer comes back exactly once.
    for (asker, asked, data) in [
        (Who(NODE_CLIENTS, 0), Who(PYTHON_CLIENTS, PY), json!("q1")),
        (
            Who(PYTHON_CLIENTS, PY),
            Who(NODE_CLIENTS, 2),
            json!({"k": [1]}),
        ),
        (
            Who(PYTHON_CLIENTS, 2),
            Who(NODE_CLIENTS, 0),
            json!(["q", 3]),
        ),
    ] {
        let sid = scene.sid(asked);
        let answer = scene.call(asker, "call-sid", &[json!(sid), data.clone()]);
        if answer != json!([[["answer", data]]]) {
            scene.fail(format!("call-sid {asker:?} -> {asked:?} answered {answer}"));
        }
        scene.delivered("question", &json!([data]), &[asked]);
    }

    // Leaving across nodes (ours makes python's socket... and python makes
    // ours leave).
    let target = scene.sid(Who(PYTHON_CLIENTS, 2));
    let left = scene.call(
        Who(NODE_CLIENTS, 0),
        "leave-room",
        &[json!(target), json!("r")],
    );
    assert_eq!(left, json!([true]), "leave-room ack");
    let target = scene.sid(Who(PYTHON_CLIENTS, 0));
    let left = scene.call(
        Who(PYTHON_CLIENTS, PY),
        "leave-room",
        &[json!(target), json!("k")],
    );
    assert_eq!(left, json!([true]), "leave-room ack (python)");
    scene.call(
        Who(PYTHON_CLIENTS, 0),
        "shout-to",
        &[json!("r"), json!("after-leave")],
    );
    scene.delivered(
        "shout-back",
        &json!(["after-leave"]),
        &[Who(NODE_CLIENTS, PY)],
    );
    scene.call(
        Who(NODE_CLIENTS, PY),
        "shout-to",
        &[json!("k"), json!("after-leave-k")],
    );
    scene.delivered("shout-back", &json!(["after-leave-k"]), &[]);
}

/// Our write-only emitter reaches every node, to all and to a room.
fn emitter(scene: &mut Scene) {
    scene.clear();
    let url = scene.cluster.broker.url();
    let args = json!(["from-emitter", {"$bin": "00ff"}, 7]);
    ok!(
        scene,
        run_emitter(
            EmitterKind::OursKafka,
            &url,
            "emitted",
            &args,
            &EmitTarget::default()
        )
    );
    scene.delivered("emitted", &args, &everyone());
    let target = EmitTarget {
        room: Some("x".into()),
        ..EmitTarget::default()
    };
    let args = json!([{"to": "x"}]);
    ok!(
        scene,
        run_emitter(EmitterKind::OursKafka, &url, "emitted", &args, &target)
    );
    scene.delivered(
        "emitted",
        &args,
        &[Who(NODE_CLIENTS, 2), Who(PYTHON_CLIENTS, 2)],
    );
}

/// Records that are not valid messages break no node.
fn hostile(scene: &mut Scene) {
    let messages: &[&[u8]] = &[
        b"not json",
        b"\xff\xfe",
        b"{}",
        b"",
        br#"{"method":"emit"}"#,
        br#"{"method":"enter_room","sid":null,"room":[]}"#,
        br#"{"method":"callback","host_id":"nobody","sid":"x","id":"7"}"#,
        br#"{"method":"disconnect","sid":{"a":1},"namespace":"/"}"#,
    ];
    for message in messages {
        ok!(scene, scene.cluster.broker.publish_raw("socketio", message));
    }
    scene.emit(Who(PYTHON_CLIENTS, PY), "shout", &[json!("after-garbage")]);
    scene.delivered("shout-back", &json!(["after-garbage"]), &everyone());
    scene.emit(Who(NODE_CLIENTS, 0), "shout", &[json!("after-garbage-2")]);
    scene.delivered("shout-back", &json!(["after-garbage-2"]), &everyone());
}

/// The broker is restarted (empty: in-memory storage, the topic created
/// again): our nodes carry traffic again, exactly once, to every node.
///
/// Not from the python node: kafka-python's producer is idempotent by
/// default, and a broker that lost its producer state refuses the sequence
/// numbers it goes on with; it retries forever, and python-socketio's
/// `_publish` waits in `flush()` for good. A Kafka broker keeps that state
/// across restarts; tansu's in-memory storage cannot.
fn broker_restart(scene: &mut Scene) {
    // Disconnected by `disconnect_remote`.
    let left = all_but(&[Who(NODE_CLIENTS, 2), Who(NODE_CLIENTS, PY)]);
    ok!(scene, scene.cluster.broker.restart());
    scene.until_everyone_hears(Who(NODE_CLIENTS, 0), "probe-ours", &left);
    scene.clear();
    for (from, tag) in [
        (Who(PYTHON_CLIENTS, 2), "after-restart-2"),
        (Who(PYTHON_CLIENTS, 0), "after-restart-0"),
    ] {
        scene.emit(from, "shout", &[json!(tag)]);
        scene.delivered("shout-back", &json!([tag]), &left);
    }
    // Rooms survived.
    scene.call(
        Who(NODE_CLIENTS, 0),
        "shout-to",
        &[json!("x"), json!("to-x")],
    );
    scene.delivered("shout-back", &json!(["to-x"]), &[Who(PYTHON_CLIENTS, 2)]);
}

/// Remote disconnections: python disconnects a socket of ours, ours one of
/// python's.
fn disconnect_remote(scene: &mut Scene) {
    for (asker, victim) in [
        (Who(PYTHON_CLIENTS, PY), Who(NODE_CLIENTS, 2)),
        (Who(PYTHON_CLIENTS, 0), Who(NODE_CLIENTS, PY)),
    ] {
        let sid = scene.sid(victim);
        let done = scene.call(asker, "disconnect-sid", &[json!(sid)]);
        assert_eq!(done, json!([true]), "disconnect-sid ack");
        let reasons = ok!(
            scene,
            scene.clients[victim.0].wait_disconnected(victim.1, DELIVERY)
        );
        if reasons != ["io server disconnect"] {
            scene.fail(format!("{victim:?} disconnected with {reasons:?}"));
        }
    }
}

#[test]
fn ours_python_ours_kafka() {
    let broker = match TansuBroker::start(&["socketio"]) {
        Ok(broker) => broker,
        Err(err) if std::env::var_os("SOCKETIO_INTEROP_REQUIRE_KAFKA").is_none() => {
            eprintln!("note: ours_python_ours_kafka skipped: no Kafka broker: {err}");
            return;
        }
        Err(err) => panic!("{err}"),
    };
    let kinds = [
        NodeKind::Ours(Runtime::Tokio, OurFormat::Kafka),
        NodeKind::PythonKafka,
        NodeKind::Ours(Runtime::Smol, OurFormat::Kafka),
    ];
    let mut scene = Scene::start(broker, kinds);
    common(&mut scene);
    emitter(&mut scene);
    hostile(&mut scene);
    disconnect_remote(&mut scene);
    broker_restart(&mut scene);
}
