//! The circuit breaker of one endpoint: after [`FAILURES_TO_OPEN`] failed requests in a row
//! (connection refused, 5xx, timeouts) it opens, and decisions fall back to the heuristic at
//! once instead of each waiting out its deadline. After a cool-down one question at a time
//! is let through as a probe: its success closes the breaker, its failure opens it again. An
//! endpoint that refuses the client itself (a bad key, an unknown model) is stopped for good:
//! nothing more is asked of it, and the cause is logged once.
//!
//! Time is passed in, so the states can be tested without waiting.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failed requests in a row that open the breaker.
pub const FAILURES_TO_OPEN: u32 = 3;

/// Whether a question may be asked now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Ask, retrying while the deadline allows.
    Ask,
    /// Ask once: the breaker is open and this question probes whether the endpoint is back.
    Probe,
    /// Do not ask; the reason says why.
    Refuse(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Closed { failures: u32 },
    Open { until: Instant, cause: String },
    Probing { cause: String },
    Stopped { cause: String },
}

/// One endpoint's breaker, shared by every question to it.
#[derive(Debug)]
pub struct Breaker {
    cool_down: Duration,
    state: Mutex<State>,
}

impl Breaker {
    /// A closed breaker that stays open `cool_down` before each probe.
    pub fn new(cool_down: Duration) -> Breaker {
        Breaker {
            cool_down,
            state: Mutex::new(State::Closed { failures: 0 }),
        }
    }

    fn with_state<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        // A poisoned lock only means another question panicked mid-update; the state is
        // still one of the four.
        let mut guard = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut guard)
    }

    /// Whether a question may be asked at `now`.
    pub fn admit(&self, now: Instant) -> Admission {
        self.with_state(|state| match state {
            State::Closed { .. } => Admission::Ask,
            State::Open { until, cause } if now < *until => Admission::Refuse(format!(
                "breaker open for {} ms more after {FAILURES_TO_OPEN} failures in a row: {cause}",
                until.saturating_duration_since(now).as_millis()
            )),
            State::Open { cause, .. } => {
                *state = State::Probing {
                    cause: cause.clone(),
                };
                Admission::Probe
            }
            State::Probing { cause } => {
                Admission::Refuse(format!("breaker open, a probe in flight: {cause}"))
            }
            State::Stopped { cause } => Admission::Refuse(format!("endpoint stopped: {cause}")),
        })
    }

    /// A request succeeded: the breaker closes.
    pub fn success(&self) {
        self.with_state(|state| {
            if !matches!(state, State::Stopped { .. }) {
                if !matches!(state, State::Closed { .. }) {
                    tracing::info!("the LLM endpoint answers again: breaker closed");
                }
                *state = State::Closed { failures: 0 };
            }
        });
    }

    /// A request failed at `now` with `cause`: a probe's failure, or the
    /// [`FAILURES_TO_OPEN`]th in a row, opens the breaker for the cool-down.
    pub fn failure(&self, cause: &str, now: Instant) {
        let until = now + self.cool_down;
        self.with_state(|state| {
            let open = match state {
                State::Closed { failures } => {
                    *failures += 1;
                    *failures >= FAILURES_TO_OPEN
                }
                State::Probing { .. } | State::Open { .. } => true,
                State::Stopped { .. } => false,
            };
            if open {
                if matches!(state, State::Closed { .. }) {
                    tracing::warn!(
                        %cause,
                        cool_down_ms = self.cool_down.as_millis() as u64,
                        "LLM endpoint failing: breaker open, decisions fall back to the heuristic at once"
                    );
                }
                *state = State::Open {
                    until,
                    cause: cause.to_string(),
                };
            }
        });
    }

    /// The endpoint refused the client itself: nothing more is asked. Says so once, loudly.
    pub fn stop(&self, cause: &str) {
        self.with_state(|state| {
            if !matches!(state, State::Stopped { .. }) {
                tracing::error!(%cause, "the LLM endpoint refuses this client: no more questions are asked; every decision is the heuristic's");
                *state = State::Stopped {
                    cause: cause.to_string(),
                };
            }
        });
    }

    /// Whether the breaker is closed (questions are asked as usual).
    pub fn is_closed(&self) -> bool {
        self.with_state(|state| matches!(state, State::Closed { .. }))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    const COOL: Duration = Duration::from_secs(10);

    #[test]
    fn it_opens_after_failures_in_a_row_and_a_success_resets_the_count() {
        let breaker = Breaker::new(COOL);
        let t0 = Instant::now();
        breaker.failure("refused", t0);
        breaker.failure("refused", t0);
        breaker.success();
        breaker.failure("refused", t0);
        breaker.failure("refused", t0);
        assert_eq!(breaker.admit(t0), Admission::Ask);
        breaker.failure("connection refused", t0);
        match breaker.admit(t0 + Duration::from_secs(1)) {
            Admission::Refuse(reason) => assert!(reason.contains("connection refused"), "{reason}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn after_the_cool_down_one_probe_at_a_time_and_its_outcome_decides() {
        let breaker = Breaker::new(COOL);
        let t0 = Instant::now();
        for _ in 0..FAILURES_TO_OPEN {
            breaker.failure("HTTP 500", t0);
        }
        let later = t0 + COOL;
        assert_eq!(breaker.admit(later), Admission::Probe);
        assert!(
            matches!(breaker.admit(later), Admission::Refuse(_)),
            "one probe at a time"
        );
        // The probe fails: open again for a whole cool-down.
        breaker.failure("HTTP 500", later);
        assert!(matches!(
            breaker.admit(later + COOL / 2),
            Admission::Refuse(_)
        ));
        assert_eq!(breaker.admit(later + COOL), Admission::Probe);
        // This probe succeeds: closed.
        breaker.success();
        assert_eq!(breaker.admit(later + COOL), Admission::Ask);
        assert!(breaker.is_closed());
    }

    #[test]
    fn a_stopped_endpoint_is_never_asked_again() {
        let breaker = Breaker::new(COOL);
        let t0 = Instant::now();
        breaker.stop("HTTP 401: invalid API key");
        breaker.success();
        for later in [t0, t0 + COOL * 100] {
            match breaker.admit(later) {
                Admission::Refuse(reason) => assert!(reason.contains("401"), "{reason}"),
                other => panic!("{other:?}"),
            }
        }
    }
}
