//! Appending a connection-state-recovery offset to event arguments.
//!
//! The reference appends the offset to the event array
//! (`["event", ..args, "<offset>"]`). Arguments reach the parser as one
//! serializable value that spreads (a tuple is several arguments, `()` none,
//! anything else one), so [`WithOffset`] serializes as a tuple of the spread
//! arguments plus the offset.

use std::fmt;

use serde::ser::{self, Impossible, Serialize, SerializeTuple, Serializer};

/// Event arguments followed by a recovery offset: one more argument.
pub(crate) struct WithOffset<'a, A: ?Sized> {
    /// The application's arguments.
    pub args: &'a A,
    /// The offset, last.
    pub offset: &'a str,
}

impl<A: Serialize + ?Sized> Serialize for WithOffset<'_, A> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let shape = shape_of(self.args);
        let len = match shape {
            Shape::Unit => 0,
            Shape::Tuple(n) => n,
            Shape::One => 1,
        };
        let mut tuple = s.serialize_tuple(len + 1)?;
        match shape {
            Shape::Unit => {}
            Shape::One => tuple.serialize_element(self.args)?,
            Shape::Tuple(_) => self.args.serialize(TupleForwarder(&mut tuple))?,
        }
        tuple.serialize_element(self.offset)?;
        tuple.end()
    }
}

/// How a value passed as arguments spreads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Unit,
    Tuple(usize),
    One,
}

/// Find the shape by starting to serialize into a probe that stops at once.
fn shape_of<A: Serialize + ?Sized>(args: &A) -> Shape {
    match args.serialize(ShapeProbe) {
        Ok(shape) | Err(Probed(shape)) => shape,
    }
}

#[derive(Debug)]
struct Probed(Shape);

impl fmt::Display for Probed {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}
impl std::error::Error for Probed {}
impl ser::Error for Probed {
    fn custom<T: fmt::Display>(_: T) -> Self {
        Probed(Shape::One)
    }
}

struct ShapeProbe;

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
    fn serialize_tuple(self, len: usize) -> Result<Self::SerializeTuple, Probed> {
        Err(Probed(Shape::Tuple(len)))
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

/// Serializer that forwards a tuple's elements into an enclosing tuple.
struct TupleForwarder<'s, T>(&'s mut T);

impl<T: SerializeTuple> SerializeTuple for TupleForwarder<'_, T> {
    type Ok = ();
    type Error = T::Error;
    fn serialize_element<V: Serialize + ?Sized>(&mut self, value: &V) -> Result<(), T::Error> {
        self.0.serialize_element(value)
    }
    fn end(self) -> Result<(), T::Error> {
        Ok(())
    }
}

fn changed_shape<E: ser::Error>() -> E {
    E::custom("arguments changed shape while serializing")
}

macro_rules! not_a_tuple {
    ($($name:ident($($arg:ty),*)),* $(,)?) => {$(
        fn $name(self, $(_: $arg),*) -> Result<(), T::Error> {
            Err(changed_shape())
        }
    )*};
}

impl<T: SerializeTuple> Serializer for TupleForwarder<'_, T> {
    type Ok = ();
    type Error = T::Error;
    type SerializeSeq = Impossible<(), T::Error>;
    type SerializeTuple = Self;
    type SerializeTupleStruct = Impossible<(), T::Error>;
    type SerializeTupleVariant = Impossible<(), T::Error>;
    type SerializeMap = Impossible<(), T::Error>;
    type SerializeStruct = Impossible<(), T::Error>;
    type SerializeStructVariant = Impossible<(), T::Error>;

    fn serialize_tuple(self, _len: usize) -> Result<Self, T::Error> {
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

    fn serialize_some<V: Serialize + ?Sized>(self, _: &V) -> Result<(), T::Error> {
        Err(changed_shape())
    }
    fn serialize_newtype_struct<V: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: &V,
    ) -> Result<(), T::Error> {
        Err(changed_shape())
    }
    fn serialize_newtype_variant<V: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &V,
    ) -> Result<(), T::Error> {
        Err(changed_shape())
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, T::Error> {
        Err(changed_shape())
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, T::Error> {
        Err(changed_shape())
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, T::Error> {
        Err(changed_shape())
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, T::Error> {
        Err(changed_shape())
    }
    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStruct, T::Error> {
        Err(changed_shape())
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, T::Error> {
        Err(changed_shape())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json<A: Serialize + ?Sized>(args: &A) -> String {
        serde_json::to_string(&WithOffset { args, offset: "7" }).unwrap()
    }

    #[test]
    fn offset_is_one_more_argument() {
        assert_eq!(json(&()), r#"["7"]"#);
        assert_eq!(json(&5), r#"[5,"7"]"#);
        assert_eq!(json(&(1, "a")), r#"[1,"a","7"]"#);
        assert_eq!(json(&vec![1, 2]), r#"[[1,2],"7"]"#);
        assert_eq!(json(&(1, (2, 3))), r#"[1,[2,3],"7"]"#);
        assert_eq!(
            shape_of(&WithOffset {
                args: &(1, 2),
                offset: "x"
            }),
            Shape::Tuple(3)
        );
    }
}
