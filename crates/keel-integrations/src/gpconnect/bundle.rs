//! A structured record Bundle (reference sheet §3.4) indexed for mapping: resources by
//! reference, the primary Lists by their SNOMED CT code, and the clinical areas the provider
//! said it has switched off.

use std::collections::HashMap;

use super::json::Node;

const SPINE_CODE_SYSTEM: &str = "https://fhir.nhs.uk/STU3/CodeSystem/Spine-ErrorOrWarningCode-1";

/// A parsed Bundle and its index. Consumers must not depend on entry order, so everything is
/// found by reference.
pub struct StructuredBundle<'b> {
    /// `(type, id)` → resource.
    by_reference: HashMap<(&'b str, &'b str), &'b Node<'b>>,
    lists: Vec<&'b Node<'b>>,
    patients: Vec<&'b Node<'b>>,
    disabled: Vec<&'b str>,
}

impl<'b> StructuredBundle<'b> {
    /// Indexes `bundle`.
    ///
    /// # Errors
    /// When it is not a Bundle or a resource has no type.
    pub fn index(bundle: &'b Node<'b>) -> Result<StructuredBundle<'b>, String> {
        if !bundle["resourceType"].is("Bundle") {
            return Err("the answer is not a Bundle".into());
        }
        let entries = bundle["entry"].items();
        let mut index = StructuredBundle {
            by_reference: HashMap::with_capacity(entries.len()),
            lists: Vec::new(),
            patients: Vec::new(),
            disabled: Vec::new(),
        };
        for entry in entries {
            let resource = &entry["resource"];
            let kind = resource["resourceType"]
                .as_str()
                .ok_or("a Bundle entry has no resource type")?;
            match kind {
                "List" => index.lists.push(resource),
                "Patient" => index.patients.push(resource),
                "OperationOutcome" => index.disabled.extend(disabled_areas(resource)),
                _ => {}
            }
            if let Some(id) = resource["id"].as_str() {
                index.by_reference.insert((kind, id), resource);
            }
        }
        Ok(index)
    }

    /// The resource `reference` (`Type/id`) points at, if the Bundle holds it.
    pub fn resolve(&self, reference: &str) -> Option<&'b Node<'b>> {
        let (kind, id) = reference.split_once('/')?;
        self.by_reference.get(&(kind, id)).copied()
    }

    /// The primary List coded `code` (SNOMED CT), if the Bundle holds one.
    pub fn list(&self, code: &str) -> Option<&'b Node<'b>> {
        self.lists.iter().copied().find(|l| {
            l["id"].is_null()
                && l["code"]["coding"]
                    .items()
                    .iter()
                    .any(|c| c["code"].is(code))
        })
    }

    /// Every resource of type `kind` that has an id, in no particular order.
    pub fn resources_of<'k>(
        &self,
        kind: &'k str,
    ) -> impl Iterator<Item = &'b Node<'b>> + use<'_, 'b, 'k> {
        self.by_reference
            .values()
            .copied()
            .filter(move |r| r["resourceType"].is(kind))
    }

    /// The one Patient of the Bundle.
    pub fn patient(&self) -> Option<&'b Node<'b>> {
        self.patients.first().copied()
    }

    /// Whether the provider answered that `parameter`'s clinical area is switched off.
    pub fn is_disabled(&self, parameter: &str) -> bool {
        self.disabled.contains(&parameter)
    }
}

/// The parameters named by `NOT_IMPLEMENTED` warnings of an OperationOutcome in the Bundle.
fn disabled_areas<'b>(outcome: &'b Node<'b>) -> impl Iterator<Item = &'b str> {
    outcome["issue"]
        .items()
        .iter()
        .filter(|issue| spine_code_of_issue(issue) == Some("NOT_IMPLEMENTED"))
        .filter_map(|issue| issue["diagnostics"].as_str())
}

fn spine_code_of_issue<'n>(issue: &'n Node<'_>) -> Option<&'n str> {
    issue["details"]["coding"]
        .items()
        .iter()
        .find(|c| c["system"].is(SPINE_CODE_SYSTEM))
        .and_then(|c| c["code"].as_str())
}

/// The Spine code of an error OperationOutcome (`PATIENT_NOT_FOUND`, ...), or `""`.
pub fn spine_code<'n>(outcome: &'n Node<'_>) -> &'n str {
    outcome["issue"]
        .items()
        .iter()
        .find_map(spine_code_of_issue)
        .unwrap_or("")
}
