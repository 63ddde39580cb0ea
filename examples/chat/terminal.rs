//! The client's screen and keyboard: incoming lines are printed above the
//! line being typed, which is then drawn again as it was.
//!
//! When stdin and stdout are terminals, the terminal is put in
//! non-canonical, no-echo mode with `stty` (no terminal-UI crate needed) and
//! the typed line is kept here; otherwise input is read as plain lines and
//! output printed as plain lines. Tests use [`Screen::capture`] instead.

use std::io::{IsTerminal, Read, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};

use futures_channel::mpsc::{UnboundedReceiver, UnboundedSender};

/// Drawn before the typed line.
const PROMPT: &str = "> ";
/// Longest line one can type, in bytes (the server caps messages anyway).
const MAX_TYPED: usize = 4096;

/// Where the chat is shown. Cheap to clone: every handler holds one.
#[derive(Clone)]
pub struct Screen {
    state: Arc<Mutex<State>>,
}

struct State {
    /// What is typed so far, when we do the editing.
    typed: String,
    /// Where the output goes.
    output: Output,
}

enum Output {
    /// A terminal in non-canonical mode; `saved` is its `stty -g` settings.
    Editing { saved: Option<String> },
    /// Plain lines on stdout.
    Lines,
    /// Lines sent to a test.
    #[cfg_attr(not(test), allow(dead_code))]
    Capture(UnboundedSender<String>),
}

impl Screen {
    /// The process's terminal: line editing when stdin and stdout are
    /// terminals and `stty` works, else plain lines.
    pub fn terminal() -> Screen {
        let output = if std::io::stdin().is_terminal() && std::io::stdout().is_terminal() {
            match raw_mode() {
                Some(saved) => Output::Editing { saved: Some(saved) },
                None => Output::Lines,
            }
        } else {
            Output::Lines
        };
        let screen = Screen::with(output);
        screen.redraw();
        screen
    }

    /// A screen whose lines go to the returned receiver, for tests.
    #[cfg(test)]
    pub fn capture() -> (Screen, UnboundedReceiver<String>) {
        let (tx, rx) = futures_channel::mpsc::unbounded();
        (Screen::with(Output::Capture(tx)), rx)
    }

    fn with(output: Output) -> Screen {
        Screen {
            state: Arc::new(Mutex::new(State {
                typed: String::new(),
                output,
            })),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Show one line of the chat, keeping the typed line below it intact.
    pub fn print(&self, line: &str) {
        let state = self.state();
        match &state.output {
            Output::Capture(tx) => {
                let _ = tx.unbounded_send(line.to_owned());
            }
            Output::Lines => {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{line}");
                let _ = out.flush();
            }
            Output::Editing { .. } => {
                let mut out = std::io::stdout().lock();
                // Carriage return and erase the line, print, then redraw
                // the prompt and what was typed.
                let _ = write!(out, "\r\x1b[K{line}\n{PROMPT}{}", state.typed);
                let _ = out.flush();
            }
        }
    }

    fn redraw(&self) {
        let state = self.state();
        if let Output::Editing { .. } = state.output {
            let mut out = std::io::stdout().lock();
            let _ = write!(out, "\r\x1b[K{PROMPT}{}", state.typed);
            let _ = out.flush();
        }
    }

    /// Give the terminal back as it was (idempotent).
    pub fn close(&self) {
        let mut state = self.state();
        if let Output::Editing { saved } = &mut state.output {
            if let Some(saved) = saved.take() {
                let mut out = std::io::stdout().lock();
                let _ = write!(out, "\r\x1b[K");
                let _ = out.flush();
                restore_mode(&saved);
            }
        }
    }

    /// Read the keyboard (or stdin's lines) on a thread of its own and send
    /// each finished line to `lines`; the channel closes at end of input or
    /// on Ctrl-C / Ctrl-D.
    pub fn read_input(&self, lines: UnboundedSender<String>) {
        let editing = matches!(self.state().output, Output::Editing { .. });
        let screen = self.clone();
        std::thread::spawn(move || {
            if editing {
                screen.edit_keys(&lines);
            } else {
                for line in std::io::stdin().lines() {
                    let Ok(line) = line else { break };
                    if lines.unbounded_send(line).is_err() {
                        break;
                    }
                }
            }
        });
    }

    /// The line editor: printable characters, Backspace, Ctrl-U (erase the
    /// line), Enter; escape sequences (arrows...) are ignored.
    fn edit_keys(&self, lines: &UnboundedSender<String>) {
        let mut keys = std::io::stdin().lock().bytes().map_while(Result::ok);
        let mut pending = Vec::new(); // the bytes of a UTF-8 character
        while let Some(byte) = keys.next() {
            match byte {
                b'\r' | b'\n' => {
                    let line = std::mem::take(&mut self.state().typed);
                    self.print(&format!("{PROMPT}{line}"));
                    if lines.unbounded_send(line).is_err() {
                        return;
                    }
                }
                // Ctrl-C, or Ctrl-D on an empty line: quit.
                0x03 => return,
                0x04 if self.state().typed.is_empty() => return,
                0x7f | 0x08 => {
                    self.state().typed.pop();
                    self.redraw();
                }
                0x15 => {
                    self.state().typed.clear();
                    self.redraw();
                }
                0x1b => {
                    // ESC [ or ESC O, then up to the final byte (@ to ~).
                    if let Some(b'[' | b'O') = keys.next() {
                        for byte in keys.by_ref() {
                            if (0x40..=0x7e).contains(&byte) {
                                break;
                            }
                        }
                    }
                }
                byte if byte < 0x20 => {}
                byte => {
                    pending.push(byte);
                    if let Ok(text) = std::str::from_utf8(&pending) {
                        let mut state = self.state();
                        if state.typed.len() + text.len() <= MAX_TYPED {
                            state.typed.push_str(text);
                            let mut out = std::io::stdout().lock();
                            let _ = write!(out, "{text}");
                            let _ = out.flush();
                        }
                        pending.clear();
                    } else if pending.len() >= 4 {
                        pending.clear(); // not UTF-8: drop it
                    }
                }
            }
        }
    }
}

/// Non-canonical mode without echo or signals (we handle Ctrl-C, so that
/// the terminal is always restored); returns the settings to restore.
fn raw_mode() -> Option<String> {
    let saved = Command::new("stty")
        .arg("-g")
        .stdin(Stdio::inherit())
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    let saved = String::from_utf8(saved.stdout).ok()?.trim().to_owned();
    let set = Command::new("stty")
        .args(["-icanon", "-echo", "-isig", "min", "1", "time", "0"])
        .stdin(Stdio::inherit())
        .stderr(Stdio::null())
        .status()
        .ok()?;
    set.success().then_some(saved)
}

fn restore_mode(saved: &str) {
    let _ = Command::new("stty")
        .arg(saved)
        .stdin(Stdio::inherit())
        .stderr(Stdio::null())
        .status();
}

/// Lines typed, for the client's loop.
pub type Lines = UnboundedReceiver<String>;
