//! Time as protocol code sees it.
//!
//! A protocol never reads a clock. Every input comes with `now`, the reading of *this node's*
//! clock, which the simulator may run fast, slow or offset from other nodes. Durations are plain
//! [`std::time::Duration`]s. Randomized timeouts are expressed as a [`TimerRange`]; the driver
//! picks the value (from its seeded PRNG in the simulator), so protocol code owns no RNG.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::ops::{Add, Range};
use std::time::Duration;

/// A reading of a node's clock, in nanoseconds since an arbitrary origin.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default, Serialize, Deserialize,
)]
pub struct Time(u64);

impl Time {
    pub const ZERO: Time = Time(0);

    pub const fn from_nanos(nanos: u64) -> Time {
        Time(nanos)
    }

    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// The time elapsed since `earlier`, or zero if `earlier` is in the future (clocks of
    /// different nodes, or one clock across a restart, need not agree).
    pub fn saturating_since(self, earlier: Time) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

impl Add<Duration> for Time {
    type Output = Time;

    fn add(self, rhs: Duration) -> Time {
        let nanos = u64::try_from(rhs.as_nanos()).unwrap_or(u64::MAX);
        Time(self.0.saturating_add(nanos))
    }
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let micros = self.0 / 1_000;
        write!(f, "{}.{:06}s", micros / 1_000_000, micros % 1_000_000)
    }
}

/// A timeout the driver resolves: it fires after a duration drawn uniformly from `min..=max`.
/// A fixed timeout has `min == max`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct TimerRange {
    pub min: Duration,
    pub max: Duration,
}

impl TimerRange {
    pub fn fixed(after: Duration) -> TimerRange {
        TimerRange {
            min: after,
            max: after,
        }
    }

    pub fn between(range: Range<Duration>) -> TimerRange {
        assert!(range.start <= range.end, "timer range is inverted");
        TimerRange {
            min: range.start,
            max: range.end,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_arithmetic_saturates_instead_of_wrapping() {
        let t = Time::from_nanos(u64::MAX - 1);
        assert_eq!((t + Duration::from_secs(1)).as_nanos(), u64::MAX);
        assert_eq!(Time::ZERO.saturating_since(t), Duration::ZERO);
        assert_eq!(
            Time::from_nanos(3_000).saturating_since(Time::from_nanos(1_000)),
            Duration::from_micros(2)
        );
    }

    #[test]
    fn time_displays_as_seconds_with_microseconds() {
        assert_eq!(Time::from_nanos(1_234_567_890).to_string(), "1.234567s");
    }
}
