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

use serde_json::json;
use socketio_interop::cluster::{AmqpPeer, EmitterKind, NodeKind, OurFormat};
use socketio_interop::ok;
use socketio_interop::rabbit::RabbitServer;
use socketio_interop::scene::{
    acks_across, broadcasts_from_every_node, disconnect_remote, emitter, everyone, except_x,
    hellos, leave_r, room_r, Who, NODES, NODE_CLIENTS, PYTHON_CLIENTS,
};
use socketio_interop::Runtime;

/// How long the nodes may take to find the broker again after a restart
/// (python's listeners back off 1, 2, 4 s...).
const RECOVERY: Duration = Duration::from_secs(40);

type Scene = socketio_interop::scene::Scene<RabbitServer>;

/// Two of our nodes around a python node of `peer`, on a fresh broker.
fn start(peer: AmqpPeer) -> Scene {
    let rabbit = RabbitServer::start().unwrap_or_else(|err| panic!("{err}"));
    let ours = NodeKind::Ours(Runtime::Tokio, OurFormat::Amqp);
    Scene::start(rabbit, [ours, NodeKind::PythonAmqp(peer), ours])
}

/// Broadcasts, rooms (local and remote join/leave), except, acks across
/// nodes; every node gets its turn as the sender.
fn common(scene: &mut Scene) {
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
        ok!(scene, scene.cluster.bus.publish_raw("socketio", message));
    }
    scene.emit(Who(PYTHON_CLIENTS, 1), "shout", &[json!("after-garbage")]);
    scene.delivered("shout-back", &json!(["after-garbage"]), &everyone());
}

/// Broker killed and restarted: every node finds it again, and a broadcast
/// from each node reaches everyone.
fn broker_restart(scene: &mut Scene) {
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

fn scenario(peer: AmqpPeer) {
    let mut scene = start(peer);
    common(&mut scene);
    emitter(&mut scene, EmitterKind::Python);
    emitter(&mut scene, EmitterKind::OursPython);
    hostile(&mut scene);
    broker_restart(&mut scene);
    disconnect_remote(&mut scene, Who(NODE_CLIENTS, 1));
}

#[test]
fn ours_kombu_ours() {
    scenario(AmqpPeer::Kombu);
}

#[test]
fn ours_aiopika_ours() {
    scenario(AmqpPeer::AioPika);
}
