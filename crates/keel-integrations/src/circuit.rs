//! A circuit breaker for one practice connection (one practice, one interface).
//!
//! Closed: calls go through; each call that ends in a failure of the connection itself
//! (unavailable, malformed answer, lost write answer) counts, and any other answer resets the
//! count. After [`CircuitPolicy::failure_threshold`] consecutive failures the circuit opens:
//! calls are refused at once, without a request, for [`CircuitPolicy::cooldown`]. Then it is
//! half-open: one trial call goes through (others are still refused); its success closes the
//! circuit, its failure opens it for another cooldown. A trial call that is abandoned (its
//! future dropped) gives the next call the trial.
//!
//! Time is passed in, so the breaker is tested without waiting.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

/// When a circuit opens and how long it stays open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CircuitPolicy {
    /// Consecutive failures that open the circuit (at least 1).
    pub failure_threshold: u32,
    /// How long an open circuit refuses calls before one trial call.
    pub cooldown: Duration,
}

impl Default for CircuitPolicy {
    fn default() -> Self {
        CircuitPolicy {
            failure_threshold: 5,
            cooldown: Duration::from_secs(30),
        }
    }
}

/// The state of a circuit, as shown to operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CircuitState {
    Closed,
    Open,
    HalfOpen,
}

impl CircuitState {
    pub fn key(self) -> &'static str {
        match self {
            CircuitState::Closed => "closed",
            CircuitState::Open => "open",
            CircuitState::HalfOpen => "half-open",
        }
    }
}

#[derive(Debug)]
enum Mode {
    Closed { consecutive_failures: u32 },
    Open { until: Instant },
    HalfOpen { trial_in_flight: bool },
}

/// One connection's circuit breaker (see the module docs).
#[derive(Debug)]
pub struct CircuitBreaker {
    policy: CircuitPolicy,
    mode: Mutex<Mode>,
}

/// Why a call was refused without a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CircuitOpen {
    /// Time left before a trial call, or `None` while a trial call is under way.
    pub retry_after: Option<Duration>,
}

impl std::fmt::Display for CircuitOpen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.retry_after {
            Some(left) => write!(
                f,
                "circuit open: the connection failed repeatedly; next try in {} s",
                left.as_secs().max(1)
            ),
            None => f.write_str("circuit open: a trial call to the connection is under way"),
        }
    }
}

/// Leave to make one call; settle it with its result. Dropped unsettled (the call was
/// abandoned), it neither counts as a failure nor keeps the trial slot.
#[derive(Debug)]
pub struct Permit<'a> {
    breaker: &'a CircuitBreaker,
    trial: bool,
    settled: bool,
}

impl Permit<'_> {
    /// Whether this is the half-open circuit's trial call.
    pub fn is_trial(&self) -> bool {
        self.trial
    }

    /// Records how the call ended; returns the circuit's state after it.
    pub fn settle(mut self, failed: bool, now: Instant) -> CircuitState {
        self.settled = true;
        let policy = self.breaker.policy;
        let mut mode = self.breaker.lock();
        let open = || Mode::Open {
            until: now + policy.cooldown,
        };
        *mode = match (&*mode, failed) {
            (_, false) => Mode::Closed {
                consecutive_failures: 0,
            },
            (
                Mode::Closed {
                    consecutive_failures,
                },
                true,
            ) => {
                let failures = consecutive_failures.saturating_add(1);
                if failures >= policy.failure_threshold.max(1) {
                    open()
                } else {
                    Mode::Closed {
                        consecutive_failures: failures,
                    }
                }
            }
            // A failed trial, or a call admitted before the circuit opened that also failed.
            (Mode::HalfOpen { .. } | Mode::Open { .. }, true) => open(),
        };
        state_of(&mode, now)
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if self.trial && !self.settled {
            let mut mode = self.breaker.lock();
            if let Mode::HalfOpen { trial_in_flight } = &mut *mode {
                *trial_in_flight = false;
            }
        }
    }
}

impl CircuitBreaker {
    pub fn new(policy: CircuitPolicy) -> CircuitBreaker {
        CircuitBreaker {
            policy,
            mode: Mutex::new(Mode::Closed {
                consecutive_failures: 0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Mode> {
        self.mode.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Leave to call now, or why not.
    ///
    /// # Errors
    /// [`CircuitOpen`] while the circuit is open, or half-open with its trial under way.
    pub fn admit(&self, now: Instant) -> Result<Permit<'_>, CircuitOpen> {
        let mut mode = self.lock();
        let trial = match &mut *mode {
            Mode::Closed { .. } => false,
            Mode::Open { until } if now < *until => {
                return Err(CircuitOpen {
                    retry_after: Some(*until - now),
                });
            }
            Mode::Open { .. } => {
                *mode = Mode::HalfOpen {
                    trial_in_flight: true,
                };
                true
            }
            Mode::HalfOpen { trial_in_flight } if *trial_in_flight => {
                return Err(CircuitOpen { retry_after: None });
            }
            Mode::HalfOpen { trial_in_flight } => {
                *trial_in_flight = true;
                true
            }
        };
        Ok(Permit {
            breaker: self,
            trial,
            settled: false,
        })
    }

    /// The state at `now` (an open circuit whose cooldown has passed is half-open).
    pub fn state(&self, now: Instant) -> CircuitState {
        state_of(&self.lock(), now)
    }
}

fn state_of(mode: &Mode, now: Instant) -> CircuitState {
    match mode {
        Mode::Closed { .. } => CircuitState::Closed,
        Mode::Open { until } if now < *until => CircuitState::Open,
        Mode::Open { .. } | Mode::HalfOpen { .. } => CircuitState::HalfOpen,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker() -> CircuitBreaker {
        CircuitBreaker::new(CircuitPolicy {
            failure_threshold: 3,
            cooldown: Duration::from_secs(30),
        })
    }

    fn fail(b: &CircuitBreaker, now: Instant) -> CircuitState {
        b.admit(now).expect("admitted").settle(true, now)
    }

    #[test]
    fn opens_after_the_threshold_of_consecutive_failures_only() {
        let b = breaker();
        let t = Instant::now();
        assert_eq!(fail(&b, t), CircuitState::Closed);
        assert_eq!(fail(&b, t), CircuitState::Closed);
        // A success in between resets the count.
        b.admit(t).expect("admitted").settle(false, t);
        assert_eq!(fail(&b, t), CircuitState::Closed);
        assert_eq!(fail(&b, t), CircuitState::Closed);
        assert_eq!(fail(&b, t), CircuitState::Open);
        assert_eq!(b.state(t), CircuitState::Open);
    }

    #[test]
    fn an_open_circuit_refuses_at_once_until_the_cooldown_has_passed() {
        let b = breaker();
        let t = Instant::now();
        for _ in 0..3 {
            fail(&b, t);
        }
        let refused = b
            .admit(t + Duration::from_secs(10))
            .expect_err("refused while open");
        assert_eq!(refused.retry_after, Some(Duration::from_secs(20)));
        assert!(refused.to_string().starts_with("circuit open"), "{refused}");
        assert_eq!(b.state(t + Duration::from_secs(30)), CircuitState::HalfOpen);
    }

    #[test]
    fn half_open_allows_one_trial_whose_success_closes_the_circuit() {
        let b = breaker();
        let t = Instant::now();
        for _ in 0..3 {
            fail(&b, t);
        }
        let later = t + Duration::from_secs(31);
        let trial = b.admit(later).expect("the trial");
        assert!(trial.is_trial());
        let second = b.admit(later).expect_err("one trial at a time");
        assert_eq!(second.retry_after, None);
        assert_eq!(trial.settle(false, later), CircuitState::Closed);
        let next = b.admit(later).expect("closed again");
        assert!(!next.is_trial());
    }

    #[test]
    fn a_failed_trial_opens_the_circuit_for_another_cooldown() {
        let b = breaker();
        let t = Instant::now();
        for _ in 0..3 {
            fail(&b, t);
        }
        let later = t + Duration::from_secs(31);
        assert_eq!(fail(&b, later), CircuitState::Open);
        assert!(b.admit(later + Duration::from_secs(29)).is_err());
        assert!(b.admit(later + Duration::from_secs(30)).is_ok());
    }

    #[test]
    fn an_abandoned_trial_hands_the_trial_to_the_next_call() {
        let b = breaker();
        let t = Instant::now();
        for _ in 0..3 {
            fail(&b, t);
        }
        let later = t + Duration::from_secs(31);
        drop(b.admit(later).expect("the trial"));
        assert_eq!(b.state(later), CircuitState::HalfOpen);
        assert!(b.admit(later).expect("a new trial").is_trial());
    }
}
