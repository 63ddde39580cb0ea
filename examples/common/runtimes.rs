//! The `--runtime` flag of the examples: every runtime, whatever features
//! `socketio` was built with (the adapters are dev-dependencies).

use std::future::Future;
use std::sync::Arc;

use socketio::Runtime;

/// The runtime called `name`: tokio, async-std or smol.
pub fn runtime_named(name: &str) -> Option<Arc<dyn Runtime>> {
    match name {
        "tokio" => Some(Arc::new(socketio_tokio::TokioRuntime::current_or_global())),
        "async-std" => Some(Arc::new(socketio_async_std::AsyncStdRuntime)),
        "smol" => Some(Arc::new(socketio_smol::SmolRuntime)),
        _ => None,
    }
}

/// Run `main` on the runtime named `name` (checked with
/// [`runtime_named`] first), with that runtime current.
pub fn block_on<F: Future>(name: &str, main: F) -> F::Output {
    let main = async {
        let runtime = runtime_named(name).expect("runtime checked");
        socketio::set_current_runtime(runtime);
        main.await
    };
    match name {
        "async-std" => socketio_async_std::AsyncStdRuntime::block_on(main),
        "smol" => socketio_smol::SmolRuntime::block_on(main),
        _ => socketio_tokio::TokioRuntime::block_on(main),
    }
}
