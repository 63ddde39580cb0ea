//! The interop matrix: echo clients against echo servers of the shared
//! contract (`tests/interop/README.md`).
//!
//! `peer_x_peer` runs only the Node and Python peers against each other: it
//! validates the harness and the peers' expectations. `rust_x_peer` runs our
//! `echo_server` / `echo_client` examples against both peers on each runtime,
//! and (`rust_x_peer::mounted_axum`) the peers' clients against our server
//! mounted in axum (`echo_server --mount axum`).
//! Every case starts its own server, so cases run in parallel (libtest's
//! threads, one per core by default) without seeing each other.
//!
//! Pair-specific expectations live in `Case::quirk_args` and in the peers'
//! comments: python-socketio sends the connect handler's events before its
//! CONNECT reply, writes `data: nil` in MessagePack (the JS client then ends
//! with `parse error` instead of `io server disconnect`), reads the JS
//! client's MessagePack `undefined` auth as an ExtType, escapes non-ASCII
//! JSON as `\u` surrogate pairs, names the server disconnect reason
//! `server disconnect`, and has no CBOR serializer nor connection state
//! recovery; so there are no CBOR or state recovery cases here.

use socketio_interop::{check, Case, Parser, Peer, Runtime, Transport};

/// Every transport × namespace × parser, plus the refusal on both parsers:
/// 14 tests for one client/server pair.
macro_rules! full_matrix {
    ($client:expr, $server:expr) => {
        mod polling {
            use super::*;
            full_matrix!(@nsp_parser $client, $server, Transport::Polling);
        }
        mod websocket {
            use super::*;
            full_matrix!(@nsp_parser $client, $server, Transport::Websocket);
        }
        mod upgrade {
            use super::*;
            full_matrix!(@nsp_parser $client, $server, Transport::Upgrade);
        }
        #[test]
        fn refused_json() {
            check(Case::reject($client, $server, Transport::Polling, "/custom", Parser::Json));
        }
        #[test]
        fn refused_msgpack() {
            check(Case::reject($client, $server, Transport::Websocket, "/", Parser::Msgpack));
        }
    };
    (@nsp_parser $client:expr, $server:expr, $transport:expr) => {
        #[test]
        fn root_json() {
            check(Case::echo($client, $server, $transport, "/", Parser::Json));
        }
        #[test]
        fn root_msgpack() {
            check(Case::echo($client, $server, $transport, "/", Parser::Msgpack));
        }
        #[test]
        fn custom_json() {
            check(Case::echo($client, $server, $transport, "/custom", Parser::Json));
        }
        #[test]
        fn custom_msgpack() {
            check(Case::echo($client, $server, $transport, "/custom", Parser::Msgpack));
        }
    };
}

/// Our four pairings with the peers on one runtime.
macro_rules! rust_pairs {
    ($matrix:ident, $ours:expr) => {
        mod rust_client_node_server {
            use super::*;
            $matrix!($ours, Peer::Node);
        }
        mod rust_client_python_server {
            use super::*;
            $matrix!($ours, Peer::Python);
        }
        mod node_client_rust_server {
            use super::*;
            $matrix!(Peer::Node, $ours);
        }
        mod python_client_rust_server {
            use super::*;
            $matrix!(Peer::Python, $ours);
        }
    };
}

mod peer_x_peer {
    use super::*;

    mod node_client_node_server {
        use super::*;
        full_matrix!(Peer::Node, Peer::Node);
    }
    mod python_client_node_server {
        use super::*;
        full_matrix!(Peer::Python, Peer::Node);
    }
    mod node_client_python_server {
        use super::*;
        full_matrix!(Peer::Node, Peer::Python);
    }
    mod python_client_python_server {
        use super::*;
        full_matrix!(Peer::Python, Peer::Python);
    }

    /// The server process is killed and started again on the same port; the
    /// client must reconnect by itself and round-trip again.
    mod server_restart {
        use super::*;

        #[test]
        fn node_client_node_server_websocket() {
            check(Case::reconnect(
                Peer::Node,
                Peer::Node,
                Transport::Websocket,
            ));
        }
        #[test]
        fn node_client_node_server_polling() {
            check(Case::reconnect(Peer::Node, Peer::Node, Transport::Polling));
        }
        #[test]
        fn python_client_python_server_websocket() {
            check(Case::reconnect(
                Peer::Python,
                Peer::Python,
                Transport::Websocket,
            ));
        }
        #[test]
        fn python_client_python_server_polling() {
            check(Case::reconnect(
                Peer::Python,
                Peer::Python,
                Transport::Polling,
            ));
        }
        #[test]
        fn node_client_python_server_upgrade() {
            check(Case::reconnect(
                Peer::Node,
                Peer::Python,
                Transport::Upgrade,
            ));
        }
        #[test]
        fn python_client_node_server_upgrade() {
            check(Case::reconnect(
                Peer::Python,
                Peer::Node,
                Transport::Upgrade,
            ));
        }
    }
}

mod rust_x_peer {
    use super::*;

    /// The full matrix on every runtime.
    mod tokio {
        use super::*;
        rust_pairs!(full_matrix, Peer::Ours(Runtime::Tokio));
    }
    mod async_std {
        use super::*;
        rust_pairs!(full_matrix, Peer::Ours(Runtime::AsyncStd));
    }
    mod smol {
        use super::*;
        rust_pairs!(full_matrix, Peer::Ours(Runtime::Smol));
    }
    /// Our server mounted in an axum router through the `tower` feature
    /// (`echo_server --mount axum`, tokio), against the peers' clients.
    mod mounted_axum {
        use super::*;
        mod node_client_rust_server {
            use super::*;
            full_matrix!(Peer::Node, Peer::Ours(Runtime::TokioAxum));
        }
        mod python_client_rust_server {
            use super::*;
            full_matrix!(Peer::Python, Peer::Ours(Runtime::TokioAxum));
        }
    }

    /// Issue 5: reconnection after the server restarts.
    mod server_restart {
        use super::*;

        #[test]
        fn node_client_rust_server_websocket() {
            check(Case::reconnect(
                Peer::Node,
                Peer::Ours(Runtime::Tokio),
                Transport::Websocket,
            ));
        }
        #[test]
        fn python_client_rust_server_upgrade() {
            check(Case::reconnect(
                Peer::Python,
                Peer::Ours(Runtime::Tokio),
                Transport::Upgrade,
            ));
        }
        #[test]
        fn rust_client_node_server_websocket() {
            check(Case::reconnect(
                Peer::Ours(Runtime::Tokio),
                Peer::Node,
                Transport::Websocket,
            ));
        }
        #[test]
        fn rust_client_python_server_polling() {
            check(Case::reconnect(
                Peer::Ours(Runtime::Tokio),
                Peer::Python,
                Transport::Polling,
            ));
        }
    }
}
