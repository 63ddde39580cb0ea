//! Bytes in, bytes out: the events the load generator writes and the ids
//! it reads back.

use super::*;

pub(super) const ECHO_HEAD: &[u8] = b"42[\"echo\",[";
pub(super) const BROADCAST_HEAD: &[u8] = b"42[\"broadcast\",\"room\",[";
pub(super) const SHOUT_HEAD: &[u8] = b"42[\"shout\",[";
pub(super) const EVENT_TAIL: &[u8] = b",\"hello world\"]]";

pub(super) fn push_event(out: &mut Vec<u8>, head: &[u8], id: u64) {
    let mut scratch = [0u8; 20];
    push_frame(out, 0x81, &[head, digits(id, &mut scratch), EVENT_TAIL]);
}

/// The id in `42["event",[ID,...` or `42["broadcast","room",[ID,...`.
pub(super) fn parse_id(payload: &[u8]) -> Option<u64> {
    let start = find(payload, b"\",[")? + 3;
    let mut id = 0u64;
    let mut seen = false;
    for &byte in &payload[start..] {
        if !byte.is_ascii_digit() {
            break;
        }
        id = id.checked_mul(10)?.checked_add(u64::from(byte - b'0'))?;
        seen = true;
    }
    seen.then_some(id)
}
