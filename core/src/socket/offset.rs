//! Appending a connection-state-recovery offset to event arguments.
//!
//! The reference appends the offset to the event array
//! (`["event", ..args, "<offset>"]`). Arguments reach the parser as one
//! serializable value that spreads (a tuple is several arguments, `()` none,
//! anything else one), so [`WithOffset`] serializes as a tuple of the spread
//! arguments plus the offset.

use serde::ser::{Serialize, SerializeTuple, Serializer};

use crate::parser::{arg_shape, spread_into, ArgShape, TupleSink};

/// Event arguments followed by a recovery offset: one more argument.
pub(crate) struct WithOffset<'a, A: ?Sized> {
    /// The application's arguments.
    pub args: &'a A,
    /// The offset, last.
    pub offset: &'a str,
}

impl<A: Serialize + ?Sized> Serialize for WithOffset<'_, A> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let shape = arg_shape(self.args);
        let len = match shape {
            ArgShape::Unit => 0,
            ArgShape::Tuple(n) => n,
            ArgShape::One => 1,
        };
        let mut tuple = s.serialize_tuple(len + 1)?;
        match shape {
            ArgShape::Unit => {}
            ArgShape::One => tuple.serialize_element(self.args)?,
            ArgShape::Tuple(_) => spread_into(self.args, TupleSink(&mut tuple))?,
        }
        tuple.serialize_element(self.offset)?;
        tuple.end()
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
            arg_shape(&WithOffset {
                args: &(1, 2),
                offset: "x"
            }),
            ArgShape::Tuple(3)
        );
    }
}
