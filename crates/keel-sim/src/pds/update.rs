//! `PATCH /Patient/{nhsNumber}`: a JSON Patch against the stored record, guarded by `If-Match`
//! (reference sheet §4, "Update (PATCH) and versioning").
//!
//! Follows the sheet: the body is `{"patches": [...]}` (a bare JSON Patch array is accepted
//! too) with `add`/`replace`/`remove`/`test`, applied all-or-nothing; `If-Match: W/"<n>"` is
//! required (missing or malformed → 412 `PRECONDITION_FAILED`; not the current version → 409
//! `RESOURCE_VERSION_MISMATCH`); success bumps `meta.versionId`.
//!
//! Assumptions (not stated by the sheet): `id`, `resourceType`, `meta` and the NHS number
//! identifier cannot be patched, nor can a death notification be set to `U` (403
//! `FORBIDDEN_UPDATE`); a document that is not a JSON Patch, uses another op, or whose `test`
//! fails → 400 `INVALID_UPDATE`; a result with an unknown `gender` or a malformed `birthDate`
//! → 400 `VALIDATION_ERROR`.

use axum::http::StatusCode;
use serde_json::Value;

use super::{ApiError, DEATH_EXT};

/// The version in an `If-Match` header value (`W/"3"` or `"3"`).
pub fn if_match_version(header: &str) -> Option<u64> {
    let tag = header.trim();
    let tag = tag.strip_prefix("W/").unwrap_or(tag);
    let inner = tag.strip_prefix('"')?.strip_suffix('"')?;
    if inner.is_empty() || !inner.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    inner.parse().ok()
}

/// The stored record's version (`meta.versionId`, `1` when absent).
pub fn version_of(patient: &Value) -> u64 {
    patient
        .pointer("/meta/versionId")
        .and_then(Value::as_str)
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
}

/// Applies the PATCH `body` to `stored` if `if_match` names its current version; returns the
/// new record at the next version.
///
/// # Errors
/// The PDS error for a missing or stale `If-Match`, a bad patch or a forbidden change.
pub fn apply(stored: &Value, if_match: Option<&str>, body: &[u8]) -> Result<Value, ApiError> {
    let Some(expected) = if_match.and_then(if_match_version) else {
        return Err(ApiError::new(
            StatusCode::PRECONDITION_FAILED,
            "structure",
            "PRECONDITION_FAILED",
            "Required condition was not fulfilled",
            Some("Invalid update - If-Match header must be supplied as W/\"<versionId>\""),
        ));
    };
    let current = version_of(stored);
    if expected != current {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "structure",
            "RESOURCE_VERSION_MISMATCH",
            "Resource version mismatch",
            Some(&format!(
                "Invalid update with error - This resource has changed since you last read. \
                 Please re-read and try again with the new version number {current}."
            )),
        ));
    }
    let operations = patch_operations(body)?;
    for op in &operations {
        check_allowed(op)?;
    }
    let patch: json_patch::Patch = serde_json::from_value(Value::Array(operations))
        .map_err(|e| invalid_update(&format!("not a JSON Patch: {e}")))?;
    let mut updated = stored.clone();
    json_patch::patch(&mut updated, &patch).map_err(|e| invalid_update(&e.to_string()))?;
    check_result(&updated)?;
    if let Some(meta) = updated.get_mut("meta").and_then(Value::as_object_mut) {
        meta.insert("versionId".into(), Value::String((current + 1).to_string()));
    }
    Ok(updated)
}

fn invalid_update(diagnostics: &str) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "structure",
        "INVALID_UPDATE",
        "Update is invalid",
        Some(&format!("Invalid update with error - {diagnostics}")),
    )
}

fn forbidden(diagnostics: &str) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "forbidden",
        "FORBIDDEN_UPDATE",
        "Forbidden update",
        Some(&format!("Invalid update with error - {diagnostics}")),
    )
}

/// The operations of a `{"patches": [...]}` document or a bare array.
fn patch_operations(body: &[u8]) -> Result<Vec<Value>, ApiError> {
    let doc: Value = serde_json::from_slice(body)
        .map_err(|e| invalid_update(&format!("the body is not JSON: {e}")))?;
    let ops = match doc {
        Value::Array(ops) => ops,
        Value::Object(mut obj) => match obj.remove("patches") {
            Some(Value::Array(ops)) => ops,
            _ => return Err(invalid_update("expected {\"patches\": [...]}")),
        },
        _ => return Err(invalid_update("expected {\"patches\": [...]}")),
    };
    if ops.is_empty() {
        return Err(invalid_update("no patches were given"));
    }
    Ok(ops)
}

fn check_allowed(op: &Value) -> Result<(), ApiError> {
    let kind = op.get("op").and_then(Value::as_str).unwrap_or("");
    if !matches!(kind, "add" | "replace" | "remove" | "test") {
        return Err(invalid_update(&format!(
            "unsupported patch operation '{kind}' (add, replace, remove or test)"
        )));
    }
    let path = op.get("path").and_then(Value::as_str).unwrap_or("");
    let top = path.split('/').nth(1).unwrap_or("");
    if kind != "test" && matches!(top, "id" | "resourceType" | "meta" | "identifier") {
        return Err(forbidden(&format!("'{path}' cannot be updated")));
    }
    Ok(())
}

fn check_result(patient: &Value) -> Result<(), ApiError> {
    let validation = |d: &str| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "structure",
            "VALIDATION_ERROR",
            "Validation error",
            Some(&format!("Invalid update with error - {d}")),
        )
    };
    if let Some(g) = patient.get("gender") {
        let ok = g
            .as_str()
            .is_some_and(|g| matches!(g, "male" | "female" | "other" | "unknown"));
        if !ok {
            return Err(validation("gender must be male, female, other or unknown"));
        }
    }
    if let Some(d) = patient.get("birthDate") {
        let ok = d.as_str().is_some_and(|d| {
            d.len() == 10
                && d.bytes().enumerate().all(|(i, b)| {
                    if i == 4 || i == 7 {
                        b == b'-'
                    } else {
                        b.is_ascii_digit()
                    }
                })
        });
        if !ok {
            return Err(validation("birthDate must be YYYY-MM-DD"));
        }
    }
    let death_set_to_u = patient
        .get("extension")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|e| e.get("url").and_then(Value::as_str) == Some(DEATH_EXT))
        .any(|e| e.to_string().contains("\"code\":\"U\""));
    if death_set_to_u {
        return Err(forbidden(
            "a death notification status of 'U' (removed) cannot be set by an update",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn stored() -> Value {
        json!({"resourceType": "Patient", "id": "9000000009", "meta": {"versionId": "2"},
               "gender": "female", "birthDate": "1950-03-02"})
    }

    #[test]
    fn if_match_takes_weak_and_strong_tags_only() {
        assert_eq!(if_match_version("W/\"2\""), Some(2));
        assert_eq!(if_match_version("\"7\""), Some(7));
        assert_eq!(if_match_version("2"), None);
        assert_eq!(if_match_version("W/\"\""), None);
        assert_eq!(if_match_version("W/\"x\""), None);
    }

    #[test]
    fn a_patch_at_the_current_version_applies_and_bumps_it() {
        let body = br#"{"patches":[{"op":"replace","path":"/gender","value":"male"}]}"#;
        let out = apply(&stored(), Some("W/\"2\""), body).expect("applies");
        assert_eq!(out["gender"], "male");
        assert_eq!(out["meta"]["versionId"], "3");
    }

    #[test]
    fn a_failed_test_op_changes_nothing() {
        let body = br#"[{"op":"replace","path":"/gender","value":"male"},
                        {"op":"test","path":"/birthDate","value":"1999-01-01"}]"#;
        let err = apply(&stored(), Some("W/\"2\""), body).expect_err("test fails");
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn identity_fields_are_forbidden() {
        for path in ["/id", "/meta/versionId", "/identifier/0/value"] {
            let body = json!([{"op": "replace", "path": path, "value": "x"}]).to_string();
            let err = apply(&stored(), Some("W/\"2\""), body.as_bytes()).expect_err(path);
            assert_eq!(err.status, StatusCode::FORBIDDEN, "{path}");
        }
    }

    proptest! {
        /// Any body either applies at the right version or answers a PDS error; never a panic.
        #[test]
        fn arbitrary_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..200),
                                        tag in "\\PC{0,12}") {
            let _ = apply(&stored(), Some(&tag), &body);
            let _ = apply(&stored(), Some("W/\"2\""), &body);
        }
    }
}
