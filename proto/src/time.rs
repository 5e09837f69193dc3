//! Wall-clock instants as they travel on the wire.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
#[cfg(feature = "test-clock")]
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use utoipa::ToSchema;

/// Added to the system clock by [`Timestamp::now`] in a test process whose
/// clock jumps forward (feature `test-clock`).
#[cfg(feature = "test-clock")]
static CLOCK_SHIFT_MS: AtomicI64 = AtomicI64::new(0);

/// Makes this process's clock read `starts_at` now and run on from there,
/// as if the time between had passed. For tests only (feature
/// `test-clock`).
#[cfg(feature = "test-clock")]
pub fn shift_clock_to(starts_at: Timestamp) {
    let system = Timestamp::system_now();
    CLOCK_SHIFT_MS.store(starts_at.0 - system.0, Ordering::Relaxed);
}

/// Milliseconds since the Unix epoch. Serialized as RFC 3339 UTC with
/// milliseconds (`2026-11-23T20:31:05.123Z`), as the protocol requires.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, ToSchema)]
#[schema(value_type = String, format = DateTime)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn now() -> Self {
        let system = Self::system_now();
        #[cfg(feature = "test-clock")]
        let system = Self(system.0 + CLOCK_SHIFT_MS.load(Ordering::Relaxed));
        system
    }

    fn system_now() -> Self {
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        Self(since_epoch.as_millis() as i64)
    }

    pub fn millis(self) -> i64 {
        self.0
    }

    pub fn plus_millis(self, millis: u64) -> Self {
        Self(self.0.saturating_add(millis as i64))
    }

    /// Milliseconds from `earlier` to `self`, zero if `earlier` is later.
    pub fn millis_since(self, earlier: Timestamp) -> u64 {
        self.0.saturating_sub(earlier.0).max(0) as u64
    }

    pub fn to_rfc3339(self) -> String {
        let time = UNIX_EPOCH + Duration::from_millis(self.0.max(0) as u64);
        humantime::format_rfc3339_millis(time).to_string()
    }

    pub fn parse_rfc3339(text: &str) -> Result<Self, humantime::TimestampError> {
        let time = humantime::parse_rfc3339_weak(text)?;
        let millis = time
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_millis();
        Ok(Self(millis as i64))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Timestamp::parse_rfc3339(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc_with_milliseconds() {
        let stamp = Timestamp(1_795_000_000_123);
        let text = stamp.to_rfc3339();
        assert_eq!(text, "2026-11-18T11:06:40.123Z");
        assert_eq!(Timestamp::parse_rfc3339(&text).unwrap(), stamp);
    }
}
