//! Per-tenant request budgets for endpoints anyone may call without a credential
//! (PassKit device logs, unsigned Journey Builder lifecycle calls): each one is
//! stored or logged, so a flood must not grow without bound.

/// Device-log requests a tenant's devices may send per minute (in a burst, then
/// refilled evenly); beyond it, 429 with Retry-After.
pub const LOG_REQUESTS_PER_MINUTE: u32 = 60;

/// Unsigned Journey Builder lifecycle calls a tenant may receive per minute (each is
/// recorded); activating a journey sends a handful.
pub const UNSIGNED_CALLS_PER_MINUTE: u32 = 60;

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota};

/// A budget per tenant, in memory (each process its own), refilled evenly. Callers
/// check that the tenant exists first, so the map is as large as the tenant list.
pub struct TenantRate(DefaultKeyedRateLimiter<String>);

impl TenantRate {
    pub fn per_minute(requests: u32) -> Self {
        let quota = Quota::per_minute(NonZeroU32::new(requests.max(1)).expect("at least one"));
        TenantRate(DefaultKeyedRateLimiter::keyed(quota))
    }

    /// `Err(wait)` when the tenant's budget is spent.
    pub fn check(&self, tenant_id: &str) -> Result<(), Duration> {
        self.0
            .check_key(&tenant_id.to_string())
            .map_err(|not_until| not_until.wait_time_from(self.0.clock().now()))
    }
}

#[cfg(test)]
mod tests {
    use super::TenantRate;

    #[test]
    fn the_budget_is_per_tenant() {
        let limiter = TenantRate::per_minute(2);
        assert!(limiter.check("a").is_ok());
        assert!(limiter.check("a").is_ok());
        let wait = limiter.check("a").unwrap_err();
        assert!(wait > std::time::Duration::from_secs(20), "{wait:?}");
        assert!(limiter.check("b").is_ok());
    }
}
