//! Codes from terminologies (FHIR `Coding` and `CodeableConcept`), kept exactly as the source
//! sent them, with any translation Keel adds held beside the original rather than in its place.

use serde::{Deserialize, Serialize};

/// A code from a code system, as received from its source.
///
/// `system`, `code`, `display` and `version` are stored verbatim: no trimming, case folding or
/// re-labelling with a preferred term. Serialises with FHIR's element names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Coding {
    /// URI of the code system, usually one of the constants in [`systems`].
    pub system: String,
    /// The code within that system.
    pub code: String,
    /// The text the source showed for the code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
    /// The code system version the source used (for SNOMED CT, an edition/version URI).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Whether the source sent this coding or Keel derived it.
    #[serde(default, skip_serializing_if = "CodingOrigin::is_source")]
    pub origin: CodingOrigin,
}

/// Where a [`Coding`] came from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CodingOrigin {
    /// Sent by the source system exactly as stored.
    #[default]
    Source,
    /// Derived by Keel (for example a Read v2 → SNOMED CT map) and kept beside the original.
    Translated,
}

impl CodingOrigin {
    /// True for [`CodingOrigin::Source`].
    pub fn is_source(&self) -> bool {
        matches!(self, Self::Source)
    }
}

impl Coding {
    /// A coding received from a source, with no display or version.
    pub fn new(system: impl Into<String>, code: impl Into<String>) -> Self {
        Self {
            system: system.into(),
            code: code.into(),
            display: None,
            version: None,
            origin: CodingOrigin::Source,
        }
    }

    /// Sets the display text.
    pub fn with_display(mut self, display: impl Into<String>) -> Self {
        self.display = Some(display.into());
        self
    }

    /// Sets the code system version.
    pub fn with_version(mut self, version: impl Into<String>) -> Self {
        self.version = Some(version.into());
        self
    }

    /// True when this coding is in `system` with `code` (exact, case-sensitive comparison).
    pub fn is(&self, system: &str, code: &str) -> bool {
        self.system == system && self.code == code
    }
}

/// A concept expressed by one or more codings and/or free text.
///
/// Codings are only ever added: [`CodeableConcept::add_translation`] appends a derived coding
/// marked [`CodingOrigin::Translated`] and leaves every original untouched.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CodeableConcept {
    /// The codings, originals and translations, in the order they were added.
    #[serde(rename = "coding", default, skip_serializing_if = "Vec::is_empty")]
    codings: Vec<Coding>,
    /// The text the source gave for the concept as a whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

impl CodeableConcept {
    /// A concept carrying one coding, as received.
    pub fn from_coding(coding: Coding) -> Self {
        Self {
            codings: vec![coding],
            text: None,
        }
    }

    /// A concept known only by its text (no code was sent).
    pub fn from_text(text: impl Into<String>) -> Self {
        Self {
            codings: Vec::new(),
            text: Some(text.into()),
        }
    }

    /// Adds a further coding exactly as given (its `origin` is kept).
    pub fn with_coding(mut self, coding: Coding) -> Self {
        self.codings.push(coding);
        self
    }

    /// Sets the concept's text.
    pub fn with_text(mut self, text: impl Into<String>) -> Self {
        self.text = Some(text.into());
        self
    }

    /// Appends a coding derived by Keel, marking it [`CodingOrigin::Translated`].
    ///
    /// The originals stay in place; an identical coding already present is not duplicated.
    pub fn add_translation(&mut self, mut coding: Coding) {
        coding.origin = CodingOrigin::Translated;
        if !self
            .codings
            .iter()
            .any(|c| c.is(&coding.system, &coding.code))
        {
            self.codings.push(coding);
        }
    }

    /// All codings, originals and translations, in insertion order.
    pub fn codings(&self) -> &[Coding] {
        &self.codings
    }

    /// The codings the source sent.
    pub fn originals(&self) -> impl Iterator<Item = &Coding> {
        self.codings.iter().filter(|c| c.origin.is_source())
    }

    /// The codings Keel derived.
    pub fn translations(&self) -> impl Iterator<Item = &Coding> {
        self.codings.iter().filter(|c| !c.origin.is_source())
    }

    /// The first coding in `system`, preferring an original over a translation.
    pub fn coding_in(&self, system: &str) -> Option<&Coding> {
        self.originals()
            .chain(self.translations())
            .find(|c| c.system == system)
    }

    /// True when any coding (original or translated) is `system`/`code`.
    pub fn has(&self, system: &str, code: &str) -> bool {
        self.codings.iter().any(|c| c.is(system, code))
    }
}

/// Code system URIs for the terminologies Keel meets in English primary care.
pub mod systems {
    /// SNOMED CT (all editions; the edition and release go in `Coding.version`).
    pub const SNOMED_CT: &str = "http://snomed.info/sct";
    /// Dictionary of medicines and devices, as UK Core recommends for `Medication.code`.
    ///
    /// dm+d ids are also SNOMED CT ids and GP systems often send them under [`SNOMED_CT`];
    /// keep whichever was received and match on the code.
    pub const DMD: &str = "https://dmd.nhs.uk";
    /// Read codes version 2 (legacy, 5-byte).
    pub const READ_V2: &str = "http://read.info/readv2";
    /// Clinical Terms Version 3 (legacy Read v3, used by TPP SystmOne).
    pub const CTV3: &str = "http://read.info/ctv3";
    /// LOINC.
    pub const LOINC: &str = "http://loinc.org";
    /// Unified Code for Units of Measure.
    pub const UCUM: &str = "http://unitsofmeasure.org";
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_v2_asthma() -> Coding {
        Coding::new(systems::READ_V2, "H33..").with_display("asthma")
    }

    fn snomed_asthma() -> Coding {
        Coding::new(systems::SNOMED_CT, "195967001").with_display("Asthma")
    }

    #[test]
    fn keeps_original_exactly() {
        let coding = Coding::new(systems::READ_V2, " h33.. ").with_display("  asthma NOS");
        assert_eq!(coding.code, " h33.. ");
        assert_eq!(coding.display.as_deref(), Some("  asthma NOS"));
        assert!(coding.origin.is_source());
    }

    #[test]
    fn translation_sits_beside_original() {
        let mut concept = CodeableConcept::from_coding(read_v2_asthma()).with_text("Asthma");
        concept.add_translation(snomed_asthma());

        let originals: Vec<_> = concept.originals().collect();
        assert_eq!(originals, [&read_v2_asthma()]);
        let translations: Vec<_> = concept.translations().collect();
        assert_eq!(translations.len(), 1);
        assert_eq!(translations[0].origin, CodingOrigin::Translated);
        assert!(concept.has(systems::SNOMED_CT, "195967001"));
        assert_eq!(concept.codings().len(), 2);
    }

    #[test]
    fn translation_already_sent_by_source_is_not_duplicated() {
        let mut concept = CodeableConcept::from_coding(snomed_asthma());
        concept.add_translation(snomed_asthma());
        assert_eq!(concept.codings(), [snomed_asthma()]);
    }

    #[test]
    fn coding_in_prefers_original() {
        let translated = Coding {
            origin: CodingOrigin::Translated,
            ..Coding::new(systems::SNOMED_CT, "1")
        };
        let concept = CodeableConcept::default()
            .with_coding(translated)
            .with_coding(snomed_asthma());
        assert_eq!(
            concept.coding_in(systems::SNOMED_CT),
            Some(&snomed_asthma())
        );
        assert_eq!(concept.coding_in(systems::CTV3), None);
    }

    #[test]
    fn serialises_with_fhir_names_and_marks_only_translations() {
        let mut concept = CodeableConcept::from_coding(read_v2_asthma());
        concept.add_translation(snomed_asthma());
        let json = serde_json::to_value(&concept).expect("serialise");
        assert_eq!(
            json,
            serde_json::json!({
                "coding": [
                    {"system": "http://read.info/readv2", "code": "H33..", "display": "asthma"},
                    {"system": "http://snomed.info/sct", "code": "195967001", "display": "Asthma",
                     "origin": "translated"}
                ]
            })
        );
        let back: CodeableConcept = serde_json::from_value(json).expect("deserialise");
        assert_eq!(back, concept);
    }

    #[test]
    fn text_only_concept() {
        let concept = CodeableConcept::from_text("Feeling tired");
        assert!(concept.codings().is_empty());
        assert_eq!(concept.text.as_deref(), Some("Feeling tired"));
    }
}
