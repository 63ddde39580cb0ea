//! The binary parts of an event.

use socketio_core::{Bytes, Value};

use super::{EventParts, FromContext, Refused};

/// The binary parts of the event's arguments, in order: the JSON parser's
/// attachments, or the binary values found in MessagePack or CBOR
/// arguments (depth first). Shared with the received buffers, not copied.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Bin(pub Vec<Bytes>);

impl<Cx: EventParts> FromContext<Cx> for Bin {
    const READS_ARGS: bool = true;

    fn from_context(cx: &mut Cx) -> Result<Self, Refused> {
        let args = cx.event_args();
        let attachments = args.attachments();
        if !attachments.is_empty() {
            return Ok(Bin(attachments.to_vec()));
        }
        // JSON without attachments holds no binary: no need to build values.
        if args.json_texts().is_some() {
            return Ok(Bin::default());
        }
        let values = args.to_values().map_err(|e| Refused::new("Bin", e))?;
        let mut parts = Vec::new();
        for value in &values {
            collect_binary(value, &mut parts);
        }
        Ok(Bin(parts))
    }
}

fn collect_binary(value: &Value, parts: &mut Vec<Bytes>) {
    match value {
        Value::Binary(bytes) => parts.push(bytes.clone()),
        Value::Array(items) => items.iter().for_each(|v| collect_binary(v, parts)),
        Value::Object(map) => map.iter().for_each(|(_, v)| collect_binary(v, parts)),
        _ => {}
    }
}
