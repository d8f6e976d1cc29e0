//! Practice connections: how Keel reaches one practice (its clinical system, the interfaces
//! enabled there, their endpoints, versions and timeouts, local configuration), and the
//! capability profile that follows from it.
//!
//! What each interface can do is fixed by the interface ([`offered_by`]); which interface
//! serves an operation follows one preference order ([`preference`]): the supplier's own API
//! for reads and record writes (richer content, idempotent writes where the supplier has
//! them), GP Connect for appointments (the national standard) and as the fallback for reads.
//!
//! Configuration says which interfaces are enabled and which operations are switched off;
//! where an interface can be asked what it offers (GP Connect's CapabilityStatement), its last
//! [`Probe`] narrows that further: an operation the probe did not offer is skipped on that
//! interface, with a reason naming the probe, and the next interface in the preference order is
//! tried. An interface never probed (or that cannot be) is routed by configuration alone.

use std::collections::BTreeMap;

use keel_model::OdsCode;
use serde::{Deserialize, Serialize};

use super::capability::{CapabilityProfile, Interface, Operation, OperationRoute, Probe, Support};

/// The clinical system a practice runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClinicalSystem {
    EmisStyle,
    TppStyle,
}

impl ClinicalSystem {
    /// The supplier's own interface.
    pub fn supplier_interface(self) -> Interface {
        match self {
            ClinicalSystem::EmisStyle => Interface::EmisStyle,
            ClinicalSystem::TppStyle => Interface::TppStyle,
        }
    }
}

/// One interface at one practice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfaceConnection {
    pub interface: Interface,
    /// The interface's base URL at this practice (`http://` or `https://`).
    pub base_url: String,
    pub enabled: bool,
    /// The interface version the practice runs (e.g. GP Connect `1.6.2`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The longest Keel waits for one call, in milliseconds.
    pub timeout_ms: u64,
    /// Operations the practice has switched off on this interface.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disabled_operations: Vec<Operation>,
}

/// How Keel reaches one practice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PracticeConnection {
    pub ods: OdsCode,
    pub name: String,
    pub system: ClinicalSystem,
    pub interfaces: Vec<InterfaceConnection>,
    /// Practice-specific settings Keel passes through (e.g. the provider ASID for GP Connect).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub local_configuration: BTreeMap<String, String>,
}

/// Why a connection cannot be registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectionError {
    #[error("the practice name is empty")]
    EmptyName,
    #[error("{} is listed more than once", .0.key())]
    DuplicateInterface(Interface),
    #[error("a {} practice cannot be reached through the {} interface", system_name(*.system), .interface.key())]
    WrongSupplier {
        system: ClinicalSystem,
        interface: Interface,
    },
    #[error("PDS is a national service, not a practice interface")]
    NotAPracticeInterface,
    #[error("the {} base URL must start with http:// or https://", .0.key())]
    BadUrl(Interface),
    #[error("the {} timeout must be between 1 and 120000 ms", .0.key())]
    BadTimeout(Interface),
}

fn system_name(system: ClinicalSystem) -> &'static str {
    match system {
        ClinicalSystem::EmisStyle => "EMIS-style",
        ClinicalSystem::TppStyle => "TPP-style",
    }
}

/// The operations `interface` can carry at all.
pub fn offered_by(interface: Interface) -> &'static [Operation] {
    use Operation::*;
    match interface {
        Interface::GpConnect => &[
            FindPatient,
            ReadProblems,
            ReadMedications,
            ReadAllergies,
            ReadObservations,
            ReadImmunisations,
            ReadConsultations,
            SearchFreeSlots,
            BookAppointment,
            CancelAppointment,
        ],
        Interface::EmisStyle | Interface::TppStyle => &[
            FindPatient,
            ReadProblems,
            ReadMedications,
            ReadAllergies,
            ReadObservations,
            ReadImmunisations,
            ReadConsultations,
            ReadDocuments,
            CreateTask,
            AddEntry,
            AttachDocument,
        ],
        Interface::Pds => &[],
    }
}

/// Limits a caller should know, per interface and operation.
fn limits(interface: Interface, operation: Operation) -> Vec<String> {
    match (interface, operation) {
        (Interface::GpConnect, Operation::SearchFreeSlots) => {
            vec!["search window at most 14 days".into()]
        }
        (Interface::GpConnect, Operation::BookAppointment) => {
            vec!["not for S-flag (restricted) patients".into()]
        }
        _ => Vec::new(),
    }
}

/// The interfaces that may serve `operation` at a practice on `system`, best first.
pub fn preference(system: ClinicalSystem, operation: Operation) -> Vec<Interface> {
    let supplier = system.supplier_interface();
    match operation {
        Operation::SearchFreeSlots | Operation::BookAppointment | Operation::CancelAppointment => {
            vec![Interface::GpConnect]
        }
        Operation::CreateTask | Operation::AddEntry | Operation::AttachDocument => vec![supplier],
        _ => vec![supplier, Interface::GpConnect],
    }
}

impl PracticeConnection {
    /// Checks the connection can be used.
    ///
    /// # Errors
    /// The first problem found.
    pub fn validate(&self) -> Result<(), ConnectionError> {
        if self.name.trim().is_empty() {
            return Err(ConnectionError::EmptyName);
        }
        for (i, c) in self.interfaces.iter().enumerate() {
            if self.interfaces[..i]
                .iter()
                .any(|o| o.interface == c.interface)
            {
                return Err(ConnectionError::DuplicateInterface(c.interface));
            }
            match c.interface {
                Interface::Pds => return Err(ConnectionError::NotAPracticeInterface),
                Interface::GpConnect => {}
                other if other != self.system.supplier_interface() => {
                    return Err(ConnectionError::WrongSupplier {
                        system: self.system,
                        interface: other,
                    });
                }
                _ => {}
            }
            if !(c.base_url.starts_with("http://") || c.base_url.starts_with("https://")) {
                return Err(ConnectionError::BadUrl(c.interface));
            }
            if !(1..=120_000).contains(&c.timeout_ms) {
                return Err(ConnectionError::BadTimeout(c.interface));
            }
        }
        Ok(())
    }

    /// The interface connection for `interface`, if configured.
    pub fn interface(&self, interface: Interface) -> Option<&InterfaceConnection> {
        self.interfaces.iter().find(|c| c.interface == interface)
    }

    /// The capability profile from configuration alone: for every operation, the interface
    /// that serves it, or why none does.
    pub fn capability_profile(&self) -> CapabilityProfile {
        self.capability_profile_with(&[])
    }

    /// The capability profile from configuration and `probes` (see the module docs): an
    /// interface whose probe does not offer an operation is skipped for it.
    pub fn capability_profile_with(&self, probes: &[Probe]) -> CapabilityProfile {
        let operations = Operation::ALL
            .into_iter()
            .map(|operation| OperationRoute {
                operation,
                support: self.support(operation, probes),
            })
            .collect();
        CapabilityProfile {
            practice: self.ods.clone(),
            operations,
        }
    }

    fn support(&self, operation: Operation, probes: &[Probe]) -> Support {
        let mut reasons = Vec::new();
        for interface in preference(self.system, operation) {
            if !offered_by(interface).contains(&operation) {
                continue;
            }
            let Some(connection) = self.interface(interface) else {
                reasons.push(format!("{} is not configured", interface.key()));
                continue;
            };
            if !connection.enabled {
                reasons.push(format!("{} is disabled at this practice", interface.key()));
            } else if connection.disabled_operations.contains(&operation) {
                reasons.push(format!(
                    "{} is switched off on {} at this practice",
                    operation.key(),
                    interface.key()
                ));
            } else if let Some(probe) = probes
                .iter()
                .find(|p| p.interface == interface)
                .filter(|p| !p.offered.contains(&operation))
            {
                reasons.push(format!(
                    "{} does not offer it (asked {})",
                    probe.source(),
                    probe.probed_at
                ));
            } else {
                return Support::Supported {
                    interface,
                    limits: limits(interface, operation),
                };
            }
        }
        let reason = if reasons.is_empty() {
            "no interface offers it".to_string()
        } else {
            reasons.join("; ")
        };
        Support::NotSupported { reason }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn interface(interface: Interface, enabled: bool) -> InterfaceConnection {
        InterfaceConnection {
            interface,
            base_url: "http://127.0.0.1:9200".into(),
            enabled,
            version: None,
            timeout_ms: 2_000,
            disabled_operations: Vec::new(),
        }
    }

    fn emis_practice() -> PracticeConnection {
        PracticeConnection {
            ods: OdsCode::parse("Y90001").expect("valid"),
            name: "Riverside Surgery".into(),
            system: ClinicalSystem::EmisStyle,
            interfaces: vec![
                interface(Interface::EmisStyle, true),
                interface(Interface::GpConnect, true),
            ],
            local_configuration: BTreeMap::new(),
        }
    }

    #[test]
    fn reads_prefer_the_supplier_and_appointments_go_through_gp_connect() {
        let profile = emis_practice().capability_profile();
        assert_eq!(
            profile.route(Operation::ReadMedications),
            Ok(Interface::EmisStyle)
        );
        assert_eq!(
            profile.route(Operation::BookAppointment),
            Ok(Interface::GpConnect)
        );
        assert_eq!(profile.route(Operation::AddEntry), Ok(Interface::EmisStyle));
    }

    #[test]
    fn reads_fall_back_to_gp_connect_when_the_supplier_api_is_disabled() {
        let mut practice = emis_practice();
        practice.interfaces[0].enabled = false;
        let profile = practice.capability_profile();
        assert_eq!(
            profile.route(Operation::ReadProblems),
            Ok(Interface::GpConnect)
        );
        let err = profile.route(Operation::CreateTask).expect_err("no route");
        assert!(err.to_string().contains("emis-style is disabled"), "{err}");
        assert!(profile.route(Operation::ReadDocuments).is_err());
    }

    #[test]
    fn a_disabled_interface_refuses_appointments_naming_why() {
        let mut practice = emis_practice();
        practice.interfaces[1].enabled = false;
        let err = practice
            .capability_profile()
            .route(Operation::SearchFreeSlots)
            .expect_err("no route");
        let text = err.to_string();
        assert!(text.contains("search-free-slots"), "{text}");
        assert!(text.contains("gp-connect is disabled"), "{text}");
    }

    #[test]
    fn a_switched_off_operation_is_not_routed() {
        let mut practice = emis_practice();
        practice.interfaces[1].disabled_operations = vec![Operation::BookAppointment];
        let profile = practice.capability_profile();
        assert!(profile.route(Operation::BookAppointment).is_err());
        assert_eq!(
            profile.route(Operation::SearchFreeSlots),
            Ok(Interface::GpConnect)
        );
    }

    fn gp_connect_probe(offered: Vec<Operation>) -> Probe {
        Probe {
            interface: Interface::GpConnect,
            offered,
            probed_at: keel_model::Instant::parse("2026-01-05T09:30:00Z").expect("valid"),
        }
    }

    #[test]
    fn an_operation_the_probe_does_not_offer_is_refused_naming_the_probe() {
        let practice = emis_practice();
        let without_appointments = gp_connect_probe(vec![
            Operation::FindPatient,
            Operation::ReadProblems,
            Operation::ReadMedications,
        ]);
        let profile = practice.capability_profile_with(&[without_appointments]);
        let err = profile
            .route(Operation::BookAppointment)
            .expect_err("not offered");
        let text = err.to_string();
        assert!(
            text.contains("the gp-connect CapabilityStatement does not offer it"),
            "{text}"
        );
        assert!(text.contains("2026-01-05T09:30:00Z"), "{text}");
        // The supplier API was not probed: configuration alone routes it.
        assert_eq!(
            profile.route(Operation::ReadAllergies),
            Ok(Interface::EmisStyle)
        );
        // Unprobed, the same configuration routes booking to GP Connect.
        assert_eq!(
            practice
                .capability_profile_with(&[])
                .route(Operation::BookAppointment),
            Ok(Interface::GpConnect)
        );
    }

    #[test]
    fn a_read_the_probe_does_not_offer_falls_through_to_the_next_interface() {
        let mut practice = emis_practice();
        practice.interfaces[0].enabled = false;
        let offered_nothing = gp_connect_probe(vec![]);
        let profile = practice.capability_profile_with(&[offered_nothing]);
        let err = profile
            .route(Operation::ReadProblems)
            .expect_err("no route left");
        let text = err.to_string();
        assert!(text.contains("emis-style is disabled"), "{text}");
        assert!(
            text.contains("CapabilityStatement does not offer it"),
            "{text}"
        );

        let mut tpp = emis_practice();
        tpp.system = ClinicalSystem::TppStyle;
        tpp.interfaces[0].interface = Interface::TppStyle;
        let offering_reads = gp_connect_probe(vec![Operation::ReadProblems]);
        assert_eq!(
            tpp.capability_profile_with(&[offering_reads])
                .route(Operation::ReadProblems),
            Ok(Interface::TppStyle)
        );
    }

    #[test]
    fn a_probe_cannot_add_what_configuration_switched_off() {
        let mut practice = emis_practice();
        practice.interfaces[1].disabled_operations = vec![Operation::SearchFreeSlots];
        let everything = gp_connect_probe(Operation::ALL.to_vec());
        let profile = practice.capability_profile_with(&[everything]);
        assert!(profile.route(Operation::SearchFreeSlots).is_err());
        assert_eq!(
            profile.route(Operation::BookAppointment),
            Ok(Interface::GpConnect)
        );
        assert_eq!(
            profile.route(Operation::ReadDocuments),
            Ok(Interface::EmisStyle)
        );
    }

    #[test]
    fn validation_refuses_what_cannot_work() {
        assert_eq!(emis_practice().validate(), Ok(()));
        let mut wrong = emis_practice();
        wrong.interfaces.push(interface(Interface::TppStyle, true));
        assert!(matches!(
            wrong.validate(),
            Err(ConnectionError::WrongSupplier { .. })
        ));
        let mut twice = emis_practice();
        twice.interfaces.push(interface(Interface::GpConnect, true));
        assert_eq!(
            twice.validate(),
            Err(ConnectionError::DuplicateInterface(Interface::GpConnect))
        );
        let mut url = emis_practice();
        url.interfaces[0].base_url = "ftp://x".into();
        assert_eq!(
            url.validate(),
            Err(ConnectionError::BadUrl(Interface::EmisStyle))
        );
        let mut timeout = emis_practice();
        timeout.interfaces[0].timeout_ms = 0;
        assert_eq!(
            timeout.validate(),
            Err(ConnectionError::BadTimeout(Interface::EmisStyle))
        );
    }

    #[test]
    fn connections_round_trip_as_json() {
        let practice = emis_practice();
        let json = serde_json::to_value(&practice).expect("serialise");
        assert_eq!(json["system"], "emis-style");
        assert_eq!(json["interfaces"][0]["interface"], "emis-style");
        let back: PracticeConnection = serde_json::from_value(json).expect("deserialise");
        assert_eq!(back, practice);
    }
}
