//! The only place in mock-idp that knows about real time.
//!
//! Every decision and timestamp in the mock (token `iat`/`exp`, grace windows, code expiry, System Log
//! `published`) comes from a [`Clock`], never from the wall clock directly (modelling decision M8). A clock
//! is either running (real time plus an offset) or frozen at an instant; tests and scenarios freeze it and
//! advance it, so a 90-day expiry takes microseconds and a race lands on the same millisecond every run.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Milliseconds since the Unix epoch, on a tenant clock.
pub type Millis = i64;

/// The last instant the clock may show: 9999-12-31T23:59:59.999Z (RFC 3339 has four-digit years). The first
/// is 0, 1970-01-01T00:00:00Z.
pub const LAST_MS: Millis = 253_402_300_799_999;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ClockState {
    /// Added to real time while the clock runs.
    offset_ms: i64,
    /// Where the clock stands while frozen.
    frozen_at: Option<Millis>,
}

/// A shared, controllable clock. Clones share one state, so the handle a test holds moves the clock the
/// IdP reads.
#[derive(Debug, Clone)]
pub struct Clock {
    state: Arc<Mutex<ClockState>>,
    initial: ClockState,
}

/// What `GET /_mock/clock` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockSnapshot {
    pub now_ms: Millis,
    pub frozen: bool,
    pub offset_ms: i64,
}

fn real_now_ms() -> Millis {
    // A system clock before 1970 is not a configuration this tool supports; treat it as the epoch.
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

impl Clock {
    /// Real time, running, no offset: what the binary uses unless told otherwise.
    pub fn system() -> Self {
        Self::from_state(ClockState { offset_ms: 0, frozen_at: None })
    }

    /// A clock frozen at `at_ms`: what tests and scenarios use, so every run sees the same instants.
    pub fn frozen_at(at_ms: Millis) -> Self {
        Self::from_state(ClockState { offset_ms: 0, frozen_at: Some(at_ms) })
    }

    /// A frozen clock at a fixed, documented instant (2030-01-01T00:00:00Z).
    pub fn test_default() -> Self {
        Self::frozen_at(1_893_456_000_000)
    }

    fn from_state(s: ClockState) -> Self {
        Clock { state: Arc::new(Mutex::new(s)), initial: s }
    }

    /// The current instant in milliseconds.
    pub fn now_ms(&self) -> Millis {
        let s = *self.state.lock();
        s.frozen_at.unwrap_or_else(|| real_now_ms().saturating_add(s.offset_ms))
    }

    /// The current instant in whole seconds (JWT `iat`, `exp`).
    pub fn now_secs(&self) -> i64 {
        self.now_ms().div_euclid(1000)
    }

    pub fn snapshot(&self) -> ClockSnapshot {
        let s = *self.state.lock();
        match s.frozen_at {
            Some(at) => ClockSnapshot { now_ms: at, frozen: true, offset_ms: at.saturating_sub(real_now_ms()) },
            None => ClockSnapshot { now_ms: real_now_ms().saturating_add(s.offset_ms), frozen: false, offset_ms: s.offset_ms },
        }
    }

    /// Moves the clock by `ms` (negative moves it back).
    pub fn advance_ms(&self, ms: i64) {
        let mut s = self.state.lock();
        match s.frozen_at.as_mut() {
            Some(at) => *at = at.saturating_add(ms),
            None => s.offset_ms = s.offset_ms.saturating_add(ms),
        }
    }

    /// Puts the clock at `at_ms`; a frozen clock stays frozen, a running one runs on from there.
    pub fn set_ms(&self, at_ms: Millis) {
        let mut s = self.state.lock();
        match s.frozen_at.as_mut() {
            Some(at) => *at = at_ms,
            None => s.offset_ms = at_ms - real_now_ms(),
        }
    }

    /// Freezes the clock where it stands, or lets a frozen clock run on from where it stands.
    pub fn freeze(&self, frozen: bool) {
        let mut s = self.state.lock();
        let real = real_now_ms();
        match (frozen, s.frozen_at) {
            (true, None) => s.frozen_at = Some(real + s.offset_ms),
            (false, Some(at)) => {
                s.offset_ms = at - real;
                s.frozen_at = None;
            }
            _ => {}
        }
    }

    /// Sets the clock to real time plus `offset_ms`; a frozen clock stays frozen there.
    pub fn set_offset_ms(&self, offset_ms: i64) {
        let mut s = self.state.lock();
        s.offset_ms = offset_ms;
        if s.frozen_at.is_some() {
            s.frozen_at = Some(real_now_ms() + offset_ms);
        }
    }

    /// The clock's state as `mock-idp --state` writes it: the offset against real time, and where it stands
    /// if frozen.
    pub fn persisted(&self) -> (i64, Option<Millis>) {
        let s = *self.state.lock();
        (s.offset_ms, s.frozen_at)
    }

    /// Puts back a state from [`Clock::persisted`], so a restarted mock goes on at the same virtual time.
    pub fn restore(&self, offset_ms: i64, frozen_at: Option<Millis>) {
        *self.state.lock() = ClockState { offset_ms, frozen_at };
    }

    /// Back to the state the clock was created in (`/_mock/reset`).
    pub fn reset(&self) {
        *self.state.lock() = self.initial;
    }
}

/// RFC 3339 with milliseconds and `Z`, as Okta writes `published` and `expiresAt`.
pub fn rfc3339(ms: Millis) -> String {
    let t = OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    t.format(&fmt).unwrap_or_else(|_| "1970-01-01T00:00:00.000Z".into())
}

/// RFC 3339 in seconds precision (management API `created`, `lastUpdated`).
pub fn rfc3339_secs(ms: Millis) -> String {
    let t = OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000)).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].000Z");
    t.format(&fmt).unwrap_or_else(|_| "1970-01-01T00:00:00.000Z".into())
}

/// Parses an RFC 3339 timestamp into milliseconds.
pub fn parse_rfc3339(s: &str) -> Option<Millis> {
    let t = OffsetDateTime::parse(s, &Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frozen_clock_moves_only_when_told() {
        let c = Clock::test_default();
        assert_eq!(c.now_ms(), 1_893_456_000_000);
        c.advance_ms(90 * 86_400_000);
        assert_eq!(c.now_ms(), 1_893_456_000_000 + 90 * 86_400_000);
        c.set_ms(5);
        assert_eq!(c.now_ms(), 5);
        c.reset();
        assert_eq!(c.now_ms(), 1_893_456_000_000);
        assert!(c.snapshot().frozen);
    }

    #[test]
    fn running_clock_with_offset_and_freeze() {
        let c = Clock::system();
        c.set_offset_ms(3_600_000);
        let d = c.now_ms() - real_now_ms();
        assert!((3_599_000..=3_600_000).contains(&d), "offset {d}");
        c.freeze(true);
        let at = c.now_ms();
        assert_eq!(c.now_ms(), at);
        c.freeze(false);
        assert!(c.now_ms() >= at);
        assert!(!c.snapshot().frozen);
    }

    #[test]
    fn formats_and_parses_rfc3339() {
        assert_eq!(rfc3339(1_893_456_000_123), "2030-01-01T00:00:00.123Z");
        assert_eq!(parse_rfc3339("2030-01-01T00:00:00.123Z"), Some(1_893_456_000_123));
        assert_eq!(parse_rfc3339("2030-01-01T01:00:00+01:00"), Some(1_893_456_000_000));
        assert_eq!(parse_rfc3339("yesterday"), None);
    }
}
