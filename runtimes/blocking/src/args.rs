//! Turning the application's arguments into [`Args`] on the calling thread,
//! so that only owned values cross to the IO thread.
//!
//! The rule is the core's: a tuple is several arguments, `()` is none, any
//! other value is exactly one (so a `Vec` is one array argument).

use std::fmt;

use serde::ser::{self, Impossible, Serialize, Serializer};
use socketio_core::parser::Args;
use socketio_core::value::{to_value, ValueError};
use socketio_core::Value;

/// Build [`Args`] from `args` with the spreading rule above: `&("a", 1)` is
/// two arguments, `&()` none, `&vec![1, 2]` one array. Binary values
/// ([`socketio_core::Binary`], `bytes::Bytes`) stay binary.
pub fn to_args<A: Serialize + ?Sized>(args: &A) -> Result<Args, ValueError> {
    let shape = match args.serialize(ShapeProbe) {
        Ok(shape) | Err(Probed(shape)) => shape,
    };
    let values = match shape {
        Shape::Unit => Vec::new(),
        Shape::One => vec![to_value(args)?],
        Shape::Tuple => match to_value(args)? {
            Value::Array(items) => items,
            other => vec![other],
        },
    };
    Ok(Args::from_values(values))
}

#[derive(Debug, Clone, Copy)]
enum Shape {
    Unit,
    Tuple,
    One,
}

/// Stops serializing at the first call and reports what it was.
struct ShapeProbe;

/// The probe's "error": the shape found, to stop a compound value early.
#[derive(Debug)]
struct Probed(Shape);

impl fmt::Display for Probed {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "probed {:?}", self.0)
    }
}
impl std::error::Error for Probed {}
impl ser::Error for Probed {
    fn custom<T: fmt::Display>(_: T) -> Self {
        // A value that fails to serialize fails again, with its real
        // message, when it is converted as one argument.
        Probed(Shape::One)
    }
}

macro_rules! one {
    ($($name:ident($($arg:ty),*)),* $(,)?) => {$(
        fn $name(self, $(_: $arg),*) -> Result<Shape, Probed> {
            Ok(Shape::One)
        }
    )*};
}

impl Serializer for ShapeProbe {
    type Ok = Shape;
    type Error = Probed;
    type SerializeSeq = Impossible<Shape, Probed>;
    type SerializeTuple = Impossible<Shape, Probed>;
    type SerializeTupleStruct = Impossible<Shape, Probed>;
    type SerializeTupleVariant = Impossible<Shape, Probed>;
    type SerializeMap = Impossible<Shape, Probed>;
    type SerializeStruct = Impossible<Shape, Probed>;
    type SerializeStructVariant = Impossible<Shape, Probed>;

    fn serialize_unit(self) -> Result<Shape, Probed> {
        Ok(Shape::Unit)
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Probed> {
        Err(Probed(Shape::Tuple))
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

    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<Shape, Probed> {
        Ok(Shape::One)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: &T,
    ) -> Result<Shape, Probed> {
        Ok(Shape::One)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<Shape, Probed> {
        Ok(Shape::One)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Probed> {
        Err(Probed(Shape::One))
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, Probed> {
        Err(Probed(Shape::One))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, Probed> {
        Err(Probed(Shape::One))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Probed> {
        Err(Probed(Shape::One))
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct, Probed> {
        Err(Probed(Shape::One))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, Probed> {
        Err(Probed(Shape::One))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tuples_spread_unit_is_empty_and_anything_else_is_one() {
        assert_eq!(to_args(&()).unwrap().len(), 0);
        assert_eq!(to_args(&("a", 1, true)).unwrap().len(), 3);
        assert_eq!(to_args(&vec![1, 2, 3]).unwrap().len(), 1);
        assert_eq!(to_args(&"one").unwrap().len(), 1);
        let (a, b): (String, i64) = to_args(&("x", 7)).unwrap().deserialize().unwrap();
        assert_eq!((a.as_str(), b), ("x", 7));
    }

    #[test]
    fn binary_stays_binary() {
        let blob = socketio_core::Binary::from(socketio_core::Bytes::from_static(&[1, 2]));
        let args = to_args(&("b", blob)).unwrap();
        let values = args.to_values().unwrap();
        assert!(values[1].has_binary());
    }
}
