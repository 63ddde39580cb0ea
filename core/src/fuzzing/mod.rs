//! Entry points shared by the cargo-fuzz targets in `fuzz/` and by the test
//! that replays `fuzz/corpus` on every `cargo test`. Not part of the API,
//! and not in an ordinary build: it exists with the `fuzzing` feature (the
//! fuzz crate and the corpus replay enable it) and in the crate's unit tests.
//! One entry point per directory of `fuzz/corpus`, of the same name.
//!
//! Each function takes arbitrary bytes, drives one decoder with them, and
//! checks invariants that must hold for any input; it panics only when an
//! invariant is broken (that is what the fuzzer looks for).

mod cluster;
mod engine_client;
mod engine_codec;
mod engine_server;
mod parser;
mod socket;
mod transport;

pub use cluster::{
    amqp_frame, kafka_codec, node_bus, node_streams, python_bus, resp_decoder, zmtp_peer,
};
pub use engine_codec::{engine_packet, polling_payload};
pub use parser::{cbor_parser, json_parser, msgpack_parser};
pub use socket::{socket_client, socket_server, streams_seam};
pub use transport::{http_server, ws_server};

/// The Engine.IO server endpoint under arbitrary driver and application
/// operations.
pub fn engine_server(data: &[u8]) {
    engine_server::fuzz_server(data);
}

/// The Engine.IO client endpoint under arbitrary server bytes, time steps
/// and application calls.
pub fn engine_client(data: &[u8]) {
    engine_client::fuzz_client(data);
}

/// A small deterministic generator for fuzzing (splitmix64): the core takes
/// its randomness from the caller, and a fuzz run must be reproducible.
#[derive(Debug, Clone)]
pub struct FuzzRng(u64);

impl FuzzRng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> FuzzRng {
        FuzzRng(seed)
    }
}

impl rand_core::RngCore for FuzzRng {
    fn next_u32(&mut self) -> u32 {
        self.next_u64() as u32
    }
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}
