//! Mixed clusters over a real ZeroMQ broker (python-socketio's forwarder,
//! `zmq_broker.py`): two of our nodes (`echo_server --adapter zmq`) and
//! one python-socketio node with `ZmqManager` (eventlet), all pushing to
//! the broker's sink and subscribed to its publisher. A Node client and a
//! Python client on every node.
//!
//! The same checks as over RabbitMQ ([`python_pubsub`] and the other shared
//! steps): broadcasts, rooms, except, remote join/leave/disconnect, acks
//! across nodes exactly once; python's write-only `ZmqManager` and our
//! emitter reach every node; garbage frames and hostile messages on the
//! broker are ignored; the broker killed and restarted mid-run: the servers
//! stay up and cross-node traffic resumes.

use std::time::Duration;

use socketio_interop::cluster::{EmitterKind, NodeKind, OurFormat};
use socketio_interop::scene::{
    broker_restart, disconnect_remote, emitter, hostile, python_pubsub, Who, NODE_CLIENTS,
};
use socketio_interop::zmq::ZmqBroker;
use socketio_interop::Runtime;

/// How long the nodes may take to find the broker again after a restart
/// (libzmq reconnects python's sockets every 100 ms; ours back off up to
/// 5 s).
const RECOVERY: Duration = Duration::from_secs(40);

type Scene = socketio_interop::scene::Scene<ZmqBroker>;

#[test]
fn ours_python_ours() {
    let broker = ZmqBroker::start().unwrap_or_else(|err| panic!("{err}"));
    let ours = NodeKind::Ours(Runtime::Tokio, OurFormat::Zmq);
    let smol = NodeKind::Ours(Runtime::Smol, OurFormat::Zmq);
    let mut scene = Scene::start(broker, [ours, NodeKind::PythonZmq, smol]);
    python_pubsub(&mut scene);
    emitter(&mut scene, EmitterKind::Python);
    emitter(&mut scene, EmitterKind::OursPython);
    hostile(&mut scene);
    // Frames that are no envelope, or envelopes python skips, straight on
    // the broker.
    socketio_interop::ok!(
        scene,
        scene.cluster.bus.push_raw(&[
            b"",
            b"\x00\x01",
            br#"{"type": "message"}"#,
            br#"{"type": "message", "channel": "socketio"}"#,
            br#"{"type": "message", "channel": ["socketio"], "data": {}}"#,
            br#"{"type": "other", "channel": "socketio", "data": {"method": "disconnect"}}"#,
        ])
    );
    broker_restart(&mut scene, RECOVERY);
    disconnect_remote(&mut scene, Who(NODE_CLIENTS, 1));
}
