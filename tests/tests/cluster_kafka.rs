//! A mixed cluster over Kafka: two of our nodes (`echo_server --adapter
//! kafka`, tokio and smol) and one python-socketio 5.18.1 node
//! (`KafkaManager` on a threaded server, see `python/cluster_server.py`)
//! on a real Kafka-protocol broker (tansu, see `socketio_interop::kafka`;
//! the test fails without it), a Node and a Python client on every node.
//!
//! Checks, as the Redis and RabbitMQ clusters do: broadcasts to all / to a
//! room / except a room (exactly once where they should arrive, nowhere
//! else), rooms joined and left from other nodes (ours and python's),
//! acks asked of sockets on other nodes both ways, the python write-only
//! emitter and ours, hostile records on the topic, remote disconnections,
//! and the broker restarted mid-run (traffic from our nodes resumes and
//! reaches the python node too; see [`broker_restart`] for why not from
//! python's).

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use socketio_interop::cluster::{EmitterKind, NodeKind, OurFormat};
use socketio_interop::kafka::TansuBroker;
use socketio_interop::ok;
use socketio_interop::scene::{
    acks_across, all_but, broadcasts_from_every_node, disconnect_remote_by, emitter, except_x,
    hellos, hostile, leave_r, room_r, Who, NODE_CLIENTS, PYTHON_CLIENTS,
};
use socketio_interop::Runtime;

/// How long the cluster may take to carry messages again after the broker
/// restarted (kafka-python's reconnection back-off included).
const RECOVERY: Duration = Duration::from_secs(60);
/// The python node's index (where [`hostile`] expects it).
const PY: usize = 1;

type Scene = socketio_interop::scene::Scene<TansuBroker>;

/// Broadcasts, rooms, except, acks across nodes (python and ours both
/// asking and answering), leaving across nodes.
fn common(scene: &mut Scene) {
    hellos(scene);
    broadcasts_from_every_node(scene);

    // Room "r", joined on the python node and from node 0 for a socket on
    // node 2; the broadcast comes from node 0 too: one node's messages stay
    // in order on the bus (one partition), so the join is applied
    // everywhere before it (another node's broadcast could overtake it).
    room_r(scene, Scene::settle);
    // The python node makes a socket of ours join room "k", and broadcasts
    // to it.
    let target = scene.sid(Who(PYTHON_CLIENTS, 0));
    let entered = scene.call(
        Who(NODE_CLIENTS, PY),
        "enter-room",
        &[json!(target), json!("k")],
    );
    assert_eq!(entered, json!([true]), "enter-room ack (python)");
    scene.call(
        Who(PYTHON_CLIENTS, PY),
        "shout-to",
        &[json!("k"), json!("to-k")],
    );
    scene.delivered("shout-back", &json!(["to-k"]), &[Who(PYTHON_CLIENTS, 0)]);

    // Except a room whose members are on the node that broadcasts
    // (python's bus skips sids only): from python ("x"), from ours ("y").
    except_x(scene);
    scene.call(Who(NODE_CLIENTS, 2), "join", &[json!("y")]);
    scene.call(Who(PYTHON_CLIENTS, 2), "join", &[json!("y")]);
    let y_members = [Who(NODE_CLIENTS, 2), Who(PYTHON_CLIENTS, 2)];
    scene.call(
        Who(NODE_CLIENTS, 2),
        "shout-except",
        &[json!("y"), json!("except-y")],
    );
    scene.delivered("shout-back", &json!(["except-y"]), &all_but(&y_members));

    // Acks across nodes: ours -> python, python -> ours, ours -> ours.
    acks_across(
        scene,
        &[
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
        ],
    );

    // Leaving across nodes: ours makes python client 2 leave "r" (asked
    // and broadcast from node 0, in order), python makes ours leave "k".
    leave_r(
        scene,
        Who(NODE_CLIENTS, 0),
        Who(PYTHON_CLIENTS, 0),
        Scene::settle,
    );
    let target = scene.sid(Who(PYTHON_CLIENTS, 0));
    let left = scene.call(
        Who(PYTHON_CLIENTS, PY),
        "leave-room",
        &[json!(target), json!("k")],
    );
    assert_eq!(left, json!([true]), "leave-room ack (python)");
    scene.call(
        Who(NODE_CLIENTS, PY),
        "shout-to",
        &[json!("k"), json!("after-leave-k")],
    );
    scene.delivered("shout-back", &json!(["after-leave-k"]), &[]);
}

/// Broadcasts from `from`, ten at a time, until every client heard one
/// of them (each node's consumer and `from`'s producer work again).
///
/// Many may be needed for the python node: the restarted broker's log
/// starts again from offset 0, tansu answers a fetch past the end of a
/// log with no records and no error, and kafka-python keeps its old
/// position, so the python node hears again only once the new log has
/// passed it. (Our nodes notice the new log and read it from its start.)
fn until_everyone_hears(scene: &mut Scene, from: Who, tag: &str, to: &[Who]) {
    let deadline = Instant::now() + RECOVERY;
    for n in 0.. {
        for k in 0..10 {
            scene.emit(from, "shout", &[json!(format!("{tag}-{n}-{k}"))]);
        }
        let wait = Instant::now() + Duration::from_secs(2);
        let mut missing = to.to_vec();
        while !missing.is_empty() && Instant::now() < wait {
            // Read what the clients received meanwhile.
            for proc in 0..scene.clients.len() {
                ok!(scene, scene.clients[proc].settle(Duration::from_millis(50)));
            }
            let mut still = Vec::new();
            for who in missing {
                let heard = ok!(scene, scene.clients[who.0].events(who.1, "shout-back"))
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
            scene.fail(format!(
                "after the broker restart, {missing:?} heard none of {} broadcasts from {from:?} in {RECOVERY:?}",
                n + 1
            ));
        }
    }
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
    ok!(scene, scene.cluster.bus.restart());
    until_everyone_hears(scene, Who(NODE_CLIENTS, 0), "probe-ours", &left);
    scene.clear();
    for (from, tag) in [
        (Who(PYTHON_CLIENTS, 2), "after-restart-2"),
        (Who(PYTHON_CLIENTS, 0), "after-restart-0"),
    ] {
        scene.emit(from, "shout", &[json!(tag)]);
        scene.delivered("shout-back", &json!([tag]), &left);
    }
    // Rooms survived: "y" holds python client 2 still.
    scene.call(
        Who(NODE_CLIENTS, 0),
        "shout-to",
        &[json!("y"), json!("to-y")],
    );
    scene.delivered("shout-back", &json!(["to-y"]), &[Who(PYTHON_CLIENTS, 2)]);
}

#[test]
fn ours_python_ours_kafka() {
    let broker = TansuBroker::start(&["socketio"]).unwrap_or_else(|err| panic!("{err}"));
    let kinds = [
        NodeKind::Ours(Runtime::Tokio, OurFormat::Kafka),
        NodeKind::PythonKafka,
        NodeKind::Ours(Runtime::Smol, OurFormat::Kafka),
    ];
    let mut scene = Scene::start(broker, kinds);
    common(&mut scene);
    emitter(&mut scene, EmitterKind::Python);
    emitter(&mut scene, EmitterKind::OursPython);
    hostile(&mut scene);
    // Python disconnects a socket of ours, ours one of python's.
    disconnect_remote_by(&mut scene, Who(PYTHON_CLIENTS, PY), Who(NODE_CLIENTS, 2));
    disconnect_remote_by(&mut scene, Who(PYTHON_CLIENTS, 0), Who(NODE_CLIENTS, PY));
    broker_restart(&mut scene);
}
