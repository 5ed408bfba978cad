//! Hardening knobs: per-credential rate limit, per-call timeout, request size.

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::num::NonZeroU32;
use std::time::Duration;
use tenantops_core::Principal;

/// Limits applied to every MCP caller.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Tool calls per minute per credential (bursts up to the same number).
    pub calls_per_minute: NonZeroU32,
    /// The longest a tool call may run before the caller is told it timed out.
    pub call_timeout: Duration,
    /// The largest HTTP request body accepted.
    pub max_body_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            calls_per_minute: NonZeroU32::new(600).expect("non-zero"),
            call_timeout: Duration::from_secs(30),
            max_body_bytes: 1024 * 1024,
        }
    }
}

/// A keyed token bucket: one bucket per credential (tenant, persona and how it signed in).
pub struct CallLimiter {
    limiter: DefaultKeyedRateLimiter<String>,
    per_minute: NonZeroU32,
}

impl CallLimiter {
    /// A limiter for `limits`.
    pub fn new(limits: &Limits) -> Self {
        Self {
            limiter: RateLimiter::keyed(Quota::per_minute(limits.calls_per_minute)),
            per_minute: limits.calls_per_minute,
        }
    }

    /// `Ok` when `principal` may make one more call now; otherwise the message to show.
    pub fn check(&self, principal: &Principal) -> Result<(), String> {
        if self.limiter.len() > 10_000 {
            self.limiter.retain_recent();
        }
        let key = format!(
            "{}/{}/{}",
            principal.tenant(),
            principal.persona(),
            principal.via()
        );
        self.limiter.check_key(&key).map_err(|not_until| {
            let wait = not_until.wait_time_from(governor::clock::Clock::now(
                &governor::clock::DefaultClock::default(),
            ));
            format!(
                "rate limit: at most {} tool calls per minute per credential; retry in {} ms",
                self.per_minute,
                wait.as_millis().max(1)
            )
        })
    }
}
