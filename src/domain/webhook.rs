//! What a webhook may be: its URL (http/https, a host, no credentials, at most 2,000
//! characters), its secret, where deliveries may go (`MERIDIAN_WEBHOOK_ALLOW`), and how long a
//! failed delivery waits before the next try. The API, the configuration and the delivery
//! worker all decide through these, so each rule lives here once.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::time::Duration;

use ipnet::IpNet;

/// Longest URL, in characters (the table's CHECK).
pub const MAX_URL: usize = 2000;
/// Shortest and longest secret, in characters (the table's CHECK).
pub const MIN_SECRET: usize = 16;
pub const MAX_SECRET: usize = 200;

/// A URL a webhook may be registered with, normalised (`HTTP://Example.com` is
/// `http://example.com/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookUrl(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("longer than {MAX_URL} characters")]
    TooLong,
    #[error("not a URL: {0}")]
    Malformed(String),
    #[error("scheme must be http or https (not {0:?})")]
    Scheme(String),
    #[error("must not carry credentials (user:password@)")]
    Credentials,
    #[error("has no host")]
    NoHost,
}

impl WebhookUrl {
    pub fn parse(raw: &str) -> Result<Self, UrlError> {
        if raw.chars().count() > MAX_URL {
            return Err(UrlError::TooLong);
        }
        let url = url::Url::parse(raw).map_err(|e| UrlError::Malformed(e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(UrlError::Scheme(url.scheme().to_owned()));
        }
        // The parser forgives leading blanks and controls; the documented form does not.
        let prefixed = |p: &str| {
            raw.get(..p.len())
                .is_some_and(|s| s.eq_ignore_ascii_case(p))
        };
        if !prefixed("http://") && !prefixed("https://") {
            return Err(UrlError::Malformed(
                "must start with http:// or https://".into(),
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(UrlError::Credentials);
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(UrlError::NoHost);
        }
        let normal = String::from(url);
        // Normalising can lengthen it (percent-encoding), past what the table holds.
        if normal.chars().count() > MAX_URL {
            return Err(UrlError::TooLong);
        }
        Ok(Self(normal))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A secret's length in characters, checked.
pub fn check_secret(secret: &str) -> Result<(), String> {
    let n = secret.chars().count();
    if n < MIN_SECRET {
        return Err(format!("at least {MIN_SECRET} characters"));
    }
    if n > MAX_SECRET {
        return Err(format!("at most {MAX_SECRET} characters"));
    }
    Ok(())
}

/// Where webhooks may deliver: host names (`hooks.example.com`, or `*.example.com` for its
/// subdomains) and address ranges (`10.20.0.0/16`, `2001:db8::/32`, or one address).
///
/// A host entry trusts that name whatever it resolves to (the operator vouches for its DNS); a
/// host not named is allowed only if *every* address it resolves to is in a range, so a name
/// that resolves to one allowed and one forbidden address is refused rather than raced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allowlist {
    hosts: Vec<String>,
    nets: Vec<IpNet>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllowlistError {
    #[error("{0:?} is neither a host name nor an address or CIDR range")]
    Entry(String),
    /// Set but empty would refuse every delivery: almost surely a mistake (to send none, run
    /// no delivery worker: `MERIDIAN_DELIVERY=false`).
    #[error("no entries (leave it unset to allow any destination)")]
    Empty,
}

impl FromStr for Allowlist {
    type Err = AllowlistError;

    /// Comma-separated entries; blanks between commas are ignored.
    fn from_str(s: &str) -> Result<Self, AllowlistError> {
        let mut list = Allowlist {
            hosts: Vec::new(),
            nets: Vec::new(),
        };
        for entry in s.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            if let Ok(net) = entry.parse::<IpNet>() {
                list.nets.push(net.trunc());
            } else if let Ok(ip) = entry.parse::<IpAddr>() {
                list.nets.push(IpNet::from(ip));
            } else if is_host_pattern(entry) {
                list.hosts.push(entry.to_ascii_lowercase());
            } else {
                return Err(AllowlistError::Entry(entry.to_owned()));
            }
        }
        if list.hosts.is_empty() && list.nets.is_empty() {
            return Err(AllowlistError::Empty);
        }
        Ok(list)
    }
}

/// `name.example`, `*.example.com`: letters, digits, hyphens and dots, no empty label.
fn is_host_pattern(entry: &str) -> bool {
    let name = entry.strip_prefix("*.").unwrap_or(entry);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        // Not all digits and dots: `10.1` is a malformed address, not a host.
        && !name.bytes().all(|b| b.is_ascii_digit() || b == b'.')
}

impl Allowlist {
    /// Whether `host` (a name, not an address) is named by a host entry.
    pub fn allows_host(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.hosts.iter().any(|h| match h.strip_prefix("*.") {
            Some(domain) => host
                .strip_suffix(domain)
                .is_some_and(|sub| sub.len() > 1 && sub.ends_with('.')),
            None => *h == host,
        })
    }

    /// Whether an address is in a range. An IPv4-mapped IPv6 address (`::ffff:10.0.0.1`) is
    /// judged as the IPv4 address it is.
    pub fn allows_ip(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.nets.iter().any(|n| n.contains(&ip))
    }

    /// Whether a delivery to `host`, resolved to `addrs`, may go ahead; `Err` names the first
    /// address outside the list.
    pub fn check(&self, host: &str, addrs: &[IpAddr]) -> Result<(), Forbidden> {
        if self.allows_host(host) {
            return Ok(());
        }
        match addrs.iter().find(|a| !self.allows_ip(**a)) {
            Some(bad) => Err(Forbidden {
                host: host.to_owned(),
                addr: Some(*bad),
            }),
            None if addrs.is_empty() => Err(Forbidden {
                host: host.to_owned(),
                addr: None,
            }),
            None => Ok(()),
        }
    }
}

/// A delivery the allowlist refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Forbidden {
    pub host: String,
    pub addr: Option<IpAddr>,
}

impl fmt::Display for Forbidden {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.addr {
            Some(a) if a.to_string() == self.host => {
                write!(f, "{a} is not in MERIDIAN_WEBHOOK_ALLOW")
            }
            Some(a) => write!(
                f,
                "{} resolves to {a}, which is not in MERIDIAN_WEBHOOK_ALLOW",
                self.host
            ),
            None => write!(f, "{} resolves to no address", self.host),
        }
    }
}

/// How long the `attempt`-th failed try (1-based) waits before the next: `base · 2^(attempt−1)`,
/// capped at `max`, then scaled by `jitter` (callers draw it from 0.75–1.0, so nodes retrying
/// the same dead endpoint spread out, every delay still at least 1.5× the one before until the
/// cap, and none above the cap).
pub fn backoff(attempt: i32, base: Duration, max: Duration, jitter: f64) -> Duration {
    let doublings = attempt.saturating_sub(1).clamp(0, 40) as u32;
    let delay = base.saturating_mul(1u32 << doublings.min(31)).min(max);
    delay.mul_f64(jitter.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_http_or_https_with_a_host_and_no_credentials() {
        assert_eq!(
            WebhookUrl::parse("HTTPS://Hooks.Example.com/x?y=1")
                .unwrap()
                .as_str(),
            "https://hooks.example.com/x?y=1"
        );
        assert!(WebhookUrl::parse("http://127.0.0.1:8080").is_ok());
        assert!(WebhookUrl::parse("http://[::1]/hook").is_ok());
        for (bad, why) in [
            ("ftp://example.com/", UrlError::Scheme("ftp".into())),
            ("http://user:pw@example.com/", UrlError::Credentials),
            ("http://user@example.com/", UrlError::Credentials),
            ("file:///etc/passwd", UrlError::Scheme("file".into())),
        ] {
            assert_eq!(WebhookUrl::parse(bad), Err(why), "{bad}");
        }
        assert!(matches!(
            WebhookUrl::parse(" http://example.com/"),
            Err(UrlError::Malformed(_))
        ));
        assert!(matches!(
            WebhookUrl::parse("example.com/hook"),
            Err(UrlError::Malformed(_))
        ));
        assert!(matches!(
            WebhookUrl::parse("http://"),
            Err(UrlError::Malformed(_) | UrlError::NoHost)
        ));
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL));
        assert_eq!(WebhookUrl::parse(&long), Err(UrlError::TooLong));
    }

    #[test]
    fn secrets_are_16_to_200_characters() {
        assert!(check_secret(&"s".repeat(15)).is_err());
        assert!(check_secret(&"ö".repeat(16)).is_ok());
        assert!(check_secret(&"s".repeat(201)).is_err());
    }

    #[test]
    fn the_allowlist_takes_hosts_wildcards_ranges_and_single_addresses() {
        let allow: Allowlist = "hooks.example.com, *.corp.example, 10.0.0.0/8, ::1,,"
            .parse()
            .unwrap();
        assert!(allow.allows_host("HOOKS.example.com."));
        assert!(allow.allows_host("a.corp.example"));
        assert!(!allow.allows_host("corp.example"));
        assert!(!allow.allows_host("evilcorp.example"));
        assert!(allow.allows_ip("10.9.8.7".parse().unwrap()));
        assert!(allow.allows_ip("::ffff:10.9.8.7".parse().unwrap()));
        assert!(allow.allows_ip("::1".parse().unwrap()));
        assert!(!allow.allows_ip("127.0.0.1".parse().unwrap()));
        for bad in ["10.0.0.0/33", "bad host", "10.1", "http://x", "*.", " , "] {
            assert!(bad.parse::<Allowlist>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_name_passes_only_if_every_address_it_resolves_to_does() {
        let allow: Allowlist = "127.0.0.1/32".parse().unwrap();
        let v4: IpAddr = "127.0.0.1".parse().unwrap();
        let v6: IpAddr = "::1".parse().unwrap();
        assert_eq!(allow.check("localhost", &[v4]), Ok(()));
        let refused = allow.check("localhost", &[v4, v6]).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "localhost resolves to ::1, which is not in MERIDIAN_WEBHOOK_ALLOW"
        );
        assert!(allow.check("nowhere", &[]).is_err());
    }

    #[test]
    fn backoff_doubles_to_the_cap_and_jitter_only_shortens() {
        let (base, max) = (Duration::from_secs(1), Duration::from_secs(3600));
        let delays: Vec<u64> = (1..=14)
            .map(|a| backoff(a, base, max, 1.0).as_secs())
            .collect();
        assert_eq!(&delays[..4], &[1, 2, 4, 8]);
        assert_eq!(delays[13], 3600);
        assert_eq!(backoff(1000, base, max, 1.0), max);
        assert_eq!(backoff(3, base, max, 0.75), Duration::from_secs(3));
        // Until the cap, the shortest next delay still exceeds the longest previous one.
        for a in 1..11 {
            assert!(backoff(a + 1, base, max, 0.75) > backoff(a, base, max, 1.0));
        }
    }
}
