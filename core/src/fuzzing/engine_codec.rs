//! The Engine.IO codecs: one packet, one long-polling body.

use bytes::Bytes;

/// One Engine.IO packet from a WebSocket text or binary frame; what decodes
/// must encode and decode to the same packet.
pub fn engine_packet(data: &[u8]) {
    use crate::engine::Packet;
    let bytes = Bytes::copy_from_slice(data);
    if let Ok(packet) = Packet::decode_text_bytes(bytes.clone()) {
        let mut out = bytes::BytesMut::new();
        packet.encode_text(&mut out);
        let again = Packet::decode_text_bytes(out.freeze()).expect("re-decode");
        assert_eq!(again, packet);
    }
    let _ = Packet::decode_binary(bytes);
}

/// A long-polling body; what decodes must encode and decode the same.
pub fn polling_payload(data: &[u8]) {
    use crate::engine::{decode_payload, encode_payload, DEFAULT_MAX_PAYLOAD_PACKETS};
    if let Ok(packets) = decode_payload(Bytes::copy_from_slice(data), DEFAULT_MAX_PAYLOAD_PACKETS) {
        let mut out = bytes::BytesMut::new();
        if encode_payload(&packets, &mut out).is_ok() {
            let again =
                decode_payload(out.freeze(), DEFAULT_MAX_PAYLOAD_PACKETS).expect("re-decode");
            assert_eq!(again, packets);
        }
    }
}
