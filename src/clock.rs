//! "Now" comes from one clock the app is given: the system clock in
//! production, a settable one in tests and simulations, so a test can walk a
//! patient through eight weeks in milliseconds.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, SubsecRound, Utc};

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

pub type SharedClock = Arc<dyn Clock>;

/// The real time, to the microsecond (what both databases store).
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now().trunc_subsecs(6)
    }
}

/// A clock that only moves when told to.
pub struct TestClock {
    now: Mutex<DateTime<Utc>>,
}

impl TestClock {
    pub fn new(start: DateTime<Utc>) -> Arc<Self> {
        Arc::new(Self {
            now: Mutex::new(start.trunc_subsecs(6)),
        })
    }

    pub fn set(&self, to: DateTime<Utc>) {
        *self.lock() = to.trunc_subsecs(6);
    }

    pub fn advance(&self, by: Duration) {
        let mut now = self.lock();
        *now += by;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, DateTime<Utc>> {
        // A panic elsewhere while holding the lock cannot leave a half-written
        // timestamp, so the value is still good.
        self.now
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        *self.lock()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_test_clock_moves_only_when_told() {
        let start = "2026-11-29T15:00:00Z".parse::<DateTime<Utc>>().unwrap();
        let clock = TestClock::new(start);
        assert_eq!(clock.now(), start);
        clock.advance(Duration::days(56));
        assert_eq!(clock.now(), start + Duration::days(56));
        clock.set(start);
        assert_eq!(clock.now(), start);
    }
}
