//! The access policy applied to a patient's record read from their registered practice (the
//! clinician UI's record page): decided before anything is fetched — may the actor see this
//! patient, and which sections does their role read — and then applied to what came back:
//! sensitive entries the role, purpose or organisation may not see are withheld, and the
//! section says so.
//!
//! The patient is known by their registered practice (from PDS), not by a resource in Keel's
//! store, so the relationship is registration through the tenant PCN (care links held in the
//! store are not consulted here).

use super::FhirService;
use crate::audit::RequestAudit;
use crate::context::RequestContext;
use crate::error::FhirResult;
use crate::integration::{FederatedRecord, SectionContent};
use crate::policy::{Decision, Function, Policy, ReasonCode};
use keel_model::record::{RecordItem, RecordSection, Section, SectionWarning};
use keel_model::{CodeableConcept, OdsCode, SectionState};

/// Reasons that mean the role may never use break-glass (others, such as no details stated
/// yet, do not).
const BREAK_GLASS_NOT_OFFERED: [ReasonCode; 4] = [
    ReasonCode::NoRoleMapping,
    ReasonCode::FunctionNotGranted,
    ReasonCode::BreakGlassNotGranted,
    ReasonCode::BreakGlassPurposeNotAllowed,
];

const SNOMED_CT: &str = "http://snomed.info/sct";

/// Why a withheld sensitive entry is not shown, in words for the clinician.
pub const SENSITIVE_WITHHELD: &str = "Sensitive entries are withheld: the policy shows them only \
     at the patient's registered practice, for direct care.";

/// What the actor may see of one patient's record.
#[derive(Debug, Clone)]
pub struct RecordAccess {
    /// Who the patient is (demographics): without it nothing of the record is shown.
    pub demographics: Access,
    /// Each clinical section asked for, in the order asked.
    pub sections: Vec<(RecordSection, Access)>,
    /// Break-glass granted access this request would not otherwise have had.
    pub break_glass_in_force: bool,
    /// May the actor's role use break-glass at all (so a refusal may offer it)?
    pub break_glass_available: bool,
    /// SNOMED CT codes of the sensitive entries to withhold, by section.
    withheld_codes: Vec<(RecordSection, Vec<String>)>,
}

/// A permit, or a refusal with the reasons the actor may be shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    Permitted,
    Refused { reasons: Vec<ReasonCode> },
}

impl Access {
    fn of(decision: Option<&Decision>) -> Access {
        match decision {
            None => Access::Permitted,
            Some(d) if d.is_permit() => Access::Permitted,
            Some(d) => Access::Refused {
                reasons: d.denial_reasons_to_show(),
            },
        }
    }

    pub fn is_permitted(&self) -> bool {
        *self == Access::Permitted
    }

    /// The reasons in words, one sentence; empty for a permit.
    pub fn explanation(&self) -> String {
        match self {
            Access::Permitted => String::new(),
            Access::Refused { reasons } if reasons.is_empty() => {
                "The access policy does not allow it.".into()
            }
            Access::Refused { reasons } => {
                let words: Vec<&str> = reasons.iter().map(|r| r.words()).collect();
                let mut sentence = words.join("; ");
                if let Some(first) = sentence.get(..1) {
                    sentence = first.to_uppercase() + &sentence[1..];
                }
                sentence + "."
            }
        }
    }
}

/// The function that reads a section.
pub fn read_function_of(section: RecordSection) -> Function {
    match section {
        RecordSection::Problems => Function::ReadProblems,
        RecordSection::Medications => Function::ReadMedications,
        RecordSection::Allergies => Function::ReadAllergies,
        RecordSection::Observations => Function::ReadObservations,
        RecordSection::Immunisations => Function::ReadImmunisations,
        RecordSection::Consultations => Function::ReadConsultations,
        RecordSection::Documents => Function::ReadDocuments,
    }
}

impl FhirService {
    /// May `ctx`'s actor use `function` at all (their role, for their purpose)? Noted in
    /// `audit`; a stated break-glass is decided first, as for every request.
    pub fn decide_function(
        &self,
        ctx: &RequestContext,
        function: Function,
        audit: &mut RequestAudit,
    ) -> FhirResult<Access> {
        let view = self.view(ctx, audit)?;
        let decision = view.decide_in_general(function);
        if let Some(d) = &decision {
            audit.decided(d);
        }
        Ok(Access::of(decision.as_ref()))
    }

    /// Decides what `ctx`'s actor may see of the record of a patient registered at
    /// `registered_practice`: the demographics and each of `sections`. A break-glass stated in
    /// `ctx` is decided first (an invalid one is refused with why). Every decision is noted in
    /// `audit`.
    pub fn decide_record(
        &self,
        ctx: &RequestContext,
        registered_practice: Option<&OdsCode>,
        sections: &[RecordSection],
        audit: &mut RequestAudit,
    ) -> FhirResult<RecordAccess> {
        let view = self.view(ctx, audit)?;
        let patient = view.facts_of_patient_at(registered_practice);
        let mut decide = |function: Function| {
            let decision = view.decide_for_patient(function, patient.clone());
            if let Some(d) = &decision {
                audit.decided(d);
            }
            decision
        };
        let demographics = decide(Function::ReadDemographics);
        let mut break_glass_in_force = flagged(demographics.as_ref());
        let mut decided = Vec::with_capacity(sections.len());
        let mut withheld_codes = Vec::new();
        for &section in sections {
            let decision = decide(read_function_of(section));
            break_glass_in_force |= flagged(decision.as_ref());
            if let Some(d) = decision.as_ref().filter(|d| d.is_permit()) {
                let codes = sensitive_codes(view.policy(), &d.obligations.withhold);
                if !codes.is_empty() {
                    withheld_codes.push((section, codes));
                }
            }
            decided.push((section, Access::of(decision.as_ref())));
        }
        Ok(RecordAccess {
            demographics: Access::of(demographics.as_ref()),
            sections: decided,
            break_glass_in_force,
            break_glass_available: view
                .decide_in_general(Function::BreakGlass)
                .is_none_or(|d| {
                    !d.reasons
                        .iter()
                        .any(|r| BREAK_GLASS_NOT_OFFERED.contains(r))
                }),
            withheld_codes,
        })
    }
}

fn flagged(decision: Option<&Decision>) -> bool {
    decision.is_some_and(|d| d.is_permit() && d.obligations.flagged_audit_and_alert)
}

/// The SNOMED CT codes of the sensitive categories named.
fn sensitive_codes(policy: &Policy, categories: &[String]) -> Vec<String> {
    policy
        .sensitive_categories
        .iter()
        .filter(|c| categories.contains(&c.code))
        .flat_map(|c| c.snomed_codes.iter().cloned())
        .collect()
}

impl RecordAccess {
    /// Every section permitted and nothing withheld: what local development (no access
    /// control) sees, and a fixture for rendering.
    pub fn everything_permitted(sections: &[RecordSection]) -> RecordAccess {
        RecordAccess {
            demographics: Access::Permitted,
            sections: sections.iter().map(|s| (*s, Access::Permitted)).collect(),
            break_glass_in_force: false,
            break_glass_available: false,
            withheld_codes: Vec::new(),
        }
    }

    /// The sections the actor may read, to ask the practice for.
    pub fn permitted_sections(&self) -> Vec<RecordSection> {
        self.sections
            .iter()
            .filter(|(_, a)| a.is_permitted())
            .map(|(s, _)| *s)
            .collect()
    }

    /// The access to `section` (refused when it was not decided on).
    pub fn section(&self, section: RecordSection) -> Access {
        self.sections
            .iter()
            .find(|(s, _)| *s == section)
            .map_or_else(
                || Access::Refused {
                    reasons: Vec::new(),
                },
                |(_, a)| a.clone(),
            )
    }

    /// `record` as the actor may see it: each section their role may not read is in it as
    /// [`SectionState::Withheld`] with the reason (it was not asked for), and the sensitive
    /// entries they may not see are taken out, each section that lost some saying so (a
    /// warning, or [`SectionState::Withheld`] when nothing is left). The web UI and `$record`
    /// both show the record through here.
    pub fn apply(&self, mut record: FederatedRecord) -> FederatedRecord {
        for (section, access) in &self.sections {
            if !access.is_permitted() && !record.sections.iter().any(|c| c.section() == *section) {
                record.sections.push(SectionContent::empty(
                    *section,
                    SectionState::Withheld {
                        reason: format!("Not shown to your role. {}", access.explanation()),
                    },
                ));
            }
        }
        for content in &mut record.sections {
            let Some((_, codes)) = self
                .withheld_codes
                .iter()
                .find(|(s, _)| *s == content.section())
            else {
                continue;
            };
            let hidden = |code: &CodeableConcept| codes.iter().any(|c| code.has(SNOMED_CT, c));
            match content {
                SectionContent::Problems(s) => withhold(s, |p| hidden(&p.code)),
                SectionContent::Medications(s) => withhold(s, |m| hidden(&m.medication)),
                SectionContent::Allergies(s) => withhold(s, |a| hidden(&a.substance)),
                SectionContent::Observations(s) => withhold(s, |o| hidden(&o.code)),
                SectionContent::Immunisations(s) => withhold(s, |i| hidden(&i.vaccine)),
                SectionContent::Consultations(_) | SectionContent::Documents(_) => {}
            }
        }
        record
    }
}

/// Takes the items `hidden` picks out of `section`, noting that some were withheld.
fn withhold<T>(section: &mut Section<T>, hidden: impl Fn(&T) -> bool) {
    let before = section.items.len();
    section
        .items
        .retain(|item: &RecordItem<T>| !hidden(&item.content));
    if section.items.len() == before {
        return;
    }
    if !section
        .warnings
        .contains(&SectionWarning::ConfidentialItemsWithheld)
    {
        section
            .warnings
            .push(SectionWarning::ConfidentialItemsWithheld);
    }
    if section.items.is_empty() {
        section.state = SectionState::Withheld {
            reason: SENSITIVE_WITHHELD.into(),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_model::record::{Problem, ProblemStatus};
    use keel_model::{Coding, Provenance, SourceSystem};

    fn problem(code: &str) -> RecordItem<Problem> {
        RecordItem {
            source_id: code.into(),
            content: Problem {
                code: CodeableConcept::from_coding(Coding::new(SNOMED_CT, code)),
                status: ProblemStatus::Active,
                onset: None,
                ended: None,
                significant: None,
            },
            provenance: Provenance::new(
                OdsCode::parse("Y90001").expect("valid"),
                SourceSystem::TppStyle,
            ),
            source_attributes: Vec::new(),
        }
    }

    fn access(withheld: &[&str]) -> RecordAccess {
        RecordAccess {
            demographics: Access::Permitted,
            sections: vec![(RecordSection::Problems, Access::Permitted)],
            break_glass_in_force: false,
            break_glass_available: true,
            withheld_codes: vec![(
                RecordSection::Problems,
                withheld.iter().map(|c| c.to_string()).collect(),
            )],
        }
    }

    fn record(codes: &[&str]) -> FederatedRecord {
        FederatedRecord {
            practice: OdsCode::parse("Y90001").expect("valid"),
            patient: None,
            sections: vec![SectionContent::Problems(Section::from_items(
                RecordSection::Problems,
                codes.iter().map(|c| problem(c)).collect(),
                Vec::new(),
            ))],
        }
    }

    #[test]
    fn sensitive_entries_are_taken_out_and_the_section_says_so() {
        let applied = access(&["105629000"]).apply(record(&["38341003", "105629000"]));
        let SectionContent::Problems(s) = &applied.sections[0] else {
            panic!("problems")
        };
        assert_eq!(s.items.len(), 1);
        assert_eq!(s.state, SectionState::Recorded);
        assert_eq!(s.warnings, [SectionWarning::ConfidentialItemsWithheld]);

        let all = access(&["105629000"]).apply(record(&["105629000"]));
        let SectionContent::Problems(s) = &all.sections[0] else {
            panic!("problems")
        };
        assert!(s.items.is_empty());
        assert!(matches!(s.state, SectionState::Withheld { .. }));

        let none = access(&["105629000"]).apply(record(&["38341003"]));
        let SectionContent::Problems(s) = &none.sections[0] else {
            panic!("problems")
        };
        assert!(s.warnings.is_empty(), "nothing withheld, nothing said");
    }

    #[test]
    fn a_section_the_role_may_not_read_is_withheld_with_the_reason() {
        let mut access = access(&[]);
        access.sections.push((
            RecordSection::Medications,
            Access::Refused {
                reasons: vec![ReasonCode::FunctionNotGranted],
            },
        ));
        assert_eq!(access.permitted_sections(), [RecordSection::Problems]);
        let applied = access.apply(record(&["38341003"]));
        assert_eq!(applied.sections.len(), 2);
        let SectionContent::Medications(m) = &applied.sections[1] else {
            panic!("medications")
        };
        assert!(m.items.is_empty());
        assert_eq!(
            m.state,
            SectionState::Withheld {
                reason: "Not shown to your role. Your role does not grant this function.".into()
            }
        );
    }

    #[test]
    fn a_refusal_explains_itself_in_one_sentence() {
        let refused = Access::Refused {
            reasons: vec![ReasonCode::FunctionNotGranted],
        };
        assert_eq!(
            refused.explanation(),
            "Your role does not grant this function."
        );
        assert_eq!(Access::Permitted.explanation(), "");
    }
}
