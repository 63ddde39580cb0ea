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

use std::time::Duration;

use socketio_interop::cluster::{AmqpPeer, EmitterKind, NodeKind, OurFormat};
use socketio_interop::rabbit::RabbitServer;
use socketio_interop::scene::{
    broker_restart, disconnect_remote, emitter, hostile, python_pubsub, Who, NODE_CLIENTS,
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

fn scenario(peer: AmqpPeer) {
    let mut scene = start(peer);
    python_pubsub(&mut scene);
    emitter(&mut scene, EmitterKind::Python);
    emitter(&mut scene, EmitterKind::OursPython);
    hostile(&mut scene);
    broker_restart(&mut scene, RECOVERY);
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
