//! Clusters over Redis with the reference peers only: validates the cluster
//! harness (`socketio_interop::cluster`) and the peers' contract
//! (`tests/interop/README.md`, "Clusters") before our nodes join them.
//!
//! Each test starts its own Redis on its own port and three nodes of one
//! kind, puts a Node client and a Python client on every node, and checks
//! that broadcasts to all / to a room / except a room arrive exactly once
//! where they should and nowhere else (counted after a quiet window), that
//! rooms are joined and left across nodes, that a socket on another node can
//! be asked for an ack and disconnected, and that the write-only emitter of
//! the same family reaches every node. Node clusters also check the
//! adapter's requests: fetchSockets, serverSideEmit with acks, broadcasts
//! with acks, server count.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use socketio_interop::cluster::{
    ClientKind, ClusterClients, ClusterNode, EmitterKind, NodeKind, OurFormat, RedisServer, Reply,
};
use socketio_interop::ok;
use socketio_interop::scene::{
    all_but, disconnect_remote, emitter, everyone, except_x, hellos, leave_r, room_r, Who,
    DELIVERY, NODES, NODE_CLIENTS, PYTHON_CLIENTS, QUIET,
};
use socketio_interop::Runtime;

type Scene = socketio_interop::scene::Scene<RedisServer>;

/// The part of the contract every node kind implements.
fn common(scene: &mut Scene) {
    hellos(scene);

    // Broadcast to all, several arguments with binary, from either client.
    let args = json!(["all-1", {"$bin": "0102ff"}, {"n": [1, 2.5, null]}]);
    let list = args.as_array().unwrap().clone();
    scene.emit(Who(NODE_CLIENTS, 0), "shout", &list);
    scene.delivered("shout-back", &args, &everyone());
    scene.emit(Who(PYTHON_CLIENTS, 2), "shout", &[json!("all-2")]);
    scene.delivered("shout-back", &json!(["all-2"]), &everyone());

    room_r(scene, |scene| scene.room_subscribed("r", 2));
    except_x(scene);

    // Ack asked of a socket on another node, both ways.
    let asked = scene.sid(Who(PYTHON_CLIENTS, 2));
    let answer = scene.call(
        Who(NODE_CLIENTS, 0),
        "call-sid",
        &[json!(asked), json!("q1")],
    );
    if answer != json!([[["answer", "q1"]]]) {
        scene.fail(format!("call-sid across nodes answered {answer}"));
    }
    scene.delivered("question", &json!(["q1"]), &[Who(PYTHON_CLIENTS, 2)]);
    let asked = scene.sid(Who(NODE_CLIENTS, 1));
    let answer = scene.call(
        Who(PYTHON_CLIENTS, 0),
        "call-sid",
        &[json!(asked), json!({"k": [1]})],
    );
    if answer != json!([[["answer", {"k": [1]}]]]) {
        scene.fail(format!("call-sid across nodes answered {answer}"));
    }
    scene.delivered("question", &json!([{"k": [1]}]), &[Who(NODE_CLIENTS, 1)]);

    leave_r(scene, Who(NODE_CLIENTS, 0), Who(PYTHON_CLIENTS, 1), |_| {});
}

/// The adapter's requests, answered by every node.
fn node_requests(scene: &mut Scene) {
    // Room "r" now holds node client 1 only; bring python client 2 back in
    // and check the membership across the cluster.
    let target = scene.sid(Who(PYTHON_CLIENTS, 2));
    scene.call(
        Who(NODE_CLIENTS, 0),
        "enter-room",
        &[json!(target), json!("r")],
    );
    let mut want = vec![
        scene.sid(Who(NODE_CLIENTS, 1)),
        scene.sid(Who(PYTHON_CLIENTS, 2)),
    ];
    want.sort();
    scene.room_subscribed("r", 2);
    let fetched = scene.call(Who(PYTHON_CLIENTS, 0), "fetch-sockets", &[json!("r")]);
    if fetched != json!([want]) {
        scene.fail(format!(
            "fetch-sockets(r) answered {fetched}, want [{want:?}]"
        ));
    }

    // Except a room whose members live on other nodes than the sender.
    let members = [Who(NODE_CLIENTS, 1), Who(PYTHON_CLIENTS, 2)];
    scene.call(
        Who(PYTHON_CLIENTS, 0),
        "shout-except",
        &[json!("r"), json!("except-r")],
    );
    scene.delivered("shout-back", &json!(["except-r"]), &all_but(&members));

    let pongs = scene.call(Who(NODE_CLIENTS, 0), "server-side-emit", &[json!("d")]);
    if pongs != json!([["pong:d", "pong:d"]]) {
        scene.fail(format!("server-side-emit answered {pongs}"));
    }

    let acks = scene.call(
        Who(NODE_CLIENTS, 2),
        "broadcast-ack",
        &[json!("r"), json!("ba"), json!(3000)],
    );
    if acks != json!([{"responses": [["answer", "ba"], ["answer", "ba"]]}]) {
        scene.fail(format!("broadcast-ack(r) answered {acks}"));
    }
    scene.delivered("question", &json!(["ba"]), &members);

    let count = scene.call(Who(PYTHON_CLIENTS, 1), "server-count", &[]);
    if count != json!([NODES]) {
        scene.fail(format!("server-count answered {count}"));
    }
}

/// Messages of our own published on the bus reach every node (so every
/// node is subscribed) and break none of them: a broadcast still arrives.
fn hostile(scene: &mut Scene, messages: &[(&str, &[u8])]) {
    for (channel, message) in messages {
        let receivers = ok!(scene, scene.cluster.bus.publish_raw(channel, message));
        if receivers != NODES as i64 {
            scene.fail(format!(
                "PUBLISH {channel} reached {receivers} subscribers, want {NODES}"
            ));
        }
    }
    scene.emit(Who(PYTHON_CLIENTS, 1), "shout", &[json!("after-garbage")]);
    scene.delivered("shout-back", &json!(["after-garbage"]), &everyone());
}

fn redis() -> RedisServer {
    RedisServer::start().unwrap_or_else(|err| panic!("{err}"))
}

#[test]
fn python_cluster() {
    let mut scene = Scene::start(redis(), [NodeKind::Python; NODES]);
    common(&mut scene);
    emitter(&mut scene, EmitterKind::Python);
    // python-socketio skips what is not JSON or has no method, and logs a
    // handler's error for the rest.
    hostile(
        &mut scene,
        &[
            ("socketio", b"not json"),
            ("socketio", b"\xff\xfe"),
            ("socketio", b"{}"),
            ("socketio", br#"{"method":"emit"}"#),
            (
                "socketio",
                br#"{"method":"enter_room","sid":null,"room":[]}"#,
            ),
            (
                "socketio",
                br#"{"method":"callback","host_id":"nobody","sid":"x","id":"7"}"#,
            ),
        ],
    );
    disconnect_remote(&mut scene, Who(NODE_CLIENTS, 2));
}

#[test]
fn node_classic_cluster() {
    let mut scene = Scene::start(redis(), [NodeKind::NodeClassic; NODES]);
    common(&mut scene);
    emitter(&mut scene, EmitterKind::Node);
    // Every node has a pattern subscription (socket.io#/#*). What it can
    // decode but is not for it is ignored, and so is anything for a room it
    // does not have. (Bytes that are not MessagePack on socket.io#/# kill the
    // Node process: the adapter decodes them outside any try; see the README.)
    hostile(
        &mut scene,
        &[
            ("socket.io#/#no-such-room#", b"not msgpack"),
            ("socket.io#/#", b"\x91\xa3uid"),
            ("socket.io#/#", b"\x93\xa3uid\x81\xa3nsp\xa6/other\x80"),
        ],
    );
    node_requests(&mut scene);
    disconnect_remote(&mut scene, Who(NODE_CLIENTS, 2));
}

#[test]
fn node_sharded_cluster() {
    let redis = redis();
    let version = redis.version().unwrap_or_else(|err| panic!("{err}"));
    if version < 7 {
        eprintln!(
            "note: node_sharded_cluster skipped: Redis {version} has no sharded pub/sub (7+ needed)"
        );
        return;
    }
    let mut scene = Scene::start(redis, [NodeKind::NodeSharded; NODES]);
    common(&mut scene);
    // No emitter: @socket.io/redis-emitter 5.1 publishes the classic format.
    node_requests(&mut scene);
    disconnect_remote(&mut scene, Who(NODE_CLIENTS, 2));
}

/// Mixed clusters with our `echo_server --adapter ...` as the middle node:
/// the same checks as the peers' clusters, plus our emitter.
mod ours {
    use super::*;

    fn ours(format: OurFormat) -> NodeKind {
        NodeKind::Ours(Runtime::Tokio, format)
    }

    #[test]
    fn python_ours_python() {
        let kinds = [NodeKind::Python, ours(OurFormat::Python), NodeKind::Python];
        let mut scene = Scene::start(redis(), kinds);
        common(&mut scene);
        emitter(&mut scene, EmitterKind::Python);
        emitter(&mut scene, EmitterKind::OursPython);
        disconnect_remote(&mut scene, Who(NODE_CLIENTS, 2));
    }

    #[test]
    fn node_ours_node_classic() {
        let kinds = [
            NodeKind::NodeClassic,
            ours(OurFormat::Node),
            NodeKind::NodeClassic,
        ];
        let mut scene = Scene::start(redis(), kinds);
        common(&mut scene);
        emitter(&mut scene, EmitterKind::Node);
        emitter(&mut scene, EmitterKind::OursNode);
        node_requests(&mut scene);
        disconnect_remote(&mut scene, Who(NODE_CLIENTS, 2));
    }

    #[test]
    fn node_ours_node_sharded() {
        let redis = redis();
        let version = redis.version().unwrap_or_else(|err| panic!("{err}"));
        assert!(
            version >= 7,
            "Redis {version} has no sharded pub/sub (7+ needed)"
        );
        let kinds = [
            NodeKind::NodeSharded,
            ours(OurFormat::NodeSharded),
            NodeKind::NodeSharded,
        ];
        let mut scene = Scene::start(redis, kinds);
        common(&mut scene);
        emitter(&mut scene, EmitterKind::OursNodeSharded);
        node_requests(&mut scene);
        disconnect_remote(&mut scene, Who(NODE_CLIENTS, 2));
    }
}

/// The streams adapter (`@socket.io/redis-streams-adapter` 0.3): two of
/// our nodes and a Node node on one Redis stream.
mod streams {
    use super::*;

    fn ours() -> NodeKind {
        NodeKind::Ours(Runtime::Tokio, OurFormat::Streams)
    }

    /// Entries on the stream that no adapter can read: every node skips
    /// them (the Node adapter inside its own try), and a broadcast still
    /// arrives everywhere once.
    fn hostile_entries(scene: &mut Scene) {
        let entries: [&[&[u8]]; 4] = [
            &[b"uid", b"x", b"type", b"3"],
            &[b"uid", b"x", b"nsp", b"/", b"type", b"3", b"data", b"{"],
            &[b"uid", b"x", b"nsp", b"/", b"type", b"3", b"data", b"!!!"],
            &[
                b"uid",
                b"x",
                b"nsp",
                b"/",
                b"type",
                b"3",
                b"data",
                b"{\"packet\":7}",
            ],
        ];
        for fields in entries {
            let mut words: Vec<&[u8]> = vec![b"XADD", b"socket.io", b"*"];
            words.extend_from_slice(fields);
            let reply = ok!(scene, scene.cluster.bus.command(&words));
            if !matches!(reply, Reply::Bulk(Some(_))) {
                scene.fail(format!("XADD of a hostile entry answered {reply:?}"));
            }
        }
        scene.emit(Who(PYTHON_CLIENTS, 1), "shout", &[json!("after-garbage")]);
        scene.delivered("shout-back", &json!(["after-garbage"]), &everyone());
    }

    #[test]
    fn ours_node_ours() {
        let kinds = [ours(), NodeKind::NodeStreams, ours()];
        let mut scene = Scene::start(redis(), kinds);
        common(&mut scene);
        emitter(&mut scene, EmitterKind::OursStreams);
        node_requests(&mut scene);
        hostile_entries(&mut scene);
        disconnect_remote(&mut scene, Who(NODE_CLIENTS, 2));
    }

    /// Sessions kept in Redis (`sio:session:*`).
    fn sessions(redis: &RedisServer) -> usize {
        match redis.command(&[b"KEYS".as_slice(), b"sio:session:*".as_slice()]) {
            Ok(Reply::Array(Some(keys))) => keys.len(),
            other => panic!("KEYS answered {other:?}"),
        }
    }

    /// Entries in the stream.
    fn stream_len(redis: &RedisServer) -> i64 {
        match redis.command(&[b"XLEN".as_slice(), b"socket.io".as_slice()]) {
            Ok(Reply::Integer(n)) => n,
            other => panic!("XLEN answered {other:?}"),
        }
    }

    fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !done() {
            assert!(Instant::now() < deadline, "{what} within 10 s");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// An offset as Redis orders stream ids.
    fn id(offset: &Value) -> (u64, u64) {
        let text = offset.as_str().unwrap_or_else(|| panic!("offset {offset}"));
        let (ms, seq) = text
            .split_once('-')
            .unwrap_or_else(|| panic!("offset {text}"));
        (ms.parse().unwrap(), seq.parse().unwrap())
    }

    /// A client with connection state recovery, cut off at transport level
    /// from one node while events are emitted from a third, reconnects to
    /// another node and gets its socket id, its room and every event it
    /// missed back, in order, once: from our node to the Node node (a
    /// session our node persisted, read by the reference), then from the
    /// Node node to ours (the other way round), then from ours to ours.
    #[test]
    fn recovery_across_nodes() {
        let redis = redis();
        let url = redis.url();
        let start = |kind| {
            ClusterNode::start_recovering(kind, &url, Duration::from_secs(60))
                .unwrap_or_else(|err| panic!("{err}"))
        };
        let nodes = [start(ours()), start(NodeKind::NodeStreams), start(ours())];
        let urls: Vec<String> = nodes.iter().map(ClusterNode::url).collect();
        let report = |err: String| -> ! {
            let logs: Vec<String> = nodes.iter().map(ClusterNode::output).collect();
            panic!("{err}\n----- nodes -----\n{}", logs.join("\n-----\n"))
        };
        // Client 0 is cut off and comes back; client 1 (on our node 2)
        // emits meanwhile.
        let mut clients =
            ClusterClients::spawn(ClientKind::Node, &[urls[0].clone(), urls[2].clone()])
                .unwrap_or_else(|err| report(err));
        let sids = clients.wait_connected().unwrap_or_else(|err| report(err));
        let joined = clients
            .call(0, "join", &[json!("rec")])
            .unwrap_or_else(|err| report(err));
        assert_eq!(joined, json!([true]));
        let shout = |clients: &mut ClusterClients, room: &str, data: &str| {
            let acked = clients
                .call(1, "shout-to", &[json!(room), json!(data)])
                .unwrap_or_else(|err| report(err));
            assert_eq!(acked, json!([true]));
        };
        // The offset the client resumes from.
        shout(&mut clients, "rec", "seen");
        clients
            .wait_events(0, "shout-back", 1, DELIVERY)
            .unwrap_or_else(|err| report(err));

        for (leg, to) in [(0, 1), (1, 0), (2, 2)] {
            let before = clients.events(0, "shout-back").unwrap().len();
            let entries = stream_len(&redis);
            clients.cut(0).unwrap_or_else(|err| report(err));
            wait_until("the session persisted", || sessions(&redis) == 1);
            let missed: Vec<String> = (0..3).map(|i| format!("missed-{leg}-{i}")).collect();
            for data in &missed {
                shout(&mut clients, "rec", data);
            }
            shout(&mut clients, "elsewhere", "not-for-0");
            // Every node's reader has the entries before the client comes
            // back (the reference replays what a reader delivers at the
            // same time again).
            wait_until("the entries appended", || stream_len(&redis) >= entries + 4);
            std::thread::sleep(Duration::from_millis(300));
            let (sid, recovered) = clients
                .reconnect(0, &urls[to])
                .unwrap_or_else(|err| report(err));
            assert!(
                recovered,
                "leg {leg}: not recovered on {}",
                nodes[to].kind()
            );
            assert_eq!(sid, sids[0], "leg {leg}: the same socket id");
            assert_eq!(sessions(&redis), 0, "leg {leg}: the session was taken");
            clients
                .wait_events(0, "shout-back", before + missed.len(), DELIVERY)
                .unwrap_or_else(|err| report(err));
            clients.settle(QUIET).unwrap();
            let got = clients.events(0, "shout-back").unwrap();
            let replayed = &got[before..];
            let data: Vec<&Value> = replayed.iter().map(|args| &args[0]).collect();
            let want: Vec<Value> = missed.iter().map(|m| json!(m)).collect();
            assert_eq!(data, want.iter().collect::<Vec<_>>(), "leg {leg}: {got:?}");
            let offsets: Vec<(u64, u64)> = replayed.iter().map(|args| id(&args[1])).collect();
            assert!(
                offsets.windows(2).all(|w| w[0] < w[1]),
                "leg {leg}: offsets {offsets:?}"
            );
            // Its room came back with it: live events reach it there.
            let live = format!("live-{leg}");
            shout(&mut clients, "rec", &live);
            let got = clients
                .wait_events(0, "shout-back", before + missed.len() + 1, DELIVERY)
                .unwrap_or_else(|err| report(err));
            assert_eq!(got.last().map(|args| &args[0]), Some(&json!(live)));
        }
    }
}

/// Faults with our nodes in the cluster: the broker restarted, a node
/// killed, hostile messages on the channels.
mod faults {
    use super::*;

    fn ours(format: OurFormat) -> NodeKind {
        NodeKind::Ours(Runtime::Tokio, format)
    }

    /// Shouts `tag`-N from `from` until `to` receives one (the bus may
    /// still be reconnecting); returns the tag that got through.
    fn shout_until_received(scene: &mut Scene, from: Who, to: Who, tag: &str) -> String {
        let give_up = Instant::now() + Duration::from_secs(30);
        for attempt in 0.. {
            let value = format!("{tag}-{attempt}");
            scene.emit(from, "shout", &[json!(value)]);
            let got = scene.clients[to.0].expect_event(
                to.1,
                "shout-back",
                &json!([value]),
                Duration::from_millis(500),
            );
            if got.is_ok() {
                return value;
            }
            if Instant::now() > give_up {
                scene.fail(format!("{to:?} never received a {tag} shout from {from:?}"));
            }
        }
        unreachable!()
    }

    /// PUBLISH commands the scene's Redis ran since it started.
    fn published(scene: &Scene) -> u64 {
        let info = ok!(
            scene,
            scene
                .cluster
                .bus
                .command(&[b"INFO".as_slice(), b"commandstats".as_slice()])
        );
        let socketio_interop::cluster::Reply::Bulk(Some(text)) = info else {
            scene.fail(format!("INFO commandstats answered {info:?}"));
        };
        String::from_utf8_lossy(&text)
            .lines()
            .find_map(|line| line.strip_prefix("cmdstat_publish:calls="))
            .and_then(|rest| rest.split(',').next()?.parse().ok())
            .unwrap_or(0)
    }

    /// Redis killed and restarted: our nodes stay up and keep serving
    /// their own clients, what they published meanwhile reaches Redis when
    /// the bus is back (bounded queue), and cross-node traffic resumes.
    #[test]
    fn redis_restart() {
        let kinds = [
            ours(OurFormat::Python),
            ours(OurFormat::Python),
            NodeKind::Python,
        ];
        let mut scene = Scene::start(redis(), kinds);
        scene.emit(Who(NODE_CLIENTS, 0), "shout", &[json!("before")]);
        scene.delivered("shout-back", &json!(["before"]), &everyone());

        scene.cluster.bus.kill();
        // Give our node time to read the end of its links: a publish it
        // writes before it notices is in flight, and lost with the broker
        // (only what is published once it knows the bus is down is queued).
        std::thread::sleep(Duration::from_secs(1));
        // Local traffic goes on while the bus is down.
        scene.emit(Who(NODE_CLIENTS, 0), "shout", &[json!("during")]);
        for who in [Who(NODE_CLIENTS, 0), Who(PYTHON_CLIENTS, 0)] {
            scene.expect(who, "shout-back", &json!(["during"]));
        }
        let answer = scene.call(Who(PYTHON_CLIENTS, 0), "join", &[json!("still-up")]);
        assert_eq!(
            answer,
            json!([true]),
            "our node answers while Redis is down"
        );

        ok!(scene, scene.cluster.bus.restart());
        // What our node published during the gap was queued and goes out
        // once its bus is back: the restarted Redis (fresh statistics)
        // counts a PUBLISH before anyone shouts again. Whether the other
        // nodes hear it depends on whether they re-subscribed first (pub/sub
        // keeps nothing), so their receiving it is not asserted.
        let give_up = Instant::now() + Duration::from_secs(30);
        while published(&scene) == 0 {
            if Instant::now() > give_up {
                scene.fail("the publish queued during the outage never reached Redis".into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        // Cross-node traffic resumes both ways between our nodes, and with
        // the python node once redis-py has reconnected.
        shout_until_received(
            &mut scene,
            Who(NODE_CLIENTS, 1),
            Who(NODE_CLIENTS, 0),
            "back-1",
        );
        shout_until_received(
            &mut scene,
            Who(NODE_CLIENTS, 0),
            Who(NODE_CLIENTS, 2),
            "back-2",
        );
        scene.clear();
        scene.emit(Who(PYTHON_CLIENTS, 1), "shout", &[json!("after")]);
        scene.delivered("shout-back", &json!(["after"]), &everyone());
    }

    /// A node killed: requests from our node count the nodes still
    /// listening, so they complete instead of waiting for the dead one
    /// (a timeout would answer with an error).
    #[test]
    fn dead_node_is_not_waited_for() {
        let kinds = [
            NodeKind::NodeClassic,
            ours(OurFormat::Node),
            NodeKind::NodeClassic,
        ];
        let mut scene = Scene::start(redis(), kinds);
        for node in 0..2 {
            for proc in [NODE_CLIENTS, PYTHON_CLIENTS] {
                let joined = scene.call(Who(proc, node), "join", &[json!("alive")]);
                assert_eq!(joined, json!([true]));
            }
        }
        let dead = scene.cluster.nodes.remove(2);
        drop(dead);
        let count = scene.call(Who(PYTHON_CLIENTS, 1), "server-count", &[]);
        assert_eq!(count, json!([2]), "the dead node is not counted");
        let fetched = scene.call(Who(PYTHON_CLIENTS, 1), "fetch-sockets", &[json!("alive")]);
        let mut want: Vec<String> = (0..2)
            .flat_map(|node| [Who(NODE_CLIENTS, node), Who(PYTHON_CLIENTS, node)])
            .map(|who| scene.sid(who))
            .collect();
        want.sort();
        assert_eq!(
            fetched,
            json!([want]),
            "fetch-sockets across the living nodes"
        );
        let answers = scene.call(Who(NODE_CLIENTS, 1), "server-side-emit", &[json!("x")]);
        assert_eq!(
            answers,
            json!([["pong:x"]]),
            "one living other server answers"
        );
    }

    /// Malformed and hostile messages on our channels are ignored (with
    /// a log line): our node keeps serving, and memory stays bounded
    /// (a 16 MiB message is over the limit and dropped unread).
    #[test]
    fn hostile_messages_are_ignored() {
        let kinds = [
            ours(OurFormat::Python),
            ours(OurFormat::Python),
            ours(OurFormat::Python),
        ];
        let mut scene = Scene::start(redis(), kinds);
        let redis = &scene.cluster.bus;
        let deep = "[".repeat(200_000);
        let huge = vec![b'x'; 17 << 20];
        let bad: [&[u8]; 9] = [
            b"",
            b"\xff\xfe not utf-8",
            b"{\"method\": \"emit\", \"event\": 42}",
            b"{\"method\": \"emit\", \"event\": \"shout-back\", \"data\": [{\"_placeholder\": true, \"num\": 9}], \"binary\": true}",
            b"{\"method\": \"callback\", \"host_id\": 1}",
            b"{\"method\": \"enter_room\", \"sid\": [], \"room\": \"r\"}",
            b"{\"method\": \"disconnect\", \"sid\": null}",
            deep.as_bytes(),
            &huge,
        ];
        for payload in bad {
            ok!(scene, redis.publish_raw("socketio", payload));
        }
        scene.emit(Who(PYTHON_CLIENTS, 2), "shout", &[json!("still fine")]);
        scene.delivered("shout-back", &json!(["still fine"]), &everyone());
    }
}
