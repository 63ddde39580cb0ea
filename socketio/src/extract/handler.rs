//! Functions and closures as handlers: each parameter an extractor.

use std::future::Future;

use socketio_driver::BoxFuture;

use super::{ConnectContext, DisconnectContext, EventContext, FromContext, IntoAck, Refused};
use crate::server::ConnectRefusal;

/// An event handler: an `async` closure or function taking up to 12
/// extractors ([`FromContext<EventContext>`]) and returning its answer
/// ([`IntoAck`]). `M` is the parameter list, inferred.
pub trait EventHandler<M>: Send + Sync + 'static {
    /// Extract the parameters and start the handler; `None` when an
    /// extractor refused (logged: the event is dropped).
    #[doc(hidden)]
    fn call(&self, cx: EventContext) -> Option<BoxFuture<'static, ()>>;
}

/// A connect handler: an `async` closure or function taking up to 12
/// extractors ([`FromContext<ConnectContext>`]) and returning whether the
/// connection is accepted ([`ConnectOutcome`]).
pub trait ConnectHandler<M>: Send + Sync + 'static {
    /// Extract the parameters and run the handler: its verdict (an
    /// extractor that refused refuses the connection).
    #[doc(hidden)]
    fn call(&self, cx: ConnectContext) -> BoxFuture<'static, Result<(), ConnectRefusal>>;
}

/// A disconnect handler: an `async` closure or function taking up to 12
/// extractors ([`FromContext<DisconnectContext>`]).
pub trait DisconnectHandler<M>: Send + Sync + 'static {
    /// Extract the parameters and start the handler; `None` when an
    /// extractor refused (logged).
    #[doc(hidden)]
    fn call(&self, cx: DisconnectContext) -> Option<BoxFuture<'static, ()>>;
}

/// What a connect handler returns: `()` accepts; `Ok(())` accepts and
/// `Err(refusal)` refuses with the refusal's message and data.
pub trait ConnectOutcome {
    /// The verdict.
    fn into_verdict(self) -> Result<(), ConnectRefusal>;
}

impl ConnectOutcome for () {
    fn into_verdict(self) -> Result<(), ConnectRefusal> {
        Ok(())
    }
}

impl ConnectOutcome for Result<(), ConnectRefusal> {
    fn into_verdict(self) -> Result<(), ConnectRefusal> {
        self
    }
}

fn event_dropped(cx: &EventContext, refused: &Refused) {
    tracing::warn!(
        socket = cx.socket.id(),
        event = %cx.event,
        ack_requested = cx.ack.is_some(),
        %refused,
        "event dropped: a handler parameter refused it"
    );
}

fn disconnect_skipped(cx: &DisconnectContext, refused: &Refused) {
    tracing::warn!(
        socket = cx.socket.id(),
        %refused,
        "disconnect handler skipped: a parameter refused"
    );
}

macro_rules! handlers {
    ($($t:ident),*) => {
        #[allow(non_snake_case, unused_mut, unused_variables)]
        impl<F, Fut, R, $($t,)*> EventHandler<($($t,)*)> for F
        where
            F: Fn($($t),*) -> Fut + Send + Sync + 'static,
            Fut: Future<Output = R> + Send + 'static,
            R: IntoAck,
            $($t: FromContext<EventContext>,)*
        {
            fn call(&self, mut cx: EventContext) -> Option<BoxFuture<'static, ()>> {
                // Which parameters read the arguments: the last of them may
                // take them rather than copy (constants: folded away).
                let reads: &[bool] = &[$(<$t as FromContext<EventContext>>::READS_ARGS),*];
                let mut position = 0;
                $(
                    position += 1;
                    let later_reads = reads[position..].contains(&true);
                    let extracted = if later_reads {
                        $t::from_context(&mut cx)
                    } else {
                        $t::from_context_owned(&mut cx)
                    };
                    let $t = match extracted {
                        Ok(value) => value,
                        Err(refused) => {
                            event_dropped(&cx, &refused);
                            return None;
                        }
                    };
                )*
                let reply = cx.into_reply();
                let handled = self($($t),*);
                Some(Box::pin(async move {
                    let answer = handled.await;
                    if let Some(reply) = reply {
                        answer.answer(reply);
                    }
                }))
            }
        }

        #[allow(non_snake_case, unused_mut, unused_variables)]
        impl<F, Fut, R, $($t,)*> ConnectHandler<($($t,)*)> for F
        where
            F: Fn($($t),*) -> Fut + Send + Sync + 'static,
            Fut: Future<Output = R> + Send + 'static,
            R: ConnectOutcome,
            $($t: FromContext<ConnectContext>,)*
        {
            fn call(&self, mut cx: ConnectContext) -> BoxFuture<'static, Result<(), ConnectRefusal>> {
                $(
                    let $t = match $t::from_context(&mut cx) {
                        Ok(value) => value,
                        Err(refused) => {
                            tracing::debug!(socket = cx.socket.id(), %refused, "connection refused by a handler parameter");
                            let refusal = ConnectRefusal::new(refused.to_string());
                            return Box::pin(async move { Err(refusal) });
                        }
                    };
                )*
                let handled = self($($t),*);
                Box::pin(async move { handled.await.into_verdict() })
            }
        }

        #[allow(non_snake_case, unused_mut, unused_variables)]
        impl<F, Fut, $($t,)*> DisconnectHandler<($($t,)*)> for F
        where
            F: Fn($($t),*) -> Fut + Send + Sync + 'static,
            Fut: Future<Output = ()> + Send + 'static,
            $($t: FromContext<DisconnectContext>,)*
        {
            fn call(&self, mut cx: DisconnectContext) -> Option<BoxFuture<'static, ()>> {
                $(
                    let $t = match $t::from_context(&mut cx) {
                        Ok(value) => value,
                        Err(refused) => {
                            disconnect_skipped(&cx, &refused);
                            return None;
                        }
                    };
                )*
                Some(Box::pin(self($($t),*)))
            }
        }
    };
}

handlers!();
handlers!(T1);
handlers!(T1, T2);
handlers!(T1, T2, T3);
handlers!(T1, T2, T3, T4);
handlers!(T1, T2, T3, T4, T5);
handlers!(T1, T2, T3, T4, T5, T6);
handlers!(T1, T2, T3, T4, T5, T6, T7);
handlers!(T1, T2, T3, T4, T5, T6, T7, T8);
handlers!(T1, T2, T3, T4, T5, T6, T7, T8, T9);
handlers!(T1, T2, T3, T4, T5, T6, T7, T8, T9, T10);
handlers!(T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11);
handlers!(T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12);
