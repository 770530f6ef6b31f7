//! The one HTTP client for calls whose destination a tenant chooses: Actito's
//! notifyOK / notifyKO callbacks and every Actito API call (the tenant's `apiBaseUrl`).
//!
//! Every address it connects to is checked against [`is_blocked`]. Host names go
//! through [`GuardedResolver`], which resolves them, drops the addresses that are not
//! public and hands reqwest only what is left, so the address checked is the address
//! connected to (no second lookup, no DNS-rebinding window). IP literals, which reqwest
//! connects to without resolving, are checked before sending. Redirects are never
//! followed and no proxy is used (a proxy would resolve the name itself).
//!
//! Non-public destinations are opened only by the operator, with
//! `PASSHOOK_ALLOW_PRIVATE_HOSTS` ([`PrivateHosts`]), never by a tenant setting. URLs
//! the operator sets (APNs, Google, the OIDC issuer) use [`crate::Core::http`].

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use url::{Host, Url};

/// The operator's allow-list of non-public destinations.
pub const ALLOW_PRIVATE_HOSTS_VAR: &str = "PASSHOOK_ALLOW_PRIVATE_HOSTS";

const fn v4(a: u8, b: u8, c: u8, d: u8, len: u8) -> Ipv4Net {
    Ipv4Net::new_assert(Ipv4Addr::new(a, b, c, d), len)
}

#[allow(clippy::too_many_arguments)]
const fn v6(a: u16, b: u16, c: u16, d: u16, e: u16, f: u16, len: u8) -> Ipv6Net {
    Ipv6Net::new_assert(Ipv6Addr::new(a, b, c, d, e, f, 0, 0), len)
}

/// IPv4 ranges that are not public destinations (IANA special-purpose registry).
const BLOCKED_V4: &[Ipv4Net] = &[
    v4(0, 0, 0, 0, 8),       // "this network", the unspecified address
    v4(10, 0, 0, 0, 8),      // private
    v4(100, 64, 0, 0, 10),   // carrier-grade NAT
    v4(127, 0, 0, 0, 8),     // loopback
    v4(169, 254, 0, 0, 16),  // link-local (cloud metadata services)
    v4(172, 16, 0, 0, 12),   // private
    v4(192, 0, 0, 0, 24),    // IETF protocol assignments
    v4(192, 0, 2, 0, 24),    // documentation (TEST-NET-1)
    v4(192, 88, 99, 0, 24),  // 6to4 relay anycast
    v4(192, 168, 0, 0, 16),  // private
    v4(198, 18, 0, 0, 15),   // benchmarking
    v4(198, 51, 100, 0, 24), // documentation (TEST-NET-2)
    v4(203, 0, 113, 0, 24),  // documentation (TEST-NET-3)
    v4(224, 0, 0, 0, 4),     // multicast
    v4(240, 0, 0, 0, 4),     // reserved, and the broadcast address
];

/// IPv6 ranges that are not public destinations. `::ffff:0:0/96` (IPv4-mapped) and
/// `::/96` (IPv4-compatible) are judged by the IPv4 address they carry.
const BLOCKED_V6: &[Ipv6Net] = &[
    v6(0, 0, 0, 0, 0, 0, 8),           // reserved: ::, ::1, IPv4-translated…
    v6(0x64, 0xff9b, 0, 0, 0, 0, 96),  // NAT64
    v6(0x64, 0xff9b, 1, 0, 0, 0, 48),  // local-use NAT64
    v6(0x100, 0, 0, 0, 0, 0, 64),      // discard-only
    v6(0x2001, 0, 0, 0, 0, 0, 23),     // IETF protocol assignments, Teredo 2001::/32
    v6(0x2001, 0xdb8, 0, 0, 0, 0, 32), // documentation
    v6(0x2002, 0, 0, 0, 0, 0, 16),     // 6to4
    v6(0x3fff, 0, 0, 0, 0, 0, 20),     // documentation
    v6(0xfc00, 0, 0, 0, 0, 0, 7),      // unique local
    v6(0xfe80, 0, 0, 0, 0, 0, 10),     // link-local
    v6(0xfec0, 0, 0, 0, 0, 0, 10),     // site-local (deprecated)
    v6(0xff00, 0, 0, 0, 0, 0, 8),      // multicast
];

/// Whether `ip` is not a public destination: loopback, private, link-local, CGNAT,
/// unspecified, broadcast, documentation, benchmarking, multicast, reserved, and the
/// IPv6 forms that reach such places (ULA, site-local, NAT64, 6to4, Teredo, and the
/// IPv4-mapped and IPv4-compatible forms of every blocked IPv4 address).
pub fn is_blocked(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => BLOCKED_V4.iter().any(|net| net.contains(&v4)),
        IpAddr::V6(v6) => {
            let [a, b, c, d, e, f, _, _] = v6.segments();
            let embedded = v6.octets()[12..]
                .try_into()
                .map(|o: [u8; 4]| Ipv4Addr::from(o));
            match (a, b, c, d, e, f) {
                // IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible (::a.b.c.d, which
                // also covers :: and ::1 as 0.0.0.0/8).
                (0, 0, 0, 0, 0, 0xffff) | (0, 0, 0, 0, 0, 0) => {
                    embedded.map_or(true, |v4| is_blocked(IpAddr::V4(v4)))
                }
                _ => BLOCKED_V6.iter().any(|net| net.contains(&v6)),
            }
        }
    }
}

/// The operator's allow-list (`PASSHOOK_ALLOW_PRIVATE_HOSTS`): host names, addresses
/// and CIDR ranges that may be reached although they are not public. Empty by default.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PrivateHosts {
    names: Vec<String>,
    nets: Vec<IpNet>,
}

/// A host name as compared: lower case, without brackets or a trailing dot.
fn normalise_host(host: &str) -> String {
    host.trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase()
}

/// A range as compared: IPv4-mapped IPv6 ranges (`::ffff:10.0.0.0/104`) as IPv4.
fn canonical_net(net: IpNet) -> IpNet {
    match net {
        IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.addr().to_ipv4_mapped() {
            Some(v4) => IpNet::V4(Ipv4Net::new_assert(v4, v6.prefix_len() - 96)),
            None => net.trunc(),
        },
        _ => net.trunc(),
    }
}

impl PrivateHosts {
    /// A comma-separated list of host names (`actito.internal`), addresses
    /// (`127.0.0.1`, `::1`) and CIDR ranges (`10.0.0.0/8`).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut hosts = PrivateHosts::default();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            if let Ok(net) = entry.parse::<IpNet>() {
                hosts.nets.push(canonical_net(net));
                continue;
            }
            let name = normalise_host(entry);
            if let Ok(ip) = name.parse::<IpAddr>() {
                hosts.nets.push(IpNet::from(ip.to_canonical()));
            } else if !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
            {
                hosts.names.push(name);
            } else {
                return Err(format!(
                    "{ALLOW_PRIVATE_HOSTS_VAR}: {entry:?} is not a host name, an address or a CIDR range"
                ));
            }
        }
        Ok(hosts)
    }

    /// From `PASSHOOK_ALLOW_PRIVATE_HOSTS` (empty when unset).
    pub fn from_env() -> Result<Self, String> {
        Self::parse(&std::env::var(ALLOW_PRIVATE_HOSTS_VAR).unwrap_or_default())
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty() && self.nets.is_empty()
    }

    /// Whether the operator listed this host name.
    pub fn allows_name(&self, host: &str) -> bool {
        let host = normalise_host(host);
        self.names.contains(&host)
    }

    /// Whether the operator listed this address or a range holding it (an
    /// IPv4-mapped address counts as its IPv4 address).
    pub fn allows_ip(&self, ip: IpAddr) -> bool {
        let canonical = ip.to_canonical();
        self.nets
            .iter()
            .any(|net| net.contains(&ip) || net.contains(&canonical))
    }

    /// Whether an address may be connected to: public, or opened by the operator.
    pub fn permits(&self, ip: IpAddr) -> bool {
        !is_blocked(ip) || self.allows_ip(ip)
    }

    /// Why a host a tenant names (a callback host or pattern, the API host) is refused
    /// when saving settings: an IP literal that is not public, or `localhost`, unless
    /// the operator allows it. Names that resolve to such places are refused when
    /// called ([`GuardedResolver`]); this only catches the obvious early.
    pub fn refuses(&self, host: &str) -> Option<String> {
        let host = normalise_host(host.strip_prefix("*.").unwrap_or(host));
        if self.allows_name(&host) {
            return None;
        }
        let ip = match host.parse::<IpAddr>() {
            Ok(ip) => Some(ip),
            // The URL parser's reading of short and hexadecimal forms (`127.1`).
            Err(_) => match Host::parse(&host) {
                Ok(Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
                Ok(Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
                _ => None,
            },
        };
        match ip {
            Some(ip) if !self.permits(ip) => Some(format!(
                "{host} is not a public address (only the operator can allow it)"
            )),
            Some(_) => None,
            None if host == "localhost" || host.ends_with(".localhost") => Some(format!(
                "{host} is not a public host (only the operator can allow it)"
            )),
            None => None,
        }
    }
}

/// Turns a host name into addresses; injectable so tests can make any name resolve
/// anywhere.
pub trait Lookup: Send + Sync + 'static {
    fn lookup(&self, host: &str) -> Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send>>;
}

/// The system's resolver (`getaddrinfo`), as reqwest uses by default.
pub struct SystemLookup;

impl Lookup for SystemLookup {
    fn lookup(&self, host: &str) -> Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send>> {
        let host = host.to_string();
        Box::pin(async move {
            Ok(tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .map(|addr| addr.ip())
                .collect())
        })
    }
}

/// Fixed answers, for tests: names it does not know do not resolve.
#[derive(Clone, Debug, Default)]
pub struct StaticLookup(HashMap<String, Vec<IpAddr>>);

impl StaticLookup {
    pub fn new<'a>(entries: impl IntoIterator<Item = (&'a str, Vec<IpAddr>)>) -> Self {
        StaticLookup(
            entries
                .into_iter()
                .map(|(name, ips)| (normalise_host(name), ips))
                .collect(),
        )
    }
}

impl Lookup for StaticLookup {
    fn lookup(&self, host: &str) -> Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send>> {
        let answer =
            self.0.get(&normalise_host(host)).cloned().ok_or_else(|| {
                io::Error::new(io::ErrorKind::NotFound, format!("{host} is not known"))
            });
        Box::pin(async move { answer })
    }
}

/// A connection refused because of where it would go.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Blocked(String);

/// The resolver of the guarded client: resolves, keeps only the addresses that may be
/// reached, and fails when none is left.
pub struct GuardedResolver {
    lookup: Arc<dyn Lookup>,
    allow: Arc<PrivateHosts>,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = normalise_host(name.as_str());
        let lookup = self.lookup.lookup(&host);
        let allow = self.allow.clone();
        Box::pin(async move {
            let found = lookup.await?;
            let by_name = allow.allows_name(&host);
            let kept: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|ip| by_name || allow.permits(*ip))
                .map(|ip| SocketAddr::new(ip, 0))
                .collect();
            if kept.is_empty() {
                let why = if found.is_empty() {
                    format!("{host} has no address")
                } else {
                    format!("{host} resolves to no public address (only the operator can allow private ones)")
                };
                return Err(Box::new(Blocked(why)) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(kept.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Why a guarded request was not answered.
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    /// Refused before connecting: the destination is not public and the operator has
    /// not opened it, or the URL is not an http(s) URL. Not worth retrying.
    #[error("{0}")]
    Refused(String),
    /// The request was sent (or tried) and failed: worth retrying.
    #[error(transparent)]
    Http(reqwest::Error),
}

impl From<reqwest::Error> for OutboundError {
    fn from(err: reqwest::Error) -> Self {
        // The resolver's refusal arrives as a connection error: find it in the chain.
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&err);
        while let Some(e) = source {
            if let Some(blocked) = e.downcast_ref::<Blocked>() {
                return OutboundError::Refused(blocked.0.clone());
            }
            source = e.source();
        }
        OutboundError::Http(err)
    }
}

/// The guarded client: cheap to clone, shared by all tenants.
#[derive(Clone)]
pub struct Outbound {
    client: reqwest::Client,
    allow: Arc<PrivateHosts>,
}

impl std::fmt::Debug for Outbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbound")
            .field("allow", &self.allow)
            .finish_non_exhaustive()
    }
}

impl Outbound {
    /// With the system's resolver.
    pub fn new(allow: PrivateHosts) -> Self {
        Self::with_lookup(allow, Arc::new(SystemLookup))
    }

    pub fn with_lookup(allow: PrivateHosts, lookup: Arc<dyn Lookup>) -> Self {
        let allow = Arc::new(allow);
        let resolver = GuardedResolver {
            lookup,
            allow: allow.clone(),
        };
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(resolver))
            .user_agent(concat!("Passhook/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the HTTP client's settings are valid");
        Outbound { client, allow }
    }

    /// The operator's allow-list this client applies.
    pub fn private_hosts(&self) -> &PrivateHosts {
        &self.allow
    }

    pub fn request(&self, method: reqwest::Method, url: &str) -> OutboundRequest {
        OutboundRequest {
            builder: self.client.request(method, url),
            allow: self.allow.clone(),
        }
    }

    pub fn get(&self, url: &str) -> OutboundRequest {
        self.request(reqwest::Method::GET, url)
    }

    pub fn post(&self, url: &str) -> OutboundRequest {
        self.request(reqwest::Method::POST, url)
    }
}

/// Whether a URL may be requested: http(s), and an IP literal host only when public
/// or opened by the operator (names are checked by the resolver, when connecting).
fn check_url(url: &Url, allow: &PrivateHosts) -> Result<(), OutboundError> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(OutboundError::Refused(format!(
            "scheme {} is not allowed",
            url.scheme()
        )));
    }
    let ip = match url.host() {
        Some(Host::Ipv4(v4)) => IpAddr::V4(v4),
        Some(Host::Ipv6(v6)) => IpAddr::V6(v6),
        Some(Host::Domain(_)) => return Ok(()),
        None => return Err(OutboundError::Refused("the URL has no host".into())),
    };
    if allow.permits(ip) {
        Ok(())
    } else {
        Err(OutboundError::Refused(format!(
            "{ip} is not a public address (only the operator can allow it)"
        )))
    }
}

/// A request on the guarded client; it can only be sent through [`Self::send`].
pub struct OutboundRequest {
    builder: reqwest::RequestBuilder,
    allow: Arc<PrivateHosts>,
}

impl OutboundRequest {
    pub fn header(self, name: &'static str, value: &str) -> Self {
        OutboundRequest {
            builder: self.builder.header(name, value),
            ..self
        }
    }

    pub fn bearer_auth(self, token: &str) -> Self {
        OutboundRequest {
            builder: self.builder.bearer_auth(token),
            ..self
        }
    }

    pub fn json<T: serde::Serialize + ?Sized>(self, body: &T) -> Self {
        OutboundRequest {
            builder: self.builder.json(body),
            ..self
        }
    }

    /// Checks an IP literal host, then sends; a resolver's refusal comes back as
    /// [`OutboundError::Refused`].
    pub async fn send(self) -> Result<reqwest::Response, OutboundError> {
        let (client, request) = self.builder.build_split();
        let request = request?;
        check_url(request.url(), &self.allow)?;
        Ok(client.execute(request).await?)
    }
}

/// A URL path segment, percent-encoded (a tenant's ids go into API paths).
pub fn path_segment(segment: &str) -> String {
    url::form_urlencoded::byte_serialize(segment.as_bytes()).collect()
}

/// `Retry-After` in seconds, as milliseconds (at most an hour); HTTP dates are rare
/// from APIs and read as absent. Shared by every client that honours the header.
pub fn retry_after_ms(headers: &reqwest::header::HeaderMap) -> Option<i64> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<i64>()
        .ok()
        .map(|s| s.clamp(0, 3_600) * 1_000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::net::TcpListener;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn the_blocked_set_is_complete() {
        for text in [
            "0.0.0.0",
            "0.1.2.3",
            "10.1.2.3",
            "100.64.0.1",
            "100.127.255.255",
            "127.0.0.1",
            "127.255.255.254",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::127.0.0.1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:10.0.0.1",
            "::ffff:0:127.0.0.1",
            "64:ff9b::7f00:1",
            "64:ff9b::808:808",
            "64:ff9b:1::1",
            "2001::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "2001:db8::1",
            "2002:7f00:1::",
            "2002:808:808::1",
            "fc00::1",
            "fd00::1",
            "fe80::1",
            "febf::1",
            "fec0::1",
            "feff::1",
            "ff02::1",
        ] {
            assert!(is_blocked(ip(text)), "{text} must be blocked");
        }
        for text in [
            "8.8.8.8",
            "1.1.1.1",
            "100.63.255.255",
            "100.128.0.0",
            "172.32.0.1",
            "192.0.1.1",
            "198.20.0.1",
            "223.255.255.255",
            "2001:4860:4860::8888",
            "2a00:1450:4007::200e",
            "::ffff:8.8.8.8",
        ] {
            assert!(!is_blocked(ip(text)), "{text} is public");
        }
    }

    #[test]
    fn the_operator_list_reads_names_addresses_and_ranges() {
        let allow = PrivateHosts::parse(" 127.0.0.1, 10.0.0.0/8 ,actito.internal.,[::1],").unwrap();
        assert!(allow.allows_ip(ip("127.0.0.1")));
        assert!(allow.allows_ip(ip("::ffff:127.0.0.1")));
        assert!(!allow.allows_ip(ip("127.0.0.2")));
        assert!(allow.allows_ip(ip("10.9.8.7")));
        assert!(allow.allows_ip(ip("::1")));
        assert!(allow.allows_name("Actito.Internal"));
        assert!(!allow.allows_name("other.internal"));
        assert!(PrivateHosts::parse("").unwrap().is_empty());
        assert!(PrivateHosts::parse("http://x/").is_err());
        assert!(PrivateHosts::parse("10.0.0.0/40").is_err());
    }

    #[test]
    fn settings_refuse_private_literals_and_localhost_unless_the_operator_allows() {
        let none = PrivateHosts::default();
        for host in [
            "127.0.0.1",
            "127.1",
            "0x7f.0.0.1",
            "169.254.169.254",
            "[::1]",
            "::ffff:127.0.0.1",
            "localhost",
            "LOCALHOST.",
            "a.localhost",
            "*.localhost",
        ] {
            assert!(none.refuses(host).is_some(), "{host}");
        }
        for host in [
            "*.actito.com",
            "api.actito.be",
            "8.8.8.8",
            "callbacks.example",
        ] {
            assert_eq!(none.refuses(host), None, "{host}");
        }
        let operator = PrivateHosts::parse("127.0.0.0/8,localhost").unwrap();
        assert_eq!(operator.refuses("127.0.0.1"), None);
        assert_eq!(operator.refuses("localhost"), None);
        assert!(operator.refuses("10.0.0.1").is_some());
    }

    /// A loopback listener that counts the connections it accepts and answers each
    /// with `answer`.
    async fn listener(answer: &'static str) -> (u16, Arc<AtomicUsize>) {
        listener_on("127.0.0.1:0", answer).await
    }

    async fn listener_on(addr: &str, answer: &'static str) -> (u16, Arc<AtomicUsize>) {
        let socket = TcpListener::bind(addr).await.unwrap();
        let port = socket.local_addr().unwrap().port();
        let count = Arc::new(AtomicUsize::new(0));
        let seen = count.clone();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            while let Ok((mut stream, _)) = socket.accept().await {
                seen.fetch_add(1, Ordering::SeqCst);
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                let _ = stream.write_all(answer.as_bytes()).await;
            }
        });
        (port, count)
    }

    const OK: &str = "HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";

    fn to_loopback(name: &str) -> Arc<dyn Lookup> {
        Arc::new(StaticLookup::new([(name, vec![ip("127.0.0.1")])]))
    }

    #[tokio::test]
    async fn a_name_resolving_to_loopback_is_refused_before_connecting() {
        let (port, seen) = listener(OK).await;
        let outbound =
            Outbound::with_lookup(PrivateHosts::default(), to_loopback("callbacks.example"));
        let result = outbound
            .post(&format!("http://callbacks.example:{port}/ok"))
            .send()
            .await;
        assert!(
            matches!(&result, Err(OutboundError::Refused(m)) if m.contains("no public address")),
            "{result:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            seen.load(Ordering::SeqCst),
            0,
            "nothing reached the listener"
        );
    }

    #[tokio::test]
    async fn only_the_allowed_addresses_of_a_name_are_connected_to() {
        // Two loopback listeners on the same port; the operator opens only the second.
        let (port, blocked) = listener(OK).await;
        let (_, allowed) = listener_on(&format!("127.0.0.2:{port}"), OK).await;
        let lookup = Arc::new(StaticLookup::new([(
            "mixed.example",
            vec![ip("127.0.0.1"), ip("127.0.0.2")],
        )]));
        let outbound = Outbound::with_lookup(PrivateHosts::parse("127.0.0.2").unwrap(), lookup);
        let answer = outbound
            .get(&format!("http://mixed.example:{port}/"))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
        assert_eq!(blocked.load(Ordering::SeqCst), 0);
        assert_eq!(allowed.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn names_resolving_to_ipv6_and_mapped_forms_are_refused() {
        for target in [
            "::1",
            "::ffff:127.0.0.1",
            "64:ff9b::7f00:1",
            "2002:7f00:1::",
            "fe80::1",
            "fec0::1",
            "fd12::1",
        ] {
            let lookup = Arc::new(StaticLookup::new([("v6.example", vec![ip(target)])]));
            let outbound = Outbound::with_lookup(PrivateHosts::default(), lookup);
            let result = outbound.get("http://v6.example:9/").send().await;
            assert!(
                matches!(&result, Err(OutboundError::Refused(_))),
                "{target}: {result:?}"
            );
        }
    }

    #[tokio::test]
    async fn ip_literals_are_checked_before_sending() {
        let (port, seen) = listener(OK).await;
        let outbound = Outbound::new(PrivateHosts::default());
        for url in [
            format!("http://127.0.0.1:{port}/"),
            format!("http://127.1:{port}/"),
            format!("http://[::ffff:127.0.0.1]:{port}/"),
            format!("http://[::1]:{port}/"),
            format!("http://[64:ff9b::7f00:1]:{port}/"),
            format!("http://[2002:7f00:1::]:{port}/"),
            format!("http://[fe80::1]:{port}/"),
            format!("http://[fec0::1]:{port}/"),
            "http://169.254.169.254/latest/meta-data/".to_string(),
            "http://0.0.0.0:9/".to_string(),
        ] {
            let result = outbound.post(&url).send().await;
            assert!(
                matches!(&result, Err(OutboundError::Refused(m)) if m.contains("not a public address")),
                "{url}: {result:?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            seen.load(Ordering::SeqCst),
            0,
            "nothing reached the listener"
        );
    }

    #[tokio::test]
    async fn the_operator_opens_addresses_ranges_and_names() {
        let (port, seen) = listener(OK).await;
        for allow in [
            "127.0.0.1",
            "127.0.0.0/8",
            "::ffff:127.0.0.1",
            "::ffff:127.0.0.0/104",
        ] {
            let outbound = Outbound::new(PrivateHosts::parse(allow).unwrap());
            let answer = outbound
                .get(&format!("http://127.0.0.1:{port}/"))
                .send()
                .await
                .unwrap_or_else(|e| panic!("{allow}: {e}"));
            assert_eq!(answer.status(), 200);
        }
        let by_name = Outbound::with_lookup(
            PrivateHosts::parse("actito.internal").unwrap(),
            to_loopback("actito.internal"),
        );
        let answer = by_name
            .get(&format!("http://actito.internal:{port}/"))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
        assert_eq!(seen.load(Ordering::SeqCst), 5);
    }

    #[tokio::test]
    async fn redirects_are_not_followed() {
        let (target, reached) = listener(OK).await;
        let redirect: &'static str = Box::leak(
            format!(
                "HTTP/1.1 302 Found\r\nlocation: http://127.0.0.1:{target}/\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            )
            .into_boxed_str(),
        );
        let (port, _) = listener(redirect).await;
        // The operator opens the redirecting host by name only; the redirect's
        // loopback literal is not open.
        let outbound = Outbound::with_lookup(
            PrivateHosts::parse("redirector.internal").unwrap(),
            to_loopback("redirector.internal"),
        );
        let answer = outbound
            .post(&format!("http://redirector.internal:{port}/ok"))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 302);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            reached.load(Ordering::SeqCst),
            0,
            "the redirect was not followed"
        );
    }

    #[tokio::test]
    async fn other_schemes_are_refused() {
        let outbound = Outbound::new(PrivateHosts::default());
        let result = outbound.get("ftp://www.actito.com/x").send().await;
        assert!(
            matches!(result, Err(OutboundError::Refused(_))),
            "{result:?}"
        );
    }
}
