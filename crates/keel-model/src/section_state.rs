//! What is known about one section of a record (problems, medications, allergies, ...).
//!
//! "Nothing recorded", "withheld", "source unavailable" and "the call failed" are different
//! facts with different clinical meaning, so each is its own value; none of them is ever an
//! empty list.

use serde::{Deserialize, Serialize};

use crate::Coding;

/// The FHIR R4 code system for `List.emptyReason`.
pub const LIST_EMPTY_REASON_SYSTEM: &str =
    "http://terminology.hl7.org/CodeSystem/list-empty-reason";

/// The state of one record section, reported alongside (or instead of) its entries.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum SectionState {
    /// The source returned entries for this section.
    Recorded,
    /// The source was asked and holds nothing for this section.
    NothingRecorded,
    /// The source holds entries it will not share (confidentiality, patient preference,
    /// exclusion set).
    Withheld {
        /// Why, in words safe to show a clinician.
        reason: String,
    },
    /// The source could not be asked for this section: it does not offer it, or the practice
    /// could not be reached at all (offline, circuit open).
    Unavailable {
        /// Why, in words safe to show a clinician.
        reason: String,
    },
    /// The practice answered (the patient was found there) but the call for this section failed
    /// or timed out: asking again may give it.
    Failed {
        /// Why, in words safe to show a clinician.
        reason: String,
    },
}

impl SectionState {
    /// The `List.emptyReason` code from [`LIST_EMPTY_REASON_SYSTEM`]; `None` for
    /// [`SectionState::Recorded`], whose list has entries.
    ///
    /// UK Core also defines `no-content-recorded` (`UKCore-ListEmptyReasonCode`); the FHIR core
    /// `nilknown` is used here so any R4 client understands it. R4 has no code for a failed
    /// call: [`SectionState::Failed`] is `unavailable` too, and its reason says what failed.
    pub fn empty_reason_code(&self) -> Option<&'static str> {
        match self {
            Self::Recorded => None,
            Self::NothingRecorded => Some("nilknown"),
            Self::Withheld { .. } => Some("withheld"),
            Self::Unavailable { .. } | Self::Failed { .. } => Some("unavailable"),
        }
    }

    /// The `List.emptyReason` coding with its R4 display; `None` for [`SectionState::Recorded`].
    pub fn empty_reason(&self) -> Option<Coding> {
        let display = match self {
            Self::Recorded => return None,
            Self::NothingRecorded => "Nil Known",
            Self::Withheld { .. } => "Information Withheld",
            Self::Unavailable { .. } | Self::Failed { .. } => "Unavailable",
        };
        let code = self.empty_reason_code()?;
        Some(Coding::new(LIST_EMPTY_REASON_SYSTEM, code).with_display(display))
    }

    /// The reason given for a withheld, unavailable or failed section.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Self::Withheld { reason } | Self::Unavailable { reason } | Self::Failed { reason } => {
                Some(reason)
            }
            Self::Recorded | Self::NothingRecorded => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_states() -> [SectionState; 5] {
        [
            SectionState::Recorded,
            SectionState::NothingRecorded,
            SectionState::Withheld {
                reason: "patient preference".into(),
            },
            SectionState::Unavailable {
                reason: "practice system offline".into(),
            },
            SectionState::Failed {
                reason: "no answer within 2000 ms".into(),
            },
        ]
    }

    #[test]
    fn maps_to_r4_empty_reason_codes() {
        let codes: Vec<_> = all_states()
            .iter()
            .map(SectionState::empty_reason_code)
            .collect();
        assert_eq!(
            codes,
            [
                None,
                Some("nilknown"),
                Some("withheld"),
                Some("unavailable"),
                Some("unavailable")
            ]
        );
    }

    #[test]
    fn empty_reason_coding_uses_list_empty_reason_system() {
        let coding = SectionState::NothingRecorded
            .empty_reason()
            .expect("has empty reason");
        assert_eq!(coding.system, LIST_EMPTY_REASON_SYSTEM);
        assert_eq!(coding.code, "nilknown");
        assert_eq!(coding.display.as_deref(), Some("Nil Known"));
        assert_eq!(SectionState::Recorded.empty_reason(), None);
    }

    #[test]
    fn states_are_distinct_and_keep_reasons() {
        let states = all_states();
        for (i, a) in states.iter().enumerate() {
            for b in &states[i + 1..] {
                assert_ne!(a, b);
                assert_ne!(serde_json::to_value(a).ok(), serde_json::to_value(b).ok());
            }
        }
        assert_eq!(states[2].reason(), Some("patient preference"));
        assert_eq!(states[3].reason(), Some("practice system offline"));
        assert_eq!(states[4].reason(), Some("no answer within 2000 ms"));
        assert_eq!(states[1].reason(), None);
    }

    #[test]
    fn serde_is_tagged_and_round_trips() {
        for state in all_states() {
            let json = serde_json::to_value(&state).expect("serialise");
            assert!(json.is_object(), "{json}");
            assert_eq!(
                serde_json::from_value::<SectionState>(json).expect("deserialise"),
                state
            );
        }
        assert_eq!(
            serde_json::to_value(SectionState::Withheld {
                reason: "confidential".into()
            })
            .expect("serialise"),
            serde_json::json!({"state": "withheld", "reason": "confidential"})
        );
    }
}
