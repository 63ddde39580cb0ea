//! The envelope python-socketio's `ZmqManager` puts around every pub/sub
//! message: ZeroMQ has no channels, so the channel travels inside.
//!
//! `ZmqManager._publish` sends `json.dumps({"type": "message", "channel":
//! channel, "data": message})`, the message being the dict the other
//! backends send as text, nested as an object. Its listener keeps a frame
//! only when it is a JSON object whose `type` is `message`, whose
//! `channel` is its own and that has `data`; a `data` that is a string is
//! read as JSON text later, an object is used as is. [`wrap`] writes the
//! bytes python writes; [`unwrap`] reads the same, with limits.

use std::fmt;

use bytes::Bytes;
use serde_json::value::RawValue;

use super::write_string;
use crate::cluster::BusLimits;

/// What [`unwrap`] found in a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unwrapped {
    /// A message of `channel`: the pub/sub message's JSON text.
    Message {
        /// The envelope's channel.
        channel: String,
        /// The message (an object's text, or the content of a string).
        payload: Bytes,
    },
    /// An envelope python skips (another `type`, no `data`): not an error,
    /// other publishers may share the broker.
    Skipped,
}

/// A frame that is not an envelope at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvelopeError(pub String);

impl fmt::Display for EnvelopeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid ZeroMQ envelope: {}", self.0)
    }
}

impl std::error::Error for EnvelopeError {}

/// The envelope of `payload` (a pub/sub message's JSON text) on
/// `channel`, byte for byte as python's `json.dumps` writes it. Fails when
/// `payload` is not JSON: python could not read the envelope.
pub fn wrap(channel: &str, payload: &[u8]) -> Result<Bytes, EnvelopeError> {
    let text = std::str::from_utf8(payload)
        .map_err(|_| EnvelopeError("the message is not UTF-8".into()))?;
    // Checked, not parsed into values: the text goes in unchanged.
    let raw: &RawValue = serde_json::from_str(text)
        .map_err(|e| EnvelopeError(format!("the message is not JSON: {e}")))?;
    let mut out = String::with_capacity(payload.len() + channel.len() + 48);
    out.push_str("{\"type\": \"message\", \"channel\": ");
    write_string(&mut out, channel);
    out.push_str(", \"data\": ");
    out.push_str(raw.get());
    out.push('}');
    Ok(Bytes::from(out))
}

/// Read one frame published on the broker. `limits.max_message_bytes`
/// bounds the frame (the caller's transport bounds it before). `data` is
/// skimmed, not parsed into values (serde_json skips a raw value without
/// recursing): the message's depth is checked when it is decoded.
pub fn unwrap(frame: &[u8], limits: &BusLimits) -> Result<Unwrapped, EnvelopeError> {
    if frame.len() > limits.max_message_bytes {
        return Err(EnvelopeError(format!(
            "{} bytes exceed the limit of {}",
            frame.len(),
            limits.max_message_bytes
        )));
    }
    #[derive(serde::Deserialize)]
    struct Envelope<'a> {
        #[serde(rename = "type", borrow)]
        kind: Option<&'a RawValue>,
        #[serde(borrow)]
        channel: Option<&'a RawValue>,
        #[serde(borrow)]
        data: Option<&'a RawValue>,
    }
    let envelope: Envelope<'_> = serde_json::from_slice(frame)
        .map_err(|e| EnvelopeError(format!("not a JSON object: {e}")))?;
    let string = |raw: Option<&RawValue>| -> Option<String> {
        raw.and_then(|r| serde_json::from_str::<String>(r.get()).ok())
    };
    if string(envelope.kind).as_deref() != Some("message") {
        return Ok(Unwrapped::Skipped);
    }
    let Some(channel) = string(envelope.channel) else {
        // python would compare it to its channel and skip it.
        return Ok(Unwrapped::Skipped);
    };
    let Some(data) = envelope.data else {
        return Ok(Unwrapped::Skipped);
    };
    let payload = match serde_json::from_str::<String>(data.get()) {
        // A string: JSON text of its own (as the other backends carry it).
        Ok(text) => Bytes::from(text),
        Err(_) => Bytes::copy_from_slice(data.get().as_bytes()),
    };
    Ok(Unwrapped::Message { channel, payload })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::python::{decode, encode, PyMessage};

    #[test]
    fn wraps_as_python_does() {
        // json.dumps({'type': 'message', 'channel': 'socketio', 'data':
        // {'method': 'close_room', ...}}) in python 3.11.
        let message = PyMessage::CloseRoom {
            room: "r\u{e9}".into(),
            namespace: "/".into(),
            host_id: Some("abc".into()),
        };
        let inner = encode(&message).unwrap();
        let wrapped = wrap("s\u{f6}cketio", &inner).unwrap();
        assert_eq!(
            &wrapped[..],
            br#"{"type": "message", "channel": "s\u00f6cketio", "data": {"method": "close_room", "room": "r\u00e9", "namespace": "/", "host_id": "abc"}}"#
        );
        let limits = BusLimits::default();
        let Unwrapped::Message { channel, payload } = unwrap(&wrapped, &limits).unwrap() else {
            panic!("not a message");
        };
        assert_eq!(channel, "s\u{f6}cketio");
        assert_eq!(payload, inner);
        assert_eq!(decode(&payload, &limits).unwrap(), message);
    }

    #[test]
    fn refuses_to_wrap_what_python_could_not_read() {
        assert!(wrap("socketio", b"not json").is_err());
        assert!(wrap("socketio", b"\xff").is_err());
        assert!(wrap("socketio", b"{} {}").is_err());
    }

    #[test]
    fn unwraps_what_python_keeps_and_skips_the_rest() {
        let limits = BusLimits::default();
        // data as a string of JSON text, compact separators, other keys.
        let frame = br#"{"data":"{\"method\":\"emit\"}","channel":"c","type":"message","x":1}"#;
        assert_eq!(
            unwrap(frame, &limits).unwrap(),
            Unwrapped::Message {
                channel: "c".into(),
                payload: Bytes::from_static(br#"{"method":"emit"}"#),
            }
        );
        for skipped in [
            &br#"{"type":"probe","channel":"c","data":{}}"#[..],
            br#"{"channel":"c","data":{}}"#,
            br#"{"type":"message","data":{}}"#,
            br#"{"type":"message","channel":7,"data":{}}"#,
            br#"{"type":"message","channel":"c"}"#,
        ] {
            assert_eq!(unwrap(skipped, &limits).unwrap(), Unwrapped::Skipped);
        }
        for bad in [&b"not json"[..], b"[1]", b"\"x\"", b"", b"{\"type\":"] {
            assert!(
                unwrap(bad, &limits).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let small = BusLimits {
            max_message_bytes: 8,
            ..BusLimits::default()
        };
        assert!(unwrap(br#"{"type":"message"}"#, &small).is_err());
        // Deep nesting: the envelope skims it (serde_json skips a raw value
        // without recursing), the message's decoder refuses it.
        let deep = format!(
            r#"{{"type":"message","channel":"c","data":{}{}}}"#,
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        let Unwrapped::Message { payload, .. } = unwrap(deep.as_bytes(), &limits).unwrap() else {
            panic!("not a message");
        };
        assert!(decode(&payload, &limits).is_err());
    }
}
