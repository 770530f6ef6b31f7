//! Actito's notifyOK / notifyKO callbacks: only to allowed hosts, never following
//! redirects, never to private addresses unless a tenant names that host exactly.

use std::net::IpAddr;
use std::time::Instant;

use url::Url;

/// How one callback attempt went.
#[derive(Clone, Debug, PartialEq)]
pub enum CallbackResult {
    Delivered {
        status: u16,
        latency_ms: i64,
    },
    /// Worth retrying (5xx, 429, network).
    Failed {
        status: Option<u16>,
        latency_ms: i64,
        error: String,
        retry_after_ms: Option<i64>,
    },
    /// Never sent, or refused for good: a disallowed host, a 4xx.
    Refused {
        status: Option<u16>,
        latency_ms: i64,
        error: String,
    },
}

/// Whether `host` matches a pattern: exactly, or `*.domain` for any sub-domain.
fn matches(host: &str, pattern: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(domain) => {
            host.len() > domain.len() + 1
                && host.ends_with(domain)
                && host[..host.len() - domain.len()].ends_with('.')
        }
        None => host == pattern,
    }
}

fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64
        }
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_unspecified()
                || (v6.segments()[0] & 0xfe00) == 0xfc00
                || (v6.segments()[0] & 0xffc0) == 0xfe80
                || v6
                    .to_ipv4_mapped()
                    .is_some_and(|v4| is_private(IpAddr::V4(v4)))
        }
    }
}

/// Checks a callback URL against the tenant's patterns; `Err` says why not.
pub async fn check_target(url: &str, patterns: &[String]) -> Result<Url, String> {
    let url = Url::parse(url).map_err(|_| format!("{url:?} is not a URL"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("scheme {} is not allowed", url.scheme()));
    }
    let host = url
        .host_str()
        .ok_or("the URL has no host")?
        .trim_matches(['[', ']'])
        .to_lowercase();
    let exact = patterns.iter().any(|p| p == &host);
    if !exact && !patterns.iter().any(|p| matches(&host, p)) {
        return Err(format!("host {host} is not in the tenant's callback hosts"));
    }
    if !exact {
        let port = url.port_or_known_default().unwrap_or(443);
        let addrs = tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|e| format!("cannot resolve {host}: {e}"))?;
        for addr in addrs {
            if is_private(addr.ip()) {
                return Err(format!(
                    "{host} resolves to the private address {}; list the host exactly to allow it",
                    addr.ip()
                ));
            }
        }
    }
    Ok(url)
}

/// POSTs the callback (no body) and says how it went.
pub async fn post(http: &reqwest::Client, url: &str, patterns: &[String]) -> CallbackResult {
    let url = match check_target(url, patterns).await {
        Ok(url) => url,
        Err(error) => {
            return CallbackResult::Refused {
                status: None,
                latency_ms: 0,
                error,
            }
        }
    };
    let started = Instant::now();
    let answer = http.post(url).header("Content-Length", "0").send().await;
    let latency_ms = started.elapsed().as_millis() as i64;
    match answer {
        Ok(r) if r.status().is_success() => CallbackResult::Delivered {
            status: r.status().as_u16(),
            latency_ms,
        },
        Ok(r)
            if r.status().is_server_error()
                || r.status().as_u16() == 429
                || r.status().is_redirection() =>
        {
            CallbackResult::Failed {
                status: Some(r.status().as_u16()),
                latency_ms,
                error: format!("HTTP {}", r.status().as_u16()),
                retry_after_ms: super::client::retry_after_ms(r.headers()),
            }
        }
        Ok(r) => CallbackResult::Refused {
            status: Some(r.status().as_u16()),
            latency_ms,
            error: format!("HTTP {}", r.status().as_u16()),
        },
        Err(e) => CallbackResult::Failed {
            status: None,
            latency_ms,
            error: if e.is_timeout() {
                "timed out".into()
            } else {
                format!("{e}")
            },
            retry_after_ms: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn wildcards_match_sub_domains_only() {
        assert!(matches("www.actito.com", "*.actito.com"));
        assert!(matches("a.b.actito.com", "*.actito.com"));
        assert!(!matches("actito.com", "*.actito.com"));
        assert!(!matches("evilactito.com", "*.actito.com"));
        assert!(matches("127.0.0.1", "127.0.0.1"));
    }

    #[tokio::test]
    async fn only_allowed_public_hosts_or_exact_entries_pass() {
        let defaults = hosts(&["*.actito.com", "*.actito.be"]);
        assert!(check_target("https://evil.example/ca/OK", &defaults)
            .await
            .is_err());
        assert!(check_target("ftp://www.actito.com/x", &defaults)
            .await
            .is_err());
        let exact = hosts(&["127.0.0.1"]);
        assert!(check_target("http://127.0.0.1:9/ca/OK", &exact)
            .await
            .is_ok());
        let wildcard = hosts(&["*.localhost"]);
        let err = check_target("http://a.localhost:9/ca/OK", &wildcard).await;
        assert!(
            err.is_err(),
            "a wildcard never reaches a private address: {err:?}"
        );
    }

    #[test]
    fn private_ranges_are_known() {
        for ip in [
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "127.0.0.1",
            "169.254.169.254",
            "100.64.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(is_private(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["8.8.8.8", "2001:4860::8888"] {
            assert!(!is_private(ip.parse().unwrap()), "{ip}");
        }
    }
}
