//! Mixed clusters over a real RabbitMQ: two of our nodes
//! (`echo_server --adapter amqp`) and one python-socketio node, with
//! `KombuManager` (threaded server) or `AsyncAioPikaManager`, all on one
//! fanout exchange. A Node client and a Python client on every node.
//!
//! Checks, as the Redis clusters do: broadcasts to all / to a room / except
//! a room arrive exactly once where they should and nowhere else; rooms are
//! joined and left across nodes; a socket on another node is asked for an
//! ack and disconnected; the python write-only emitter (kombu) and ours
//! reach every node; hostile messages on the exchange are ignored; the
//! broker killed and restarted mid-run: the servers stay up and
//! cross-node traffic resumes.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use socketio_interop::cluster::{
    run_emitter, AmqpPeer, ClientKind, ClusterClients, ClusterNode, EmitTarget, EmitterKind,
    NodeKind, OurFormat,
};
use socketio_interop::rabbit::RabbitServer;
use socketio_interop::Runtime;

const DELIVERY: Duration = Duration::from_secs(5);
const QUIET: Duration = Duration::from_millis(400);
const NODES: usize = 3;
/// How long the nodes may take to find the broker again after a restart
/// (python's listeners back off 1, 2, 4 s...).
const RECOVERY: Duration = Duration::from_secs(40);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Who(usize, usize);

const NODE_CLIENTS: usize = 0;
const PYTHON_CLIENTS: usize = 1;

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
    clients: Vec<ClusterClients>,
    sids: Vec<Vec<String>>,
    nodes: Vec<ClusterNode>,
    rabbit: RabbitServer,
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
    fn start(peer: AmqpPeer) -> Scene {
        let rabbit = RabbitServer::start().unwrap_or_else(|err| panic!("{err}"));
        let url = rabbit.url();
        let ours = NodeKind::Ours(Runtime::Tokio, OurFormat::Amqp);
        let kinds = [ours, NodeKind::PythonAmqp(peer), ours];
        let started: Vec<Result<ClusterNode, String>> = std::thread::scope(|scope| {
            let handles: Vec<_> = kinds
                .iter()
                .map(|&kind| {
                    let url = &url;
                    scope.spawn(move || ClusterNode::start(kind, url))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err("node start panicked".into()))
                })
                .collect()
        });
        let mut scene = Scene {
            clients: Vec::new(),
            sids: Vec::new(),
            nodes: Vec::new(),
            rabbit,
        };
        let mut errors = Vec::new();
        for node in started {
            match node {
                Ok(node) => scene.nodes.push(node),
                Err(err) => errors.push(err),
            }
        }
        if !errors.is_empty() {
            scene.fail(errors.join("\n"));
        }
        let urls: Vec<String> = scene.nodes.iter().map(ClusterNode::url).collect();
        for kind in [ClientKind::Node, ClientKind::Python] {
            let clients = ok!(scene, ClusterClients::spawn(kind, &urls));
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
        for (i, node) in self.nodes.iter().enumerate() {
            report.push_str(&format!(
                "----- node {i} ({}) -----\n{}\n",
                node.kind(),
                node.output()
            ));
        }
        report.push_str(&format!("----- rabbit -----\n{}", self.rabbit.output()));
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

    /// Lets the bus carry a room change before the next request: a python
    /// node acknowledges once the message is written (kombu has no
    /// publisher confirms), ours once the broker routed it; either way the
    /// receiving node applies it a moment later.
    fn settle(&mut self) {
        for proc in 0..self.clients.len() {
            ok!(self, self.clients[proc].settle(QUIET));
        }
    }

    fn clear(&mut self) {
        for proc in 0..self.clients.len() {
            ok!(self, self.clients[proc].clear_events());
        }
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
}

/// Broadcasts, rooms (local and remote join/leave), except, acks across
/// nodes; every node gets its turn as the sender.
fn common(scene: &mut Scene) {
    for who in everyone() {
        let hello = json!([{"sid": scene.sid(who)}]);
        ok!(
            scene,
            scene.clients[who.0].expect_event(who.1, "hello", &hello, DELIVERY)
        );
    }
    for node in 0..NODES {
        let args = json!([format!("all-{node}"), {"$bin": "0102ff"}, {"n": [1, 2.5, null]}]);
        let list = args.as_array().unwrap().clone();
        scene.emit(Who(node % 2, node), "shout", &list);
        scene.delivered("shout-back", &args, &everyone());
    }

    // Room "r": one joins by itself on node 1, one is made to join from
    // node 0 while it lives on node 2.
    let joined = scene.call(Who(NODE_CLIENTS, 1), "join", &[json!("r")]);
    assert_eq!(joined, json!([true]), "join ack");
    let target = scene.sid(Who(PYTHON_CLIENTS, 2));
    let entered = scene.call(
        Who(NODE_CLIENTS, 0),
        "enter-room",
        &[json!(target), json!("r")],
    );
    assert_eq!(entered, json!([true]), "enter-room ack");
    scene.settle();
    let members = [Who(NODE_CLIENTS, 1), Who(PYTHON_CLIENTS, 2)];
    scene.call(
        Who(PYTHON_CLIENTS, 0),
        "shout-to",
        &[json!("r"), json!("to-r")],
    );
    scene.delivered("shout-back", &json!(["to-r"]), &members);

    // Except room "x", whose members live on the node that broadcasts
    // (python's bus skips sids only).
    scene.call(Who(NODE_CLIENTS, 1), "join", &[json!("x")]);
    scene.call(Who(PYTHON_CLIENTS, 1), "join", &[json!("x")]);
    let x_members = [Who(NODE_CLIENTS, 1), Who(PYTHON_CLIENTS, 1)];
    scene.call(
        Who(NODE_CLIENTS, 1),
        "shout-except",
        &[json!("x"), json!("except-x")],
    );
    scene.delivered("shout-back", &json!(["except-x"]), &all_but(&x_members));

    // Acks across nodes: ours -> python, python -> ours, ours -> ours.
    for (asker, asked, token) in [
        (Who(NODE_CLIENTS, 0), Who(PYTHON_CLIENTS, 1), json!("q1")),
        (
            Who(PYTHON_CLIENTS, 1),
            Who(NODE_CLIENTS, 2),
            json!({"k": [1]}),
        ),
        (Who(PYTHON_CLIENTS, 2), Who(NODE_CLIENTS, 0), json!("q3")),
    ] {
        let sid = scene.sid(asked);
        let answer = scene.call(asker, "call-sid", &[json!(sid), token.clone()]);
        if answer != json!([["answer", token]]) && answer != json!([[["answer", token]]]) {
            scene.fail(format!("call-sid {asker:?} -> {asked:?} answered {answer}"));
        }
        scene.delivered("question", &json!([token]), &[asked]);
    }

    // Leaving across nodes.
    let target = scene.sid(Who(PYTHON_CLIENTS, 2));
    let left = scene.call(
        Who(PYTHON_CLIENTS, 1),
        "leave-room",
        &[json!(target), json!("r")],
    );
    assert_eq!(left, json!([true]), "leave-room ack");
    scene.settle();
    scene.call(
        Who(NODE_CLIENTS, 2),
        "shout-to",
        &[json!("r"), json!("after-leave")],
    );
    scene.delivered(
        "shout-back",
        &json!(["after-leave"]),
        &[Who(NODE_CLIENTS, 1)],
    );
}

/// The emitter reaches every node, to all and to room "x".
fn emitter(scene: &mut Scene, kind: EmitterKind) {
    scene.clear();
    let url = scene.rabbit.url();
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

/// Garbage on the exchange reaches every node and breaks none.
fn hostile(scene: &mut Scene) {
    let messages: [&[u8]; 7] = [
        b"not json",
        b"\xff\xfe",
        b"{}",
        br#"{"method":"emit"}"#,
        br#"{"method":"enter_room","sid":null,"room":[]}"#,
        br#"{"method":"callback","host_id":"nobody","sid":"x","id":"7"}"#,
        br#"[1,2,3]"#,
    ];
    for message in messages {
        ok!(scene, scene.rabbit.publish_raw("socketio", message));
    }
    scene.emit(Who(PYTHON_CLIENTS, 1), "shout", &[json!("after-garbage")]);
    scene.delivered("shout-back", &json!(["after-garbage"]), &everyone());
}

/// Broker killed and restarted: every node finds it again, and a broadcast
/// from each node reaches everyone.
fn broker_restart(scene: &mut Scene) {
    ok!(scene, scene.rabbit.restart());
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
            if start.elapsed() > RECOVERY {
                scene.fail(format!(
                    "node {node}'s broadcasts do not reach everyone {RECOVERY:?} after the broker restart"
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

fn disconnect_remote(scene: &mut Scene) {
    let victim = Who(NODE_CLIENTS, 1);
    let sid = scene.sid(victim);
    let done = scene.call(Who(PYTHON_CLIENTS, 0), "disconnect-sid", &[json!(sid)]);
    assert_eq!(done, json!([true]), "disconnect-sid ack");
    let reasons = ok!(
        scene,
        scene.clients[victim.0].wait_disconnected(victim.1, DELIVERY)
    );
    if reasons != ["io server disconnect"] {
        scene.fail(format!("{victim:?} disconnected with {reasons:?}"));
    }
}

fn scenario(peer: AmqpPeer) {
    let mut scene = Scene::start(peer);
    common(&mut scene);
    emitter(&mut scene, EmitterKind::Python);
    emitter(&mut scene, EmitterKind::OursPython);
    hostile(&mut scene);
    broker_restart(&mut scene);
    disconnect_remote(&mut scene);
}

#[test]
fn ours_kombu_ours() {
    scenario(AmqpPeer::Kombu);
}

#[test]
fn ours_aiopika_ours() {
    scenario(AmqpPeer::AioPika);
}
