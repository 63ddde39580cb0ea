#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| socketio_core::fuzzing::kafka_codec(data));
