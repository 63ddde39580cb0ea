//! echo_client against echo_server, both on smol.
#![cfg(feature = "smol")]

mod common;

#[test]
fn echo_examples_interoperate_on_smol() {
    let passed = common::echo_matrix(socketio::RuntimeKind::Smol);
    assert_eq!(passed, 16);
}
