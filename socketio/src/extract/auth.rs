//! The auth payload of a connection request.

use serde::de::DeserializeOwned;
use socketio_core::parser::ArgsError;
use socketio_core::value::from_value;
use socketio_core::Value;

use super::{ConnectContext, FromContext, Refused};

/// The client's auth payload deserialized into `T` (no payload reads as
/// `null`, so `Auth<Option<T>>` accepts its absence). A payload that does
/// not fit refuses the connection; [`TryAuth`] hands over the error
/// instead.
///
/// ```no_run
/// # use socketio::{Server, SocketRef, ConnectRefusal, extract::Auth};
/// #[derive(serde::Deserialize)]
/// struct Token { token: String }
///
/// # fn setup(server: &Server) { server.ns("/", |ns| {
/// ns.on_connect(|Auth(auth): Auth<Token>| async move {
///     if auth.token == "secret" { Ok(()) } else { Err(ConnectRefusal::new("bad token")) }
/// });
/// # }); }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Auth<T>(pub T);

/// The auth payload deserialized as [`Auth`] does, or why it does not fit.
#[derive(Debug, Clone, PartialEq)]
pub struct TryAuth<T>(pub Result<T, ArgsError>);

fn auth<T: DeserializeOwned>(cx: &ConnectContext) -> Result<T, ArgsError> {
    from_value(cx.auth.clone().unwrap_or(Value::Null)).map_err(|e| ArgsError(e.0))
}

impl<T: DeserializeOwned> FromContext<ConnectContext> for Auth<T> {
    fn from_context(cx: &mut ConnectContext) -> Result<Self, Refused> {
        auth(cx)
            .map(Auth)
            .map_err(|e| Refused::new("invalid auth payload", e))
    }
}

impl<T: DeserializeOwned> FromContext<ConnectContext> for TryAuth<T> {
    fn from_context(cx: &mut ConnectContext) -> Result<Self, Refused> {
        Ok(TryAuth(auth(cx)))
    }
}

/// The raw auth payload, as connect handlers took it before extractors.
impl FromContext<ConnectContext> for Option<Value> {
    fn from_context(cx: &mut ConnectContext) -> Result<Self, Refused> {
        Ok(cx.auth.clone())
    }
}
