//! Go command-line syntax on top of clap.
//!
//! The reference webhooks parse their flags with Go's `flag` package (azure-workload-identity,
//! the GCP webhook) or `spf13/pflag` (amazon-eks-pod-identity-webhook, with klog's Go flags
//! added). Their Deployments therefore contain all of these spellings:
//!
//! - `-name value`, `-name=value`, `--name value`, `--name=value` for non-boolean flags;
//! - bare `-name` / `--name` for a boolean (true), `--name=false` to turn it off; a boolean never
//!   takes the next argument as its value (`--in-cluster false` sets `true` and leaves a stray
//!   positional `false`, which pflag ignores, as we do with a warning);
//! - boolean values as Go's `strconv.ParseBool` reads them: `1 t T TRUE true True`,
//!   `0 f F FALSE false False`.
//!
//! [`normalize`] rewrites such an argument list into clap's `--name=value` form, knowing which
//! flags are booleans; clap then does the typed parsing, defaults and `--help`.

use std::time::Duration;

/// Arguments rewritten for clap, plus what was ignored on the way.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Normalized {
    /// `argv[0]` followed by `--name=value` arguments.
    pub args: Vec<String>,
    /// Positional arguments, which none of the reference webhooks uses; they are ignored.
    pub ignored: Vec<String>,
}

/// Errors in Go flag syntax (clap reports the rest: unknown flags, bad values).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlagSyntaxError {
    /// `---x`, `-=x` and similar.
    #[error("bad flag syntax: {0}")]
    BadSyntax(String),
    /// A non-boolean flag at the end of the list without a value.
    #[error("flag needs an argument: {0}")]
    MissingValue(String),
}

/// Rewrite a Go/pflag-style argument list (including `argv[0]`) for clap. `is_bool` tells which
/// flag names are booleans.
pub fn normalize(
    argv: impl IntoIterator<Item = String>,
    is_bool: impl Fn(&str) -> bool,
) -> Result<Normalized, FlagSyntaxError> {
    let mut out = Normalized::default();
    let mut it = argv.into_iter();
    if let Some(program) = it.next() {
        out.args.push(program);
    }
    let mut only_positionals = false;
    while let Some(arg) = it.next() {
        if only_positionals || arg == "-" || !arg.starts_with('-') {
            out.ignored.push(arg);
            continue;
        }
        if arg == "--" {
            only_positionals = true;
            continue;
        }
        let body = arg
            .strip_prefix("--")
            .or_else(|| arg.strip_prefix('-'))
            .unwrap_or(&arg);
        if body.is_empty() || body.starts_with('-') || body.starts_with('=') {
            return Err(FlagSyntaxError::BadSyntax(arg));
        }
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (body, None),
        };
        if matches!(name, "h" | "help") {
            out.args.push("--help".into());
            continue;
        }
        if name == "V" && inline.is_none() {
            out.args.push("-V".into());
            continue;
        }
        let value = match inline {
            Some(v) => v.to_string(),
            None if is_bool(name) => "true".to_string(),
            None => it
                .next()
                .ok_or_else(|| FlagSyntaxError::MissingValue(arg.clone()))?,
        };
        out.args.push(format!("--{name}={value}"));
    }
    Ok(out)
}

/// Go's `strconv.ParseBool`.
pub fn parse_go_bool(s: &str) -> Result<bool, String> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(format!(
            "invalid boolean {s:?}; use one of 1, t, T, TRUE, true, True, 0, f, F, FALSE, false, False"
        )),
    }
}

/// Go's `strconv.ParseInt(s, 0, 64)`, as `flag.Int` reads numbers: `0x` hex, `0o`/leading-zero
/// octal, `0b` binary, `_` separators after a prefix.
pub fn parse_go_int(s: &str) -> Result<i64, String> {
    let err = || format!("invalid integer {s:?}");
    let (neg, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let lower = digits.to_ascii_lowercase();
    let (radix, body) = if let Some(b) = lower.strip_prefix("0x") {
        (16, b.to_string())
    } else if let Some(b) = lower.strip_prefix("0o") {
        (8, b.to_string())
    } else if let Some(b) = lower.strip_prefix("0b") {
        (2, b.to_string())
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, lower[1..].to_string())
    } else {
        (10, lower.clone())
    };
    let body = if radix == 10 {
        body
    } else {
        body.replace('_', "")
    };
    if body.is_empty() {
        return Err(err());
    }
    let magnitude = i64::from_str_radix(&body, radix).map_err(|_| err())?;
    Ok(if neg { -magnitude } else { magnitude })
}

/// Parse a Go `time.Duration` string such as `100ms`, `1.5s`, `2m30s` or `0`.
pub fn parse_go_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err("empty duration".into());
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("missing unit in duration {s:?}"))?;
        if num_len == 0 {
            return Err(format!("invalid duration {s:?}"));
        }
        let value: f64 = rest[..num_len]
            .parse()
            .map_err(|_| format!("invalid number in duration {s:?}"))?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let factor = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            other => return Err(format!("unknown unit {other:?} in duration {s:?}")),
        };
        total += value * factor;
        rest = &rest[unit_len..];
    }
    Duration::try_from_secs_f64(total).map_err(|e| format!("invalid duration {s:?}: {e}"))
}

/// Split a Go listen address (`:8080`, `127.0.0.1:8080`, `[::1]:8080`, `0` = disabled).
pub fn parse_go_listen_addr(s: &str) -> Result<Option<std::net::SocketAddr>, String> {
    let s = s.trim();
    if s == "0" || s.is_empty() {
        return Ok(None);
    }
    let (host, port) = s
        .rsplit_once(':')
        .ok_or_else(|| format!("address {s:?} has no port (expected host:port or :port)"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("invalid port in address {s:?}"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let ip: std::net::IpAddr = match host {
        "" | "0.0.0.0" => std::net::Ipv4Addr::UNSPECIFIED.into(),
        "localhost" => std::net::Ipv4Addr::LOCALHOST.into(),
        h => h
            .parse()
            .map_err(|_| format!("host of address {s:?} is not an IP address"))?,
    };
    Ok(Some((ip, port).into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn norm(args: &[&str]) -> Normalized {
        normalize(args.iter().map(|s| s.to_string()), |n| {
            matches!(n, "in-cluster" | "logtostderr" | "b")
        })
        .expect("normalizes")
    }

    #[test]
    fn every_go_spelling_becomes_name_equals_value() {
        let n = norm(&[
            "prog",
            "-port",
            "443",
            "--namespace",
            "ns",
            "-tls-cert=/a",
            "--tls-key=/b",
            "--logtostderr",
            "-in-cluster=false",
            "-v",
            "4",
        ]);
        assert_eq!(
            n.args,
            [
                "prog",
                "--port=443",
                "--namespace=ns",
                "--tls-cert=/a",
                "--tls-key=/b",
                "--logtostderr=true",
                "--in-cluster=false",
                "--v=4"
            ]
        );
        assert!(n.ignored.is_empty());
    }

    #[test]
    fn a_boolean_never_takes_the_next_argument() {
        let n = norm(&["prog", "--in-cluster", "false", "--b"]);
        assert_eq!(n.args, ["prog", "--in-cluster=true", "--b=true"]);
        assert_eq!(n.ignored, ["false"]);
    }

    #[test]
    fn values_may_start_with_a_dash_or_contain_equals() {
        let n = norm(&["prog", "--x", "-1", "--y=a=b"]);
        assert_eq!(n.args, ["prog", "--x=-1", "--y=a=b"]);
    }

    #[rstest]
    #[case(&["prog", "---x"])]
    #[case(&["prog", "-=x"])]
    #[case(&["prog", "--port"])]
    fn malformed_flags_are_errors(#[case] args: &[&str]) {
        assert!(normalize(args.iter().map(|s| s.to_string()), |_| false).is_err());
    }

    #[rstest]
    #[case("1", true)]
    #[case("t", true)]
    #[case("T", true)]
    #[case("TRUE", true)]
    #[case("True", true)]
    #[case("0", false)]
    #[case("f", false)]
    #[case("FALSE", false)]
    #[case("False", false)]
    fn booleans_parse_as_go_does(#[case] s: &str, #[case] expected: bool) {
        assert_eq!(parse_go_bool(s), Ok(expected));
    }

    #[rstest]
    #[case("yes")]
    #[case("tRUE")]
    #[case("")]
    fn go_rejects_these_booleans(#[case] s: &str) {
        assert!(parse_go_bool(s).is_err());
    }

    #[rstest]
    #[case("0440", 0o440)]
    #[case("288", 288)]
    #[case("0x1f", 31)]
    #[case("0o17", 15)]
    #[case("-5", -5)]
    #[case("0", 0)]
    fn integers_parse_with_go_prefixes(#[case] s: &str, #[case] expected: i64) {
        assert_eq!(parse_go_int(s), Ok(expected));
    }

    #[rstest]
    #[case("0", Duration::ZERO)]
    #[case("100ms", Duration::from_millis(100))]
    #[case("2s", Duration::from_secs(2))]
    #[case("1.5s", Duration::from_millis(1500))]
    #[case("1m30s", Duration::from_secs(90))]
    #[case("24h", Duration::from_secs(86400))]
    #[case("250us", Duration::from_micros(250))]
    fn go_durations_parse(#[case] input: &str, #[case] expected: Duration) {
        assert_eq!(parse_go_duration(input), Ok(expected));
    }

    #[rstest]
    #[case("")]
    #[case("10")]
    #[case("5 parsecs")]
    #[case("ms")]
    fn malformed_go_durations_are_rejected(#[case] input: &str) {
        assert!(parse_go_duration(input).is_err());
    }

    #[test]
    fn listen_addresses_parse_like_go() {
        assert_eq!(
            parse_go_listen_addr(":8081"),
            Ok(Some("0.0.0.0:8081".parse().expect("addr")))
        );
        assert_eq!(
            parse_go_listen_addr("127.0.0.1:9"),
            Ok(Some("127.0.0.1:9".parse().expect("addr")))
        );
        assert_eq!(parse_go_listen_addr("0"), Ok(None));
        assert!(parse_go_listen_addr("8080").is_err());
    }
}
