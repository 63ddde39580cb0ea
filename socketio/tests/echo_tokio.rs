//! echo_client against echo_server, both on tokio.
#![cfg(feature = "tokio")]

mod common;

#[test]
fn echo_examples_interoperate_on_tokio() {
    let passed = common::echo_matrix(socketio::RuntimeKind::Tokio);
    assert_eq!(passed, 16);
}
