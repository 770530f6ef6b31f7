//! Time as the database stores it: UTC milliseconds since the epoch.

use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};

/// The longest a peer's token is cached, whatever lifetime it announces.
pub const LONGEST_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// When something that lasts `lifetime` from now ends. A lifetime comes from a peer
/// (`expiresIn`, `expires_in`): it is held to [`LONGEST_LIFETIME`], and added with
/// checked arithmetic, so that no answer can make the clock overflow (a panic).
pub fn expiry(lifetime: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(lifetime.min(LONGEST_LIFETIME))
        .unwrap_or(now)
}

pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// RFC 3339 with milliseconds and a `Z`, as every API shows time.
pub fn rfc3339(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The inverse of [`rfc3339`]; `None` for text that is not an RFC 3339 time.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.timestamp_millis())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_huge_lifetime_is_held_to_a_day() {
        let until = super::expiry(std::time::Duration::MAX);
        let left = until - std::time::Instant::now();
        assert!(left <= super::LONGEST_LIFETIME, "{left:?}");
        assert!(left > super::LONGEST_LIFETIME / 2, "{left:?}");
    }

    #[test]
    fn formats_utc_with_millis() {
        assert_eq!(
            super::rfc3339(1_700_000_000_123),
            "2023-11-14T22:13:20.123Z"
        );
        assert_eq!(
            super::parse_rfc3339("2023-11-14T22:13:20.123Z"),
            Some(1_700_000_000_123)
        );
    }
}
