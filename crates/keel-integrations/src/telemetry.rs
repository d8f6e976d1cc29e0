//! What Keel counts about adapter calls, as Prometheus metrics. Labels are the practice's ODS
//! code, the interface, the operation key and the outcome category — never anything about a
//! patient.
//!
//! - `keel_integration_calls_total{practice,interface,operation,outcome}` (counter; the
//!   operation is an operation key or `probe`)
//! - `keel_integration_call_duration_seconds{practice,interface,operation}` (histogram)
//! - `keel_integration_circuit_open{practice,interface}` (gauge: 1 while the circuit is open
//!   or half-open, 0 while closed)

use std::time::Duration;

use keel_core::RequestContext;
use keel_core::integration::{IntegrationError, Interface};
use keel_model::OdsCode;
use prometheus::proto::MetricFamily;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry};

use crate::circuit::CircuitState;

/// How an adapter call ended, as a metric label and log field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallOutcome {
    Ok,
    NotSupported,
    Unavailable,
    NotFound,
    Refused,
    OutcomeUnknown,
    Malformed,
    /// Refused by Keel's circuit breaker without a request.
    CircuitOpen,
}

impl CallOutcome {
    pub const ALL: [CallOutcome; 8] = [
        CallOutcome::Ok,
        CallOutcome::NotSupported,
        CallOutcome::Unavailable,
        CallOutcome::NotFound,
        CallOutcome::Refused,
        CallOutcome::OutcomeUnknown,
        CallOutcome::Malformed,
        CallOutcome::CircuitOpen,
    ];

    pub fn key(self) -> &'static str {
        match self {
            CallOutcome::Ok => "ok",
            CallOutcome::NotSupported => "not-supported",
            CallOutcome::Unavailable => "unavailable",
            CallOutcome::NotFound => "not-found",
            CallOutcome::Refused => "refused",
            CallOutcome::OutcomeUnknown => "outcome-unknown",
            CallOutcome::Malformed => "malformed",
            CallOutcome::CircuitOpen => "circuit-open",
        }
    }

    /// The category of an adapter's error.
    pub fn of_error(error: &IntegrationError) -> CallOutcome {
        match error {
            IntegrationError::NotSupported { .. } => CallOutcome::NotSupported,
            IntegrationError::Unavailable { .. } => CallOutcome::Unavailable,
            IntegrationError::PatientNotFound { .. } => CallOutcome::NotFound,
            IntegrationError::Refused { .. } => CallOutcome::Refused,
            IntegrationError::OutcomeUnknown { .. } => CallOutcome::OutcomeUnknown,
            IntegrationError::Malformed { .. } => CallOutcome::Malformed,
        }
    }

    /// Whether the outcome says the connection itself is failing (what opens a circuit): no
    /// usable answer came back. Refusals, "not found" and "not supported" are answers.
    pub fn is_connection_failure(self) -> bool {
        matches!(
            self,
            CallOutcome::Unavailable | CallOutcome::Malformed | CallOutcome::OutcomeUnknown
        )
    }
}

/// Latency buckets, in seconds: from a fast local answer to the longest connection timeout.
const LATENCY_BUCKETS: [f64; 13] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0,
];

/// The adapter-call metrics, in their own registry (see the module docs).
#[derive(Debug, Clone)]
pub struct IntegrationMetrics {
    registry: Registry,
    calls: IntCounterVec,
    duration: HistogramVec,
    circuit_open: IntGaugeVec,
}

impl Default for IntegrationMetrics {
    fn default() -> Self {
        IntegrationMetrics::new()
    }
}

impl IntegrationMetrics {
    pub fn new() -> IntegrationMetrics {
        let registry = Registry::new();
        let calls = IntCounterVec::new(
            Opts::new(
                "keel_integration_calls_total",
                "Calls to practice systems, by practice, interface, operation and outcome.",
            ),
            &["practice", "interface", "operation", "outcome"],
        );
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "keel_integration_call_duration_seconds",
                "Time Keel waited for a practice system call, retries included.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["practice", "interface", "operation"],
        );
        let circuit_open = IntGaugeVec::new(
            Opts::new(
                "keel_integration_circuit_open",
                "1 while a practice connection's circuit is open or half-open, else 0.",
            ),
            &["practice", "interface"],
        );
        // The names and label sets are constant and valid, and the registry is new and holds
        // distinct names: none of this can fail.
        let calls = calls.expect("a valid constant counter definition");
        let duration = duration.expect("a valid constant histogram definition");
        let circuit_open = circuit_open.expect("a valid constant gauge definition");
        registry
            .register(Box::new(calls.clone()))
            .and_then(|()| registry.register(Box::new(duration.clone())))
            .and_then(|()| registry.register(Box::new(circuit_open.clone())))
            .expect("distinct metric names in a new registry");
        IntegrationMetrics {
            registry,
            calls,
            duration,
            circuit_open,
        }
    }

    /// Counts one call of `operation` (an operation key, or `probe`) and its latency.
    pub fn record_call(
        &self,
        practice: &OdsCode,
        interface: Interface,
        operation: &str,
        outcome: CallOutcome,
        latency: Duration,
    ) {
        let (practice, interface) = (practice.as_str(), interface.key());
        self.calls
            .with_label_values(&[practice, interface, operation, outcome.key()])
            .inc();
        self.duration
            .with_label_values(&[practice, interface, operation])
            .observe(latency.as_secs_f64());
    }

    /// Sets a connection's circuit gauge.
    pub fn set_circuit(&self, practice: &OdsCode, interface: Interface, state: CircuitState) {
        self.circuit_open
            .with_label_values(&[practice.as_str(), interface.key()])
            .set(i64::from(state != CircuitState::Closed));
    }

    /// The current values, for the `/metrics` exposition.
    pub fn gather(&self) -> Vec<MetricFamily> {
        self.registry.gather()
    }
}

/// The tracing target of adapter call events.
pub const TRACE_TARGET: &str = "keel::integration";

/// The one trace event of an adapter call: correlation id, practice (or national service) ODS
/// code, interface, operation, outcome category, latency in ms and attempts. No reason text (a
/// supplier's words may name the patient), no URL, nothing from the request.
pub fn trace_call(
    ctx: &RequestContext,
    practice: &OdsCode,
    interface: Interface,
    operation: &str,
    outcome: CallOutcome,
    latency: Duration,
    attempts: u32,
) {
    let correlation_id = ctx.correlation_id.as_str();
    let practice = practice.as_str();
    let interface = interface.key();
    let latency_ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
    let outcome_key = outcome.key();
    // `tracing` fixes an event's level where it is written: one event per level, same fields.
    macro_rules! call_event {
        ($level:expr) => {
            tracing::event!(
                target: TRACE_TARGET,
                $level,
                correlation_id,
                practice,
                interface,
                operation,
                outcome = outcome_key,
                latency_ms,
                attempts,
                "practice system call"
            )
        };
    }
    match outcome {
        CallOutcome::Ok | CallOutcome::NotFound | CallOutcome::NotSupported => {
            call_event!(tracing::Level::INFO)
        }
        _ => call_event!(tracing::Level::WARN),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_core::integration::Operation;

    #[test]
    fn calls_are_counted_under_their_labels_only() {
        let metrics = IntegrationMetrics::new();
        let ods = OdsCode::parse("Y90001").expect("valid");
        metrics.record_call(
            &ods,
            Interface::TppStyle,
            Operation::ReadProblems.key(),
            CallOutcome::Unavailable,
            Duration::from_millis(40),
        );
        metrics.set_circuit(&ods, Interface::TppStyle, CircuitState::Open);
        let families = metrics.gather();
        let names: Vec<&str> = families.iter().map(|f| f.name()).collect();
        assert_eq!(
            names,
            [
                "keel_integration_call_duration_seconds",
                "keel_integration_calls_total",
                "keel_integration_circuit_open"
            ]
        );
        let calls = &families[1].get_metric()[0];
        let labels: Vec<(&str, &str)> = calls
            .get_label()
            .iter()
            .map(|l| (l.name(), l.value()))
            .collect();
        assert_eq!(
            labels,
            [
                ("interface", "tpp-style"),
                ("operation", "read-problems"),
                ("outcome", "unavailable"),
                ("practice", "Y90001")
            ]
        );
    }

    #[test]
    fn only_failures_of_the_connection_itself_count_towards_opening_a_circuit() {
        let failing: Vec<&str> = CallOutcome::ALL
            .into_iter()
            .filter(|o| o.is_connection_failure())
            .map(CallOutcome::key)
            .collect();
        assert_eq!(failing, ["unavailable", "outcome-unknown", "malformed"]);
    }
}
