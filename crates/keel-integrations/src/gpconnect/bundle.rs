//! A structured record Bundle (reference sheet §3.4) indexed for mapping: resources by
//! reference, the primary Lists by their SNOMED CT code, and the clinical areas the provider
//! said it has switched off.

use std::collections::HashMap;

use serde_json::Value;

const SPINE_CODE_SYSTEM: &str = "https://fhir.nhs.uk/STU3/CodeSystem/Spine-ErrorOrWarningCode-1";

/// A parsed Bundle and its index. Consumers must not depend on entry order, so everything is
/// found by reference.
pub struct StructuredBundle<'b> {
    by_reference: HashMap<String, &'b Value>,
    lists: Vec<&'b Value>,
    patients: Vec<&'b Value>,
    disabled: Vec<&'b str>,
}

impl<'b> StructuredBundle<'b> {
    /// Indexes `bundle`.
    ///
    /// # Errors
    /// When it is not a Bundle or a resource has no type.
    pub fn index(bundle: &'b Value) -> Result<StructuredBundle<'b>, String> {
        if bundle["resourceType"] != "Bundle" {
            return Err("the answer is not a Bundle".into());
        }
        let entries = bundle["entry"].as_array().map(Vec::as_slice).unwrap_or(&[]);
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
                index.by_reference.insert(format!("{kind}/{id}"), resource);
            }
        }
        Ok(index)
    }

    /// The resource `reference` (`Type/id`) points at, if the Bundle holds it.
    pub fn resolve(&self, reference: &str) -> Option<&'b Value> {
        self.by_reference.get(reference).copied()
    }

    /// The primary List coded `code` (SNOMED CT), if the Bundle holds one.
    pub fn list(&self, code: &str) -> Option<&'b Value> {
        self.lists.iter().copied().find(|l| {
            l["id"].is_null()
                && l.pointer("/code/coding")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .any(|c| c["code"] == code)
        })
    }

    /// Every resource of type `kind` that has an id, in no particular order.
    pub fn resources_of(&self, kind: &'b str) -> impl Iterator<Item = &'b Value> + '_ {
        self.by_reference
            .values()
            .copied()
            .filter(move |r| r["resourceType"] == kind)
    }

    /// The one Patient of the Bundle.
    pub fn patient(&self) -> Option<&'b Value> {
        self.patients.first().copied()
    }

    /// Whether the provider answered that `parameter`'s clinical area is switched off.
    pub fn is_disabled(&self, parameter: &str) -> bool {
        self.disabled.contains(&parameter)
    }
}

/// The parameters named by `NOT_IMPLEMENTED` warnings of an OperationOutcome in the Bundle.
fn disabled_areas(outcome: &Value) -> impl Iterator<Item = &str> {
    outcome["issue"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|issue| spine_code_of_issue(issue) == Some("NOT_IMPLEMENTED"))
        .filter_map(|issue| issue["diagnostics"].as_str())
}

fn spine_code_of_issue(issue: &Value) -> Option<&str> {
    issue
        .pointer("/details/coding")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|c| c["system"] == SPINE_CODE_SYSTEM)
        .and_then(|c| c["code"].as_str())
}

/// The Spine code of an error OperationOutcome (`PATIENT_NOT_FOUND`, ...), or `""`.
pub fn spine_code(outcome: &Value) -> &str {
    outcome["issue"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(spine_code_of_issue)
        .unwrap_or("")
}
