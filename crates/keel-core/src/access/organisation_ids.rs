//! The Organization resource ids of each ODS code, remembered between requests.
//!
//! Every restricted request needs the ids of its organisation's and its reached practices'
//! Organization resources (a Patient may name its practice by reference instead of by ODS
//! identifier). Searching for them on every request cost more than the read it guarded
//! (BENCHMARKS.md, issue 5), so the answers are kept for as long as the store is unchanged: a
//! lookup first reads the store's version head, and any write since the answers were found
//! (by this node or another on the same database) makes them be searched again.

use crate::error::FhirResult;
use crate::store::{ScopedQuery, StoreRead};
use keel_fhir::definitions::SearchParamType;
use keel_fhir::search::{Criterion, SearchValue};
use keel_model::OdsCode;
use std::collections::HashMap;
use std::sync::Mutex;

/// Answers found at one version head of the store.
#[derive(Debug, Default)]
struct Known {
    head: u64,
    ids: HashMap<OdsCode, Vec<String>>,
}

#[derive(Debug, Default)]
pub struct OrganisationIds {
    known: Mutex<Known>,
}

impl OrganisationIds {
    /// The ids of the Organization resources with each of these ODS codes, in order.
    pub fn of(
        &self,
        reader: &mut dyn StoreRead,
        codes: &[&OdsCode],
    ) -> FhirResult<Vec<Vec<String>>> {
        // The head is read before any search, so an answer is never labelled newer than it is.
        let head = reader.version_head()?;
        let mut found = Vec::with_capacity(codes.len());
        let mut missing = Vec::new();
        {
            let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
            if known.head != head {
                *known = Known {
                    head,
                    ids: HashMap::new(),
                };
            }
            for (i, code) in codes.iter().enumerate() {
                match known.ids.get(*code) {
                    Some(ids) => found.push(ids.clone()),
                    None => {
                        found.push(Vec::new());
                        missing.push(i);
                    }
                }
            }
        }
        for i in missing {
            let ids = search(reader, codes[i])?;
            found[i] = ids.clone();
            let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
            if known.head == head {
                known.ids.insert(codes[i].clone(), ids);
            }
        }
        Ok(found)
    }
}

/// Ids of the Organization resources with this ODS code, from the store.
fn search(reader: &mut dyn StoreRead, ods: &OdsCode) -> FhirResult<Vec<String>> {
    let q = super::facts::query(
        "Organization",
        vec![Criterion::Match {
            param: super::facts::param("Organization", "identifier", SearchParamType::Token),
            values: vec![SearchValue::Token(super::ods_token(ods))],
        }],
    );
    Ok(reader.search_ids(&ScopedQuery::whole_store(q))?)
}
