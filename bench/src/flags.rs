//! Command-line flags of the bench binaries: `--name value` pairs (and a
//! few value-less switches), a usage line printed with the problem on any
//! mistake, exit status 2.

use std::str::FromStr;

/// The flags of one binary, read from its arguments in order.
pub struct Flags {
    args: std::vec::IntoIter<String>,
    usage: &'static str,
    switches: &'static [&'static str],
}

impl Flags {
    /// The process's arguments after the program name; `switches` take no
    /// value (their value reads as empty).
    pub fn from_env(usage: &'static str, switches: &'static [&'static str]) -> Flags {
        Flags::new(std::env::args().skip(1).collect(), usage, switches)
    }

    /// Flags from `args`.
    pub fn new(args: Vec<String>, usage: &'static str, switches: &'static [&'static str]) -> Flags {
        Flags {
            args: args.into_iter(),
            usage,
            switches,
        }
    }

    /// The next bare argument (a mode before the flags), if any.
    pub fn positional(&mut self) -> Option<String> {
        self.args.next()
    }

    /// Print `problem` and the usage line, and exit with status 2.
    pub fn fail(&self, problem: &str) -> ! {
        usage_exit(self.usage, problem)
    }

    /// `value` parsed as a `T`, or the usage line naming `flag`.
    pub fn parse<T: FromStr>(&self, flag: &str, value: &str) -> T {
        value
            .parse()
            .unwrap_or_else(|_| self.fail(&format!("{flag}: bad value {value:?}")))
    }
}

impl Iterator for Flags {
    /// A flag and its value.
    type Item = (String, String);

    fn next(&mut self) -> Option<(String, String)> {
        let flag = self.args.next()?;
        if self.switches.contains(&flag.as_str()) {
            return Some((flag, String::new()));
        }
        match self.args.next() {
            Some(value) => Some((flag, value)),
            None => self.fail(&format!("{flag} needs a value")),
        }
    }
}

/// Print `problem` and `usage` to stderr, and exit with status 2.
pub fn usage_exit(usage: &str, problem: &str) -> ! {
    eprintln!("{problem}\n{usage}");
    std::process::exit(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_and_switches_in_order() {
        let args = ["echo", "--addr", "h:1", "--raw", "--secs", "5"];
        let mut flags = Flags::new(args.map(String::from).to_vec(), "usage", &["--raw"]);
        assert_eq!(flags.positional().as_deref(), Some("echo"));
        let pairs: Vec<(String, String)> = flags.by_ref().collect();
        let pairs: Vec<(&str, &str)> = pairs.iter().map(|(f, v)| (&**f, &**v)).collect();
        assert_eq!(pairs, [("--addr", "h:1"), ("--raw", ""), ("--secs", "5")]);
        assert_eq!(flags.parse::<u64>("--secs", "5"), 5);
    }
}
