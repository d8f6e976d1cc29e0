//! The facts decisions are made on, read from the store through the search index (so a read
//! by id and a pushed-down search apply the same rules to the same values).

use super::organisation_ids::OrganisationIds;
use super::pcn::Pcn;
use super::resource_types::{PATIENT_PARAM, TypeClass, classify};
use crate::error::FhirResult;
use crate::policy::{
    CareLink, CareLinkKind, OrganisationFacts, PatientFacts, PcnMembership, PdsRestriction, Policy,
    Relationship,
};
use crate::store::{ScopedQuery, StoreRead, StoredResource};
use keel_fhir::definitions::{Definitions, SearchParamType};
use keel_fhir::index::{IndexEntry, IndexValue, Indexer};
use keel_fhir::search::{Criterion, ParamRef, SearchQuery, SearchValue, TokenValue, TotalMode};
use keel_model::OdsCode;
use keel_model::coding::systems::SNOMED_CT;
use keel_model::identifier::systems::ODS_ORGANISATION_CODE;
use serde_json::Value;
use std::cell::OnceCell;
use std::sync::Arc;

/// The PDS confidentiality code system of `meta.security`.
pub const CONFIDENTIALITY_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality";

/// Open care links are at most this many per organisation and kind (a page of the search).
const MAX_LINKS: usize = 10_000;

#[derive(Debug, Clone, Default)]
struct OrganisationIdsOfReach {
    practices: Vec<String>,
    own: Vec<String>,
}

/// Which patients an organisation reaches.
#[derive(Debug, Clone, Default)]
pub struct Reach {
    /// Practices whose registered patients are reached (by an accepted relationship).
    pub practices: Vec<OdsCode>,
    /// Ids of the Organization resources of the practices and of the own organisation, looked
    /// up once per request when first needed (a read by id never needs them).
    org_ids: OnceCell<OrganisationIdsOfReach>,
    organisation_ids: Arc<OrganisationIds>,
    /// The actor's own organisation.
    pub own: Option<OrganisationFacts>,
    links: OnceCell<Vec<(CareLinkKind, String)>>,
    accepted: Vec<Relationship>,
}

impl Reach {
    pub fn of(
        policy: &Policy,
        tenant: Option<&Pcn>,
        org: &OrganisationFacts,
        organisation_ids: &Arc<OrganisationIds>,
    ) -> Reach {
        let accepts = |r: Relationship| policy.accepted_relationships.contains(&r);
        let mut practices = Vec::new();
        if accepts(Relationship::RegisteredPractice) {
            practices.push(org.ods.clone());
        }
        let pcn_reach = match &org.pcn {
            PcnMembership::MemberPractice(_) => accepts(Relationship::PcnMemberPractice),
            PcnMembership::HubService(_) => accepts(Relationship::PcnHubService),
            PcnMembership::None => false,
        };
        if pcn_reach && let Some(pcn) = tenant {
            for p in &pcn.practices {
                if !practices.contains(p) {
                    practices.push(p.clone());
                }
            }
        }
        Reach {
            practices,
            org_ids: OnceCell::new(),
            organisation_ids: organisation_ids.clone(),
            own: Some(org.clone()),
            links: OnceCell::new(),
            accepted: policy.accepted_relationships.clone(),
        }
    }

    /// Ids of the Organization resources that are the reached practices.
    pub fn practice_org_ids(&self, reader: &mut dyn StoreRead) -> FhirResult<&[String]> {
        Ok(&self.org_ids(reader)?.practices)
    }

    /// Ids of the actor's own organisation's Organization resources.
    pub fn own_org_ids(&self, reader: &mut dyn StoreRead) -> FhirResult<&[String]> {
        Ok(&self.org_ids(reader)?.own)
    }

    fn org_ids(&self, reader: &mut dyn StoreRead) -> FhirResult<&OrganisationIdsOfReach> {
        if let Some(ids) = self.org_ids.get() {
            return Ok(ids);
        }
        // The own organisation is looked up with the practices (it is usually one of them).
        let codes: Vec<&OdsCode> = self
            .practices
            .iter()
            .chain(self.own.as_ref().map(|o| &o.ods))
            .collect();
        let mut ids = self.organisation_ids.of(reader, &codes)?;
        let own = if self.own.is_some() {
            ids.pop().unwrap_or_default()
        } else {
            Vec::new()
        };
        let practices = ids.into_iter().flatten().collect();
        Ok(self
            .org_ids
            .get_or_init(|| OrganisationIdsOfReach { practices, own }))
    }

    /// Patients linked to the organisation by an open task, referral or appointment (kinds
    /// the policy accepts), read once per request when first needed.
    pub fn links(&self, reader: &mut dyn StoreRead) -> FhirResult<&[(CareLinkKind, String)]> {
        if let Some(links) = self.links.get() {
            return Ok(links);
        }
        let mut links = Vec::new();
        if let Some(org) = &self.own {
            let own_org_ids = self.own_org_ids(reader)?.to_vec();
            for (kind, relationship, resource_type, param, statuses) in LINKS {
                if !self.accepted.contains(relationship) {
                    continue;
                }
                for patient in
                    linked_patients(reader, resource_type, param, statuses, org, &own_org_ids)?
                {
                    links.push((*kind, patient));
                }
            }
        }
        Ok(self.links.get_or_init(|| links))
    }
}

/// Care links: the resource, the parameter naming the organisation, and the open statuses.
type LinkRule = (
    CareLinkKind,
    Relationship,
    &'static str,
    &'static str,
    &'static [&'static str],
);
const LINKS: &[LinkRule] = &[
    (
        CareLinkKind::OpenTask,
        Relationship::OpenTask,
        "Task",
        "owner",
        &[
            "draft",
            "requested",
            "received",
            "accepted",
            "ready",
            "in-progress",
            "on-hold",
        ],
    ),
    (
        CareLinkKind::OpenReferral,
        Relationship::OpenReferral,
        "ServiceRequest",
        "performer",
        &["draft", "active", "on-hold"],
    ),
    (
        CareLinkKind::Appointment,
        Relationship::Appointment,
        "Appointment",
        "actor",
        &[
            "proposed",
            "pending",
            "booked",
            "arrived",
            "checked-in",
            "waitlist",
        ],
    ),
];

pub(super) fn param(resource_type: &str, code: &str, kind: SearchParamType) -> ParamRef {
    ParamRef {
        resource_type: resource_type.to_string(),
        code: code.to_string(),
        kind,
    }
}

pub(super) fn query(resource_type: &str, criteria: Vec<Criterion>) -> SearchQuery {
    SearchQuery {
        resource_type: resource_type.to_string(),
        criteria,
        sort: Vec::new(),
        count: MAX_LINKS,
        offset: 0,
        includes: Vec::new(),
        revincludes: Vec::new(),
        summary_count: false,
        total: TotalMode::None,
        ignored: Vec::new(),
    }
}

/// A reference parameter naming the organisation by ODS identifier or by resource id.
pub fn names_organisation(
    resource_type: &str,
    code: &str,
    ods: &[OdsCode],
    org_ids: &[String],
) -> Vec<Criterion> {
    let mut any = Vec::new();
    if !ods.is_empty() {
        any.push(Criterion::Match {
            param: param(
                resource_type,
                &format!("{code}:identifier"),
                SearchParamType::Token,
            ),
            values: ods
                .iter()
                .map(|o| SearchValue::Token(super::ods_token(o)))
                .collect(),
        });
    }
    if !org_ids.is_empty() {
        any.push(Criterion::Match {
            param: param(resource_type, code, SearchParamType::Reference),
            values: org_ids
                .iter()
                .map(|id| SearchValue::Reference {
                    target_type: Some("Organization".into()),
                    id: Some(id.clone()),
                    url: format!("Organization/{id}"),
                })
                .collect(),
        });
    }
    any
}

fn linked_patients(
    reader: &mut dyn StoreRead,
    resource_type: &str,
    org_param: &str,
    statuses: &[&str],
    org: &OrganisationFacts,
    own_org_ids: &[String],
) -> FhirResult<Vec<String>> {
    let names = names_organisation(
        resource_type,
        org_param,
        std::slice::from_ref(&org.ods),
        own_org_ids,
    );
    let status = Criterion::Match {
        param: param(resource_type, "status", SearchParamType::Token),
        values: statuses
            .iter()
            .map(|s| {
                SearchValue::Token(TokenValue {
                    system: None,
                    code: Some((*s).to_string()),
                })
            })
            .collect(),
    };
    let mut q = query(resource_type, vec![Criterion::AnyOf(names), status]);
    q.includes.push(keel_fhir::search::Include {
        source_type: resource_type.to_string(),
        param: param(resource_type, PATIENT_PARAM, SearchParamType::Reference),
        target_type: Some("Patient".into()),
        iterate: false,
    });
    let found = reader.search(&ScopedQuery::whole_store(q))?;
    let mut patients: Vec<String> = found.included.into_iter().map(|p| p.id).collect();
    patients.sort();
    patients.dedup();
    Ok(patients)
}

/// The class of a resource type under the R4 definitions.
pub fn class_of(defs: &Definitions, resource_type: &str) -> TypeClass {
    classify(
        resource_type,
        defs.search_param(resource_type, PATIENT_PARAM)
            .is_some_and(|p| p.kind == SearchParamType::Reference),
    )
}

/// The index entries of `resource` for the parameters `codes`, as the store indexes them.
fn entries(indexer: &Indexer, resource: &StoredResource, codes: &[&str]) -> Vec<IndexEntry> {
    resource
        .body
        .as_deref()
        .and_then(|b| serde_json::from_str::<Value>(b).ok())
        .map(|json| indexer.extract_params(&json, codes))
        .unwrap_or_default()
}

/// The patient a resource belongs to: itself for a Patient, else its `patient` reference.
pub fn patient_of(indexer: &Indexer, resource: &StoredResource) -> Option<String> {
    if resource.resource_type == "Patient" {
        return Some(resource.id.clone());
    }
    entries(indexer, resource, &[PATIENT_PARAM])
        .into_iter()
        .find_map(|e| match e {
            IndexEntry {
                param,
                value:
                    IndexValue::Reference {
                        target_type: Some(t),
                        target_id: Some(id),
                        ..
                    },
            } if param == PATIENT_PARAM && t == "Patient" => Some(id),
            _ => None,
        })
}

/// The facts about a patient that decisions need (`already_read`: the Patient resource, when
/// the caller holds its current version).
pub fn patient_facts(
    tenant: Option<&Pcn>,
    reach: &Reach,
    reader: &mut dyn StoreRead,
    indexer: &Indexer,
    patient_id: &str,
    already_read: Option<&StoredResource>,
) -> FhirResult<PatientFacts> {
    let mut facts = PatientFacts::default();
    let read_now;
    let patient = match already_read.filter(|r| r.resource_type == "Patient" && r.id == patient_id)
    {
        Some(patient) => patient,
        None => {
            read_now = reader.read("Patient", patient_id)?;
            match &read_now {
                Some(patient) => patient,
                None => return Ok(facts),
            }
        }
    };
    if patient.is_deleted() {
        return Ok(facts);
    }
    let index = entries(indexer, patient, &["general-practitioner", "_security"]);
    for e in &index {
        match (&e.param[..], &e.value) {
            (
                "general-practitioner:identifier",
                IndexValue::Token {
                    system: Some(s),
                    code: Some(c),
                    ..
                },
            ) if s == ODS_ORGANISATION_CODE && facts.registered_practice.is_none() => {
                facts.registered_practice = OdsCode::parse(c).ok();
            }
            (
                "general-practitioner",
                IndexValue::Reference {
                    target_type: Some(t),
                    target_id: Some(id),
                    ..
                },
            ) if t == "Organization" && facts.registered_practice.is_none() => {
                facts.registered_practice = organisation_ods(reader, indexer, id)?;
            }
            (
                "_security",
                IndexValue::Token {
                    system: Some(s),
                    code: Some(c),
                    ..
                },
            ) if s == CONFIDENTIALITY_SYSTEM => {
                let level = match c.as_str() {
                    "R" => PdsRestriction::Restricted,
                    "V" => PdsRestriction::VeryRestricted,
                    _ => PdsRestriction::Unrestricted,
                };
                facts.restriction = facts.restriction.max(level);
            }
            _ => {}
        }
    }
    facts.practice_pcn = match (&facts.registered_practice, tenant) {
        (Some(p), Some(pcn)) => pcn.pcn_of_practice(p),
        _ => None,
    };
    // Care links are looked up only when registration does not already relate the patient
    // to the organisation (they would add a reason, never change the decision).
    let registered_within_reach = facts
        .registered_practice
        .as_ref()
        .is_some_and(|p| reach.practices.contains(p));
    if let Some(own) = &reach.own
        && !registered_within_reach
    {
        facts.care_links = reach
            .links(reader)?
            .iter()
            .filter(|(_, p)| p == patient_id)
            .map(|(kind, _)| CareLink {
                kind: *kind,
                organisation: own.ods.clone(),
            })
            .collect();
    }
    Ok(facts)
}

/// The ODS code of an Organization resource (its ODS identifier).
fn organisation_ods(
    reader: &mut dyn StoreRead,
    indexer: &Indexer,
    id: &str,
) -> FhirResult<Option<OdsCode>> {
    let Some(org) = reader.read("Organization", id)?.filter(|o| !o.is_deleted()) else {
        return Ok(None);
    };
    Ok(entries(indexer, &org, &["identifier"])
        .into_iter()
        .find_map(|e| match e {
            IndexEntry {
                param,
                value:
                    IndexValue::Token {
                        system: Some(s),
                        code: Some(c),
                        ..
                    },
            } if param == "identifier" && s == ODS_ORGANISATION_CODE => OdsCode::parse(&c).ok(),
            _ => None,
        }))
}

/// The sensitive categories a resource's `code` falls in.
pub fn sensitive_categories(
    policy: &Policy,
    indexer: &Indexer,
    resource: &StoredResource,
) -> Vec<String> {
    let codes: Vec<String> = entries(indexer, resource, &["code"])
        .into_iter()
        .filter_map(|e| match e {
            IndexEntry {
                param,
                value:
                    IndexValue::Token {
                        system: Some(s),
                        code: Some(c),
                        ..
                    },
            } if param == "code" && s == SNOMED_CT => Some(c),
            _ => None,
        })
        .collect();
    policy
        .sensitive_categories
        .iter()
        .filter(|cat| cat.snomed_codes.iter().any(|c| codes.contains(c)))
        .map(|cat| cat.code.clone())
        .collect()
}

/// Whether an Observation is in one of these categories (any system).
pub fn has_category(indexer: &Indexer, resource: &StoredResource, categories: &[String]) -> bool {
    entries(indexer, resource, &["category"])
        .into_iter()
        .any(|e| match e {
            IndexEntry {
                param,
                value: IndexValue::Token { code: Some(c), .. },
            } => param == "category" && categories.contains(&c),
            _ => false,
        })
}
