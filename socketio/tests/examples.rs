//! Every example explains itself: `--help` exits 0 with a one-line
//! description, the synopsis and each option; an unknown option exits 2
//! with a hint to `--help` (the shared `examples/common/cli.rs`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Every example of the workspace (the `socketio` crate's and
/// `socketio-blocking`'s `custom_event_loop`).
const EXAMPLES: [&str; 7] = [
    "chat",
    "echo_server",
    "echo_client",
    "emit",
    "conformance_server",
    "custom_event_loop",
    "axum_app",
];

/// How long an example may take to answer `--help` (it reads no network).
const DEADLINE: Duration = Duration::from_secs(30);

fn workspace_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the socketio crate is in the workspace")
        .to_path_buf()
}

/// Builds the examples (`cargo build --all-features --example ..`: nothing
/// to do after `cargo test --workspace --all-features`, which built them)
/// and returns their paths, in [`EXAMPLES`] order. Running cargo from a
/// test is fine: the outer `cargo test` holds the build lock only while it
/// builds.
fn build_examples() -> Vec<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
    let mut command = Command::new(cargo);
    command
        .current_dir(workspace_dir())
        .args([
            "build",
            "--all-features",
            "--message-format=json-render-diagnostics",
        ])
        .stdin(Stdio::null());
    for name in EXAMPLES {
        command.args(["--example", name]);
    }
    let output = command.output().expect("cargo runs");
    assert!(
        output.status.success(),
        "cargo build of the examples failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let artifacts: Vec<serde_json::Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .filter(|message: &serde_json::Value| message["reason"] == "compiler-artifact")
        .collect();
    EXAMPLES
        .iter()
        .map(|name| {
            artifacts
                .iter()
                .filter(|message| message["target"]["name"] == *name)
                .find_map(|message| message["executable"].as_str().map(PathBuf::from))
                .unwrap_or_else(|| panic!("example {name} not in cargo's output"))
        })
        .collect()
}

/// Runs `program arg` to its end, within [`DEADLINE`].
fn run(program: &Path, arg: &str) -> Output {
    let mut child = Command::new(program)
        .arg(arg)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
    let started = Instant::now();
    while child.try_wait().expect("waitable").is_none() {
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            panic!("{} {arg} still runs after {DEADLINE:?}", program.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

#[test]
fn every_example_explains_itself_and_refuses_unknown_options() {
    for (name, program) in EXAMPLES.iter().zip(build_examples()) {
        let help = run(&program, "--help");
        let text = String::from_utf8_lossy(&help.stdout);
        assert_eq!(help.status.code(), Some(0), "{name} --help: {help:?}");
        let first = text.lines().next().unwrap_or_default();
        let description = first
            .strip_prefix(&format!("{name}: "))
            .unwrap_or_else(|| panic!("{name} --help does not start with its name: {text}"));
        assert!(
            description.split_whitespace().count() >= 5,
            "{name}: no one-line description: {first}"
        );
        assert!(text.contains(&format!("usage: {name} ")), "{name}: {text}");
        let options = text
            .split_once("\noptions:\n")
            .unwrap_or_else(|| panic!("{name}: no options: {text}"))
            .1;
        // Each option line has a meaning beside it.
        for line in options.lines().take_while(|line| !line.is_empty()) {
            let flag = line.trim_start();
            if line.len() - flag.len() == 2 {
                let meaning = flag.split_once("  ").map(|(_, meaning)| meaning.trim());
                assert!(
                    meaning.is_some_and(|meaning| !meaning.is_empty()),
                    "{name}: option without a meaning: {line}"
                );
            }
        }

        let refused = run(&program, "--no-such-option");
        let complaint = String::from_utf8_lossy(&refused.stderr);
        assert_eq!(refused.status.code(), Some(2), "{name}: {refused:?}");
        assert!(
            complaint.contains("unknown option --no-such-option")
                && complaint.contains(&format!("`{name} --help`")),
            "{name}: no hint: {complaint}"
        );
    }
}
