//! The scene of the mixed cluster tests (`tests/tests/cluster.rs` over
//! Redis, `tests/tests/cluster_amqp.rs` over RabbitMQ,
//! `tests/tests/cluster_kafka.rs` over Kafka, `tests/tests/cluster_zmq.rs`
//! over ZeroMQ): a [`Cluster`] of
//! [`NODES`] nodes on a [`Bus`], a Node client process and a Python client
//! process with one client on every node, and the checks and scenario steps
//! both test files run.
//!
//! Every failure panics through [`Scene::fail`], with the output of every
//! process of the scene; [`ok!`](crate::ok) unwraps a harness result that
//! way.

use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::cluster::{
    run_emitter, Bus, ClientKind, Cluster, ClusterClients, EmitTarget, EmitterKind, NodeKind,
    RedisServer,
};

/// How long a delivery may take (by default: see [`Bus::DELIVERY`]).
pub const DELIVERY: Duration = Duration::from_secs(5);
/// How long to wait for duplicates or strays once the expected deliveries
/// arrived (by default: see [`Bus::QUIET`]).
pub const QUIET: Duration = Duration::from_millis(400);
/// Nodes per cluster.
pub const NODES: usize = 3;

/// A client of the scene: which process ([`NODE_CLIENTS`] or
/// [`PYTHON_CLIENTS`]) and which client in it (= which node it is connected
/// to).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Who(pub usize, pub usize);

/// The process of the Node clients ([`Who`]`.0`).
pub const NODE_CLIENTS: usize = 0;
/// The process of the Python clients ([`Who`]`.0`).
pub const PYTHON_CLIENTS: usize = 1;

/// Every client of the scene.
pub fn everyone() -> Vec<Who> {
    (0..2)
        .flat_map(|proc| (0..NODES).map(move |client| Who(proc, client)))
        .collect()
}

/// Every client of the scene but those of `except`.
pub fn all_but(except: &[Who]) -> Vec<Who> {
    everyone()
        .into_iter()
        .filter(|who| !except.contains(who))
        .collect()
}

/// Unwraps `$result` or fails `$scene` ([`Scene::fail`]) with the reason and
/// the output of every process.
#[macro_export]
macro_rules! ok {
    ($scene:expr, $result:expr) => {
        match $result {
            Ok(value) => value,
            Err(reason) => $scene.fail(reason),
        }
    };
}

/// A cluster on bus `B` with a Node and a Python client on every node.
pub struct Scene<B: Bus> {
    /// `[node clients, python clients]`, client `i` on node `i`.
    pub clients: Vec<ClusterClients>,
    /// `sids[proc][client]`, as the clients connected.
    pub sids: Vec<Vec<String>>,
    /// The nodes and their bus.
    pub cluster: Cluster<B>,
}

impl<B: Bus> Scene<B> {
    /// Starts `kinds` (one per node, [`NODES`] of them, concurrently) on
    /// `bus`, with a Node and a Python client on every node, and waits until
    /// every client is connected.
    pub fn start(bus: B, kinds: [NodeKind; NODES]) -> Scene<B> {
        let cluster = Cluster::start_on(bus, &kinds).unwrap_or_else(|err| panic!("{err}"));
        let urls = cluster.urls();
        let mut scene = Scene {
            clients: Vec::new(),
            sids: Vec::new(),
            cluster,
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

    /// Panics with `reason` and the output of every process of the scene.
    pub fn fail(&self, reason: String) -> ! {
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

    /// The sid of `who`.
    pub fn sid(&self, who: Who) -> String {
        self.sids[who.0][who.1].clone()
    }

    /// `who` emits `event(args...)` with an ack and returns the ack's
    /// arguments.
    pub fn call(&mut self, who: Who, event: &str, args: &[Value]) -> Value {
        ok!(self, self.clients[who.0].call(who.1, event, args))
    }

    /// `who` emits `event(args...)`.
    pub fn emit(&mut self, who: Who, event: &str, args: &[Value]) {
        ok!(self, self.clients[who.0].emit(who.1, event, args))
    }

    /// Waits until no client process has received anything for [`Bus::QUIET`]
    /// (lets the bus carry a room change, or duplicates and strays arrive).
    pub fn settle(&mut self) {
        for proc in 0..self.clients.len() {
            ok!(self, self.clients[proc].settle(B::QUIET));
        }
    }

    /// Forgets the events every client received (counts start afresh).
    pub fn clear(&mut self) {
        for proc in 0..self.clients.len() {
            ok!(self, self.clients[proc].clear_events());
        }
    }

    /// `who` receives `name(args...)` within [`Bus::DELIVERY`].
    pub fn expect(&mut self, who: Who, name: &str, args: &Value) {
        ok!(
            self,
            self.clients[who.0].expect_event(who.1, name, args, B::DELIVERY)
        );
    }

    /// `name(args...)` reaches every client of `to` exactly once and no
    /// other client at all.
    pub fn delivered(&mut self, name: &str, args: &Value, to: &[Who]) {
        for &who in to {
            self.expect(who, name, args);
        }
        self.settle();
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
}

impl Scene<RedisServer> {
    /// The sharded adapter ("dynamic" mode) subscribes to a room's channel
    /// when the room appears on a node, without waiting, and a room entered
    /// from another node gives no ack for that: wait until Redis counts
    /// `nodes` subscribers of the room's channel. Other kinds hear rooms on
    /// their namespace's channel already.
    pub fn room_subscribed(&mut self, room: &str, nodes: i64) {
        if !self
            .cluster
            .nodes
            .iter()
            .any(|node| node.kind().needs_sharded_pubsub())
        {
            return;
        }
        let channel = format!("socket.io#/#{room}#");
        let deadline = Instant::now() + DELIVERY;
        loop {
            let count = ok!(self, self.cluster.bus.shard_numsub(&channel));
            if count == nodes {
                return;
            }
            if Instant::now() >= deadline {
                self.fail(format!(
                    "{channel} has {count} shard subscribers after {DELIVERY:?}, want {nodes}"
                ));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

// ---------------------------------------------------------------------------
// Scenario steps the test files share

/// Every client got `hello` with its own sid.
pub fn hellos<B: Bus>(scene: &mut Scene<B>) {
    for who in everyone() {
        let hello = json!([{"sid": scene.sid(who)}]);
        scene.expect(who, "hello", &hello);
    }
}

/// A broadcast to all from every node in turn (node client on even
/// nodes, python client on odd ones), binary included, reaches every client
/// exactly once.
pub fn broadcasts_from_every_node<B: Bus>(scene: &mut Scene<B>) {
    for node in 0..NODES {
        let args = json!([format!("all-{node}"), {"$bin": "0102ff"}, {"n": [1, 2.5, null]}]);
        let list = args.as_array().unwrap().clone();
        scene.emit(Who(node % 2, node), "shout", &list);
        scene.delivered("shout-back", &args, &everyone());
    }
}

/// Room "r": one member joins by itself on node 1, one is made to join from
/// node 0 while it lives on node 2; once `wait` has let the bus carry that,
/// a broadcast to "r" reaches both and no one else. Returns the members.
pub fn room_r<B: Bus>(scene: &mut Scene<B>, wait: impl FnOnce(&mut Scene<B>)) -> [Who; 2] {
    let joined = scene.call(Who(NODE_CLIENTS, 1), "join", &[json!("r")]);
    assert_eq!(joined, json!([true]), "join ack");
    let target = scene.sid(Who(PYTHON_CLIENTS, 2));
    let entered = scene.call(
        Who(NODE_CLIENTS, 0),
        "enter-room",
        &[json!(target), json!("r")],
    );
    assert_eq!(entered, json!([true]), "enter-room ack");
    wait(scene);
    let members = [Who(NODE_CLIENTS, 1), Who(PYTHON_CLIENTS, 2)];
    scene.call(
        Who(PYTHON_CLIENTS, 0),
        "shout-to",
        &[json!("r"), json!("to-r")],
    );
    scene.delivered("shout-back", &json!(["to-r"]), &members);
    members
}

/// Except room "x", whose members (node client 1 and python client 1) both
/// live on the node that broadcasts (python's bus can only skip sids, see
/// cluster_server.py).
pub fn except_x<B: Bus>(scene: &mut Scene<B>) {
    scene.call(Who(NODE_CLIENTS, 1), "join", &[json!("x")]);
    scene.call(Who(PYTHON_CLIENTS, 1), "join", &[json!("x")]);
    let x_members = [Who(NODE_CLIENTS, 1), Who(PYTHON_CLIENTS, 1)];
    scene.call(
        Who(NODE_CLIENTS, 1),
        "shout-except",
        &[json!("x"), json!("except-x")],
    );
    scene.delivered("shout-back", &json!(["except-x"]), &all_but(&x_members));
}

/// Leaving across nodes: `asker` makes python client 2 (on node 2) leave
/// room "r" ([`room_r`]); once `wait` has let the bus carry that, a
/// broadcast to "r" from `shouter` reaches node client 1 only.
pub fn leave_r<B: Bus>(
    scene: &mut Scene<B>,
    asker: Who,
    shouter: Who,
    wait: impl FnOnce(&mut Scene<B>),
) {
    let target = scene.sid(Who(PYTHON_CLIENTS, 2));
    let left = scene.call(asker, "leave-room", &[json!(target), json!("r")]);
    assert_eq!(left, json!([true]), "leave-room ack");
    wait(scene);
    scene.call(shouter, "shout-to", &[json!("r"), json!("after-leave")]);
    scene.delivered(
        "shout-back",
        &json!(["after-leave"]),
        &[Who(NODE_CLIENTS, 1)],
    );
}

/// The write-only emitter `kind` reaches every node, to all and to room "x"
/// ([`except_x`]: node client 1 and python client 1, on node 1).
pub fn emitter<B: Bus>(scene: &mut Scene<B>, kind: EmitterKind) {
    // Counts start afresh: an earlier emitter sent the same events.
    scene.clear();
    let url = scene.cluster.bus.url();
    let args = json!(["from-emitter", {"$bin": "00ff"}, 7]);
    ok!(
        scene,
        run_emitter(kind, &url, "emitted", &args, &EmitTarget::default())
    );
    scene.delivered("emitted", &args, &everyone());

    let target = EmitTarget {
        room: Some("x".into()),
        ..EmitTarget::default()
    };
    let args = json!([{"to": "x"}]);
    ok!(scene, run_emitter(kind, &url, "emitted", &args, &target));
    scene.delivered(
        "emitted",
        &args,
        &[Who(NODE_CLIENTS, 1), Who(PYTHON_CLIENTS, 1)],
    );
}

/// A bus whose broker the steps can restart and inject messages into.
pub trait RawBus: Bus {
    /// Puts `message` on channel `socketio` as a publisher of our own
    /// would, bypassing the nodes (garbage included).
    fn inject(&self, message: &[u8]) -> Result<(), String>;
    /// Kills the broker and starts it again on the same port(s).
    fn restart(&mut self) -> Result<(), String>;
}

/// Broadcasts, rooms (local and remote join/leave), except, acks across
/// nodes of a python-format cluster with the python node in the middle;
/// every node gets its turn as the sender.
pub fn python_pubsub<B: Bus>(scene: &mut Scene<B>) {
    hellos(scene);
    broadcasts_from_every_node(scene);

    // Room changes are let through the bus (settle) before the next
    // request: a python node acknowledges one once the message is written
    // (kombu has no publisher confirms), ours once the broker routed it;
    // either way the receiving node applies it a moment later.
    room_r(scene, Scene::settle);
    except_x(scene);

    // Acks across nodes: ours -> python, python -> ours, ours -> ours.
    acks_across(
        scene,
        &[
            (Who(NODE_CLIENTS, 0), Who(PYTHON_CLIENTS, 1), json!("q1")),
            (
                Who(PYTHON_CLIENTS, 1),
                Who(NODE_CLIENTS, 2),
                json!({"k": [1]}),
            ),
            (Who(PYTHON_CLIENTS, 2), Who(NODE_CLIENTS, 0), json!("q3")),
        ],
    );

    leave_r(
        scene,
        Who(PYTHON_CLIENTS, 1),
        Who(NODE_CLIENTS, 2),
        Scene::settle,
    );
}

/// Garbage on the bus (channel `socketio`: messages that are not valid
/// ones) reaches every node and breaks none: a broadcast from the python
/// node (node 1) and one from ours (node 0) reach everyone after it. Then
/// a message that is not UTF-8, after which the python node's broadcast
/// reaches everyone (not one from ours: kombu's consumer fails to decode
/// it and reconnects a second later, missing what is published meanwhile).
pub fn hostile<B: RawBus>(scene: &mut Scene<B>) {
    let messages: [&[u8]; 8] = [
        b"not json",
        b"{}",
        b"",
        br#"{"method":"emit"}"#,
        br#"{"method":"enter_room","sid":null,"room":[]}"#,
        br#"{"method":"callback","host_id":"nobody","sid":"x","id":"7"}"#,
        br#"{"method":"disconnect","sid":{"a":1},"namespace":"/"}"#,
        br#"[1,2,3]"#,
    ];
    for message in messages {
        ok!(scene, scene.cluster.bus.inject(message));
    }
    scene.emit(Who(PYTHON_CLIENTS, 1), "shout", &[json!("after-garbage")]);
    scene.delivered("shout-back", &json!(["after-garbage"]), &everyone());
    scene.emit(Who(NODE_CLIENTS, 0), "shout", &[json!("after-garbage-2")]);
    scene.delivered("shout-back", &json!(["after-garbage-2"]), &everyone());
    ok!(scene, scene.cluster.bus.inject(b"\xff\xfe"));
    scene.emit(Who(PYTHON_CLIENTS, 1), "shout", &[json!("after-garbage-3")]);
    scene.delivered("shout-back", &json!(["after-garbage-3"]), &everyone());
}

/// Broker killed and restarted: every node finds it again (within
/// `recovery`), and a broadcast from each node reaches everyone.
pub fn broker_restart<B: RawBus>(scene: &mut Scene<B>, recovery: Duration) {
    ok!(scene, scene.cluster.bus.restart());
    let start = Instant::now();
    for node in 0..NODES {
        let sender = Who(node % 2, node);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let payload = json!([format!("resume-{node}-{attempt}")]);
            scene.emit(sender, "shout", payload.as_array().unwrap());
            for proc in 0..scene.clients.len() {
                ok!(
                    scene,
                    scene.clients[proc].settle(Duration::from_millis(700))
                );
            }
            let mut everywhere = true;
            for who in everyone() {
                let count = ok!(
                    scene,
                    scene.clients[who.0].count(who.1, "shout-back", &payload)
                );
                everywhere &= count > 0;
            }
            if everywhere {
                break;
            }
            if start.elapsed() > recovery {
                scene.fail(format!(
                    "node {node}'s broadcasts do not reach everyone {recovery:?} after the broker restart"
                ));
            }
        }
    }
    eprintln!(
        "cross-node traffic resumed {:?} after the restart",
        start.elapsed()
    );
    scene.clear();
    scene.emit(Who(NODE_CLIENTS, 2), "shout", &[json!("resumed")]);
    scene.delivered("shout-back", &json!(["resumed"]), &everyone());
    let sid = scene.sid(Who(NODE_CLIENTS, 1));
    let answer = scene.call(
        Who(PYTHON_CLIENTS, 0),
        "call-sid",
        &[json!(sid), json!("r2")],
    );
    if answer != json!([["answer", "r2"]]) && answer != json!([[["answer", "r2"]]]) {
        scene.fail(format!("call-sid after the restart answered {answer}"));
    }
}

/// Python client 0 disconnects `victim`, a socket living on another node,
/// which sees the server disconnect it.
pub fn disconnect_remote<B: Bus>(scene: &mut Scene<B>, victim: Who) {
    disconnect_remote_by(scene, Who(PYTHON_CLIENTS, 0), victim);
}

/// `asker` disconnects `victim`, a socket living on another node, which
/// sees the server disconnect it.
pub fn disconnect_remote_by<B: Bus>(scene: &mut Scene<B>, asker: Who, victim: Who) {
    let sid = scene.sid(victim);
    let done = scene.call(asker, "disconnect-sid", &[json!(sid)]);
    assert_eq!(done, json!([true]), "disconnect-sid ack");
    let reasons = ok!(
        scene,
        scene.clients[victim.0].wait_disconnected(victim.1, B::DELIVERY)
    );
    if reasons != ["io server disconnect"] {
        scene.fail(format!("{victim:?} disconnected with {reasons:?}"));
    }
}

/// Acks asked of sockets on other nodes: each `(asker, asked, token)`
/// makes `asker` call `asked` through its node, and the answer comes back
/// (once: python's threaded server wraps the list it returns once more
/// than the others) while `asked` hears the question exactly once.
pub fn acks_across<B: Bus>(scene: &mut Scene<B>, calls: &[(Who, Who, Value)]) {
    for (asker, asked, token) in calls {
        let sid = scene.sid(*asked);
        let answer = scene.call(*asker, "call-sid", &[json!(sid), token.clone()]);
        if answer != json!([["answer", token]]) && answer != json!([[["answer", token]]]) {
            scene.fail(format!("call-sid {asker:?} -> {asked:?} answered {answer}"));
        }
        scene.delivered("question", &json!([token]), &[*asked]);
    }
}
