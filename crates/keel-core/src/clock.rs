//! Injected time and identifiers, so that tests are deterministic.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

pub trait Clock: Send + Sync {
    /// Milliseconds since the Unix epoch.
    fn now_millis(&self) -> i64;
}

pub trait IdSource: Send + Sync {
    /// A new resource id, unique within the server (R4 id rules: `[A-Za-z0-9\-\.]{1,64}`).
    fn new_id(&self) -> String;
}

/// The operating system's wall clock; successive calls never go backwards.
#[derive(Debug, Default)]
pub struct SystemClock {
    last: AtomicI64,
}

impl Clock for SystemClock {
    fn now_millis(&self) -> i64 {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let previous = self.last.fetch_max(now, Ordering::Relaxed);
        previous.max(now)
    }
}

/// A clock that starts at a fixed instant and advances one millisecond per reading.
#[derive(Debug)]
pub struct SteppingClock {
    next: AtomicI64,
}

impl SteppingClock {
    pub fn starting_at(millis: i64) -> Self {
        SteppingClock {
            next: AtomicI64::new(millis),
        }
    }
}

impl Clock for SteppingClock {
    fn now_millis(&self) -> i64 {
        self.next.fetch_add(1, Ordering::Relaxed)
    }
}

/// Ids `prefix-1`, `prefix-2`, ... for tests.
#[derive(Debug)]
pub struct SequentialIds {
    prefix: String,
    next: AtomicU64,
}

impl SequentialIds {
    pub fn new(prefix: &str) -> Self {
        SequentialIds {
            prefix: prefix.to_string(),
            next: AtomicU64::new(1),
        }
    }
}

impl IdSource for SequentialIds {
    fn new_id(&self) -> String {
        format!(
            "{}-{}",
            self.prefix,
            self.next.fetch_add(1, Ordering::Relaxed)
        )
    }
}
