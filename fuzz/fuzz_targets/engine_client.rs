#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| socketio_core::fuzzing::engine_client(data));
