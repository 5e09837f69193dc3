//! Throttles on the two entry points anyone may call without a token:
//! starting a chat and logging in. Keyed by the client's address (and, for
//! logins, by the account too), so one client cannot flood the queues or
//! grind argon2 while others get through, and a password cannot be guessed
//! from many addresses at once.

use actix_web::HttpRequest;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use ipnet::IpNet;
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use switchboard_proto::ErrorCode;

use crate::api_error::ApiError;

/// How often (in checks) keys that have gone quiet are forgotten.
const PRUNE_EVERY: u64 = 4096;

/// A per-minute allowance for each key (an address, an account).
pub struct Throttle<K: Hash + Eq + Clone> {
    /// `None`: no limit.
    limiter: Option<DefaultKeyedRateLimiter<K>>,
    checks: AtomicU64,
    /// What is counted and for whom, for the refusal: "chats from this
    /// address".
    what: &'static str,
}

/// Chats started, or logins tried, per client address.
pub type AddressThrottle = Throttle<IpAddr>;
/// Logins tried per account (the username as typed, lowercased).
pub type AccountThrottle = Throttle<String>;

impl<K: Hash + Eq + Clone> Throttle<K> {
    /// At most `per_minute` per key, all of them at once if it likes (the
    /// allowance refills over the minute). 0 turns the throttle off.
    pub fn per_minute(per_minute: u32, what: &'static str) -> Self {
        Self {
            limiter: NonZeroU32::new(per_minute)
                .map(|limit| RateLimiter::keyed(Quota::per_minute(limit))),
            checks: AtomicU64::new(0),
            what,
        }
    }

    /// `rate_limited` (429) when this key is over its allowance.
    pub fn check(&self, key: Option<K>) -> Result<(), ApiError> {
        let (Some(limiter), Some(key)) = (&self.limiter, key) else {
            return Ok(());
        };
        if self.checks.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
            limiter.retain_recent();
        }
        limiter.check_key(&key).map_err(|_| {
            metrics::counter!("switchboard_throttled_total", "what" => self.what).increment(1);
            ApiError::new(
                ErrorCode::RateLimited,
                format!("too many {}: try again in a minute", self.what),
            )
        })
    }
}

/// `[server] trusted_proxies`: the reverse proxies whose forwarding headers
/// are believed. Anyone else's `X-Forwarded-For` is a claim, not a fact.
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies(pub Vec<IpNet>);

impl TrustedProxies {
    fn contains(&self, address: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(&address))
    }

    /// The client's address. From a peer that is not a trusted proxy: the
    /// peer. From a trusted proxy: the hops of `X-Forwarded-For` read from
    /// the nearest back, skipping trusted proxies; the first other address
    /// is the client. A client can put
    /// anything at the front of the header, so the front is never believed
    /// past an untrusted hop.
    pub fn client_address(&self, req: &HttpRequest) -> Option<IpAddr> {
        let peer = req.peer_addr().map(|socket| socket.ip())?;
        if !self.contains(peer) {
            return Some(peer);
        }
        let hops = forwarded_hops(req);
        let mut client = peer;
        for hop in hops.iter().rev() {
            let Some(address) = parse_hop(hop) else {
                // An unreadable hop: stop at the last address known good.
                return Some(client);
            };
            client = address;
            if !self.contains(address) {
                return Some(address);
            }
        }
        Some(client)
    }
}

/// The hops of `X-Forwarded-For`, nearest last, across every header line.
/// Only this header: it is the one proxies append to. `Forwarded`
/// (RFC 7239) is passed through untouched by most of them, so a client
/// could write it at will.
fn forwarded_hops(req: &HttpRequest) -> Vec<String> {
    req.headers()
        .get_all("x-forwarded-for")
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|hop| hop.trim().to_owned())
        .filter(|hop| !hop.is_empty())
        .collect()
}

/// `192.0.2.1`, `192.0.2.1:4711`, `[2001:db8::1]:4711` or `2001:db8::1`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(address) = hop.parse::<IpAddr>() {
        return Some(address);
    }
    if let Ok(socket) = hop.parse::<std::net::SocketAddr>() {
        return Some(socket.ip());
    }
    hop.strip_prefix('[')
        .and_then(|rest| rest.split_once(']'))
        .and_then(|(address, _)| address.parse().ok())
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

    fn request(peer: &str, headers: &[(&str, &str)]) -> HttpRequest {
        let mut request = actix_web::test::TestRequest::default()
            .peer_addr(peer.parse().expect("a socket address"));
        for (name, value) in headers {
            request = request.insert_header((*name, *value));
        }
        request.to_http_request()
    }

    fn proxies(nets: &[&str]) -> TrustedProxies {
        TrustedProxies(
            nets.iter()
                .map(|net| net.parse().expect("a CIDR"))
                .collect(),
        )
    }

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().expect("an address"))
    }

    #[test]
    fn forwarded_headers_count_only_from_a_trusted_proxy() {
        let trusted = proxies(&["10.0.0.0/8"]);
        // A client that is not a proxy cannot pick its own address.
        let forged = request("203.0.113.9:5000", &[("X-Forwarded-For", "198.51.100.1")]);
        assert_eq!(trusted.client_address(&forged), ip("203.0.113.9"));
        // With no proxies configured, nobody's header counts.
        assert_eq!(proxies(&[]).client_address(&forged), ip("203.0.113.9"));
        // Through the proxy: the hop it appended is the client.
        let via_proxy = request("10.1.2.3:5000", &[("X-Forwarded-For", "203.0.113.9")]);
        assert_eq!(trusted.client_address(&via_proxy), ip("203.0.113.9"));
    }

    #[test]
    fn a_forged_front_of_x_forwarded_for_is_not_believed() {
        let trusted = proxies(&["10.0.0.0/8"]);
        // The client sent "1.2.3.4"; the proxy appended the real address;
        // a second trusted proxy appended the first one's.
        let request = request(
            "10.0.0.2:5000",
            &[("X-Forwarded-For", "1.2.3.4, 203.0.113.9, 10.0.0.1")],
        );
        assert_eq!(trusted.client_address(&request), ip("203.0.113.9"));
    }

    #[test]
    fn a_client_sent_forwarded_header_is_not_believed() {
        let trusted = proxies(&["10.0.0.0/8", "::1/128"]);
        // The proxy appends to X-Forwarded-For and passes the client's
        // Forwarded header through: only the former counts.
        let request = request(
            "[::1]:5000",
            &[
                ("Forwarded", "for=1.2.3.4"),
                ("X-Forwarded-For", "2001:db8::7"),
            ],
        );
        assert_eq!(trusted.client_address(&request), ip("2001:db8::7"));
    }

    #[test]
    fn an_account_over_its_allowance_is_rate_limited_from_any_address() {
        let throttle = AccountThrottle::per_minute(2, "login attempts for this account");
        assert!(throttle.check(Some("alice".to_owned())).is_ok());
        assert!(throttle.check(Some("alice".to_owned())).is_ok());
        let refused = throttle.check(Some("alice".to_owned())).unwrap_err();
        assert!(
            refused.message.contains("for this account"),
            "{}",
            refused.message
        );
        assert!(throttle.check(Some("bob".to_owned())).is_ok());
    }
}
