//! The examples' command lines, written once: `--help` (exit 0), values
//! that are missing or do not parse, unknown options (exit 2 with a hint).
//!
//! Each example describes itself in a [`Help`] and matches flags itself:
//!
//! ```text
//! let mut args = HELP.args();
//! while let Some(flag) = args.next_flag() {
//!     match flag.as_str() {
//!         "--port" => port = args.parse(&flag),
//!         _ => args.unknown(&flag),
//!     }
//! }
//! ```
//!
//! Std only: the `custom_event_loop` example, which has no async runtime
//! and no `socketio` facade, includes it too.

// Each example uses the part it needs.
#![allow(dead_code)]

use std::fmt::Display;
use std::str::FromStr;

/// What `NAME --help` prints.
pub struct Help {
    /// The program's name.
    pub name: &'static str,
    /// One line: what the program does.
    pub about: &'static str,
    /// The synopsis after the name, e.g. `--port P [options]`.
    pub usage: &'static str,
    /// Each option or positional with what it means: `("--port P", "..")`.
    pub options: &'static [(&'static str, &'static str)],
    /// Free text after the options (environment, examples); may be empty.
    pub notes: &'static str,
}

impl Help {
    /// The process's arguments, checked against this help.
    pub fn args(&'static self) -> Args {
        Args {
            help: self,
            rest: std::env::args().skip(1),
        }
    }

    /// The text `--help` prints.
    pub fn text(&self) -> String {
        let width = self
            .options
            .iter()
            .map(|(flag, _)| flag.len())
            .chain(Some("-h, --help".len()))
            .max()
            .unwrap_or(0);
        let mut text = format!(
            "{}: {}\n\nusage: {} {}\n\noptions:\n",
            self.name, self.about, self.name, self.usage
        );
        let help = [("-h, --help", "print this help and exit")];
        for (flag, meaning) in self.options.iter().chain(&help) {
            text.push_str(&format!("  {flag:width$}"));
            // Meanings wrap at 80 columns, aligned after the flags.
            let indent = width + 4;
            let mut column = width + 2;
            for (i, word) in meaning.split(' ').enumerate() {
                let gap = if i == 0 { 2 } else { 1 };
                if i > 0 && column + gap + word.len() > 80 {
                    text.push('\n');
                    text.push_str(&" ".repeat(indent));
                    column = indent;
                } else {
                    text.push_str(&" ".repeat(gap));
                    column += gap;
                }
                text.push_str(word);
                column += word.len();
            }
            text.push('\n');
        }
        if !self.notes.is_empty() {
            text.push('\n');
            text.push_str(self.notes);
            text.push('\n');
        }
        text
    }

    /// Refuse the command line: the problem, the synopsis and where the
    /// options are explained, on stderr; exit status 2.
    pub fn fail(&self, problem: impl Display) -> ! {
        eprintln!(
            "{name}: {problem}\nusage: {name} {usage}\n(`{name} --help` explains every option)",
            name = self.name,
            usage = self.usage
        );
        std::process::exit(2)
    }
}

/// The arguments not read yet.
pub struct Args {
    help: &'static Help,
    rest: std::iter::Skip<std::env::Args>,
}

impl Args {
    /// The next argument; `-h`/`--help` prints the help and exits 0.
    pub fn next_flag(&mut self) -> Option<String> {
        let arg = self.rest.next()?;
        if arg == "-h" || arg == "--help" {
            print!("{}", self.help.text());
            std::process::exit(0)
        }
        Some(arg)
    }

    /// The value following `flag`, or a refusal if there is none.
    pub fn value(&mut self, flag: &str) -> String {
        self.rest
            .next()
            .unwrap_or_else(|| self.help.fail(format_args!("{flag} needs a value")))
    }

    /// The value following `flag`, parsed, or a refusal.
    pub fn parse<T: FromStr>(&mut self, flag: &str) -> T
    where
        T::Err: Display,
    {
        let value = self.value(flag);
        value
            .parse()
            .unwrap_or_else(|e| self.help.fail(format_args!("{flag} {value}: {e}")))
    }

    /// Refuse an argument no arm matched.
    pub fn unknown(&self, arg: &str) -> ! {
        self.help.fail(format_args!("unknown option {arg}"))
    }

    /// Refuse the command line (see [`Help::fail`]).
    pub fn fail(&self, problem: impl Display) -> ! {
        self.help.fail(problem)
    }
}
