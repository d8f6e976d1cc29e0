//! A structured record Bundle (reference sheet §3.4) indexed for mapping: resources by
//! reference, the primary Lists by their SNOMED CT code, and the clinical areas the provider
//! said it has switched off.

use std::borrow::Cow;
use std::collections::HashMap;

use serde::Deserialize;

use super::stu3::{Many, Obj, Object, Text};

const SPINE_CODE_SYSTEM: &str = "https://fhir.nhs.uk/STU3/CodeSystem/Spine-ErrorOrWarningCode-1";

/// A Bundle as sent: each entry's resource read one level deep.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Bundle<'a> {
    #[serde(borrow)]
    resource_type: Text<'a>,
    #[serde(borrow)]
    entry: Many<Obj<Entry<'a>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Entry<'a> {
    #[serde(borrow)]
    resource: Obj<Object<'a>>,
}

impl<'a> Bundle<'a> {
    /// Reads an answer's body.
    ///
    /// # Errors
    /// When it is not JSON, or not a Bundle.
    pub fn read(body: &'a [u8]) -> Result<Bundle<'a>, &'static str> {
        // Validated as UTF-8 once here, rather than member by member as each is kept.
        let body = std::str::from_utf8(body).map_err(|_| "the answer is not JSON")?;
        match serde_json::from_str::<Obj<Bundle<'a>>>(body) {
            Err(_) => Err("the answer is not JSON"),
            Ok(Obj(Some(bundle))) if bundle.resource_type.is("Bundle") => Ok(bundle),
            Ok(_) => Err("the answer is not a Bundle"),
        }
    }
}

/// A Bundle's resource's type and id.
type ResourceKey<'b> = (Cow<'b, str>, Cow<'b, str>);

/// A parsed Bundle and its index. Consumers must not depend on entry order, so everything is
/// found by reference.
pub struct StructuredBundle<'b> {
    by_reference: HashMap<ResourceKey<'b>, &'b Object<'b>>,
    lists: Vec<&'b Object<'b>>,
    patients: Vec<&'b Object<'b>>,
    disabled: Vec<Cow<'b, str>>,
}

impl<'b> StructuredBundle<'b> {
    /// Indexes `bundle`.
    ///
    /// # Errors
    /// When a resource has no type.
    pub fn index(bundle: &'b Bundle<'b>) -> Result<StructuredBundle<'b>, String> {
        let entries = &bundle.entry.0;
        let mut index = StructuredBundle {
            by_reference: HashMap::with_capacity(entries.len()),
            lists: Vec::new(),
            patients: Vec::new(),
            disabled: Vec::new(),
        };
        for entry in entries {
            let resource = entry
                .0
                .as_ref()
                .and_then(|e| e.resource.0.as_ref())
                .ok_or("a Bundle entry has no resource type")?;
            let kind = resource
                .text("resourceType")
                .into_cow()
                .ok_or("a Bundle entry has no resource type")?;
            match kind.as_ref() {
                "List" => index.lists.push(resource),
                "Patient" => index.patients.push(resource),
                "OperationOutcome" => index.disabled.extend(disabled_areas(resource)),
                _ => {}
            }
            if let Some(id) = resource.text("id").into_cow() {
                index.by_reference.insert((kind, id), resource);
            }
        }
        Ok(index)
    }

    /// The resource `reference` (`Type/id`) points at, if the Bundle holds it.
    pub fn resolve(&self, reference: &str) -> Option<&'b Object<'b>> {
        let (kind, id) = reference.split_once('/')?;
        self.by_reference
            .get(&(Cow::Borrowed(kind), Cow::Borrowed(id)))
            .copied()
    }

    /// The primary List coded `code` (SNOMED CT), if the Bundle holds one.
    pub fn list(&self, code: &str) -> Option<&'b Object<'b>> {
        self.lists.iter().copied().find(|l| {
            !l.has("id")
                && l.get::<Obj<super::stu3::CodeableConcept<'_>>>("code")
                    .0
                    .is_some_and(|c| c.has_code(code))
        })
    }

    /// Every resource of type `kind` that has an id, in no particular order.
    pub fn resources_of<'k>(
        &self,
        kind: &'k str,
    ) -> impl Iterator<Item = &'b Object<'b>> + use<'_, 'b, 'k> {
        self.by_reference
            .iter()
            .filter(move |((k, _), _)| k == kind)
            .map(|(_, resource)| *resource)
    }

    /// The one Patient of the Bundle.
    pub fn patient(&self) -> Option<&'b Object<'b>> {
        self.patients.first().copied()
    }

    /// Whether the provider answered that `parameter`'s clinical area is switched off.
    pub fn is_disabled(&self, parameter: &str) -> bool {
        self.disabled.iter().any(|d| d == parameter)
    }
}

/// The parameters named by `NOT_IMPLEMENTED` warnings of an OperationOutcome in the Bundle.
fn disabled_areas<'b>(outcome: &Object<'b>) -> Vec<Cow<'b, str>> {
    outcome
        .get::<Many<Obj<Issue<'b>>>>("issue")
        .0
        .into_iter()
        .filter_map(|issue| issue.0)
        .filter(|issue| issue.spine_code() == Some("NOT_IMPLEMENTED"))
        .filter_map(|issue| issue.diagnostics.into_cow())
        .collect()
}

/// An OperationOutcome's issue.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Issue<'a> {
    #[serde(borrow)]
    details: Obj<super::stu3::CodeableConcept<'a>>,
    #[serde(borrow)]
    diagnostics: Text<'a>,
}

impl Issue<'_> {
    fn spine_code(&self) -> Option<&str> {
        self.details
            .0
            .as_ref()?
            .coding
            .objects()
            .find(|c| c.system.is(SPINE_CODE_SYSTEM))
            .and_then(|c| c.code.as_str())
    }
}

/// An error answer's OperationOutcome.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Outcome<'a> {
    #[serde(borrow)]
    issue: Many<Obj<Issue<'a>>>,
}

/// The Spine code of an error answer's OperationOutcome (`PATIENT_NOT_FOUND`, ...), or `""`.
pub fn spine_code(body: &[u8]) -> String {
    serde_json::from_slice::<Obj<Outcome<'_>>>(body)
        .ok()
        .and_then(|outcome| outcome.0)
        .and_then(|outcome| {
            outcome
                .issue
                .objects()
                .find_map(Issue::spine_code)
                .map(str::to_string)
        })
        .unwrap_or_default()
}
