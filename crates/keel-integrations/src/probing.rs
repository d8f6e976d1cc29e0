//! What probing a practice's interfaces found, kept with the practice: the last successful
//! [`Probe`] of each interface that can be asked, and the interfaces whose last probe failed.
//!
//! A failed probe never loses what an earlier one found: the earlier probe stays in force (the
//! interface said it offered that, and nothing since says otherwise) and the failure is kept
//! beside it until a later probe of that interface succeeds. An interface that says it cannot
//! be asked has no probe: it is routed by configuration alone.

use keel_core::integration::{IntegrationError, Interface, Operation, Probe};
use keel_model::Instant;
use serde::Serialize;

/// A probe of one interface that failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProbeFailure {
    pub interface: Interface,
    pub failed_at: Instant,
    /// Why, in words safe to show (no patient is involved in a probe).
    pub reason: String,
}

/// What probing one practice found (see the module docs).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ProbeStatus {
    /// The last successful probe of each interface, by interface.
    pub probes: Vec<Probe>,
    /// The interfaces whose last probe failed, by interface.
    pub failures: Vec<ProbeFailure>,
}

/// One interface's answer to a probe.
pub type ProbeAnswer = (Interface, Result<Option<Vec<Operation>>, IntegrationError>);

impl ProbeStatus {
    /// The status after `answers`, all asked at `at`.
    #[must_use]
    pub fn after(&self, answers: Vec<ProbeAnswer>, at: &Instant) -> ProbeStatus {
        let mut next = self.clone();
        for (interface, answer) in answers {
            next.failures.retain(|f| f.interface != interface);
            match answer {
                Ok(offered) => {
                    next.probes.retain(|p| p.interface != interface);
                    if let Some(offered) = offered {
                        next.probes.push(Probe {
                            interface,
                            offered,
                            probed_at: at.clone(),
                        });
                    }
                }
                Err(e) => next.failures.push(ProbeFailure {
                    interface,
                    failed_at: at.clone(),
                    reason: e.to_string(),
                }),
            }
        }
        next.probes.sort_by_key(|p| p.interface);
        next.failures.sort_by_key(|f| f.interface);
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_model::OdsCode;

    fn at(text: &str) -> Instant {
        Instant::parse(text).expect("valid")
    }

    fn down() -> IntegrationError {
        IntegrationError::Unavailable {
            practice: OdsCode::parse("Y90001").expect("valid"),
            reason: "could not connect".into(),
        }
    }

    #[test]
    fn a_failed_probe_keeps_the_previous_result_and_says_so() {
        let first = ProbeStatus::default().after(
            vec![
                (Interface::GpConnect, Ok(Some(vec![Operation::FindPatient]))),
                (Interface::EmisStyle, Ok(None)),
            ],
            &at("2026-01-05T09:00:00Z"),
        );
        assert_eq!(first.probes.len(), 1);
        assert_eq!(first.probes[0].offered, [Operation::FindPatient]);
        assert!(first.failures.is_empty());

        let failed = first.after(
            vec![(Interface::GpConnect, Err(down()))],
            &at("2026-01-05T10:00:00Z"),
        );
        assert_eq!(failed.probes, first.probes);
        assert_eq!(failed.failures.len(), 1);
        assert!(failed.failures[0].reason.contains("could not connect"));

        let recovered = failed.after(
            vec![(Interface::GpConnect, Ok(Some(vec![])))],
            &at("2026-01-05T11:00:00Z"),
        );
        assert!(recovered.failures.is_empty());
        assert_eq!(recovered.probes[0].offered, []);
        assert_eq!(recovered.probes[0].probed_at, at("2026-01-05T11:00:00Z"));
    }

    #[test]
    fn an_interface_that_cannot_be_asked_drops_its_probe() {
        let probed = ProbeStatus::default().after(
            vec![(Interface::GpConnect, Ok(Some(vec![Operation::FindPatient])))],
            &at("2026-01-05T09:00:00Z"),
        );
        let unaskable = probed.after(
            vec![(Interface::GpConnect, Ok(None))],
            &at("2026-01-05T10:00:00Z"),
        );
        assert_eq!(unaskable, ProbeStatus::default());
    }
}
