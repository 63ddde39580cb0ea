//! The one timer loop, shared by the server and client drivers.

use std::sync::{Arc, Weak};
use std::time::Instant;

use futures_util::future::{select, Either};

use crate::runtime::Runtime;

/// A driver with the one timer.
pub(crate) trait Timed: Send + Sync + 'static {
    fn next_timeout(this: &Arc<Self>) -> Option<Instant>;
    fn on_timeout(this: &Arc<Self>);
}

/// The one timer: sleeps until the core's next deadline, re-armed through
/// `wake` whenever the deadline changes; ends once the driver is gone.
pub(crate) async fn timer_loop<D: Timed>(
    driven: Weak<D>,
    runtime: Arc<dyn Runtime>,
    wake: async_channel::Receiver<()>,
) {
    loop {
        let deadline = match driven.upgrade() {
            Some(d) => D::next_timeout(&d),
            None => return,
        };
        match deadline {
            None => {
                if wake.recv().await.is_err() {
                    return;
                }
            }
            Some(at) => {
                let woken = Box::pin(wake.recv());
                match select(runtime.sleep_until(at), woken).await {
                    Either::Left(_) => {
                        if Instant::now() >= at {
                            match driven.upgrade() {
                                Some(d) => D::on_timeout(&d),
                                None => return,
                            }
                        }
                    }
                    Either::Right((Ok(()), _)) => {}
                    Either::Right((Err(_), _)) => return,
                }
            }
        }
    }
}
