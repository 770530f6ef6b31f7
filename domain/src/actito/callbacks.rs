//! Actito's notifyOK / notifyKO callbacks: only to the tenant's callback hosts, through
//! the guarded client ([`Outbound`]): never following redirects, never to a non-public
//! address unless the operator allows it (`PASSHOOK_ALLOW_PRIVATE_HOSTS`), whatever
//! the tenant lists.

use std::time::Instant;

use sqlx::{AnyConnection, Connection};
use url::Url;

use super::settings::{self, default_callback_hosts};
use crate::core::Core;
use crate::db::Db;
use crate::deliveries::{self, Attempt, Channel, DeliveryStatus, NewDelivery};
use crate::error::Result;
use crate::jobs::{self, Job, Outcome};
use crate::outbound::{retry_after_ms, Outbound, OutboundError};
use crate::tasks::{ActitoCallback, Task};
use crate::worker::Ran;

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

/// Checks a callback URL against the tenant's patterns; `Err` says why not. Where the
/// host leads is checked when connecting, by the guarded client ([`Outbound`]).
pub fn check_target(url: &str, patterns: &[String]) -> Result<Url, String> {
    let url = Url::parse(url).map_err(|_| format!("{url:?} is not a URL"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("scheme {} is not allowed", url.scheme()));
    }
    let host = url
        .host_str()
        .ok_or("the URL has no host")?
        .trim_matches(['[', ']'])
        .to_lowercase();
    if !patterns.iter().any(|p| matches(&host, p)) {
        return Err(format!("host {host} is not in the tenant's callback hosts"));
    }
    Ok(url)
}

/// POSTs the callback (no body) and says how it went.
pub async fn post(http: &Outbound, url: &str, patterns: &[String]) -> CallbackResult {
    let url = match check_target(url, patterns) {
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
    let answer = http
        .post(url.as_str())
        .header("Content-Length", "0")
        .send()
        .await;
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
                retry_after_ms: retry_after_ms(r.headers()),
            }
        }
        Ok(r) => CallbackResult::Refused {
            status: Some(r.status().as_u16()),
            latency_ms,
            error: format!("HTTP {}", r.status().as_u16()),
        },
        Err(OutboundError::Refused(error)) => CallbackResult::Refused {
            status: None,
            latency_ms,
            error,
        },
        Err(OutboundError::Http(e)) => CallbackResult::Failed {
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

/// Queues, in the caller's transaction, a callback delivery and its job per
/// `(event, URL)`, in multi-row inserts. A callback may belong to no stored event
/// (the items of a refused envelope).
pub async fn queue(
    conn: &mut AnyConnection,
    tenant_id: &str,
    callbacks: &[(Option<&str>, &str)],
) -> Result<()> {
    if callbacks.is_empty() {
        return Ok(());
    }
    let new: Vec<NewDelivery> = callbacks
        .iter()
        .map(|(event_id, url)| NewDelivery {
            pass_id: None,
            event_id: *event_id,
            target: url,
        })
        .collect();
    let deliveries =
        deliveries::create_many(conn, tenant_id, Channel::ActitoCallback, &new).await?;
    let jobs: Vec<_> = deliveries
        .into_iter()
        .zip(callbacks)
        .map(|(delivery_id, (_, url))| {
            Task::ActitoCallback(ActitoCallback {
                delivery_id,
                url: url.to_string(),
            })
            .job(tenant_id)
        })
        .collect();
    jobs::enqueue(conn, &jobs).await?;
    Ok(())
}

/// A custom-action envelope refused after authentication (a parameter holding an
/// object, an item without parameters): every item whose notifyKO link can be read
/// still gets it, so that its profile does not wait in the Actito scenario forever.
/// The links go through the tenant's callback hosts like any callback. Returns how
/// many were queued.
pub async fn notify_refused(db: &Db, tenant_id: &str, links: &[String]) -> Result<usize> {
    let callbacks: Vec<(Option<&str>, &str)> = links.iter().map(|l| (None, l.as_str())).collect();
    if callbacks.is_empty() {
        return Ok(0);
    }
    let mut conn = db.writer().acquire().await?;
    let mut tx = conn.begin().await?;
    queue(&mut tx, tenant_id, &callbacks).await?;
    tx.commit().await?;
    Ok(callbacks.len())
}

/// Queues a failed callback delivery again, in the caller's transaction.
pub async fn requeue(
    conn: &mut AnyConnection,
    tenant_id: &str,
    delivery_id: &str,
    url: &str,
) -> Result<()> {
    let task = Task::ActitoCallback(ActitoCallback {
        delivery_id: delivery_id.to_string(),
        url: url.to_string(),
    });
    jobs::enqueue(conn, &[task.job(tenant_id)]).await?;
    Ok(())
}

/// The worker's part: one attempt at the callback, recorded as a delivery attempt.
pub async fn run(core: &Core, job: &Job, task: &ActitoCallback) -> Ran {
    let hosts = match settings::get(core.vault(), &job.tenant_id).await {
        Ok(settings) => settings
            .map(|s| s.callback_hosts)
            .unwrap_or_else(default_callback_hosts),
        Err(e) => {
            return Outcome::Retry {
                error: e.to_string(),
                retry_after_ms: None,
            }
            .into()
        }
    };
    let result = post(&core.outbound, &task.url, &hosts).await;
    let last = job.attempt >= job.max_attempts;
    let (attempt, outcome) = attempt_of(result, last);
    Ran {
        outcome,
        delivery: Some((task.delivery_id.clone(), attempt)),
    }
}

/// The delivery attempt and the job's outcome of a callback's result.
fn attempt_of(result: CallbackResult, last: bool) -> (Attempt, Outcome) {
    match result {
        CallbackResult::Delivered { status, latency_ms } => (
            Attempt {
                status_code: Some(status),
                latency_ms,
                error: None,
                new_status: DeliveryStatus::Delivered,
            },
            Outcome::Done,
        ),
        CallbackResult::Refused {
            status,
            latency_ms,
            error,
        } => (
            Attempt {
                status_code: status,
                latency_ms,
                error: Some(error),
                new_status: DeliveryStatus::Failed,
            },
            Outcome::Done,
        ),
        CallbackResult::Failed {
            status,
            latency_ms,
            error,
            retry_after_ms,
        } => (
            Attempt {
                status_code: status,
                latency_ms,
                error: Some(error.clone()),
                new_status: if last {
                    DeliveryStatus::Failed
                } else {
                    DeliveryStatus::Retrying
                },
            },
            Outcome::Retry {
                error,
                retry_after_ms,
            },
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbound::{PrivateHosts, StaticLookup};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

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

    #[test]
    fn only_the_tenants_hosts_pass() {
        let defaults = hosts(&["*.actito.com", "*.actito.be"]);
        assert!(check_target("https://evil.example/ca/OK", &defaults).is_err());
        assert!(check_target("ftp://www.actito.com/x", &defaults).is_err());
        assert!(check_target("https://www.actito.com/ca/OK", &defaults).is_ok());
    }

    async fn counting_listener() -> (u16, Arc<AtomicUsize>) {
        let socket = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = socket.local_addr().unwrap().port();
        let count = Arc::new(AtomicUsize::new(0));
        let seen = count.clone();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            while let Ok((mut stream, _)) = socket.accept().await {
                seen.fetch_add(1, Ordering::SeqCst);
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .await;
            }
        });
        (port, count)
    }

    #[tokio::test]
    async fn a_listed_host_resolving_to_loopback_is_refused_and_never_reached() {
        let (port, seen) = counting_listener().await;
        let lookup = Arc::new(StaticLookup::new([(
            "ca.actito.com",
            vec!["127.0.0.1".parse().unwrap()],
        )]));
        let outbound = Outbound::with_lookup(PrivateHosts::default(), lookup);
        for patterns in [hosts(&["*.actito.com"]), hosts(&["ca.actito.com"])] {
            let result = post(
                &outbound,
                &format!("http://ca.actito.com:{port}/ca/OK"),
                &patterns,
            )
            .await;
            assert!(
                matches!(&result, CallbackResult::Refused { status: None, .. }),
                "{patterns:?}: {result:?}"
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert_eq!(seen.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_listed_private_address_needs_the_operator() {
        let (port, seen) = counting_listener().await;
        let url = format!("http://127.0.0.1:{port}/ca/OK");
        let exact = hosts(&["127.0.0.1"]);
        let tenant_only = Outbound::new(PrivateHosts::default());
        let result = post(&tenant_only, &url, &exact).await;
        assert!(
            matches!(&result, CallbackResult::Refused { status: None, .. }),
            "{result:?}"
        );
        assert_eq!(seen.load(Ordering::SeqCst), 0);
        for allow in ["127.0.0.1", "127.0.0.0/8"] {
            let operator = Outbound::new(PrivateHosts::parse(allow).unwrap());
            let result = post(&operator, &url, &exact).await;
            assert!(
                matches!(result, CallbackResult::Delivered { status: 200, .. }),
                "{allow}: {result:?}"
            );
        }
        assert_eq!(seen.load(Ordering::SeqCst), 2);
    }
}
