//! Static files served by our own listener, next to the Socket.IO path,
//! on tokio and on smol.

mod raw;
mod web;

use std::net::SocketAddr;
use std::sync::mpsc;
use std::thread;

use socketio::{RuntimeKind, Server};

/// Serve `site` on `runtime` in a thread of its own, run the checks, stop.
fn serve_and_check(runtime: RuntimeKind, name: &str) -> usize {
    let site = web::Site::new(name);
    let files = site.static_files();
    let (addr_tx, addr_rx) = mpsc::channel::<SocketAddr>();
    let (stop_tx, stop_rx) = futures_channel::oneshot::channel::<()>();
    let server_thread = thread::spawn(move || {
        runtime.block_on(async move {
            let server = Server::builder()
                .runtime(runtime)
                .static_files(files)
                .build();
            let addr = server.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
            addr_tx.send(addr).unwrap();
            let _ = stop_rx.await;
            server.shutdown().await;
        })
    });
    let addr = addr_rx.recv().expect("server address");
    let checks = web::check_site(addr);
    let _ = stop_tx.send(());
    server_thread.join().unwrap();
    checks
}

#[cfg(feature = "tokio")]
#[test]
fn static_files_on_our_own_listener_on_tokio() {
    assert_eq!(serve_and_check(RuntimeKind::Tokio, "tokio"), 18);
}

#[cfg(feature = "smol")]
#[test]
fn static_files_on_our_own_listener_on_smol() {
    assert_eq!(serve_and_check(RuntimeKind::Smol, "smol"), 18);
}
