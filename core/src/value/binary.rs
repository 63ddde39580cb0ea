//! [`Binary`], and the lending of a `Bytes` through serde: serde hands
//! serializers and visitors only `&[u8]`, so the buffer itself travels
//! beside the call in a thread-local slot for the parties that can keep it.

use std::cell::RefCell;
use std::fmt;

use bytes::Bytes;
use serde::de::{self, Deserialize, Deserializer, SeqAccess, Visitor};
use serde::ser::{Serialize, Serializer};

thread_local! {
    /// The `Bytes` lent right now by [`lending`]: being serialized by
    /// [`serialize_shared_bytes`] or visited as a `Value`'s binary.
    ///
    /// serde hands a serializer only `&[u8]`; a serializer of ours that
    /// wants to keep the buffer (the JSON parser's attachments) can take the
    /// `Bytes` from here when the slice is the same one, and so share it
    /// instead of copying. Other serializers never look.
    static SHARED_BYTES: RefCell<Option<Bytes>> = const { RefCell::new(None) };
}

/// Run `call` with `bytes` lent through [`SHARED_BYTES`], and clear the slot
/// afterwards whether or not anyone took it, so no buffer stays alive past
/// the call.
pub(super) fn lending<R>(bytes: &Bytes, call: impl FnOnce() -> R) -> R {
    SHARED_BYTES.with(|slot| *slot.borrow_mut() = Some(bytes.clone()));
    let result = call();
    SHARED_BYTES.with(|slot| slot.borrow_mut().take());
    result
}

/// Serialize `bytes` with `serialize_bytes`, offering the `Bytes` itself to
/// serializers that can share it (see [`take_shared_bytes`]).
pub(crate) fn serialize_shared_bytes<S: Serializer>(
    bytes: &Bytes,
    s: S,
) -> Result<S::Ok, S::Error> {
    lending(bytes, || s.serialize_bytes(bytes))
}

/// Offer `bytes` to a visitor as `visit_bytes`, lending the `Bytes` itself
/// to visitors that can keep it ([`Binary`]'s, through
/// [`take_shared_bytes`]); the reverse of [`serialize_shared_bytes`].
pub(crate) fn visit_shared_bytes<'de, V: Visitor<'de>, E: de::Error>(
    bytes: &Bytes,
    visitor: V,
) -> Result<V::Value, E> {
    lending(bytes, || visitor.visit_bytes(bytes))
}

/// The `Bytes` whose contents are exactly `data` (same pointer and length),
/// when it is being serialized by [`serialize_shared_bytes`] or visited
/// through [`visit_shared_bytes`].
pub(crate) fn take_shared_bytes(data: &[u8]) -> Option<Bytes> {
    SHARED_BYTES.with(|slot| {
        let mut slot = slot.borrow_mut();
        match &*slot {
            Some(b) if b.as_ptr() == data.as_ptr() && b.len() == data.len() => slot.take(),
            _ => None,
        }
    })
}

/// Binary data that the JSON parser sends as an attachment without copying.
///
/// `bytes::Bytes` works anywhere in an emitted value too, but serde gives
/// the parser only a borrowed slice of it, so it is copied once into the
/// attachment. Wrap it in `Binary` (in your structs, tuples or vectors) and
/// the attachment is the same buffer.
///
/// Received binary deserializes into `Binary` without a copy either: it is
/// the received attachment (or MessagePack/CBOR buffer) itself. Deserialized
/// into `bytes::Bytes` or `Vec<u8>`, it is copied once, because serde hands
/// those types only a slice.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Binary(pub Bytes);

impl Serialize for Binary {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize_shared_bytes(&self.0, s)
    }
}

impl<'de> Deserialize<'de> for Binary {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Binary, D::Error> {
        d.deserialize_byte_buf(BinaryVisitor)
    }
}

/// Like `Bytes`' own visitor, but keeps a lent `Bytes` instead of copying.
struct BinaryVisitor;

impl<'de> Visitor<'de> for BinaryVisitor {
    type Value = Binary;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("binary data")
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Binary, E> {
        Ok(Binary(
            take_shared_bytes(v).unwrap_or_else(|| Bytes::copy_from_slice(v)),
        ))
    }
    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Binary, E> {
        Ok(Binary(Bytes::from(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Binary, E> {
        Ok(Binary(Bytes::copy_from_slice(v.as_bytes())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Binary, E> {
        Ok(Binary(Bytes::from(v)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Binary, A::Error> {
        // Bounded by what the input holds, not by its size hint.
        let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(b) = seq.next_element::<u8>()? {
            bytes.push(b);
        }
        Ok(Binary(Bytes::from(bytes)))
    }
}

impl From<Bytes> for Binary {
    fn from(b: Bytes) -> Self {
        Binary(b)
    }
}

impl From<Binary> for Bytes {
    fn from(b: Binary) -> Self {
        b.0
    }
}

impl std::ops::Deref for Binary {
    type Target = Bytes;
    fn deref(&self) -> &Bytes {
        &self.0
    }
}
