//! Checks of what the user types and the files they name, made before any network I/O: names
//! as the API server and Elasticsearch accept them, `HOST:PORT`, durations as kubectl parses
//! them, and files read only when they are regular and small. Each check returns the reason as
//! a phrase that says what to give instead; the caller (clap, or the request builder) turns it
//! into the one error line.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

/// The longest name ECK accepts for an Elasticsearch resource: it builds names such as
/// `<name>-es-<nodeset>-<ordinal>` that must stay within Kubernetes' limits.
pub const MAX_ELASTICSEARCH_NAME: usize = 36;

/// The largest CA, key, password or trust file read (1 MiB).
pub const MAX_INPUT_FILE: u64 = 1024 * 1024;

/// The largest kubeconfig file read (16 MiB; real ones with many contexts stay far below).
pub const MAX_KUBECONFIG_FILE: u64 = 16 * 1024 * 1024;

/// The longest `--request-timeout` accepted.
pub const MAX_REQUEST_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// The longest `--timeout` accepted.
pub const MAX_WAIT_TIMEOUT: Duration = Duration::from_secs(7 * 24 * 3600);

/// What `--timeout 0` stands for: no limit (as `kubectl rollout status --timeout 0`), kept
/// finite so that deadlines computed from it never overflow.
pub const NO_WAIT_LIMIT: Duration = Duration::from_secs(365 * 24 * 3600);

fn dns_label_chars(label: &str) -> bool {
    label
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn alnum_ends(label: &str) -> bool {
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    edge(label.chars().next()) && edge(label.chars().last())
}

/// A name as Kubernetes' DNS-1123 label rule has it (namespaces): 1 to 63 lowercase letters,
/// digits and `-`, starting and ending with a letter or digit.
pub fn is_dns1123_label(value: &str) -> bool {
    !value.is_empty() && value.len() <= 63 && dns_label_chars(value) && alnum_ends(value)
}

/// The name of an Elasticsearch resource: ECK names Services after it (DNS-1035 labels: a
/// letter first) and refuses names longer than 36 characters.
pub fn elasticsearch_name(value: &str) -> Result<String, String> {
    let shape = value.len() <= MAX_ELASTICSEARCH_NAME
        && is_dns1123_label(value)
        && value.starts_with(|c: char| c.is_ascii_lowercase());
    if shape {
        Ok(value.to_string())
    } else {
        Err(format!(
            "not an Elasticsearch name: use 1 to {MAX_ELASTICSEARCH_NAME} lowercase letters, digits and '-', starting with a letter and ending with a letter or digit (as `kubectl get elasticsearch` shows it)"
        ))
    }
}

/// A namespace: a DNS-1123 label.
pub fn namespace(value: &str) -> Result<String, String> {
    if is_dns1123_label(value) {
        Ok(value.to_string())
    } else {
        Err("not a namespace name: use 1 to 63 lowercase letters, digits and '-', starting and ending with a letter or digit".to_string())
    }
}

/// A kubeconfig context name: kubeconfig allows almost anything, but an empty or blank name
/// would silently mean the current context, and control characters cannot be in a name a user
/// meant.
pub fn context(value: &str) -> Result<String, String> {
    if value.trim().is_empty() {
        return Err("empty context name: give a context of the kubeconfig (`kubectl config get-contexts` lists them), or leave --context out for the current one".to_string());
    }
    if value != value.trim() || value.chars().any(char::is_control) {
        return Err("a context name has no leading or trailing blanks nor control characters; `kubectl config get-contexts` lists the names".to_string());
    }
    Ok(value.to_string())
}

/// A remote cluster alias as Elasticsearch documents it ("lowercase and only contain letters,
/// numbers, dashes, and underscores"), which ECK's keystore pattern `[\w-]+` also accepts.
pub fn alias(value: &str) -> Result<String, String> {
    let ok = !value.is_empty()
        && value.len() <= 255
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if ok {
        Ok(value.to_string())
    } else {
        Err(
            "not a remote cluster alias: use lowercase letters, digits, '-' and '_' only"
                .to_string(),
        )
    }
}

/// A DNS name: dot-separated labels of letters, digits and `-` (1 to 63 each, not starting or
/// ending with `-`), 253 characters at most; case does not matter.
pub fn is_dns_name(value: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    let lower = lower.strip_suffix('.').unwrap_or(&lower);
    !lower.is_empty()
        && lower.len() <= 253
        && lower.split('.').all(|label| {
            !label.is_empty() && label.len() <= 63 && dns_label_chars(label) && alnum_ends(label)
        })
}

/// `--server-name`: the DNS name the TLS certificate of the remote must hold.
pub fn server_name(value: &str) -> Result<String, String> {
    if is_dns_name(value) && value.parse::<std::net::IpAddr>().is_err() {
        Ok(value.to_string())
    } else {
        Err("not a DNS name: give the name in the remote's certificate, such as products-es-remote-cluster.shop.svc".to_string())
    }
}

/// `--proxy-address`: `HOST:PORT`, where HOST is a DNS name, an IPv4 address or an IPv6
/// address in brackets, and PORT is 1 to 65535.
pub fn proxy_address(value: &str) -> Result<String, String> {
    let bad = || {
        "not HOST:PORT: give a host name or IP address and a port, such as lb.example.com:9443, 10.0.0.7:9443 or [2001:db8::7]:9443 (no scheme, no path)".to_string()
    };
    let (host, port) = if let Some(rest) = value.strip_prefix('[') {
        let (ip, port) = rest.split_once("]:").ok_or_else(bad)?;
        ip.parse::<std::net::Ipv6Addr>().map_err(|_| bad())?;
        (None, port)
    } else {
        let (host, port) = value.rsplit_once(':').ok_or_else(bad)?;
        (Some(host), port)
    };
    if let Some(host) = host {
        let ipv4 = host.parse::<std::net::Ipv4Addr>().is_ok();
        let numeric = host.chars().all(|c| c.is_ascii_digit() || c == '.');
        if !(ipv4 || (is_dns_name(host) && !numeric)) {
            return Err(bad());
        }
    }
    let port_ok = !port.is_empty()
        && port.len() <= 5
        && port.chars().all(|c| c.is_ascii_digit())
        && port.parse::<u32>().is_ok_and(|p| (1..=65535).contains(&p));
    if !port_ok {
        return Err(bad());
    }
    Ok(value.to_string())
}

/// An index pattern of `--search-indices` and `--replication-indices`: an index name as
/// Elasticsearch accepts one (lowercase, none of `\ / ? " < > | , # :` nor blanks, 255 bytes
/// at most, not `.` or `..`, not starting with `_` or `+`) where `*` matches any characters and
/// a leading `-` excludes what the rest matches.
pub fn index_pattern(value: &str) -> Result<String, String> {
    let bad = |why: &str| {
        format!(
            "not an index pattern ({why}): use an index name with * wildcards, such as logs-* (a leading - excludes)"
        )
    };
    let name = value.strip_prefix('-').unwrap_or(value);
    if name.is_empty() {
        return Err(bad("empty"));
    }
    if name.len() > 255 {
        return Err(bad("longer than 255 bytes"));
    }
    if name == "." || name == ".." {
        return Err(bad("'.' and '..' are not index names"));
    }
    if name.starts_with(['_', '+', '-']) {
        return Err(bad("it starts with '_', '+' or '-'"));
    }
    if name.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(bad("index names are lowercase"));
    }
    let forbidden = |c: char| {
        matches!(
            c,
            '\\' | '/' | '?' | '"' | '<' | '>' | '|' | ',' | '#' | ':'
        ) || c.is_whitespace()
            || c.is_control()
    };
    if name.chars().any(forbidden) {
        return Err(bad(
            "it holds one of \\ / ? \" < > | , # : or a blank, which index names cannot",
        ));
    }
    Ok(value.to_string())
}

/// A duration as Go's `time.ParseDuration` reads it (kubectl's duration flags): a sequence of
/// decimal numbers, each with a unit (`ns`, `us`, `µs`, `ms`, `s`, `m`, `h`), such as `300ms`,
/// `1.5h` or `1h30m`; `0` alone needs no unit. Negative durations are refused, and so is
/// anything over `max`.
pub fn go_duration(value: &str, max: Duration) -> Result<Duration, String> {
    const EXAMPLES: &str = "use a number with a unit, such as 90s, 10m, 1h30m or 1.5h";
    if value == "0" {
        return Ok(Duration::ZERO);
    }
    let mut rest = value;
    if let Some(r) = rest.strip_prefix('+') {
        rest = r;
    } else if rest.starts_with('-') {
        return Err(format!("a duration cannot be negative; {EXAMPLES}"));
    }
    if rest.is_empty() {
        return Err(EXAMPLES.to_string());
    }
    let limit = max.as_nanos();
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (whole, after) = rest.split_at(digits);
        let (fraction, after) = match after.strip_prefix('.') {
            Some(after) => {
                let n = after
                    .find(|c: char| !c.is_ascii_digit())
                    .unwrap_or(after.len());
                after.split_at(n)
            }
            None => ("", after),
        };
        if whole.is_empty() && fraction.is_empty() {
            return Err(EXAMPLES.to_string());
        }
        let unit_len = after
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let nanos_per_unit: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60 * 1_000_000_000,
            "h" => 3600 * 1_000_000_000,
            "" => return Err(format!("a unit is missing; {EXAMPLES}")),
            _ => return Err(format!("unknown unit {unit:?}; {EXAMPLES}")),
        };
        let too_long = || too_long(max);
        // Leading zeros do not count; any other digit past 30 is beyond every bound.
        let whole = whole.trim_start_matches('0');
        if whole.len() > 30 {
            return Err(too_long());
        }
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| too_long())?
        };
        let mut amount = whole.checked_mul(nanos_per_unit).ok_or_else(too_long)?;
        // Digits past the 18th change less than a nanosecond of any unit.
        let fraction = &fraction[..fraction.len().min(18)];
        if !fraction.is_empty() {
            let scale = 10u128.pow(fraction.len() as u32);
            let digits: u128 = fraction.parse().unwrap_or(0);
            amount += digits * nanos_per_unit / scale;
        }
        total = total.checked_add(amount).ok_or_else(too_long)?;
        if total > limit {
            return Err(too_long());
        }
        rest = after;
    }
    Ok(Duration::from_nanos(total as u64))
}

fn too_long(max: Duration) -> String {
    format!("longer than {}h, the most it takes", max.as_secs() / 3600)
}

/// `--request-timeout` as kubectl reads it (client-go's `ParseTimeout`): a whole number of
/// seconds, or a Go duration; `0` means no timeout (`None`).
pub fn request_timeout(value: &str) -> Result<Option<Duration>, String> {
    let duration =
        if !value.is_empty() && value.len() <= 20 && value.bytes().all(|b| b.is_ascii_digit()) {
            let seconds: u64 = value.parse().map_err(|_| "too long".to_string())?;
            let duration = Duration::from_secs(seconds);
            if duration > MAX_REQUEST_TIMEOUT {
                return Err(too_long(MAX_REQUEST_TIMEOUT));
            }
            duration
        } else {
            go_duration(value, MAX_REQUEST_TIMEOUT)?
        };
    Ok((!duration.is_zero()).then_some(duration))
}

/// `--timeout`: a Go duration, as kubectl's `--timeout` flags; `0` means no limit, as with
/// `kubectl rollout status` (a bare number other than 0 needs its unit).
pub fn wait_timeout(value: &str) -> Result<Duration, String> {
    let duration = go_duration(value, MAX_WAIT_TIMEOUT)?;
    Ok(if duration.is_zero() {
        NO_WAIT_LIMIT
    } else {
        duration
    })
}

/// Reads a file the user named, refusing without blocking what is not a regular file (a FIFO,
/// a device such as /dev/zero, a directory) and anything over `limit` bytes. Symbolic links
/// are followed: the user named the file.
pub fn read_regular_file(path: &Path, limit: u64) -> Result<Vec<u8>, String> {
    let metadata = std::fs::metadata(path).map_err(|e| format!("cannot be read: {e}"))?;
    check_regular(&metadata, limit)?;
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    // A FIFO swapped in after the check must not block the open.
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK);
    let file = options
        .open(path)
        .map_err(|e| format!("cannot be read: {e}"))?;
    let metadata = file
        .metadata()
        .map_err(|e| format!("cannot be read: {e}"))?;
    check_regular(&metadata, limit)?;
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot be read: {e}"))?;
    if bytes.len() as u64 > limit {
        return Err(too_big(limit));
    }
    Ok(bytes)
}

fn too_big(limit: u64) -> String {
    format!(
        "is larger than {} KiB; give the file itself, not an archive or a device",
        limit / 1024
    )
}

fn check_regular(metadata: &std::fs::Metadata, limit: u64) -> Result<(), String> {
    if metadata.is_dir() {
        return Err("is a directory; give the file in it".to_string());
    }
    if !metadata.is_file() {
        return Err("is not a regular file (a pipe or a device); give a file".to_string());
    }
    if metadata.len() > limit {
        return Err(too_big(limit));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn go_durations_parse_as_go_does() {
        let max = MAX_WAIT_TIMEOUT;
        let cases = [
            ("0", Duration::ZERO),
            ("1h30m", Duration::from_secs(5400)),
            ("1.5h", Duration::from_secs(5400)),
            ("300ms", Duration::from_millis(300)),
            ("90s", Duration::from_secs(90)),
            ("2m3.5s", Duration::from_millis(123_500)),
            (".5s", Duration::from_millis(500)),
            ("5.s", Duration::from_secs(5)),
            ("+10m", Duration::from_secs(600)),
            ("1us", Duration::from_micros(1)),
            ("1µs", Duration::from_micros(1)),
            ("7ns", Duration::from_nanos(7)),
            ("0s", Duration::ZERO),
            ("00010s", Duration::from_secs(10)),
            ("168h", 168 * HOUR),
        ];
        for (text, expected) in cases {
            assert_eq!(go_duration(text, max), Ok(expected), "{text}");
        }
        for bad in [
            "", "30", "1h30", "-1s", "s", ".s", "1d", "1 h", "1h 30m", "1.2.3s", "+", "-0", "1e3s",
            "١s", "169h",
        ] {
            assert!(go_duration(bad, max).is_err(), "{bad:?} is refused");
        }
    }

    #[test]
    fn absurd_durations_are_refused_without_panicking() {
        for huge in [
            "18446744073709551616s",
            "99999999999999999999h",
            "9999999999999999999999999999999999999999h",
            "2562048h",
            "1h99999999999999999999999m",
        ] {
            let err = go_duration(huge, MAX_WAIT_TIMEOUT).unwrap_err();
            assert!(err.contains("longer than"), "{huge}: {err}");
            assert!(request_timeout(huge).is_err());
        }
    }

    #[test]
    fn request_timeouts_take_kubectl_forms() {
        assert_eq!(request_timeout("0"), Ok(None));
        assert_eq!(request_timeout("0s"), Ok(None));
        assert_eq!(request_timeout("5"), Ok(Some(Duration::from_secs(5))));
        assert_eq!(
            request_timeout("1h30m"),
            Ok(Some(Duration::from_secs(5400)))
        );
        assert_eq!(
            request_timeout("250ms"),
            Ok(Some(Duration::from_millis(250)))
        );
        for bad in ["soon", "5d", "-1s", "", "86401", "18446744073709551616"] {
            assert!(request_timeout(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn wait_timeouts_need_a_unit_and_zero_means_no_limit() {
        assert_eq!(wait_timeout("0"), Ok(NO_WAIT_LIMIT));
        assert_eq!(wait_timeout("10m"), Ok(Duration::from_secs(600)));
        assert!(wait_timeout("30").is_err());
    }

    #[test]
    fn names() {
        for good in [
            "catalog",
            "a",
            "es-1",
            "a23456789012345678901234567890123456",
        ] {
            assert!(elasticsearch_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "Catalog",
            "1es",
            "-a",
            "a-",
            "a.b",
            "catalog#x",
            "metrics?dryRun=All",
            "a b",
            "a/b",
            "a%2f",
            "a234567890123456789012345678901234567",
            "é",
        ] {
            assert!(elasticsearch_name(bad).is_err(), "{bad:?}");
        }
        assert!(namespace("search").is_ok());
        assert!(namespace("1st").is_ok());
        for bad in ["", "Search", "a.b", "a_b", &"a".repeat(64), "x/../y"] {
            assert!(namespace(bad).is_err(), "{bad:?}");
        }
        assert!(context("kind-east").is_ok());
        assert!(context("arn:aws:eks:eu-west-1:1:cluster/x").is_ok());
        for bad in ["", " ", "\t", " east", "east\n", "a\u{7}b"] {
            assert!(context(bad).is_err(), "{bad:?}");
        }
        assert!(alias("shop_eu-1").is_ok());
        for bad in ["", "Shop", "a.b", "a:b", "a b", "a#b"] {
            assert!(alias(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn proxy_addresses() {
        for good in [
            "h:9443",
            "lb.example.com:9443",
            "LB.Example.com:1",
            "10.0.0.7:65535",
            "[::1]:9443",
            "[2001:db8::7]:443",
        ] {
            assert!(proxy_address(good).is_ok(), "{good}");
        }
        for bad in [
            "https://h:9443",
            "::1:9443",
            "a b:9443",
            "h/x:9443",
            "h",
            "h:",
            ":9443",
            "h:0",
            "h:65536",
            "h:+1",
            "h:99999999999",
            "[::1]",
            "[nope]:1",
            "999.1.1.1:1",
            "-h:1",
            "h_x:1",
            "h:9443/",
            "",
        ] {
            assert!(proxy_address(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn server_names_and_index_patterns() {
        assert!(server_name("products-es-remote-cluster.shop.svc").is_ok());
        for bad in ["", " ", "a..b", "10.0.0.1", "a b", "-a.b", "a_b.c"] {
            assert!(server_name(bad).is_err(), "{bad:?}");
        }
        for good in ["*", "logs-*", "-logs-old*", ".ds-logs-*", "orders"] {
            assert!(index_pattern(good).is_ok(), "{good}");
        }
        for bad in [
            "", "-", "Logs", "a b", "a,b", "a#b", "a?b", "_all", "+x", "a:b", ".", "..", "--x",
            "a/b",
        ] {
            assert!(index_pattern(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn only_small_regular_files_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let small = dir.path().join("small");
        std::fs::write(&small, b"hello").unwrap();
        assert_eq!(read_regular_file(&small, 10).unwrap(), b"hello");
        assert!(read_regular_file(&small, 4).unwrap_err().contains("larger"));
        assert!(
            read_regular_file(dir.path(), 10)
                .unwrap_err()
                .contains("directory")
        );
        assert!(
            read_regular_file(Path::new("/dev/zero"), 10)
                .unwrap_err()
                .contains("not a regular file")
        );
        let fifo = dir.path().join("fifo");
        let c_path = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        assert!(
            read_regular_file(&fifo, 10)
                .unwrap_err()
                .contains("not a regular file")
        );
        assert!(
            read_regular_file(&dir.path().join("none"), 10)
                .unwrap_err()
                .contains("cannot be read")
        );
    }
}
