//! The visibility of a restricted request: for each resource type, the criteria its resources
//! must meet. They restate, as a query, what `decide_read` decides for one resource:
//! - the type's read function is granted for the purpose (else the type is hidden);
//! - the patient is registered at a practice the actor's organisation reaches, or linked to it
//!   by an open task, referral or appointment;
//! - sensitive entries (by `code`) only where the policy shows them;
//! - observations only in the categories the role's grant names.

use super::facts::{class_of, names_organisation, param};
use super::resource_types::{PATIENT_PARAM, TypeClass, read_function};
use super::{AccessView, Restricted};
use crate::error::FhirResult;
use crate::policy::{Requester, SmartScope};
use crate::store::{StoreRead, Visibility};
use keel_fhir::definitions::SearchParamType;
use keel_fhir::search::{Criterion, SearchValue, TokenValue};
use keel_model::coding::systems::SNOMED_CT;
use std::collections::HashMap;

pub(super) fn build(
    view: &AccessView,
    r: &Restricted,
    reader: &mut dyn StoreRead,
) -> FhirResult<Visibility> {
    let mut rules: HashMap<String, Vec<Criterion>> = HashMap::new();
    let mut decisions = HashMap::new();
    for resource_type in r.defs.resource_types() {
        let class = class_of(r.defs, resource_type);
        match class {
            TypeClass::Hidden => {}
            TypeClass::Shared => {
                if shared_visible(r, resource_type) {
                    rules.insert(resource_type.to_string(), Vec::new());
                }
            }
            TypeClass::Patient | TypeClass::PatientData(_) => {
                let Some(function) = read_function(class) else {
                    continue;
                };
                let decision = decisions
                    .entry(function)
                    .or_insert_with(|| view.general_decision(r, function, false));
                if !decision.is_permit() {
                    continue;
                }
                let categories = decision.obligations.observation_categories.clone();
                let mut criteria = Vec::new();
                if class == TypeClass::Patient {
                    criteria.push(patient_reach(r, reader)?);
                } else {
                    criteria.push(of_reached_patient(resource_type, patient_reach(r, reader)?));
                    if let Some(sensitive) = sensitive_rule(view, r, resource_type, reader)? {
                        criteria.push(sensitive);
                    }
                    if resource_type == "Observation" && !categories.is_empty() {
                        criteria.push(Criterion::Match {
                            param: param(resource_type, "category", SearchParamType::Token),
                            values: categories
                                .iter()
                                .map(|c| {
                                    SearchValue::Token(TokenValue {
                                        system: None,
                                        code: Some(c.clone()),
                                    })
                                })
                                .collect(),
                        });
                    }
                }
                rules.insert(resource_type.to_string(), criteria);
            }
        }
    }
    Ok(Visibility::by_type(rules))
}

/// Shared reference data: for every user whose role the policy knows, for a system client
/// whose scopes cover the type.
pub(super) fn shared_visible(r: &Restricted, resource_type: &str) -> bool {
    match &r.requester {
        Requester::User(_) => true,
        Requester::System { scopes, .. } => scopes
            .iter()
            .any(|s: &SmartScope| s.allows(resource_type, crate::policy::SmartAccess::ReadSearch)),
    }
}

/// Patients the actor reaches (criteria on Patient).
fn patient_reach(r: &Restricted, reader: &mut dyn StoreRead) -> FhirResult<Criterion> {
    let mut any = names_organisation(
        "Patient",
        "general-practitioner",
        &r.reach.practices,
        r.reach.practice_org_ids(reader)?,
    );
    let mut linked: Vec<String> = r
        .reach
        .links(reader)?
        .iter()
        .map(|(_, p)| p.clone())
        .collect();
    linked.sort();
    linked.dedup();
    if !linked.is_empty() {
        any.push(Criterion::Id(linked));
    }
    Ok(Criterion::AnyOf(any))
}

/// Patients registered at the actor's own organisation (criteria on Patient).
fn registered_here(r: &Restricted, reader: &mut dyn StoreRead) -> FhirResult<Criterion> {
    let own: Vec<_> = r.reach.own.iter().map(|o| o.ods.clone()).collect();
    Ok(Criterion::AnyOf(names_organisation(
        "Patient",
        "general-practitioner",
        &own,
        r.reach.own_org_ids(reader)?,
    )))
}

/// Resources of `resource_type` whose patient meets `inner`.
fn of_reached_patient(resource_type: &str, inner: Criterion) -> Criterion {
    Criterion::Chain {
        param: param(resource_type, PATIENT_PARAM, SearchParamType::Reference),
        target_type: "Patient".into(),
        inner: Box::new(inner),
    }
}

/// Sensitive entries of a type with a `code`: hidden unless the role shows them for this
/// purpose, and then (if the policy says so) only at the patient's registered practice.
fn sensitive_rule(
    view: &AccessView,
    r: &Restricted,
    resource_type: &str,
    reader: &mut dyn StoreRead,
) -> FhirResult<Option<Criterion>> {
    let codes: Vec<&String> = view
        .policy
        .sensitive_categories
        .iter()
        .flat_map(|c| c.snomed_codes.iter())
        .collect();
    let Some(code_param) = r.defs.search_param(resource_type, "code") else {
        return Ok(None);
    };
    if code_param.kind != SearchParamType::Token || codes.is_empty() {
        return Ok(None);
    }
    let not_sensitive = Criterion::NotToken {
        param: param(resource_type, "code", SearchParamType::Token),
        values: codes
            .iter()
            .map(|c| TokenValue {
                system: Some(Some(SNOMED_CT.to_string())),
                code: Some((*c).clone()),
            })
            .collect(),
    };
    let Some(function) = read_function(class_of(r.defs, resource_type)) else {
        return Ok(None);
    };
    let shown = view.general_decision(r, function, true);
    if !shown.is_permit() || !shown.obligations.withhold.is_empty() {
        return Ok(Some(not_sensitive));
    }
    if !view.policy.sensitive_only_at_registered_practice {
        return Ok(None);
    }
    Ok(Some(Criterion::AnyOf(vec![
        not_sensitive,
        of_reached_patient(resource_type, registered_here(r, reader)?),
    ])))
}
