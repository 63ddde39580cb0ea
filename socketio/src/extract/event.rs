//! The event name, for catch-all handlers.

use socketio_core::Str;

use super::{EventParts, FromContext, Refused};

/// The name of the event, for handlers registered with
/// [`crate::Namespace::on_any`] (a [`Str`] parameter gives it too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event(pub Str);

impl std::ops::Deref for Event {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl<Cx: EventParts> FromContext<Cx> for Event {
    fn from_context(cx: &mut Cx) -> Result<Self, Refused> {
        Ok(Event(cx.event_name().clone()))
    }
}

/// The event name as a plain [`Str`], as catch-all handlers took it before
/// extractors.
impl<Cx: EventParts> FromContext<Cx> for Str {
    fn from_context(cx: &mut Cx) -> Result<Self, Refused> {
        Ok(cx.event_name().clone())
    }
}
