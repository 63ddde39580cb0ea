//! Shared application state, registered on the builder.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::Arc;

use super::context::HasSocket;
use super::{FromContext, Refused};

/// Application state of type `T`, registered with
/// [`crate::ServerBuilder::with_state`]: one value shared by every handler
/// (an `Arc`: taking it is a reference count, `T` need not be `Clone`).
/// Put a `Mutex` or atomics inside for what changes. Asking for a type that
/// was not registered drops the event (refuses the connection), with a
/// warning naming the type.
///
/// ```no_run
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use socketio::{Server, extract::State};
///
/// #[derive(Default)]
/// struct Hits(AtomicUsize);
///
/// # fn main() {
/// let server = Server::builder().with_state(Hits::default()).build();
/// server.ns("/", |ns| {
///     ns.on("hit", |State(hits): State<Hits>| async move {
///         hits.0.fetch_add(1, Ordering::Relaxed) + 1 // the answer
///     });
/// });
/// # }
/// ```
#[derive(Debug)]
pub struct State<T>(pub Arc<T>);

impl<T> Clone for State<T> {
    fn clone(&self) -> Self {
        State(self.0.clone())
    }
}

impl<T> std::ops::Deref for State<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<Cx: HasSocket, T: Send + Sync + 'static> FromContext<Cx> for State<T> {
    fn from_context(cx: &mut Cx) -> Result<Self, Refused> {
        cx.socket_ref()
            .server()
            .state::<T>()
            .map(State)
            .ok_or_else(|| {
                Refused::new(
                    "State",
                    format_args!(
                        "no state of type {} (ServerBuilder::with_state)",
                        std::any::type_name::<T>()
                    ),
                )
            })
    }
}

/// The states of a server, one per type.
#[derive(Default)]
pub(crate) struct StateMap(HashMap<TypeId, Arc<dyn Any + Send + Sync>>);

impl StateMap {
    pub(crate) fn insert<T: Send + Sync + 'static>(&mut self, value: T) {
        self.0.insert(TypeId::of::<T>(), Arc::new(value));
    }

    pub(crate) fn get<T: Send + Sync + 'static>(&self) -> Option<Arc<T>> {
        self.0.get(&TypeId::of::<T>())?.clone().downcast().ok()
    }
}
