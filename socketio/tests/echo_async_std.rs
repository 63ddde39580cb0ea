//! echo_client against echo_server, both on async-std.
#![cfg(feature = "async-std")]

mod common;

#[test]
fn echo_examples_interoperate_on_async_std() {
    let passed = common::echo_matrix(socketio::RuntimeKind::AsyncStd);
    assert_eq!(passed, 16);
}
