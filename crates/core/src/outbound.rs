//! The one guard for URLs that tenants give (Azure Key Vault keys, webhooks, connectors).
//!
//! A tenant-given URL must not make the platform reach its own network: [`Guard::check_url`]
//! accepts `https` only (plain `http` only to loopback, and only when loopback URLs are
//! allowed for tests), no credentials in the URL, and no non-public IP literal.
//! [`Guard::client`] builds an HTTP client that follows no redirects, uses no proxy, and resolves
//! names itself: it refuses a name when any of its addresses is not public, then connects to the
//! addresses it checked, so a second DNS answer cannot point the connection elsewhere.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use url::{Host, Url};

/// The environment variable that allows loopback URLs (tests and local fakes only).
pub const ALLOW_LOOPBACK_ENV: &str = "TENANTOPS_ALLOW_LOOPBACK_URLS";

/// Connect timeout of every outbound client.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Whole-request timeout of every outbound client.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Installs rustls' `ring` crypto provider for the process; later calls do nothing.
///
/// reqwest is built without a provider of its own (no aws-lc, no OpenSSL), so this must run
/// before the first HTTPS client is built: the server's `main` calls it, and so does every
/// client constructor in this crate.
pub fn install_crypto_provider() {
    // Err means a provider is already installed: that is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Why a URL or an address was refused; every message says what to change.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum OutboundError {
    /// The text is not an absolute URL.
    #[error("`{url}` is not a valid URL ({reason}); give an absolute https:// URL")]
    BadUrl {
        /// The offending text.
        url: String,
        /// The parser's reason.
        reason: String,
    },
    /// The scheme is not https (or http to loopback where allowed).
    #[error("`{scheme}` URLs are not allowed; use an https:// URL")]
    NotHttps {
        /// The scheme given.
        scheme: String,
    },
    /// The URL carries a user name or password.
    #[error(
        "the URL must not carry a user name or password; remove the `user:password@` part and \
         configure credentials separately"
    )]
    UserInfo,
    /// The URL has no host.
    #[error("the URL has no host; give an absolute https:// URL with a public host name")]
    NoHost,
    /// The host is, or resolves to, an address that is not on the public internet.
    #[error(
        "`{host}` is {reason} ({addr}); only public internet addresses are allowed, give a \
         public host name"
    )]
    NotPublic {
        /// The host as given.
        host: String,
        /// The refused address.
        addr: IpAddr,
        /// The kind of address, e.g. "a private (RFC 1918) address".
        reason: &'static str,
    },
    /// The host name did not resolve.
    #[error("cannot resolve `{host}`: {detail}; check the host name")]
    Resolve {
        /// The host name.
        host: String,
        /// The resolver's reason.
        detail: String,
    },
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

/// What an address is, as far as outbound requests care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrClass {
    /// A public internet address.
    Public,
    /// A loopback address (allowed only when loopback URLs are allowed).
    Loopback,
    /// Any other non-public address; the text names its kind.
    NotPublic(&'static str),
}

/// Classifies an address: loopback, another non-public range, or public.
pub fn classify(ip: IpAddr) -> AddrClass {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> AddrClass {
    let [a, b, c, _] = ip.octets();
    let not_public = AddrClass::NotPublic;
    match (a, b, c) {
        (127, _, _) => AddrClass::Loopback,
        (0, _, _) => not_public("a \"this network\" address (0.0.0.0/8)"),
        (10, _, _) => not_public("a private (RFC 1918) address"),
        (172, 16..=31, _) => not_public("a private (RFC 1918) address"),
        (192, 168, _) => not_public("a private (RFC 1918) address"),
        (169, 254, _) => not_public("a link-local address (169.254.0.0/16)"),
        (100, 64..=127, _) => not_public("a shared carrier-grade NAT address (100.64.0.0/10)"),
        (192, 0, 0) => not_public("an IETF protocol address (192.0.0.0/24)"),
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => {
            not_public("a documentation address (RFC 5737)")
        }
        (198, 18..=19, _) => not_public("a benchmarking address (198.18.0.0/15)"),
        (224..=239, _, _) => not_public("a multicast address"),
        _ if ip.is_broadcast() => not_public("the broadcast address"),
        (240..=255, _, _) => not_public("a reserved address (240.0.0.0/4)"),
        _ => AddrClass::Public,
    }
}

fn classify_v6(ip: Ipv6Addr) -> AddrClass {
    let not_public = AddrClass::NotPublic;
    if ip.is_loopback() {
        return AddrClass::Loopback;
    }
    if ip.is_unspecified() {
        return not_public("the unspecified address (::)");
    }
    // IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d) and NAT64 (64:ff9b::a.b.c.d)
    // addresses reach the embedded IPv4 address: judge that one.
    let s = ip.segments();
    let embedded = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    if s[..5] == [0; 5] && (s[5] == 0xffff || s[5] == 0) {
        return classify_v4(embedded);
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return classify_v4(embedded);
    }
    match s[0] {
        x if x & 0xfe00 == 0xfc00 => not_public("a unique local address (fc00::/7)"),
        x if x & 0xffc0 == 0xfe80 => not_public("a link-local address (fe80::/10)"),
        x if x & 0xffc0 == 0xfec0 => not_public("a site-local address (fec0::/10)"),
        x if x & 0xff00 == 0xff00 => not_public("a multicast address (ff00::/8)"),
        0x2001 if s[1] == 0x0db8 => not_public("a documentation address (2001:db8::/32)"),
        _ => AddrClass::Public,
    }
}

/// The guard for tenant-given URLs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Guard {
    allow_loopback: bool,
}

impl Guard {
    /// A guard; `allow_loopback` lets `http://127.0.0.1:PORT/...` through (tests only).
    pub fn new(allow_loopback: bool) -> Self {
        Self { allow_loopback }
    }

    /// A guard configured from `TENANTOPS_ALLOW_LOOPBACK_URLS=true`.
    pub fn from_env() -> Self {
        Self::new(env_flag(std::env::var(ALLOW_LOOPBACK_ENV).ok().as_deref()))
    }

    /// Whether loopback URLs are allowed.
    pub fn allow_loopback(&self) -> bool {
        self.allow_loopback
    }

    /// Checks a tenant-given URL for form: https (http only to loopback where allowed), no
    /// user info, and no IP literal that is not public. Host names are checked when the
    /// [`Guard::client`] resolves them.
    pub fn check_url(&self, text: &str) -> Result<Url, OutboundError> {
        let url = Url::parse(text.trim()).map_err(|e| OutboundError::BadUrl {
            url: text.trim().to_owned(),
            reason: e.to_string(),
        })?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(OutboundError::UserInfo);
        }
        let host = url.host().ok_or(OutboundError::NoHost)?;
        let literal = match host {
            Host::Ipv4(v4) => Some(IpAddr::V4(v4)),
            Host::Ipv6(v6) => Some(IpAddr::V6(v6)),
            Host::Domain(_) => None,
        };
        let loopback_host = match literal {
            Some(ip) => classify(ip) == AddrClass::Loopback,
            None => url.host_str() == Some("localhost"),
        };
        match url.scheme() {
            "https" => {}
            "http" if self.allow_loopback && loopback_host => {}
            other => {
                return Err(OutboundError::NotHttps {
                    scheme: other.to_owned(),
                });
            }
        }
        if let Some(ip) = literal {
            self.check_addr(url.host_str().unwrap_or_default(), ip)?;
        }
        Ok(url)
    }

    /// Refuses an address that is not public (loopback passes when allowed).
    pub fn check_addr(&self, host: &str, ip: IpAddr) -> Result<(), OutboundError> {
        let reason = match classify(ip) {
            AddrClass::Public => return Ok(()),
            AddrClass::Loopback if self.allow_loopback => return Ok(()),
            AddrClass::Loopback => "a loopback address",
            AddrClass::NotPublic(reason) => reason,
        };
        Err(OutboundError::NotPublic {
            host: host.to_owned(),
            addr: ip,
            reason,
        })
    }

    /// An HTTP client for checked URLs: no redirects, no proxy, 5 s connect and 10 s request
    /// timeouts, and a resolver that refuses names with any non-public address.
    pub fn client(&self) -> Result<reqwest::Client, OutboundError> {
        install_crypto_provider();
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .dns_resolver(Arc::new(GuardResolver { guard: *self }))
            .build()
            .map_err(|e| OutboundError::Client(e.to_string()))
    }
}

/// `true`, `1` or `yes` (any case) turn a flag on.
pub(crate) fn env_flag(value: Option<&str>) -> bool {
    matches!(
        value.map(|v| v.trim().to_ascii_lowercase()).as_deref(),
        Some("true" | "1" | "yes")
    )
}

/// Resolves with the system resolver, then refuses the name if any address is not public.
struct GuardResolver {
    guard: Guard,
}

impl reqwest::dns::Resolve for GuardResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let guard = self.guard;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|e| OutboundError::Resolve {
                    host: host.clone(),
                    detail: e.to_string(),
                })?
                .collect();
            if addrs.is_empty() {
                return Err(OutboundError::Resolve {
                    host,
                    detail: "no addresses".into(),
                }
                .into());
            }
            for addr in &addrs {
                guard.check_addr(&host, addr.ip())?;
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(text: &str) -> AddrClass {
        classify(text.parse().unwrap())
    }

    #[test]
    fn address_classification_table() {
        let public = [
            "8.8.8.8",
            "1.1.1.1",
            "172.15.255.255",
            "172.32.0.1",
            "100.63.255.255",
            "100.128.0.1",
            "192.169.0.1",
            "2606:4700:4700::1111",
            "2a00:1450:4001::1",
            "::ffff:8.8.8.8",
        ];
        for ip in public {
            assert_eq!(class(ip), AddrClass::Public, "{ip}");
        }
        for ip in [
            "127.0.0.1",
            "127.255.0.9",
            "::1",
            "::ffff:127.0.0.1",
            "::127.0.0.1",
        ] {
            assert_eq!(class(ip), AddrClass::Loopback, "{ip}");
        }
        let refused = [
            ("0.0.0.0", "this network"),
            ("0.1.2.3", "this network"),
            ("10.0.0.1", "RFC 1918"),
            ("172.16.0.1", "RFC 1918"),
            ("172.31.255.254", "RFC 1918"),
            ("192.168.1.1", "RFC 1918"),
            ("169.254.169.254", "link-local"),
            ("100.64.0.1", "carrier-grade NAT"),
            ("100.127.255.254", "carrier-grade NAT"),
            ("224.0.0.1", "multicast"),
            ("239.255.255.250", "multicast"),
            ("255.255.255.255", "broadcast"),
            ("240.0.0.1", "reserved"),
            ("192.0.2.10", "documentation"),
            ("198.51.100.7", "documentation"),
            ("203.0.113.99", "documentation"),
            ("198.18.0.1", "benchmarking"),
            ("192.0.0.8", "IETF"),
            ("::", "unspecified"),
            ("fc00::1", "unique local"),
            ("fd12:3456::1", "unique local"),
            ("fe80::1", "link-local"),
            ("febf::1", "link-local"),
            ("fec0::1", "site-local"),
            ("ff02::1", "multicast"),
            ("2001:db8::1", "documentation"),
            ("::ffff:10.0.0.1", "RFC 1918"),
            ("::ffff:169.254.169.254", "link-local"),
            ("::192.168.0.1", "RFC 1918"),
            ("64:ff9b::a9fe:a9fe", "link-local"),
        ];
        for (ip, kind) in refused {
            match class(ip) {
                AddrClass::NotPublic(reason) => assert!(reason.contains(kind), "{ip}: {reason}"),
                other => panic!("{ip} classified {other:?}"),
            }
        }
    }

    #[test]
    fn check_url_accepts_https_and_refuses_the_rest() {
        let strict = Guard::new(false);
        let loose = Guard::new(true);
        assert!(
            strict
                .check_url("https://example.vault.azure.net/keys/k")
                .is_ok()
        );
        assert!(strict.check_url("https://8.8.8.8/x").is_ok());

        let err = strict.check_url("http://example.com/").unwrap_err();
        assert!(err.to_string().contains("use an https:// URL"), "{err}");
        assert!(strict.check_url("ftp://example.com/").is_err());
        let err = strict
            .check_url("https://user:pw@example.com/")
            .unwrap_err();
        assert_eq!(err, OutboundError::UserInfo);
        assert!(!err.to_string().contains("pw"));
        assert!(matches!(
            strict.check_url("not a url").unwrap_err(),
            OutboundError::BadUrl { .. }
        ));

        for url in [
            "https://127.0.0.1/",
            "https://10.1.2.3/",
            "https://169.254.169.254/latest/meta-data/",
            "https://[::ffff:192.168.0.1]/",
            "https://[fd00::1]/",
            "https://0x7f.0.0.1/",
            "https://2130706433/",
        ] {
            let err = strict.check_url(url).unwrap_err();
            assert!(
                matches!(err, OutboundError::NotPublic { .. }),
                "{url}: {err}"
            );
            assert!(err.to_string().contains("only public"), "{err}");
        }

        // Loopback only when allowed, and plain http only to loopback.
        assert!(strict.check_url("http://127.0.0.1:8080/keys/k").is_err());
        assert!(loose.check_url("http://127.0.0.1:8080/keys/k").is_ok());
        assert!(loose.check_url("http://[::1]:8080/keys/k").is_ok());
        assert!(loose.check_url("http://example.com/").is_err());
        assert!(loose.check_url("https://10.0.0.1/").is_err());
    }

    #[test]
    fn env_flag_values() {
        assert!(env_flag(Some("true")));
        assert!(env_flag(Some(" TRUE ")));
        assert!(env_flag(Some("1")));
        assert!(!env_flag(Some("false")));
        assert!(!env_flag(None));
    }

    #[tokio::test]
    async fn the_client_refuses_names_that_resolve_to_loopback() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let client = Guard::new(false).client().unwrap();
        let err = client
            .get(format!("https://localhost:{port}/"))
            .send()
            .await
            .unwrap_err();
        let chain = format!("{:?}", err);
        assert!(chain.contains("loopback"), "{chain}");
        // The listener never saw a connection attempt.
        let accepted = tokio::time::timeout(Duration::from_millis(100), listener.accept()).await;
        assert!(accepted.is_err());
    }
}
