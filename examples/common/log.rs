//! The examples' `--log FILTER` option, over `socketio::logging`.

use super::cli::Help;

/// What `--log FILTER` means, for the examples' help.
pub const LOG_OPTION: (&str, &str) = (
    "--log FILTER",
    "log to stderr: a level (debug) or target=level pairs (socketio_core::engine=debug,socketio::=debug); RUST_LOG when not given",
);

/// Logs to stderr as `--log` says, else as `RUST_LOG` says, else with
/// `default` (nothing when `None`). A bad `--log` refuses the command line.
pub fn init(flag: Option<String>, default: Option<&str>, help: &Help) {
    match (flag, std::env::var_os("RUST_LOG"), default) {
        (Some(filter), _, _) => {
            socketio::logging::init_with(&filter).unwrap_or_else(|e| help.fail(e));
        }
        (None, Some(_), _) => socketio::logging::init(),
        (None, None, Some(filter)) => {
            let _ = socketio::logging::init_with(filter);
        }
        (None, None, None) => {}
    }
}
