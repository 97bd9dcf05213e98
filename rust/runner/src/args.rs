//! Command-line parsing for the runner (no external parser: the runner must stay tiny and static).

use std::ffi::OsString;
use std::time::Duration;

pub const USAGE: &str = "\
usage: runner [--runs N] [--warmup W] [--warmup-cap C] [--settle K] [--band B]
              [--timeout-s SECONDS] [--no-env-pad] [--stdout-limit BYTES]
              -- CMD [ARGS...]
       runner --version | --help

Runs CMD W+N times, one after the other (the first W runs are warm-up), with
stdin = /dev/null, and prints one JSON line per run on stdout. With a warm-up
cap C > W the warm-up is found from the data: it goes on past W runs until the
last K warm-up runs are settled (the slowest within a factor 1+B of the
fastest) or C runs were made; each measured run's line then carries
\"warmup_runs\" (how many there were) and \"settled\" (whether the rule ended
them, false when the cap did):
  {\"schema\":1,\"run\":I,\"warmup\":B,\"wall_ns\":..,\"user_ns\":..,\"sys_ns\":..,
   \"maxrss_kb\":..,\"exit_code\":C|null,\"signal\":S|null,\"timed_out\":B,
   \"stdout\":\"..\",\"stdout_bytes\":..,\"stdout_tail\":\"..\",\"stderr_tail\":\"..\"}

options:
  --runs N              measured runs (default 5, at least 1)
  --warmup W            warm-up runs before them (default 1); with
                        --warmup-cap, the fewest
  --warmup-cap C        the most warm-up runs (default W: a fixed count)
  --settle K            settled: the last K warm-up runs ... (default 5)
  --band B              ... have max <= (1+B) * min (default 0.10)
  --timeout-s SECONDS   SIGKILL a run after this long (float, default 600)
  --no-env-pad          do not set RPB_PAD (by default RPB_PAD is set to a
                        random-length string of 'x', 0..4095 bytes, per run)
  --stdout-limit BYTES  bytes of the child's stdout kept in \"stdout\"
                        (default 65536; all bytes are counted); past it,
                        \"stdout_tail\" keeps the last 4096 bytes
  --version             print the version
  --help, -h            print this help

exit status: 0 after all runs (whatever the child did), 2 on a usage error,
3 if CMD cannot be spawned (after a JSON line with \"error\").
";

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub runs: u32,
    pub warmup: u32,
    pub warmup_cap: Option<u32>,
    pub settle: u32,
    pub band: f64,
    pub timeout: Duration,
    pub env_pad: bool,
    pub stdout_limit: usize,
    pub cmd: Vec<OsString>,
}

impl Config {
    /// The most warm-up runs: the cap, or exactly `warmup` when none is given.
    pub fn max_warmup(&self) -> u32 {
        self.warmup_cap.unwrap_or(self.warmup)
    }

    /// Whether the warm-up is found from the data (a cap above the fewest).
    pub fn adaptive(&self) -> bool {
        self.max_warmup() > self.warmup
    }
}

/// The settling rule: the last `k` values exist and the largest is within a factor `1 + band`
/// of the smallest.
pub fn settled(walls: &[u64], k: usize, band: f64) -> bool {
    if k == 0 || walls.len() < k {
        return false;
    }
    let w = &walls[walls.len() - k..];
    let (lo, hi) = (w.iter().min(), w.iter().max());
    match (lo, hi) {
        (Some(&lo), Some(&hi)) => (hi as f64) <= (1.0 + band) * lo as f64,
        _ => false,
    }
}

#[derive(Debug, PartialEq)]
pub enum Parsed {
    Run(Config),
    Help,
    Version,
}

fn parse_num<T: std::str::FromStr>(opt: &str, v: &str) -> Result<T, String> {
    v.parse::<T>()
        .map_err(|_| format!("invalid value for {opt}: {v:?}"))
}

/// Parses the arguments after the program name.
///
/// Options come first; `--` ends them. As a convenience the first argument that
/// does not start with `-` also starts the command.
pub fn parse<I: IntoIterator<Item = OsString>>(argv: I) -> Result<Parsed, String> {
    let mut it = argv.into_iter();
    let mut cfg = Config {
        runs: 5,
        warmup: 1,
        warmup_cap: None,
        settle: 5,
        band: 0.10,
        timeout: Duration::from_secs(600),
        env_pad: true,
        stdout_limit: 65536,
        cmd: Vec::new(),
    };
    while let Some(arg) = it.next() {
        let Some(s) = arg.to_str() else {
            // A non-UTF-8 word can only be the command itself.
            cfg.cmd.push(arg);
            break;
        };
        if s == "--" {
            break;
        }
        if !s.starts_with('-') || s == "-" {
            cfg.cmd.push(arg);
            break;
        }
        let (name, inline) = match s.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
            _ => (s.to_string(), None),
        };
        let takes_value = matches!(
            name.as_str(),
            "--runs"
                | "--warmup"
                | "--warmup-cap"
                | "--settle"
                | "--band"
                | "--timeout-s"
                | "--stdout-limit"
        );
        let value = if takes_value {
            match inline {
                Some(v) => v,
                None => match it.next() {
                    Some(v) => v
                        .into_string()
                        .map_err(|_| format!("invalid value for {name}"))?,
                    None => return Err(format!("{name} needs a value")),
                },
            }
        } else {
            if inline.is_some() {
                return Err(format!("{name} takes no value"));
            }
            String::new()
        };
        match name.as_str() {
            "--help" | "-h" => return Ok(Parsed::Help),
            "--version" | "-V" => return Ok(Parsed::Version),
            "--no-env-pad" => cfg.env_pad = false,
            "--runs" => {
                cfg.runs = parse_num(&name, &value)?;
                if cfg.runs == 0 {
                    return Err("--runs must be at least 1".into());
                }
            }
            "--warmup" => cfg.warmup = parse_num(&name, &value)?,
            "--warmup-cap" => cfg.warmup_cap = Some(parse_num(&name, &value)?),
            "--settle" => {
                cfg.settle = parse_num(&name, &value)?;
                if cfg.settle < 2 {
                    return Err("--settle must be at least 2".into());
                }
            }
            "--band" => {
                cfg.band = parse_num(&name, &value)?;
                if !(cfg.band.is_finite() && cfg.band > 0.0 && cfg.band < 1.0) {
                    return Err(format!("--band must be in (0, 1), got {value}"));
                }
            }
            "--stdout-limit" => cfg.stdout_limit = parse_num(&name, &value)?,
            "--timeout-s" => {
                let secs: f64 = parse_num(&name, &value)?;
                if !(secs.is_finite() && secs > 0.0) {
                    return Err(format!(
                        "--timeout-s must be a positive number, got {value}"
                    ));
                }
                cfg.timeout = Duration::try_from_secs_f64(secs)
                    .map_err(|_| format!("--timeout-s out of range: {value}"))?;
            }
            _ => return Err(format!("unknown option {name}")),
        }
    }
    cfg.cmd.extend(it);
    if cfg.warmup_cap.is_some_and(|c| c < cfg.warmup) {
        return Err("--warmup-cap must be at least --warmup".into());
    }
    if cfg.cmd.is_empty() {
        return Err("no command given (expected `-- CMD [ARGS...]`)".into());
    }
    if cfg.cmd[0].is_empty() {
        return Err("empty command".into());
    }
    Ok(Parsed::Run(cfg))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Parsed, String> {
        parse(args.iter().map(OsString::from))
    }

    fn cfg(args: &[&str]) -> Config {
        match p(args) {
            Ok(Parsed::Run(c)) => c,
            other => panic!("expected a run config for {args:?}, got {other:?}"),
        }
    }

    #[test]
    fn defaults() {
        let c = cfg(&["--", "/bin/true"]);
        assert_eq!(c.runs, 5);
        assert_eq!(c.warmup, 1);
        assert_eq!(c.timeout, Duration::from_secs(600));
        assert!(c.env_pad);
        assert_eq!(c.stdout_limit, 65536);
        assert_eq!(c.cmd, vec![OsString::from("/bin/true")]);
    }

    #[test]
    fn all_options() {
        let c = cfg(&[
            "--runs",
            "20",
            "--warmup=3",
            "--timeout-s",
            "0.25",
            "--no-env-pad",
            "--stdout-limit",
            "10",
            "--",
            "sh",
            "-c",
            "echo --runs 7",
        ]);
        assert_eq!(c.runs, 20);
        assert_eq!(c.warmup, 3);
        assert_eq!(c.timeout, Duration::from_millis(250));
        assert!(!c.env_pad);
        assert_eq!(c.stdout_limit, 10);
        assert_eq!(
            c.cmd,
            ["sh", "-c", "echo --runs 7"].map(OsString::from).to_vec()
        );
    }

    #[test]
    fn options_after_dashdash_belong_to_the_command() {
        let c = cfg(&["--", "prog", "--runs", "3", "--"]);
        assert_eq!(c.runs, 5);
        assert_eq!(
            c.cmd,
            ["prog", "--runs", "3", "--"].map(OsString::from).to_vec()
        );
    }

    #[test]
    fn bare_command_without_dashdash() {
        let c = cfg(&["--runs", "2", "/bin/echo", "-n", "hi"]);
        assert_eq!(c.runs, 2);
        assert_eq!(
            c.cmd,
            ["/bin/echo", "-n", "hi"].map(OsString::from).to_vec()
        );
    }

    #[test]
    fn warmup_zero_is_fine() {
        assert_eq!(cfg(&["--warmup", "0", "--", "x"]).warmup, 0);
    }

    #[test]
    fn adaptive_warmup_options() {
        let c = cfg(&[
            "--warmup",
            "2",
            "--warmup-cap",
            "30",
            "--settle",
            "4",
            "--band=0.2",
            "--",
            "x",
        ]);
        assert_eq!((c.warmup, c.max_warmup(), c.settle), (2, 30, 4));
        assert!(c.adaptive());
        assert!((c.band - 0.2).abs() < 1e-12);
        let fixed = cfg(&["--warmup", "3", "--", "x"]);
        assert_eq!(fixed.max_warmup(), 3);
        assert!(!fixed.adaptive());
    }

    #[test]
    fn the_settling_rule() {
        assert!(!settled(&[10, 10], 3, 0.1));
        assert!(settled(&[94, 34, 20, 21, 22], 3, 0.1));
        assert!(!settled(&[20, 21, 23], 3, 0.1));
        assert!(settled(&[20, 21, 22], 3, 0.1));
        // Only the last k count.
        assert!(!settled(&[20, 21, 40], 3, 0.1));
    }

    #[test]
    fn help_and_version() {
        assert_eq!(p(&["--help"]), Ok(Parsed::Help));
        assert_eq!(p(&["-h"]), Ok(Parsed::Help));
        assert_eq!(p(&["--version"]), Ok(Parsed::Version));
        assert_eq!(p(&["--runs", "3", "--version"]), Ok(Parsed::Version));
    }

    #[test]
    fn usage_errors() {
        for bad in [
            &[][..],
            &["--"][..],
            &["--runs", "3"][..],
            &["--runs"][..],
            &["--runs", "0", "--", "x"][..],
            &["--runs", "-1", "--", "x"][..],
            &["--runs", "abc", "--", "x"][..],
            &["--warmup", "1.5", "--", "x"][..],
            &["--timeout-s", "0", "--", "x"][..],
            &["--timeout-s", "-2", "--", "x"][..],
            &["--timeout-s", "nan", "--", "x"][..],
            &["--timeout-s", "inf", "--", "x"][..],
            &["--timeout-s", "1e300", "--", "x"][..],
            &["--stdout-limit", "-5", "--", "x"][..],
            &["--no-env-pad=1", "--", "x"][..],
            &["--bogus", "--", "x"][..],
            &["--", ""][..],
            &["--warmup", "5", "--warmup-cap", "2", "--", "x"][..],
            &["--settle", "1", "--", "x"][..],
            &["--band", "0", "--", "x"][..],
            &["--band", "1.5", "--", "x"][..],
            &["--band", "nan", "--", "x"][..],
        ] {
            assert!(p(bad).is_err(), "{bad:?} should be a usage error");
        }
    }
}
