//! Where a clinical item came from: every item Keel returns or persists carries one.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{Instant, OdsCode};

/// The kind of system an item was obtained from.
///
/// Names describe the integration route, not a supplier product, so supplier specifics stay in
/// the adapters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceSystem {
    /// An EMIS-style GP clinical system reached through its own interface.
    EmisStyle,
    /// A TPP-style GP clinical system reached through its own interface.
    TppStyle,
    /// A GP practice reached through GP Connect.
    GpConnect,
    /// The Personal Demographics Service.
    Pds,
    /// Keel's own store, where Keel is the system of record.
    Keel,
}

impl SourceSystem {
    /// The stable name used in serialised form and audit, e.g. `gp-connect`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::EmisStyle => "emis-style",
            Self::TppStyle => "tpp-style",
            Self::GpConnect => "gp-connect",
            Self::Pds => "pds",
            Self::Keel => "keel",
        }
    }
}

impl fmt::Display for SourceSystem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The origin of one clinical item.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Provenance {
    /// ODS code of the organisation that holds the item: the registered practice for GP data,
    /// NHS England (`X26`) for PDS, the deploying organisation for Keel's own records.
    pub source_organisation: OdsCode,
    /// The system the item was obtained from.
    pub source_system: SourceSystem,
    /// When the item was recorded at its source, if the source says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded: Option<Instant>,
    /// When Keel obtained the item from the source (absent for items Keel itself recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retrieved: Option<Instant>,
    /// Who recorded the item, as the source identifies them (e.g. a display name or SDS user id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// The item's status at the source as sent (e.g. `active`, `entered-in-error`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// The source's version of the item (e.g. a FHIR `meta.versionId` or an ETag), for
    /// detecting change and for optimistic concurrency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_version: Option<String>,
}

impl Provenance {
    /// Provenance naming only the holding organisation and system; add the rest with the
    /// `with_*` methods.
    pub fn new(source_organisation: OdsCode, source_system: SourceSystem) -> Self {
        Self {
            source_organisation,
            source_system,
            recorded: None,
            retrieved: None,
            author: None,
            status: None,
            source_version: None,
        }
    }

    /// Sets when the item was recorded at its source.
    pub fn with_recorded(mut self, recorded: Instant) -> Self {
        self.recorded = Some(recorded);
        self
    }

    /// Sets when Keel obtained the item.
    pub fn with_retrieved(mut self, retrieved: Instant) -> Self {
        self.retrieved = Some(retrieved);
        self
    }

    /// Sets who recorded the item.
    pub fn with_author(mut self, author: impl Into<String>) -> Self {
        self.author = Some(author.into());
        self
    }

    /// Sets the item's status at the source.
    pub fn with_status(mut self, status: impl Into<String>) -> Self {
        self.status = Some(status.into());
        self
    }

    /// Sets the source's version of the item.
    pub fn with_source_version(mut self, version: impl Into<String>) -> Self {
        self.source_version = Some(version.into());
        self
    }

    /// True when either a record or a retrieval time is known, as Keel requires of every item.
    pub fn is_timed(&self) -> bool {
        self.recorded.is_some() || self.retrieved.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn practice() -> OdsCode {
        OdsCode::parse("A81001").expect("valid")
    }

    fn at(text: &str) -> Instant {
        Instant::parse(text).expect("valid")
    }

    #[test]
    fn builder_fills_every_field() {
        let provenance = Provenance::new(practice(), SourceSystem::GpConnect)
            .with_recorded(at("2025-03-12T09:30:00Z"))
            .with_retrieved(at("2025-06-01T14:05:09+01:00"))
            .with_author("Dr A Example")
            .with_status("active")
            .with_source_version("3");
        assert!(provenance.is_timed());
        assert_eq!(
            serde_json::to_value(&provenance).expect("serialise"),
            serde_json::json!({
                "source_organisation": "A81001",
                "source_system": "gp-connect",
                "recorded": "2025-03-12T09:30:00Z",
                "retrieved": "2025-06-01T14:05:09+01:00",
                "author": "Dr A Example",
                "status": "active",
                "source_version": "3"
            })
        );
    }

    #[test]
    fn untimed_provenance_is_detectable() {
        assert!(!Provenance::new(practice(), SourceSystem::Keel).is_timed());
    }

    #[test]
    fn source_system_names_match_serde() {
        for system in [
            SourceSystem::EmisStyle,
            SourceSystem::TppStyle,
            SourceSystem::GpConnect,
            SourceSystem::Pds,
            SourceSystem::Keel,
        ] {
            assert_eq!(
                serde_json::to_value(system).expect("serialise"),
                serde_json::Value::from(system.as_str())
            );
            assert_eq!(system.to_string(), system.as_str());
        }
    }

    #[test]
    fn deserialise_validates_nested_types() {
        let bad_time = serde_json::json!({
            "source_organisation": "A81001",
            "source_system": "pds",
            "retrieved": "yesterday"
        });
        assert!(serde_json::from_value::<Provenance>(bad_time).is_err());
        let minimal = serde_json::json!({"source_organisation": "x26", "source_system": "pds"});
        let provenance: Provenance = serde_json::from_value(minimal).expect("valid");
        assert_eq!(provenance.source_organisation.as_str(), "X26");
    }
}
