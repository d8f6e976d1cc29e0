//! A search made safe to run: the request's visibility added to its own type and to every
//! type it chains into or tests with `_has`, and no criterion or sort on Patient fields that
//! are redacted for some patients unless those patients are left out.

use super::AccessView;
use crate::error::{FhirError, FhirResult};
use crate::policy::Function;
use crate::store::{ScopedQuery, TypeVisibility, Visibility};
use keel_fhir::definitions::SearchParamType;
use keel_fhir::search::{Criterion, ParamRef, SearchQuery, SortBy, TokenValue};

use super::facts::CONFIDENTIALITY_SYSTEM;

/// Patient search parameters over contact details.
const CONTACT_PARAMS: &[&str] = &[
    "address",
    "address-city",
    "address-country",
    "address-postalcode",
    "address-state",
    "address-use",
    "phone",
    "email",
    "telecom",
];
/// Also removed for restricted (R) patients.
const RESTRICTED_PARAMS: &[&str] = &["general-practitioner", "organization"];
/// Also removed for very restricted (V) patients.
const VERY_RESTRICTED_PARAMS: &[&str] = &["name", "family", "given", "phonetic", "birthdate"];

/// The scoped form of `query` for this view.
pub fn scope_query(
    view: &AccessView,
    query: &SearchQuery,
    visibility: Visibility,
) -> FhirResult<ScopedQuery> {
    if view.is_unrestricted() {
        return Ok(ScopedQuery::new(query.clone(), visibility));
    }
    let contact_details = view.permits_in_general(Function::ReadContactDetails);
    let mut scoped = query.clone();
    let mut patient_codes: Vec<String> = Vec::new();
    if scoped.resource_type == "Patient" {
        let mut codes = Vec::new();
        for c in &query.criteria {
            collect_codes(c, &mut codes);
        }
        for key in &query.sort {
            if let SortBy::Param(p) = &key.by {
                codes.push(&p.code);
            }
        }
        patient_codes = codes.into_iter().map(str::to_string).collect();
    }
    let patient_codes: Vec<&str> = patient_codes.iter().map(String::as_str).collect();
    let mut criteria = Vec::with_capacity(scoped.criteria.len() + 2);
    for c in std::mem::take(&mut scoped.criteria) {
        criteria.push(restrict(c, &visibility, contact_details)?);
    }
    criteria.extend(redaction_guard(
        "Patient",
        &scoped.resource_type,
        &patient_codes,
        contact_details,
    )?);
    match visibility.of_type(&scoped.resource_type) {
        TypeVisibility::Hidden => {
            return Err(FhirError::Forbidden {
                what: format!("you may not search {} resources", scoped.resource_type),
                reasons: Vec::new(),
            });
        }
        TypeVisibility::All => {}
        TypeVisibility::Where(more) => criteria.extend(more.iter().cloned()),
    }
    scoped.criteria = criteria;
    Ok(ScopedQuery::new(scoped, visibility))
}

/// Codes of the parameters a criterion tests on its own type.
fn collect_codes<'a>(c: &'a Criterion, out: &mut Vec<&'a str>) {
    match c {
        Criterion::Match { param, .. }
        | Criterion::NotToken { param, .. }
        | Criterion::Missing { param, .. } => out.push(param.code.split(':').next().unwrap_or("")),
        Criterion::AnyOf(parts) | Criterion::AllOf(parts) => {
            parts.iter().for_each(|p| collect_codes(p, out))
        }
        Criterion::Id(_)
        | Criterion::LastUpdated(_)
        | Criterion::Chain { .. }
        | Criterion::Has { .. } => {}
    }
}

/// A chain or `_has` reaches into another type: that type's visibility applies there too.
fn restrict(c: Criterion, visibility: &Visibility, contact_details: bool) -> FhirResult<Criterion> {
    match c {
        Criterion::Chain {
            param,
            target_type,
            inner,
        } => {
            let inner = restrict(*inner, visibility, contact_details)?;
            let mut codes = Vec::new();
            collect_codes(&inner, &mut codes);
            let mut all = redaction_guard("Patient", &target_type, &codes, contact_details)?;
            all.extend(of_type(visibility, &target_type)?);
            all.insert(0, inner);
            Ok(Criterion::Chain {
                param,
                target_type,
                inner: Box::new(Criterion::AllOf(all)),
            })
        }
        Criterion::Has {
            source_type,
            reference,
            inner,
        } => {
            let inner = restrict(*inner, visibility, contact_details)?;
            let mut all = vec![inner];
            all.extend(of_type(visibility, &source_type)?);
            Ok(Criterion::Has {
                source_type,
                reference,
                inner: Box::new(Criterion::AllOf(all)),
            })
        }
        other => Ok(other),
    }
}

fn of_type(visibility: &Visibility, resource_type: &str) -> FhirResult<Vec<Criterion>> {
    match visibility.of_type(resource_type) {
        TypeVisibility::Hidden => Err(FhirError::Forbidden {
            what: format!("you may not search through {resource_type} resources"),
            reasons: Vec::new(),
        }),
        TypeVisibility::All => Ok(Vec::new()),
        TypeVisibility::Where(c) => Ok(c.to_vec()),
    }
}

/// Searching or sorting Patients by a field that is redacted for restricted patients must
/// not find or order them by it: they are left out. Contact-detail parameters need the
/// function that reads them.
fn redaction_guard(
    patient_type: &str,
    resource_type: &str,
    codes: &[&str],
    contact_details: bool,
) -> FhirResult<Vec<Criterion>> {
    if resource_type != patient_type {
        return Ok(Vec::new());
    }
    let contact = codes.iter().any(|c| CONTACT_PARAMS.contains(c));
    if contact && !contact_details {
        return Err(FhirError::Forbidden {
            what: "your role may not search by contact details".into(),
            reasons: Vec::new(),
        });
    }
    let levels: Vec<&str> = if contact || codes.iter().any(|c| RESTRICTED_PARAMS.contains(c)) {
        vec!["R", "V"]
    } else if codes.iter().any(|c| VERY_RESTRICTED_PARAMS.contains(c)) {
        vec!["V"]
    } else {
        return Ok(Vec::new());
    };
    Ok(vec![Criterion::NotToken {
        param: ParamRef {
            resource_type: patient_type.to_string(),
            code: "_security".into(),
            kind: SearchParamType::Token,
        },
        values: levels
            .into_iter()
            .map(|l| TokenValue {
                system: Some(Some(CONFIDENTIALITY_SYSTEM.to_string())),
                code: Some(l.to_string()),
            })
            .collect(),
    }])
}
