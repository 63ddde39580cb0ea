//! A handler's return value as the answer to an acknowledgement request.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Display;

use serde::Serialize;
use socketio_core::parser::Args;
use socketio_core::{Binary, Bytes, Str, Value};

use crate::error::{Error, Result};
use crate::server::AckSender;

/// Where a handler's answer goes: the server's [`AckSender`] (a client's
/// acknowledgement implements it too, so [`IntoAck`] serves both sides).
pub trait AckSink {
    /// Send `args` as the answer (emit's rule: a tuple is several
    /// arguments, `()` none, any other value one).
    fn send_ack<A: Serialize + ?Sized>(self, args: &A) -> Result<()>;
}

impl AckSink for AckSender {
    fn send_ack<A: Serialize + ?Sized>(self, args: &A) -> Result<()> {
        self.send(args)
    }
}

/// What an event handler may return: its answer to the client's
/// acknowledgement request (python-socketio's rule), sent only when the
/// client asked for one and the handler did not take the [`AckSender`].
///
/// - `()`: no answer.
/// - a tuple: one argument per element (`("ok", 3)`); `(value,)` sends any
///   serializable `value` as one argument.
/// - a single value (`String`, `&'static str`, numbers, `bool`, [`Value`],
///   `serde_json::Value`, `Vec<T>`, maps, `Option<T>`, [`Binary`],
///   [`Bytes`], [`Args`]): one argument ([`Args`]: its arguments).
/// - [`Ack`]`(value)`: any serializable value, with emit's rule.
/// - `Result<T, E>`: `Ok` answers as `T` does; `Err` is logged as a
///   warning and nothing is sent (the client's call times out, as when a
///   JavaScript handler never calls back).
pub trait IntoAck {
    /// Answer on `sink`.
    fn answer<S: AckSink>(self, sink: S);
}

/// Any serializable value as the answer, with emit's rule (a tuple inside
/// is several arguments).
#[derive(Debug, Clone, PartialEq)]
pub struct Ack<T>(pub T);

/// Send, logging what could not be sent: a socket gone meanwhile is
/// routine (debug); a value that cannot be serialized is a bug (warning).
fn send<S: AckSink, A: Serialize + ?Sized>(sink: S, args: &A) {
    match sink.send_ack(args) {
        Ok(()) => {}
        Err(Error::Server(e)) => tracing::debug!(error = %e, "acknowledgement not sent"),
        Err(e) => tracing::warn!(error = %e, "acknowledgement not sent"),
    }
}

impl IntoAck for () {
    fn answer<S: AckSink>(self, _: S) {}
}

impl<T: Serialize> IntoAck for Ack<T> {
    fn answer<S: AckSink>(self, sink: S) {
        send(sink, &self.0)
    }
}

impl<T: IntoAck, E: Display> IntoAck for Result<T, E> {
    fn answer<S: AckSink>(self, sink: S) {
        match self {
            Ok(value) => value.answer(sink),
            Err(e) => tracing::warn!(error = %e, "handler failed: no acknowledgement sent"),
        }
    }
}

/// One argument.
macro_rules! one_argument {
    ($($ty:ty),* $(,)?) => {$(
        impl IntoAck for $ty {
            fn answer<S: AckSink>(self, sink: S) {
                send(sink, &(self,))
            }
        }
    )*};
}

one_argument!(
    String,
    &'static str,
    bool,
    char,
    i8,
    i16,
    i32,
    i64,
    i128,
    isize,
    u8,
    u16,
    u32,
    u64,
    u128,
    usize,
    f32,
    f64,
    Value,
    serde_json::Value,
    Binary,
    Bytes,
    Str,
);

impl<T: Serialize> IntoAck for Vec<T> {
    fn answer<S: AckSink>(self, sink: S) {
        send(sink, &(self,))
    }
}

impl<T: Serialize> IntoAck for Option<T> {
    fn answer<S: AckSink>(self, sink: S) {
        send(sink, &(self,))
    }
}

impl<K: Serialize, V: Serialize, H> IntoAck for HashMap<K, V, H> {
    fn answer<S: AckSink>(self, sink: S) {
        send(sink, &(self,))
    }
}

impl<K: Serialize, V: Serialize> IntoAck for BTreeMap<K, V> {
    fn answer<S: AckSink>(self, sink: S) {
        send(sink, &(self,))
    }
}

/// Its arguments, as they are.
impl IntoAck for Args {
    fn answer<S: AckSink>(self, sink: S) {
        send(sink, &self)
    }
}

/// One argument per element.
macro_rules! tuple_arguments {
    ($($t:ident),+) => {
        impl<$($t: Serialize),+> IntoAck for ($($t,)+) {
            fn answer<S: AckSink>(self, sink: S) {
                send(sink, &self)
            }
        }
    };
}

tuple_arguments!(A);
tuple_arguments!(A, B);
tuple_arguments!(A, B, C);
tuple_arguments!(A, B, C, D);
tuple_arguments!(A, B, C, D, E);
tuple_arguments!(A, B, C, D, E, F);
tuple_arguments!(A, B, C, D, E, F, G);
tuple_arguments!(A, B, C, D, E, F, G, H);
