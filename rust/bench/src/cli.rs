//! A small `--name value` option parser and the common error exit.

use std::collections::HashMap;
use std::fmt::Display;
use std::str::FromStr;

/// Prints `Error: <msg>` (one line) on stderr and exits with status 1.
pub fn fail(msg: impl Display) -> ! {
    let msg = msg.to_string().replace(['\n', '\r'], " ");
    eprintln!("Error: {msg}");
    std::process::exit(1)
}

/// The program's arguments (without its name); one that is not UTF-8 is an `Error:` exit.
pub fn args() -> Vec<String> {
    std::env::args_os()
        .skip(1)
        .map(|a| {
            a.into_string()
                .unwrap_or_else(|a| fail(format!("argument is not UTF-8: {a:?}")))
        })
        .collect()
}

/// Parsed options: `--name value`, `--name=value` and bare `--flag`s.
#[derive(Debug, Default)]
pub struct Opts {
    values: HashMap<String, String>,
    flags: Vec<String>,
}

impl Opts {
    /// Parses `args` (without the program name). `with_value` and `flags` list the accepted
    /// option names, including the leading `--`. Positional arguments are rejected.
    pub fn parse<I, S>(args: I, with_value: &[&str], flags: &[&str]) -> Result<Opts, String>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut opts = Opts::default();
        let mut it = args.into_iter().map(Into::into);
        while let Some(arg) = it.next() {
            let (name, inline) = match arg.split_once('=') {
                Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
                _ => (arg.clone(), None),
            };
            if with_value.contains(&name.as_str()) {
                let v = match inline {
                    Some(v) => v,
                    None => it.next().ok_or_else(|| format!("{name} needs a value"))?,
                };
                if opts.values.insert(name.clone(), v).is_some() {
                    return Err(format!("{name} given twice"));
                }
            } else if flags.contains(&name.as_str()) {
                if inline.is_some() {
                    return Err(format!("{name} takes no value"));
                }
                opts.flags.push(name);
            } else if name.starts_with('-') {
                return Err(format!("unknown option {name}"));
            } else {
                return Err(format!("unexpected argument {name:?}"));
            }
        }
        Ok(opts)
    }

    pub fn flag(&self, name: &str) -> bool {
        self.flags.iter().any(|f| f == name)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    pub fn required(&self, name: &str) -> Result<&str, String> {
        self.get(name).ok_or_else(|| format!("missing {name}"))
    }

    /// The option parsed as `T`, or `default` when absent.
    pub fn parse_or<T: FromStr>(&self, name: &str, default: T) -> Result<T, String> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => parse_value(name, v),
        }
    }

    /// The option parsed as `T`; an error when absent.
    pub fn parse_required<T: FromStr>(&self, name: &str) -> Result<T, String> {
        parse_value(name, self.required(name)?)
    }
}

fn parse_value<T: FromStr>(name: &str, v: &str) -> Result<T, String> {
    // Allow digit separators in sizes: 100_000_000.
    let cleaned: String = v.chars().filter(|&c| c != '_').collect();
    cleaned
        .parse::<T>()
        .map_err(|_| format!("invalid value for {name}: {v:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const V: &[&str] = &["--n", "--out", "--impl"];
    const F: &[&str] = &["--help"];

    #[test]
    fn values_and_flags() {
        let o = Opts::parse(["--n", "1_000", "--out=/tmp/x", "--help"], V, F).unwrap();
        assert_eq!(o.parse_required::<u64>("--n").unwrap(), 1000);
        assert_eq!(o.get("--out"), Some("/tmp/x"));
        assert!(o.flag("--help"));
        assert_eq!(o.parse_or::<u32>("--impl", 9).unwrap(), 9);
        assert!(o.required("--impl").is_err());
    }

    #[test]
    fn errors() {
        assert!(Opts::parse(["--n"], V, F).is_err());
        assert!(Opts::parse(["--x", "1"], V, F).is_err());
        assert!(Opts::parse(["pos"], V, F).is_err());
        assert!(Opts::parse(["--n", "1", "--n", "2"], V, F).is_err());
        assert!(Opts::parse(["--help=1"], V, F).is_err());
        let o = Opts::parse(["--n", "-3"], V, F).unwrap();
        assert!(o.parse_required::<u64>("--n").is_err());
    }
}
