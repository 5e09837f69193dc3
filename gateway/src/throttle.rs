//! Throttles on the two entry points anyone may call without a token:
//! starting a chat and logging in. Keyed by the client's address, so one
//! client cannot flood the queues or grind argon2 while others get through.

use actix_web::HttpRequest;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use switchboard_proto::ErrorCode;

use crate::api_error::ApiError;

/// How often (in checks) addresses that have gone quiet are forgotten.
const PRUNE_EVERY: u64 = 4096;

pub struct AddressThrottle {
    /// `None`: no limit.
    limiter: Option<DefaultKeyedRateLimiter<IpAddr>>,
    checks: AtomicU64,
    what: &'static str,
}

impl AddressThrottle {
    /// At most `per_minute` per address, all of them at once if it likes
    /// (the allowance refills over the minute). 0 turns the throttle off.
    pub fn per_minute(per_minute: u32, what: &'static str) -> Self {
        Self {
            limiter: NonZeroU32::new(per_minute)
                .map(|limit| RateLimiter::keyed(Quota::per_minute(limit))),
            checks: AtomicU64::new(0),
            what,
        }
    }

    /// `rate_limited` (429) when this address is over its allowance.
    pub fn check(&self, address: Option<IpAddr>) -> Result<(), ApiError> {
        let (Some(limiter), Some(address)) = (&self.limiter, address) else {
            return Ok(());
        };
        if self.checks.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
            limiter.retain_recent();
        }
        limiter.check_key(&address).map_err(|_| {
            metrics::counter!("switchboard_throttled_total", "what" => self.what).increment(1);
            ApiError::new(
                ErrorCode::RateLimited,
                format!(
                    "too many {} from this address: try again in a minute",
                    self.what
                ),
            )
        })
    }
}

/// The client's address: the peer, or (behind a trusted reverse proxy) the
/// first address of `Forwarded` / `X-Forwarded-For`.
pub fn client_address(req: &HttpRequest, trust_forwarded_for: bool) -> Option<IpAddr> {
    if trust_forwarded_for {
        let info = req.connection_info();
        if let Some(address) = info.realip_remote_addr() {
            if let Ok(ip) = address.parse::<IpAddr>() {
                return Some(ip);
            }
            if let Ok(socket) = address.parse::<std::net::SocketAddr>() {
                return Some(socket.ip());
            }
        }
    }
    req.peer_addr().map(|socket| socket.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_over_its_allowance_is_rate_limited_others_are_not() {
        let throttle = AddressThrottle::per_minute(2, "chats");
        let flooder: IpAddr = "127.0.0.2".parse().unwrap();
        let other: IpAddr = "127.0.0.3".parse().unwrap();
        assert!(throttle.check(Some(flooder)).is_ok());
        assert!(throttle.check(Some(flooder)).is_ok());
        let refused = throttle.check(Some(flooder)).unwrap_err();
        assert_eq!(refused.code, ErrorCode::RateLimited);
        assert!(throttle.check(Some(other)).is_ok());
    }

    #[test]
    fn zero_turns_the_throttle_off() {
        let throttle = AddressThrottle::per_minute(0, "logins");
        let address: IpAddr = "127.0.0.2".parse().unwrap();
        for _ in 0..100 {
            assert!(throttle.check(Some(address)).is_ok());
        }
    }
}
