//! Spreading an argument list into the array an event or ack carries.
//!
//! An application passes one serializable value as "the arguments": a tuple
//! is several arguments, `()` is none, and anything else is exactly one. The
//! wire wants a flat array `[event, arg1, arg2, ..]` (or `[arg1, ..]` for an
//! ack). [`ArgArray`] produces that array through any serde serializer, so
//! every parser shares the rule.

use std::fmt;

use serde::ser::{self, Impossible, Serialize, SerializeSeq, SerializeTuple, Serializer};

/// How a value passed as arguments spreads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ArgShape {
    /// `()`: no argument.
    Unit,
    /// A tuple of this many arguments.
    Tuple(usize),
    /// Any other value: one argument.
    One,
}

/// Find how `args` spreads, by letting it start serializing into a probe
/// that stops at the first call.
pub(crate) fn arg_shape<A: Serialize + ?Sized>(args: &A) -> ArgShape {
    match args.serialize(ShapeProbe) {
        Ok(shape) => shape,
        Err(Probed(shape)) => shape,
    }
}

/// `[event?, ...args]` as a serde sequence.
pub(crate) struct ArgArray<'a, A: ?Sized> {
    /// The event name, first in the array; `None` for acks.
    pub event: Option<&'a str>,
    /// The arguments, spread.
    pub args: &'a A,
}

impl<A: Serialize + ?Sized> Serialize for ArgArray<'_, A> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let shape = arg_shape(self.args);
        let len = usize::from(self.event.is_some())
            + match shape {
                ArgShape::Unit => 0,
                ArgShape::Tuple(n) => n,
                ArgShape::One => 1,
            };
        let mut seq = s.serialize_seq(Some(len))?;
        if let Some(event) = self.event {
            seq.serialize_element(event)?;
        }
        match shape {
            ArgShape::Unit => {}
            ArgShape::One => seq.serialize_element(self.args)?,
            ArgShape::Tuple(_) => spread_into(self.args, SeqSink(&mut seq))?,
        }
        seq.end()
    }
}

/// Where a spread tuple's elements go: an enclosing sequence or tuple.
pub(crate) trait Sink {
    /// The enclosing serializer's error.
    type Error: ser::Error;
    /// Serialize one more element of the enclosing compound.
    fn push<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Self::Error>;
}

/// Elements go into an enclosing sequence.
pub(crate) struct SeqSink<'s, Q>(pub &'s mut Q);

impl<Q: SerializeSeq> Sink for SeqSink<'_, Q> {
    type Error = Q::Error;
    fn push<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Q::Error> {
        self.0.serialize_element(value)
    }
}

/// Elements go into an enclosing tuple.
pub(crate) struct TupleSink<'s, Q>(pub &'s mut Q);

impl<Q: SerializeTuple> Sink for TupleSink<'_, Q> {
    type Error = Q::Error;
    fn push<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Q::Error> {
        self.0.serialize_element(value)
    }
}

/// Serialize `args`, whose shape is [`ArgShape::Tuple`], as elements of the
/// compound behind `sink`.
pub(crate) fn spread_into<A: Serialize + ?Sized, K: Sink>(
    args: &A,
    sink: K,
) -> Result<(), K::Error> {
    args.serialize(Spreader { sink })
}

/// Serializer that forwards a tuple's elements into an enclosing compound.
struct Spreader<K> {
    sink: K,
}

impl<K: Sink> SerializeTuple for Spreader<K> {
    type Ok = ();
    type Error = K::Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), K::Error> {
        self.sink.push(value)
    }
    fn end(self) -> Result<(), K::Error> {
        Ok(())
    }
}

macro_rules! not_a_tuple {
    ($($name:ident($($arg:ty),*)),* $(,)?) => {$(
        fn $name(self, $(_: $arg),*) -> Result<(), K::Error> {
            Err(ser::Error::custom("arguments changed shape while serializing"))
        }
    )*};
}

impl<K: Sink> Serializer for Spreader<K> {
    type Ok = ();
    type Error = K::Error;
    type SerializeSeq = Impossible<(), K::Error>;
    type SerializeTuple = Self;
    type SerializeTupleStruct = Impossible<(), K::Error>;
    type SerializeTupleVariant = Impossible<(), K::Error>;
    type SerializeMap = Impossible<(), K::Error>;
    type SerializeStruct = Impossible<(), K::Error>;
    type SerializeStructVariant = Impossible<(), K::Error>;

    fn serialize_tuple(self, _len: usize) -> Result<Self, K::Error> {
        Ok(self)
    }

    not_a_tuple!(
        serialize_bool(bool),
        serialize_i8(i8),
        serialize_i16(i16),
        serialize_i32(i32),
        serialize_i64(i64),
        serialize_u8(u8),
        serialize_u16(u16),
        serialize_u32(u32),
        serialize_u64(u64),
        serialize_f32(f32),
        serialize_f64(f64),
        serialize_char(char),
        serialize_str(&str),
        serialize_bytes(&[u8]),
        serialize_none(),
        serialize_unit(),
        serialize_unit_struct(&'static str),
        serialize_unit_variant(&'static str, u32, &'static str),
    );

    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<(), K::Error> {
        Err(ser::Error::custom(
            "arguments changed shape while serializing",
        ))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: &T,
    ) -> Result<(), K::Error> {
        Err(ser::Error::custom(
            "arguments changed shape while serializing",
        ))
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), K::Error> {
        Err(ser::Error::custom(
            "arguments changed shape while serializing",
        ))
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, K::Error> {
        Err(ser::Error::custom(
            "arguments changed shape while serializing",
        ))
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, K::Error> {
        Err(ser::Error::custom(
            "arguments changed shape while serializing",
        ))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, K::Error> {
        Err(ser::Error::custom(
            "arguments changed shape while serializing",
        ))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, K::Error> {
        Err(ser::Error::custom(
            "arguments changed shape while serializing",
        ))
    }
    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStruct, K::Error> {
        Err(ser::Error::custom(
            "arguments changed shape while serializing",
        ))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, K::Error> {
        Err(ser::Error::custom(
            "arguments changed shape while serializing",
        ))
    }
}

/// The probe's way to stop early with its answer.
#[derive(Debug)]
struct Probed(ArgShape);

impl fmt::Display for Probed {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}
impl std::error::Error for Probed {}
impl ser::Error for Probed {
    fn custom<T: fmt::Display>(_: T) -> Self {
        Probed(ArgShape::One)
    }
}

struct ShapeProbe;

macro_rules! one {
    ($($name:ident($($arg:ty),*)),* $(,)?) => {$(
        fn $name(self, $(_: $arg),*) -> Result<ArgShape, Probed> {
            Ok(ArgShape::One)
        }
    )*};
}

impl Serializer for ShapeProbe {
    type Ok = ArgShape;
    type Error = Probed;
    type SerializeSeq = Impossible<ArgShape, Probed>;
    type SerializeTuple = Impossible<ArgShape, Probed>;
    type SerializeTupleStruct = Impossible<ArgShape, Probed>;
    type SerializeTupleVariant = Impossible<ArgShape, Probed>;
    type SerializeMap = Impossible<ArgShape, Probed>;
    type SerializeStruct = Impossible<ArgShape, Probed>;
    type SerializeStructVariant = Impossible<ArgShape, Probed>;

    fn serialize_unit(self) -> Result<ArgShape, Probed> {
        Ok(ArgShape::Unit)
    }
    fn serialize_tuple(self, len: usize) -> Result<Self::SerializeTuple, Probed> {
        Err(Probed(ArgShape::Tuple(len)))
    }

    one!(
        serialize_bool(bool),
        serialize_i8(i8),
        serialize_i16(i16),
        serialize_i32(i32),
        serialize_i64(i64),
        serialize_u8(u8),
        serialize_u16(u16),
        serialize_u32(u32),
        serialize_u64(u64),
        serialize_f32(f32),
        serialize_f64(f64),
        serialize_char(char),
        serialize_str(&str),
        serialize_bytes(&[u8]),
        serialize_none(),
        serialize_unit_struct(&'static str),
        serialize_unit_variant(&'static str, u32, &'static str),
    );

    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<ArgShape, Probed> {
        Ok(ArgShape::One)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: &T,
    ) -> Result<ArgShape, Probed> {
        Ok(ArgShape::One)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<ArgShape, Probed> {
        Ok(ArgShape::One)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Probed> {
        Err(Probed(ArgShape::One))
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, Probed> {
        Err(Probed(ArgShape::One))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, Probed> {
        Err(Probed(ArgShape::One))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Probed> {
        Err(Probed(ArgShape::One))
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct, Probed> {
        Err(Probed(ArgShape::One))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, Probed> {
        Err(Probed(ArgShape::One))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json<A: Serialize + ?Sized>(event: Option<&str>, args: &A) -> String {
        serde_json::to_string(&ArgArray { event, args }).unwrap()
    }

    #[test]
    fn tuples_spread_and_other_values_are_one_argument() {
        assert_eq!(json(Some("e"), &()), r#"["e"]"#);
        assert_eq!(json(Some("e"), &(1, "a")), r#"["e",1,"a"]"#);
        assert_eq!(json(Some("e"), &(1,)), r#"["e",1]"#);
        assert_eq!(json(Some("e"), &vec![1, 2]), r#"["e",[1,2]]"#);
        assert_eq!(json(Some("e"), &5), r#"["e",5]"#);
        assert_eq!(json(None::<&str>, &(true, ())), r#"[true,null]"#);
        assert_eq!(json(None::<&str>, &None::<u8>), r#"[null]"#);
    }
}
