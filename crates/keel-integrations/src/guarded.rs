//! [`GuardedSystem`]: the one place every adapter call passes through, whatever the adapter.
//! It wraps a [`PracticeSystem`] and is one itself; the practice directory wraps every adapter
//! it builds with it.
//!
//! Per call:
//! - **Circuit breaker** ([`crate::circuit`]), one per connection (practice × interface):
//!   while open, reads *and* writes fail at once with [`IntegrationError::Unavailable`]
//!   ("circuit open: …") — a write refused there was never sent, so its outcome is known.
//! - **Time budget** for reads: the connection's timeout bounds the whole read, retry included,
//!   even when the adapter makes more than one request. A read cut off is harmless. Writes are
//!   never cut off here: the adapter's own per-request timeout applies and the adapter owns
//!   what happens after a lost answer (checking before anything is sent again).
//! - **Retry** of a read, once, only when it failed *early* in the transport (could not
//!   connect, connection closed, answer cut off: [`http::is_early_transport_failure`]) and at
//!   least half the budget is left. A timed-out read has used its budget; an HTTP error status
//!   is the system's answer (often "overloaded") and asking again at once would add load.
//!   Writes are never retried.
//! - **One trace event** (target `keel::integration`): correlation id, practice ODS code,
//!   interface, operation, outcome category, latency in ms and attempts. No reason text (a
//!   supplier's words may name the patient), no URL, nothing from the request.
//! - **Metrics** ([`IntegrationMetrics`]): the call counted by outcome, its latency, and the
//!   connection's circuit state.
//!
//! A probe ([`PracticeSystem::probe`]) is guarded as a read, traced and counted under the
//! operation label `probe`: it shares the connection's circuit, so a probe of a practice in an
//! outage is refused at once while its circuit is open, and failing probes count towards
//! opening it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use keel_core::RequestContext;
use keel_core::integration::{
    BookingRequest, BoxFuture, CancellationRequest, DocumentRequest, EntryRequest, FreeSlot,
    IntegrationError, Interface, Operation, PatientAtPractice, PracticeSystem, SectionContent,
    TaskRequest, WriteReceipt, read_operation,
};
use keel_model::record::{Demographics, RecordSection};
use keel_model::{ClinicalDate, NhsNumber, OdsCode};

use crate::circuit::CircuitBreaker;
use crate::http;
use crate::telemetry::{CallOutcome, IntegrationMetrics, trace_call};

/// The operation label of a probe in traces and metrics.
pub const PROBE_LABEL: &str = "probe";

/// What a guarded call is: an operation of the contract, or a probe of the interface.
#[derive(Debug, Clone, Copy)]
enum Call {
    Operation(Operation),
    Probe,
}

impl Call {
    fn key(self) -> &'static str {
        match self {
            Call::Operation(operation) => operation.key(),
            Call::Probe => PROBE_LABEL,
        }
    }

    fn is_write(self) -> bool {
        matches!(self, Call::Operation(operation) if operation.is_write())
    }
}

/// An adapter behind Keel's circuit breaker, time budget, retry rule, tracing and metrics (see
/// the module docs).
pub struct GuardedSystem {
    inner: Arc<dyn PracticeSystem>,
    budget: Duration,
    circuit: Arc<CircuitBreaker>,
    metrics: IntegrationMetrics,
}

impl GuardedSystem {
    /// Guards `inner`, whose connection allows `budget` for one call.
    pub fn new(
        inner: Arc<dyn PracticeSystem>,
        budget: Duration,
        circuit: Arc<CircuitBreaker>,
        metrics: IntegrationMetrics,
    ) -> GuardedSystem {
        metrics.set_circuit(
            inner.practice(),
            inner.interface(),
            circuit.state(Instant::now()),
        );
        GuardedSystem {
            inner,
            budget,
            circuit,
            metrics,
        }
    }

    /// One `call`: `attempt` starts a request; `outcome_of` names a success's outcome (a
    /// patient not found is not "ok").
    fn guarded<'a, T, F>(
        &'a self,
        ctx: &'a RequestContext,
        call: Call,
        attempt: F,
        outcome_of: fn(&T) -> CallOutcome,
    ) -> BoxFuture<'a, Result<T, IntegrationError>>
    where
        T: Send + 'a,
        F: Fn() -> BoxFuture<'a, Result<T, IntegrationError>> + Send + Sync + 'a,
    {
        Box::pin(async move {
            let started = Instant::now();
            let (answer, outcome, attempts) = match self.circuit.admit(started) {
                Err(open) => {
                    let refused = IntegrationError::Unavailable {
                        practice: self.practice().clone(),
                        reason: open.to_string(),
                    };
                    (Err(refused), CallOutcome::CircuitOpen, 0)
                }
                Ok(permit) => {
                    let (answer, attempts) = if call.is_write() {
                        (attempt().await, 1)
                    } else {
                        self.read(&attempt, started).await
                    };
                    let outcome = match &answer {
                        Ok(value) => outcome_of(value),
                        Err(e) => CallOutcome::of_error(e),
                    };
                    let state = permit.settle(outcome.is_connection_failure(), Instant::now());
                    self.metrics
                        .set_circuit(self.practice(), self.interface(), state);
                    (answer, outcome, attempts)
                }
            };
            let latency = started.elapsed();
            self.metrics.record_call(
                self.practice(),
                self.interface(),
                call.key(),
                outcome,
                latency,
            );
            trace_call(
                ctx,
                self.practice(),
                self.interface(),
                call.key(),
                outcome,
                latency,
                attempts,
            );
            answer
        })
    }

    /// A read within the budget, asked once more after an early transport failure.
    async fn read<'a, T, F>(
        &self,
        attempt: &F,
        started: Instant,
    ) -> (Result<T, IntegrationError>, u32)
    where
        F: Fn() -> BoxFuture<'a, Result<T, IntegrationError>>,
    {
        let first = self.within(self.budget, attempt()).await;
        let left = self.budget.saturating_sub(started.elapsed());
        match &first {
            Err(IntegrationError::Unavailable { reason, .. })
                if http::is_early_transport_failure(reason) && left >= self.budget / 2 =>
            {
                (self.within(left, attempt()).await, 2)
            }
            _ => (first, 1),
        }
    }

    async fn within<T>(
        &self,
        limit: Duration,
        call: BoxFuture<'_, Result<T, IntegrationError>>,
    ) -> Result<T, IntegrationError> {
        tokio::time::timeout(limit, call).await.unwrap_or_else(|_| {
            Err(IntegrationError::Unavailable {
                practice: self.practice().clone(),
                reason: format!("no answer within {} ms", self.budget.as_millis()),
            })
        })
    }
}

fn ok<T>(_: &T) -> CallOutcome {
    CallOutcome::Ok
}

impl PracticeSystem for GuardedSystem {
    fn practice(&self) -> &OdsCode {
        self.inner.practice()
    }

    fn interface(&self) -> Interface {
        self.inner.interface()
    }

    fn probe<'a>(
        &'a self,
        ctx: &'a RequestContext,
    ) -> BoxFuture<'a, Result<Option<Vec<Operation>>, IntegrationError>> {
        self.guarded(ctx, Call::Probe, move || self.inner.probe(ctx), ok)
    }

    fn find_patient<'a>(
        &'a self,
        ctx: &'a RequestContext,
        nhs_number: NhsNumber,
    ) -> BoxFuture<'a, Result<Option<(PatientAtPractice, Demographics)>, IntegrationError>> {
        self.guarded(
            ctx,
            Call::Operation(Operation::FindPatient),
            move || self.inner.find_patient(ctx, nhs_number),
            |found| match found {
                Some(_) => CallOutcome::Ok,
                None => CallOutcome::NotFound,
            },
        )
    }

    fn read_section<'a>(
        &'a self,
        ctx: &'a RequestContext,
        patient: &'a PatientAtPractice,
        section: RecordSection,
    ) -> BoxFuture<'a, Result<SectionContent, IntegrationError>> {
        self.guarded(
            ctx,
            Call::Operation(read_operation(section)),
            move || self.inner.read_section(ctx, patient, section),
            ok,
        )
    }

    fn search_free_slots<'a>(
        &'a self,
        ctx: &'a RequestContext,
        from: &'a ClinicalDate,
        to: &'a ClinicalDate,
    ) -> BoxFuture<'a, Result<Vec<FreeSlot>, IntegrationError>> {
        self.guarded(
            ctx,
            Call::Operation(Operation::SearchFreeSlots),
            move || self.inner.search_free_slots(ctx, from, to),
            ok,
        )
    }

    fn book_appointment<'a>(
        &'a self,
        ctx: &'a RequestContext,
        request: &'a BookingRequest,
    ) -> BoxFuture<'a, Result<WriteReceipt, IntegrationError>> {
        self.guarded(
            ctx,
            Call::Operation(Operation::BookAppointment),
            move || self.inner.book_appointment(ctx, request),
            ok,
        )
    }

    fn cancel_appointment<'a>(
        &'a self,
        ctx: &'a RequestContext,
        request: &'a CancellationRequest,
    ) -> BoxFuture<'a, Result<WriteReceipt, IntegrationError>> {
        self.guarded(
            ctx,
            Call::Operation(Operation::CancelAppointment),
            move || self.inner.cancel_appointment(ctx, request),
            ok,
        )
    }

    fn create_task<'a>(
        &'a self,
        ctx: &'a RequestContext,
        request: &'a TaskRequest,
    ) -> BoxFuture<'a, Result<WriteReceipt, IntegrationError>> {
        self.guarded(
            ctx,
            Call::Operation(Operation::CreateTask),
            move || self.inner.create_task(ctx, request),
            ok,
        )
    }

    fn add_entry<'a>(
        &'a self,
        ctx: &'a RequestContext,
        request: &'a EntryRequest,
    ) -> BoxFuture<'a, Result<WriteReceipt, IntegrationError>> {
        self.guarded(
            ctx,
            Call::Operation(Operation::AddEntry),
            move || self.inner.add_entry(ctx, request),
            ok,
        )
    }

    fn attach_document<'a>(
        &'a self,
        ctx: &'a RequestContext,
        request: &'a DocumentRequest,
    ) -> BoxFuture<'a, Result<WriteReceipt, IntegrationError>> {
        self.guarded(
            ctx,
            Call::Operation(Operation::AttachDocument),
            move || self.inner.attach_document(ctx, request),
            ok,
        )
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::io::Write;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU32, Ordering};

    use keel_core::CorrelationId;
    use keel_core::integration::WriteKey;
    use keel_model::record::Section;

    use super::*;
    use crate::circuit::{CircuitPolicy, CircuitState};
    use crate::telemetry::TRACE_TARGET;

    const NHS: &str = "9990000018";

    /// One scripted answer: how long it takes and whether it fails.
    type Answer = (Duration, Result<(), IntegrationError>);

    /// An adapter answering reads and task writes from a script, counting the requests made.
    struct Scripted {
        ods: OdsCode,
        answers: Mutex<VecDeque<Answer>>,
        requests: AtomicU32,
    }

    impl Scripted {
        fn next(&self) -> BoxFuture<'_, Result<(), IntegrationError>> {
            self.requests.fetch_add(1, Ordering::SeqCst);
            let (delay, answer) = self
                .answers
                .lock()
                .expect("lock")
                .pop_front()
                .unwrap_or((Duration::ZERO, Ok(())));
            Box::pin(async move {
                tokio::time::sleep(delay).await;
                answer
            })
        }

        fn not_scripted<T: Send + 'static>(
            &self,
        ) -> BoxFuture<'static, Result<T, IntegrationError>> {
            let practice = self.ods.clone();
            Box::pin(async move {
                Err(IntegrationError::Refused {
                    practice,
                    reason: "not scripted".into(),
                })
            })
        }
    }

    fn receipt() -> WriteReceipt {
        WriteReceipt {
            source_id: "t-1".into(),
            version: None,
        }
    }

    impl PracticeSystem for Scripted {
        fn practice(&self) -> &OdsCode {
            &self.ods
        }
        fn interface(&self) -> Interface {
            Interface::TppStyle
        }
        fn probe<'a>(
            &'a self,
            _: &'a RequestContext,
        ) -> BoxFuture<'a, Result<Option<Vec<Operation>>, IntegrationError>> {
            let answer = self.next();
            Box::pin(async move { answer.await.map(|()| Some(vec![Operation::ReadProblems])) })
        }
        fn find_patient<'a>(
            &'a self,
            _: &'a RequestContext,
            _: NhsNumber,
        ) -> BoxFuture<'a, Result<Option<(PatientAtPractice, Demographics)>, IntegrationError>>
        {
            let answer = self.next();
            Box::pin(async move { answer.await.map(|()| None) })
        }
        fn read_section<'a>(
            &'a self,
            _: &'a RequestContext,
            _: &'a PatientAtPractice,
            section: RecordSection,
        ) -> BoxFuture<'a, Result<SectionContent, IntegrationError>> {
            let answer = self.next();
            Box::pin(async move {
                answer.await?;
                Ok(SectionContent::Problems(Section::from_items(
                    section,
                    vec![],
                    vec![],
                )))
            })
        }
        fn search_free_slots<'a>(
            &'a self,
            _: &'a RequestContext,
            _: &'a ClinicalDate,
            _: &'a ClinicalDate,
        ) -> BoxFuture<'a, Result<Vec<FreeSlot>, IntegrationError>> {
            self.not_scripted()
        }
        fn book_appointment<'a>(
            &'a self,
            _: &'a RequestContext,
            _: &'a BookingRequest,
        ) -> BoxFuture<'a, Result<WriteReceipt, IntegrationError>> {
            self.not_scripted()
        }
        fn cancel_appointment<'a>(
            &'a self,
            _: &'a RequestContext,
            _: &'a CancellationRequest,
        ) -> BoxFuture<'a, Result<WriteReceipt, IntegrationError>> {
            self.not_scripted()
        }
        fn create_task<'a>(
            &'a self,
            _: &'a RequestContext,
            _: &'a TaskRequest,
        ) -> BoxFuture<'a, Result<WriteReceipt, IntegrationError>> {
            let answer = self.next();
            Box::pin(async move { answer.await.map(|()| receipt()) })
        }
        fn add_entry<'a>(
            &'a self,
            _: &'a RequestContext,
            _: &'a EntryRequest,
        ) -> BoxFuture<'a, Result<WriteReceipt, IntegrationError>> {
            self.not_scripted()
        }
        fn attach_document<'a>(
            &'a self,
            _: &'a RequestContext,
            _: &'a DocumentRequest,
        ) -> BoxFuture<'a, Result<WriteReceipt, IntegrationError>> {
            self.not_scripted()
        }
    }

    fn ods() -> OdsCode {
        OdsCode::parse("Y90001").expect("valid")
    }

    fn down(reason: &str) -> Result<(), IntegrationError> {
        Err(IntegrationError::Unavailable {
            practice: ods(),
            reason: reason.into(),
        })
    }

    fn guarded(
        script: Vec<Answer>,
        budget: Duration,
        policy: CircuitPolicy,
    ) -> (GuardedSystem, Arc<Scripted>, IntegrationMetrics) {
        let scripted = Arc::new(Scripted {
            ods: ods(),
            answers: Mutex::new(script.into()),
            requests: AtomicU32::new(0),
        });
        let metrics = IntegrationMetrics::new();
        let system = GuardedSystem::new(
            scripted.clone(),
            budget,
            Arc::new(CircuitBreaker::new(policy)),
            metrics.clone(),
        );
        (system, scripted, metrics)
    }

    fn policy(failure_threshold: u32, cooldown_ms: u64) -> CircuitPolicy {
        CircuitPolicy {
            failure_threshold,
            cooldown: Duration::from_millis(cooldown_ms),
        }
    }

    fn ctx() -> RequestContext {
        RequestContext::local_development(CorrelationId::parse("corr-42").expect("valid"))
    }

    fn patient() -> PatientAtPractice {
        PatientAtPractice {
            practice: ods(),
            source_patient_id: "p-1".into(),
            nhs_number: NhsNumber::parse(NHS).ok(),
        }
    }

    fn task() -> TaskRequest {
        TaskRequest {
            key: WriteKey("k-1".into()),
            patient: patient(),
            description: "call back".into(),
            urgent: false,
        }
    }

    async fn read(system: &GuardedSystem) -> Result<SectionContent, IntegrationError> {
        system
            .read_section(&ctx(), &patient(), RecordSection::Problems)
            .await
    }

    fn reason(answer: Result<impl std::fmt::Debug, IntegrationError>) -> String {
        match answer {
            Err(IntegrationError::Unavailable { reason, .. }) => reason,
            other => panic!("expected unavailable, got {other:?}"),
        }
    }

    fn exposition(metrics: &IntegrationMetrics) -> String {
        prometheus::TextEncoder::new()
            .encode_to_string(&metrics.gather())
            .expect("encode")
    }

    #[tokio::test]
    async fn the_circuit_opens_after_n_failures_and_then_refuses_reads_and_writes_at_once() {
        let failures = (0..3).map(|_| (Duration::ZERO, down("answered HTTP 503")));
        let (system, scripted, metrics) = guarded(
            failures.collect(),
            Duration::from_secs(1),
            policy(3, 60_000),
        );
        for _ in 0..3 {
            assert_eq!(reason(read(&system).await), "answered HTTP 503");
        }
        assert_eq!(system.circuit.state(Instant::now()), CircuitState::Open);
        let refused = reason(read(&system).await);
        assert!(refused.starts_with("circuit open"), "{refused}");
        // A write refused by the open circuit was never sent: unavailable, not unknown.
        let write = reason(system.create_task(&ctx(), &task()).await);
        assert!(write.starts_with("circuit open"), "{write}");
        assert_eq!(scripted.requests.load(Ordering::SeqCst), 3);
        let text = exposition(&metrics);
        assert!(
            text.contains(r#"keel_integration_calls_total{interface="tpp-style",operation="read-problems",outcome="circuit-open",practice="Y90001"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#"keel_integration_circuit_open{interface="tpp-style",practice="Y90001"} 1"#
            ),
            "{text}"
        );
    }

    #[tokio::test]
    async fn a_half_open_trial_that_succeeds_closes_the_circuit_and_one_that_fails_reopens_it() {
        let script = vec![
            (Duration::ZERO, down("answered HTTP 503")),
            (Duration::ZERO, Ok(())),
            (Duration::ZERO, down("answered HTTP 503")),
            (Duration::ZERO, down("answered HTTP 503")),
        ];
        let (system, scripted, metrics) = guarded(script, Duration::from_secs(1), policy(1, 50));
        assert!(read(&system).await.is_err());
        assert!(reason(read(&system).await).starts_with("circuit open"));
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert!(read(&system).await.is_ok(), "the trial call goes through");
        assert_eq!(system.circuit.state(Instant::now()), CircuitState::Closed);
        assert!(exposition(&metrics).contains(
            r#"keel_integration_circuit_open{interface="tpp-style",practice="Y90001"} 0"#
        ));
        assert!(read(&system).await.is_err());
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert_eq!(reason(read(&system).await), "answered HTTP 503");
        assert_eq!(system.circuit.state(Instant::now()), CircuitState::Open);
        assert_eq!(scripted.requests.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn a_probe_is_guarded_as_a_read_and_counted_as_a_probe() {
        let script = vec![
            (Duration::ZERO, down("could not connect")),
            (Duration::ZERO, Ok(())),
            (Duration::ZERO, down("answered HTTP 503")),
        ];
        let (system, scripted, metrics) =
            guarded(script, Duration::from_secs(1), policy(1, 60_000));
        assert_eq!(
            system.probe(&ctx()).await,
            Ok(Some(vec![Operation::ReadProblems])),
            "asked once more after an early transport failure"
        );
        assert_eq!(reason(system.probe(&ctx()).await), "answered HTTP 503");
        assert!(reason(system.probe(&ctx()).await).starts_with("circuit open"));
        assert_eq!(scripted.requests.load(Ordering::SeqCst), 3);
        let text = exposition(&metrics);
        for outcome in ["ok", "unavailable", "circuit-open"] {
            let line = format!(
                r#"keel_integration_calls_total{{interface="tpp-style",operation="probe",outcome="{outcome}",practice="Y90001"}} 1"#
            );
            assert!(text.contains(&line), "{line} missing from {text}");
        }
    }

    #[tokio::test]
    async fn a_read_that_failed_early_in_the_transport_is_asked_once_more() {
        let script = vec![
            (Duration::ZERO, down("could not connect")),
            (Duration::ZERO, Ok(())),
        ];
        let (system, scripted, _) = guarded(script, Duration::from_secs(1), policy(5, 1_000));
        assert!(read(&system).await.is_ok());
        assert_eq!(scripted.requests.load(Ordering::SeqCst), 2);
        assert_eq!(system.circuit.state(Instant::now()), CircuitState::Closed);
    }

    #[tokio::test]
    async fn a_status_a_timeout_or_a_late_failure_is_not_retried() {
        for (delay, answer) in [
            (0, down("answered HTTP 503")),
            (0, down("no answer within 200 ms")),
            // Failed early in the transport, but with less than half the budget left.
            (120, down("the connection closed before an answer")),
        ] {
            let script = vec![
                (Duration::from_millis(delay), answer),
                (Duration::ZERO, Ok(())),
            ];
            let (system, scripted, _) =
                guarded(script, Duration::from_millis(200), policy(5, 1_000));
            assert!(read(&system).await.is_err());
            assert_eq!(scripted.requests.load(Ordering::SeqCst), 1);
        }
    }

    #[tokio::test]
    async fn writes_are_never_retried() {
        let script = vec![
            (Duration::ZERO, down("could not connect")),
            (Duration::ZERO, Ok(())),
        ];
        let (system, scripted, _) = guarded(script, Duration::from_secs(1), policy(5, 1_000));
        assert_eq!(
            reason(system.create_task(&ctx(), &task()).await),
            "could not connect"
        );
        assert_eq!(scripted.requests.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_read_is_cut_off_at_the_connection_budget() {
        let script = vec![(Duration::from_secs(5), Ok(()))];
        let (system, _, _) = guarded(script, Duration::from_millis(100), policy(5, 1_000));
        let started = Instant::now();
        assert_eq!(reason(read(&system).await), "no answer within 100 ms");
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    /// A log writer into a shared buffer.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn every_call_is_traced_with_its_labels_and_no_patient_identifier() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let script = vec![
            (Duration::ZERO, Ok(())),
            (Duration::ZERO, down("answered HTTP 503")),
        ];
        let (system, _, _) = guarded(script, Duration::from_secs(1), policy(5, 1_000));
        let nhs = NhsNumber::parse(NHS).expect("valid");
        assert_eq!(system.find_patient(&ctx(), nhs).await, Ok(None));
        assert!(read(&system).await.is_err());
        let text = String::from_utf8(captured.0.lock().expect("lock").clone()).expect("utf-8");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        for (line, operation, outcome) in [
            (lines[0], "find-patient", "not-found"),
            (lines[1], "read-problems", "unavailable"),
        ] {
            for field in [
                TRACE_TARGET.to_string(),
                "correlation_id=\"corr-42\"".into(),
                "practice=\"Y90001\"".into(),
                "interface=\"tpp-style\"".into(),
                format!("operation=\"{operation}\""),
                format!("outcome=\"{outcome}\""),
                "latency_ms=".into(),
            ] {
                assert!(line.contains(&field), "{field} missing from {line}");
            }
        }
        assert!(!text.contains(NHS), "{text}");
        assert!(!text.contains("p-1"), "{text}");
    }
}
