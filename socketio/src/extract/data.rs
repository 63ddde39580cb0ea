//! The arguments of an event, deserialized.

use serde::de::DeserializeOwned;
use socketio_core::parser::ArgsError;

use super::{EventParts, FromContext, Refused};

/// The event's arguments deserialized into `T`: one argument into any
/// type, several into a tuple (`Data<(String, u32)>`), none into `()`;
/// missing trailing tuple elements read as `null` (so `Option`s become
/// `None`), extra arguments are ignored (see [`crate::Args`]). Arguments
/// that do not fit drop the event, with a warning and no acknowledgement;
/// [`TryData`] hands over the error instead.
///
/// ```no_run
/// # use socketio::{Server, extract::Data};
/// # fn setup(server: &Server) { server.ns("/", |ns| {
/// ns.on("move", |Data((x, y)): Data<(f64, f64)>| async move {
///     println!("to {x},{y}");
/// });
/// # }); }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Data<T>(pub T);

impl<Cx: EventParts, T: DeserializeOwned> FromContext<Cx> for Data<T> {
    const READS_ARGS: bool = true;

    fn from_context(cx: &mut Cx) -> Result<Self, Refused> {
        cx.event_args()
            .deserialize()
            .map(Data)
            .map_err(|e| Refused::new(std::any::type_name::<Self>(), e))
    }
}

/// The event's arguments deserialized into `T` as [`Data`] does, or why
/// they do not fit: the handler runs either way.
#[derive(Debug, Clone, PartialEq)]
pub struct TryData<T>(pub Result<T, ArgsError>);

impl<Cx: EventParts, T: DeserializeOwned> FromContext<Cx> for TryData<T> {
    const READS_ARGS: bool = true;

    fn from_context(cx: &mut Cx) -> Result<Self, Refused> {
        Ok(TryData(cx.event_args().deserialize()))
    }
}
