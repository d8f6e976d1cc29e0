//! The tenant: the Primary Care Network this Keel node serves, its member practices and its
//! hub service. Every patient-data query is bounded by it (see [`super::visibility`]).

use keel_model::OdsCode;
use serde::{Deserialize, Serialize};

use crate::policy::{OrganisationFacts, PcnMembership};

/// A PCN as configured (`keel serve --pcn FILE`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pcn {
    /// The PCN's ODS code (`U…`).
    pub code: OdsCode,
    pub name: String,
    /// The member practices' ODS codes.
    pub practices: Vec<OdsCode>,
    /// The hub (extended access) service's ODS code, if the PCN runs one.
    #[serde(default)]
    pub hub: Option<OdsCode>,
}

impl Pcn {
    /// How `organisation` belongs to this PCN.
    pub fn membership(&self, organisation: &OdsCode) -> PcnMembership {
        if self.practices.contains(organisation) {
            PcnMembership::MemberPractice(self.code.clone())
        } else if self.hub.as_ref() == Some(organisation) {
            PcnMembership::HubService(self.code.clone())
        } else {
            PcnMembership::None
        }
    }

    pub fn organisation_facts(&self, organisation: &OdsCode) -> OrganisationFacts {
        OrganisationFacts {
            ods: organisation.clone(),
            pcn: self.membership(organisation),
        }
    }

    /// The PCN a patient registered at `practice` belongs to, if it is this one.
    pub fn pcn_of_practice(&self, practice: &OdsCode) -> Option<OdsCode> {
        self.practices.contains(practice).then(|| self.code.clone())
    }
}
