//! Replays every input in `fuzz/corpus/<target>/` through the same entry
//! point the cargo-fuzz target uses, so a crash the fuzzer once found (and
//! whose input was added to the corpus) stays fixed on every `cargo test`.

use std::path::Path;

type Target = fn(&[u8]);

const TARGETS: &[(&str, Target)] = &[
    ("json_parser", socketio_core::fuzzing::json_parser),
    ("msgpack_parser", socketio_core::fuzzing::msgpack_parser),
    ("cbor_parser", socketio_core::fuzzing::cbor_parser),
    ("engine_packet", socketio_core::fuzzing::engine_packet),
    ("polling_payload", socketio_core::fuzzing::polling_payload),
    ("ws_server", socketio_core::fuzzing::ws_server),
    ("http_server", socketio_core::fuzzing::http_server),
    ("socket_server", socketio_core::fuzzing::socket_server),
    ("socket_client", socketio_core::fuzzing::socket_client),
    ("python_bus", socketio_core::fuzzing::python_bus),
    ("resp_decoder", socketio_core::fuzzing::resp_decoder),
    ("node_bus", socketio_core::fuzzing::node_bus),
    ("amqp_frame", socketio_core::fuzzing::amqp_frame),
    ("node_streams", socketio_core::fuzzing::node_streams),
    ("zmtp_peer", socketio_core::fuzzing::zmtp_peer),
    ("kafka_codec", socketio_core::fuzzing::kafka_codec),
    ("streams_seam", socketio_core::fuzzing::streams_seam),
    ("engine_server", socketio_core::fuzzing::engine_server),
    ("engine_client", socketio_core::fuzzing::engine_client),
];

#[test]
fn replay_fuzz_corpus() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let root = fuzz.join("corpus");
    // Every corpus is replayed: a corpus directory without an entry here
    // fails, and so does a cargo-fuzz target without one.
    for entry in std::fs::read_dir(&root).unwrap() {
        let name = entry.unwrap().file_name();
        let name = name.to_string_lossy();
        assert!(
            TARGETS.iter().any(|(target, _)| *target == name),
            "fuzz/corpus/{name} is not replayed: add its target to TARGETS"
        );
    }
    for entry in std::fs::read_dir(fuzz.join("fuzz_targets")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy();
        assert!(
            TARGETS.iter().any(|(target, _)| *target == name),
            "fuzz target {name} has no corpus replay: add it to TARGETS and fuzz/corpus/{name}"
        );
    }
    let mut replayed = 0;
    for (name, target) in TARGETS {
        let dir = root.join(name);
        let entries = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("corpus for {name} missing at {}: {e}", dir.display()));
        let mut count = 0;
        for entry in entries {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            target(&data);
            count += 1;
        }
        assert!(count > 0, "empty corpus for {name}");
        replayed += count;
    }
    println!("replayed {replayed} corpus inputs");
}
