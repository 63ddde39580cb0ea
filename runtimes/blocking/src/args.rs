//! Turning the application's arguments into [`Args`] on the calling thread,
//! so that only owned values cross to the IO thread.
//!
//! The rule is the core's: a tuple is several arguments, `()` is none, any
//! other value is exactly one (so a `Vec` is one array argument).

use serde::Serialize;
use socketio_core::parser::Args;
use socketio_core::value::ValueError;

/// Build [`Args`] from `args` with the spreading rule above: `&("a", 1)` is
/// two arguments, `&()` none, `&vec![1, 2]` one array. Binary values
/// ([`socketio_core::Binary`], `bytes::Bytes`) stay binary.
pub fn to_args<A: Serialize + ?Sized>(args: &A) -> Result<Args, ValueError> {
    Args::from_serialize(args)
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
