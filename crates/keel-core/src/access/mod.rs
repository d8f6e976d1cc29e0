//! Access control on every path through the record store: the policy engine's decisions
//! ([`crate::policy`]) applied to a request.
//!
//! Per request an [`AccessView`] is built once: who asks, for which organisation and purpose,
//! which practices' patients they reach (the tenant PCN's, by the relationships the policy
//! accepts) and which patients open tasks, referrals and appointments link to their
//! organisation. From it come
//! - a decision per resource read by id (`decide_read`): the same `policy::decide` on the facts
//!   of that resource and its patient, with its obligations (redaction, withheld entries);
//! - a [`Visibility`] pushed into every search, include and history query, so pages and totals
//!   never hold or count what a read by id would refuse (property test:
//!   `keel-core/tests/no_leak.rs`).
//!
//! Local development (no authentication) sees the whole store.

mod facts;
mod organisation_ids;
pub(crate) use facts::patient_of;
mod pcn;
mod redact;
mod resource_types;
mod scoped_search;
mod visibility;

pub use pcn::Pcn;
pub use redact::redact_patient;
pub use resource_types::{PATIENT_PARAM, TypeClass, classify, read_function};
pub use scoped_search::scope_query;

use crate::context::{Actor, RequestContext};
use crate::error::{FhirError, FhirResult};
use crate::policy::{
    AccessRequest, BreakGlass, Decision, Function, OrganisationFacts, PatientFacts, PdsRestriction,
    Policy, Requester, SmartScope, UserRole, decide,
};
use crate::store::{StoreRead, StoredResource, Visibility};
use keel_fhir::definitions::Definitions;
use keel_fhir::index::Indexer;
use keel_model::OdsCode;
use std::sync::Arc;

/// The policy and the tenant, shared by every request.
pub struct AccessControl {
    policy: Arc<Policy>,
    tenant: Option<Arc<Pcn>>,
    organisation_ids: Arc<organisation_ids::OrganisationIds>,
}

impl AccessControl {
    pub fn new(policy: Policy, tenant: Option<Pcn>) -> AccessControl {
        AccessControl {
            policy: Arc::new(policy),
            tenant: tenant.map(Arc::new),
            organisation_ids: Default::default(),
        }
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    pub fn tenant(&self) -> Option<&Pcn> {
        self.tenant.as_deref()
    }

    /// The view of one request. Reads the care links of the actor's organisation.
    pub fn view(
        &self,
        ctx: &RequestContext,
        defs: &'static Definitions,
        now_millis: i64,
        break_glass: Option<BreakGlass>,
    ) -> AccessView {
        let requester = match &ctx.actor {
            Actor::LocalDevelopment => return AccessView::unrestricted(&self.policy),
            Actor::User {
                role_code,
                activity_codes,
                ..
            } => Requester::User(UserRole {
                role_code: role_code.clone(),
                job_role_code: None,
                activity_codes: activity_codes.clone(),
            }),
            Actor::System { client_id, scopes } => Requester::System {
                client_id: client_id.clone(),
                scopes: scopes.iter().filter_map(|s| SmartScope::parse(s)).collect(),
            },
        };
        let organisation = ctx.organisation.as_ref().map(|ods| match &self.tenant {
            Some(pcn) => pcn.organisation_facts(ods),
            None => OrganisationFacts {
                ods: ods.clone(),
                pcn: crate::policy::PcnMembership::None,
            },
        });
        let reach = match &organisation {
            Some(org) => facts::Reach::of(
                &self.policy,
                self.tenant.as_deref(),
                org,
                &self.organisation_ids,
            ),
            None => facts::Reach::default(),
        };
        AccessView {
            policy: self.policy.clone(),
            tenant: self.tenant.clone(),
            restricted: Some(Restricted {
                requester,
                organisation,
                purpose: ctx.purpose,
                now_millis,
                break_glass,
                reach,
                defs,
            }),
        }
    }
}

/// What one request may see.
pub struct AccessView {
    policy: Arc<Policy>,
    tenant: Option<Arc<Pcn>>,
    /// `None`: local development, the whole store.
    restricted: Option<Restricted>,
}

struct Restricted {
    requester: Requester,
    organisation: Option<OrganisationFacts>,
    purpose: crate::context::PurposeOfUse,
    now_millis: i64,
    break_glass: Option<BreakGlass>,
    reach: facts::Reach,
    defs: &'static Definitions,
}

/// A permitted read: the decision that permitted it (for audit) and what to do with the data.
#[derive(Debug, Clone)]
pub struct ReadPermit {
    /// `None` for local development and shared reference data.
    pub decision: Option<Decision>,
    /// The patient the resource belongs to.
    pub patient: Option<String>,
    /// The resource is a Patient with no PDS restriction (from the facts decided on).
    pub unrestricted_patient: bool,
}

impl AccessView {
    fn unrestricted(policy: &Arc<Policy>) -> AccessView {
        AccessView {
            policy: policy.clone(),
            tenant: None,
            restricted: None,
        }
    }

    pub fn is_unrestricted(&self) -> bool {
        self.restricted.is_none()
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    pub fn policy_version(&self) -> &str {
        &self.policy.version
    }

    /// The visibility pushed into this request's store queries.
    pub fn visibility(&self, reader: &mut dyn StoreRead) -> FhirResult<Visibility> {
        match &self.restricted {
            None => Ok(Visibility::whole_store()),
            Some(r) => visibility::build(self, r, reader),
        }
    }

    /// The decision on a function in general, for a patient registered at the actor's own
    /// organisation: does the role (or scope) grant it for this purpose at all?
    fn general_decision(&self, r: &Restricted, function: Function, sensitive: bool) -> Decision {
        let registered = r.organisation.as_ref().map(|o| o.ods.clone());
        let patient = PatientFacts {
            practice_pcn: registered
                .as_ref()
                .and_then(|ods| self.tenant.as_ref().and_then(|t| t.pcn_of_practice(ods))),
            registered_practice: registered,
            sensitive_categories: if sensitive {
                self.policy
                    .sensitive_categories
                    .iter()
                    .map(|c| c.code.clone())
                    .collect()
            } else {
                Vec::new()
            },
            ..PatientFacts::default()
        };
        self.decide_with(r, function, Some(patient), None)
    }

    fn decide_with(
        &self,
        r: &Restricted,
        function: Function,
        patient: Option<PatientFacts>,
        break_glass: Option<BreakGlass>,
    ) -> Decision {
        decide(
            &self.policy,
            &AccessRequest {
                requester: r.requester.clone(),
                organisation: r.organisation.clone(),
                purpose: r.purpose,
                function,
                patient,
                break_glass,
                now_millis: r.now_millis,
            },
        )
    }

    /// The decision on the break-glass the request stated, if it stated one: a permit puts it
    /// in force (every decision of the request is then flagged for audit and alert); a denial
    /// says why it is not valid (no grant, no reason, expired, too long, wrong purpose).
    pub fn break_glass_decision(&self) -> Option<Decision> {
        let r = self.restricted.as_ref()?;
        let stated = r.break_glass.clone()?;
        // Decided for no patient in particular: the stated break-glass itself (grant, reason,
        // time limit, purpose); each patient's decision then applies it.
        Some(self.decide_with(
            r,
            Function::BreakGlass,
            Some(PatientFacts::default()),
            Some(stated),
        ))
    }

    /// The decision on `function` in general (see [`AccessView::permits_in_general`]); `None`
    /// for local development, which is not decided on.
    pub fn decide_in_general(&self, function: Function) -> Option<Decision> {
        let r = self.restricted.as_ref()?;
        Some(self.general_decision(r, function, false))
    }

    /// May the actor see audit records of requests made for `organisation`? Everything of the
    /// tenant PCN when acting for one of its organisations, else their own organisation's.
    pub fn sees_audit_of(&self, organisation: Option<&OdsCode>) -> bool {
        let Some(r) = &self.restricted else {
            return true;
        };
        match &r.organisation {
            None => false,
            Some(own) if own.pcn != crate::policy::PcnMembership::None => true,
            Some(own) => organisation == Some(&own.ods),
        }
    }

    /// The decision on `function` for a patient known by `patient`'s facts rather than by a
    /// resource in Keel's store (a record read from the registered practice), with the
    /// request's break-glass; `None` for local development, which is not decided on.
    pub fn decide_for_patient(
        &self,
        function: Function,
        patient: PatientFacts,
    ) -> Option<Decision> {
        let r = self.restricted.as_ref()?;
        Some(self.decide_with(r, function, Some(patient), r.break_glass.clone()))
    }

    /// The facts of a patient registered at `practice`, as far as the tenant says (its PCN),
    /// with every sensitive category of the policy, so a decision says which it withholds.
    pub fn facts_of_patient_at(&self, practice: Option<&OdsCode>) -> PatientFacts {
        PatientFacts {
            registered_practice: practice.cloned(),
            practice_pcn: practice
                .and_then(|ods| self.tenant.as_ref().and_then(|t| t.pcn_of_practice(ods))),
            sensitive_categories: self
                .policy
                .sensitive_categories
                .iter()
                .map(|c| c.code.clone())
                .collect(),
            ..PatientFacts::default()
        }
    }

    /// Does the role (or scope) grant `function` for this purpose at all?
    pub fn permits_in_general(&self, function: Function) -> bool {
        match &self.restricted {
            None => true,
            Some(r) => self.general_decision(r, function, false).is_permit(),
        }
    }

    /// May the actor search resources of this type at all? A refusal says why.
    pub fn check_type(&self, resource_type: &str) -> FhirResult<Option<Decision>> {
        let Some(r) = &self.restricted else {
            return Ok(None);
        };
        let class = facts::class_of(r.defs, resource_type);
        match class {
            TypeClass::Hidden => Err(FhirError::Forbidden {
                what: format!("{resource_type} is not available through the FHIR API to you"),
                reasons: Vec::new(),
            }),
            TypeClass::Shared => {
                if visibility::shared_visible(r, resource_type) {
                    Ok(None)
                } else {
                    Err(FhirError::Forbidden {
                        what: format!("you may not read {resource_type} resources"),
                        reasons: Vec::new(),
                    })
                }
            }
            TypeClass::Patient | TypeClass::PatientData(_) => {
                let function = read_function(class).unwrap_or(Function::ReadDemographics);
                let decision = self.general_decision(r, function, false);
                if decision.is_permit() {
                    Ok(Some(decision))
                } else {
                    Err(forbidden(
                        &format!("you may not read {resource_type} resources"),
                        &decision,
                    ))
                }
            }
        }
    }

    /// The decision on reading `resource` (current or a past version): permitted, or the
    /// refusal — concealed as not found where the policy says so, withheld for a sensitive
    /// entry the actor may not see.
    pub fn decide_read(
        &self,
        reader: &mut dyn StoreRead,
        indexer: &Indexer,
        resource: &StoredResource,
    ) -> FhirResult<ReadPermit> {
        let Some(r) = &self.restricted else {
            return Ok(ReadPermit {
                decision: None,
                patient: facts::patient_of(indexer, resource),
                unrestricted_patient: false,
            });
        };
        let class = facts::class_of(r.defs, &resource.resource_type);
        let function = match class {
            TypeClass::Hidden | TypeClass::Shared => {
                self.check_type(&resource.resource_type)?;
                return Ok(ReadPermit {
                    decision: None,
                    patient: None,
                    unrestricted_patient: false,
                });
            }
            other => read_function(other).unwrap_or(Function::ReadDemographics),
        };
        let patient_id = facts::patient_of(indexer, resource);
        let mut patient = match &patient_id {
            Some(id) => facts::patient_facts(
                self.tenant.as_deref(),
                &r.reach,
                reader,
                indexer,
                id,
                Some(resource),
            )?,
            None => PatientFacts::default(),
        };
        // A type without a `code` has no sensitive entries (and its body need not be read).
        if r.defs
            .search_param(&resource.resource_type, "code")
            .is_some()
        {
            patient.sensitive_categories =
                facts::sensitive_categories(&self.policy, indexer, resource);
        }
        let unrestricted_patient = resource.resource_type == "Patient"
            && patient_id.as_deref() == Some(resource.id.as_str())
            && patient.restriction == PdsRestriction::Unrestricted;
        let decision = self.decide_with(r, function, Some(patient), r.break_glass.clone());
        if !decision.is_permit() {
            if decision.conceal_existence {
                return Err(FhirError::Concealed {
                    resource_type: resource.resource_type.clone(),
                    id: resource.id.clone(),
                });
            }
            return Err(forbidden(
                &format!(
                    "you may not read {}/{}",
                    resource.resource_type, resource.id
                ),
                &decision,
            ));
        }
        if !decision.obligations.withhold.is_empty() {
            return Err(FhirError::Withheld {
                resource_type: resource.resource_type.clone(),
                id: resource.id.clone(),
            });
        }
        let categories = &decision.obligations.observation_categories;
        if resource.resource_type == "Observation"
            && !categories.is_empty()
            && !facts::has_category(indexer, resource, categories)
        {
            return Err(FhirError::Forbidden {
                what: format!(
                    "your role reads observations in these categories only: {}",
                    categories.join(", ")
                ),
                reasons: Vec::new(),
            });
        }
        Ok(ReadPermit {
            decision: Some(decision),
            patient: patient_id,
            unrestricted_patient,
        })
    }

    /// May the actor write resources of this type at all?
    pub fn check_write(&self, resource_type: &str) -> FhirResult<()> {
        let Some(r) = &self.restricted else {
            return Ok(());
        };
        let Some(function) = write_function(facts::class_of(r.defs, resource_type)) else {
            return Err(FhirError::Forbidden {
                what: format!(
                    "{resource_type} resources are written by operators, not through requests"
                ),
                reasons: Vec::new(),
            });
        };
        let decision = self.general_decision(r, function, false);
        if decision.is_permit() {
            Ok(())
        } else {
            Err(forbidden(
                &format!("you may not write {resource_type} resources"),
                &decision,
            ))
        }
    }

    /// May the actor write this content (a new body, or the version it replaces or deletes)?
    /// Needs a relationship with the patient it belongs to.
    pub fn decide_write(
        &self,
        reader: &mut dyn StoreRead,
        indexer: &Indexer,
        resource: &StoredResource,
    ) -> FhirResult<()> {
        let Some(r) = &self.restricted else {
            return Ok(());
        };
        self.check_write(&resource.resource_type)?;
        let Some(function) = write_function(facts::class_of(r.defs, &resource.resource_type))
        else {
            return Ok(());
        };
        let patient = match facts::patient_of(indexer, resource) {
            Some(id) => {
                facts::patient_facts(self.tenant.as_deref(), &r.reach, reader, indexer, &id, None)?
            }
            None => PatientFacts::default(),
        };
        let decision = self.decide_with(r, function, Some(patient), r.break_glass.clone());
        if decision.is_permit() {
            Ok(())
        } else {
            Err(forbidden(
                &format!(
                    "you may not write {}/{}",
                    resource.resource_type, resource.id
                ),
                &decision,
            ))
        }
    }

    /// Applies the read obligations to a resource about to leave: a Patient's restricted and
    /// unpermitted fields removed.
    /// [`prepare`](Self::prepare) for a resource `permit` was decided for: an unrestricted
    /// Patient whose contact details the actor reads leaves as it is, without reading its body.
    pub fn prepare_read(&self, resource: StoredResource, permit: &ReadPermit) -> StoredResource {
        if let Some(r) = &self.restricted
            && permit.unrestricted_patient
            && self
                .general_decision(r, Function::ReadContactDetails, false)
                .is_permit()
        {
            return resource;
        }
        self.prepare(resource)
    }

    pub fn prepare(&self, resource: StoredResource) -> StoredResource {
        let Some(r) = &self.restricted else {
            return resource;
        };
        if resource.resource_type != "Patient" {
            return resource;
        }
        let contact = self
            .general_decision(r, Function::ReadContactDetails, false)
            .is_permit();
        redact::redact_patient(resource, contact)
    }
}

/// The function that writes resources of a class: appointments are booked, the rest of a
/// patient's record is written as record entries; shared and hidden types are not written by
/// requests.
fn write_function(class: TypeClass) -> Option<Function> {
    match class {
        TypeClass::PatientData(Function::ReadAppointments) => Some(Function::BookAppointments),
        TypeClass::Patient | TypeClass::PatientData(_) => Some(Function::WriteRecordEntries),
        TypeClass::Shared | TypeClass::Hidden => None,
    }
}

/// A 403 from a decision: what was refused and the reasons the actor may see.
pub(crate) fn forbidden(what: &str, decision: &Decision) -> FhirError {
    FhirError::Forbidden {
        what: what.to_string(),
        reasons: decision
            .denial_reasons_to_show()
            .into_iter()
            .map(|r| (r.as_code().to_string(), r.words().to_string()))
            .collect(),
    }
}

/// An organisation as a search token.
pub(crate) fn ods_token(ods: &OdsCode) -> keel_fhir::search::TokenValue {
    keel_fhir::search::TokenValue {
        system: Some(Some(
            keel_model::identifier::systems::ODS_ORGANISATION_CODE.to_string(),
        )),
        code: Some(ods.as_str().to_string()),
    }
}
