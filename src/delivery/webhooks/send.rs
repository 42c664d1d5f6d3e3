//! One webhook request: the event body signed with the webhook's secret (HMAC-SHA256, hex, in
//! `Meridian-Signature`), its id in `Meridian-Event-Id`, a timeout over the whole exchange, no
//! redirects followed, and — when `MERIDIAN_WEBHOOK_ALLOW` is set — the destination checked at
//! connect time against every address the host resolves to.
//!
//! The check lives in the client's resolver: the addresses it approves are the very ones the
//! connection is made to, so a DNS answer that changes between a check and the connect cannot
//! slip past it. A URL whose host is an address literal never reaches a resolver, so `send`
//! checks those itself before the request.

use std::error::Error as _;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{HeaderValue, CONTENT_TYPE, LOCATION};
use sha2::Sha256;

use crate::config::WebhookSettings;
use crate::domain::webhook::{Allowlist, Forbidden};

/// The signature header: lowercase hex HMAC-SHA256 of the exact body bytes.
pub const SIGNATURE_HEADER: &str = "Meridian-Signature";
/// The event id: the same on every try of the same event, so receivers can drop repeats.
pub const EVENT_ID_HEADER: &str = "Meridian-Event-Id";

/// `hex(HMAC-SHA256(secret, body))`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// How one try ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    Delivered {
        status: u16,
    },
    Failed {
        status: Option<u16>,
        kind: FailureKind,
        error: String,
    },
}

/// Why a try failed, for the metrics' `outcome` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The endpoint answered, but not 2xx.
    Rejected,
    /// A 3xx: not followed.
    Redirect,
    /// The allowlist refused the destination; no connection was made.
    Forbidden,
    Timeout,
    /// Could not connect or the exchange broke.
    Unreachable,
}

impl FailureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Rejected => "rejected",
            FailureKind::Redirect => "redirect",
            FailureKind::Forbidden => "forbidden",
            FailureKind::Timeout => "timeout",
            FailureKind::Unreachable => "unreachable",
        }
    }
}

/// The HTTP client every delivery of a node shares (its connection pool included).
#[derive(Clone)]
pub struct Sender {
    client: reqwest::Client,
    allow: Option<Arc<Allowlist>>,
}

impl Sender {
    pub fn new(settings: &WebhookSettings) -> Result<Self, reqwest::Error> {
        let allow = settings.allow.clone().map(Arc::new);
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            // A proxy would connect for us, wherever the allowlist says.
            .no_proxy()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .user_agent(concat!("Meridian-Webhooks/", env!("CARGO_PKG_VERSION")));
        if let Some(allow) = &allow {
            builder = builder.dns_resolver(Arc::new(CheckedResolver(allow.clone())));
        }
        Ok(Self {
            client: builder.build()?,
            allow,
        })
    }

    /// Sends `body` (the event's JSON) to `url`; the result and how long it took.
    pub async fn send(
        &self,
        url: &str,
        secret: &str,
        event_id: i64,
        body: String,
    ) -> (Attempt, Duration) {
        let started = Instant::now();
        let attempt = self.try_send(url, secret, event_id, body).await;
        (attempt, started.elapsed())
    }

    async fn try_send(&self, url: &str, secret: &str, event_id: i64, body: String) -> Attempt {
        let failed = |kind, status, error: String| Attempt::Failed {
            status,
            kind,
            error,
        };
        let parsed = match reqwest::Url::parse(url) {
            Ok(u) => u,
            Err(e) => return failed(FailureKind::Unreachable, None, format!("bad URL: {e}")),
        };
        if let Some(allow) = &self.allow {
            let literal = match parsed.host() {
                Some(url::Host::Ipv4(a)) => Some(IpAddr::V4(a)),
                Some(url::Host::Ipv6(a)) => Some(IpAddr::V6(a)),
                _ => None,
            };
            if let Some(ip) = literal {
                if let Err(e) = allow.check(&ip.to_string(), &[ip]) {
                    return failed(FailureKind::Forbidden, None, e.to_string());
                }
            }
        }
        let sig = signature(secret.as_bytes(), body.as_bytes());
        let request = self
            .client
            .post(parsed)
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header(EVENT_ID_HEADER, event_id)
            .header(SIGNATURE_HEADER, sig)
            .body(body);
        match request.send().await {
            Ok(res) if res.status().is_success() => Attempt::Delivered {
                status: res.status().as_u16(),
            },
            Ok(res) if res.status().is_redirection() => {
                let to = res
                    .headers()
                    .get(LOCATION)
                    .map(|l| String::from_utf8_lossy(l.as_bytes()).into_owned())
                    .unwrap_or_else(|| "(no Location)".into());
                let status = res.status().as_u16();
                failed(
                    FailureKind::Redirect,
                    Some(status),
                    format!("HTTP {status}: redirect to {to} not followed"),
                )
            }
            Ok(res) => {
                let status = res.status();
                failed(
                    FailureKind::Rejected,
                    Some(status.as_u16()),
                    format!("HTTP {status}"),
                )
            }
            Err(e) => {
                let kind = if forbidden(&e).is_some() {
                    FailureKind::Forbidden
                } else if e.is_timeout() {
                    FailureKind::Timeout
                } else {
                    FailureKind::Unreachable
                };
                let error = match forbidden(&e) {
                    Some(f) => f.to_string(),
                    None => chain(&e),
                };
                failed(kind, None, error)
            }
        }
    }
}

/// The allowlist's refusal inside a request error, if that is what failed it.
fn forbidden(e: &reqwest::Error) -> Option<&Forbidden> {
    let mut source = e.source();
    while let Some(s) = source {
        if let Some(f) = s.downcast_ref::<Forbidden>() {
            return Some(f);
        }
        source = s.source();
    }
    None
}

/// An error and its causes on one line (reqwest's own message says only "error sending request
/// for url …", and the URL may hold a token: it is left out).
fn chain(e: &reqwest::Error) -> String {
    let mut text = String::from(if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    });
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Resolves with the system resolver, then lets the connection proceed only to addresses the
/// allowlist admits (see `Allowlist::check`).
struct CheckedResolver(Arc<Allowlist>);

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow = self.0.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let ips: Vec<IpAddr> = addrs.iter().map(SocketAddr::ip).collect();
            allow.check(&host, &ips)?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hex_hmac_sha256_of_the_body() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
