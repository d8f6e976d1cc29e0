//! A truthful CapabilityStatement: it lists only what this server does.

use keel_fhir::definitions::{Definitions, SearchParamType};
use keel_fhir::index::indexable;
use serde_json::{Value, json};

pub fn capability_statement(defs: &Definitions, base: &str) -> Value {
    let resources: Vec<Value> = defs
        .resource_types()
        .filter(|rt| !matches!(*rt, "Resource" | "DomainResource"))
        .map(|rt| {
            let mut params: Vec<Value> = defs
                .search_params(rt)
                .filter(|d| indexable(d) && d.code != "_id" && d.code != "_lastUpdated")
                .map(|d| json!({"name": d.code, "definition": d.url, "type": type_code(d.kind)}))
                .collect();
            params.push(json!({"name": "_id", "type": "token", "definition": "http://hl7.org/fhir/SearchParameter/Resource-id"}));
            params.push(json!({"name": "_lastUpdated", "type": "date", "definition": "http://hl7.org/fhir/SearchParameter/Resource-lastUpdated"}));
            let includes: Vec<String> = defs
                .search_params(rt)
                .filter(|d| d.kind == SearchParamType::Reference && indexable(d))
                .map(|d| format!("{rt}:{}", d.code))
                .collect();
            let interactions: Vec<Value> = ["read", "vread", "update", "patch", "delete", "history-instance", "history-type", "create", "search-type"]
                .iter()
                .map(|c| json!({"code": c}))
                .collect();
            let mut resource = json!({
                "type": rt,
                "interaction": interactions,
                "versioning": "versioned-update",
                "readHistory": true,
                "updateCreate": true,
                "conditionalCreate": true,
                "conditionalRead": "not-supported",
                "conditionalUpdate": true,
                "conditionalDelete": "single",
                "referencePolicy": ["literal", "logical", "local"],
                "searchInclude": includes,
                "searchParam": params
            });
            if rt == "Patient" {
                resource["operation"] = json!([
                    {"name": "everything", "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything"},
                    {
                        "name": "match",
                        "definition": "http://hl7.org/fhir/OperationDefinition/Patient-match",
                        "documentation": "POST only, input parameters resource (a Patient), onlyCertainMatches and count (default 10, at most 100). NHS number first: the same verified NHS number is certain, a different NHS number never matches; otherwise a Fellegi-Sunter matcher trained by EM on the stored Patients grades each candidate certain (probability >= 0.99), probable (>= 0.5) or possible (>= 0.1). Each entry carries search.score, the match-grade extension and the match-evidence extension (per-field agreement level and weight). Only Patients the caller may read are returned."
                    }
                ]);
            }
            resource
        })
        .collect();
    json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-21",
        "kind": "instance",
        "software": {"name": "Keel", "version": env!("CARGO_PKG_VERSION")},
        "implementation": {"description": "Keel FHIR R4 server", "url": base},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "patchFormat": ["application/json-patch+json"],
        "rest": [{
            "mode": "server",
            "documentation": "Search: string, token, date, reference, quantity, number and uri parameters from the R4 definitions; modifiers :exact :contains :text :not :missing :identifier :below :above (uri) and reference type modifiers; prefixes eq ne gt lt ge le sa eb ap; chaining, _has, _include/_revinclude (with :iterate), _sort, _count, _summary=count, _total. Composite and special parameters are not supported. Unknown parameters are ignored with a warning unless Prefer: handling=strict.",
            "resource": resources,
            "interaction": [{"code": "transaction"}, {"code": "batch"}, {"code": "history-system"}],
            "operation": [{
                "name": "export",
                "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export",
                "documentation": "System-level bulk export (FHIR Bulk Data Access): GET with Prefer: respond-async; parameters _type, _since, _outputFormat (NDJSON only). The status URL in Content-Location answers 202 with X-Progress until the manifest; DELETE cancels a running export or deletes a finished one. Only the requester sees the export, and it holds what their searches would. Writes and the kick-off take an Idempotency-Key header: a repeat with the same key gets the first response."
            }],
            "searchParam": [
                {"name": "_count", "type": "number"},
                {"name": "_sort", "type": "string"},
                {"name": "_include", "type": "string"},
                {"name": "_revinclude", "type": "string"},
                {"name": "_summary", "type": "token"},
                {"name": "_total", "type": "token"}
            ]
        }]
    })
}

fn type_code(kind: SearchParamType) -> &'static str {
    match kind {
        SearchParamType::Number => "number",
        SearchParamType::Date => "date",
        SearchParamType::String => "string",
        SearchParamType::Token => "token",
        SearchParamType::Reference => "reference",
        SearchParamType::Composite => "composite",
        SearchParamType::Quantity => "quantity",
        SearchParamType::Uri => "uri",
        SearchParamType::Special => "special",
    }
}
