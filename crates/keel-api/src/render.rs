//! Renders stored resources into Bundles and responses. Resource bodies are spliced in as the
//! stored JSON text, never re-parsed, so what was stored is exactly what is sent.

use keel_core::fhir::{BundleKind, BundleResponse};
use keel_core::store::{HistoryPage, SearchResult, StoredResource, WriteMethod};
use keel_fhir::datetime::format_instant;
use keel_model::OperationOutcome;
use serde_json::{Value, json};

/// Builds JSON text incrementally (the stored bodies are already JSON).
struct JsonText(String);

impl JsonText {
    fn raw(&mut self, s: &str) {
        self.0.push_str(s);
    }
    fn string(&mut self, s: &str) {
        self.0.push_str(&Value::String(s.to_string()).to_string());
    }
}

/// A `searchset` Bundle. `self_link`, `next`, `previous` are absolute URLs.
pub fn searchset(
    base: &str,
    result: &SearchResult,
    links: &[(&str, String)],
    warnings: &[String],
) -> String {
    let mut out = JsonText(String::with_capacity(
        256 + result.matches.iter().map(body_len).sum::<usize>(),
    ));
    out.raw(r#"{"resourceType":"Bundle","type":"searchset""#);
    if let Some(total) = result.total {
        out.raw(&format!(r#","total":{total}"#));
    }
    out.raw(r#","link":["#);
    for (i, (relation, url)) in links.iter().enumerate() {
        if i > 0 {
            out.raw(",");
        }
        out.raw(r#"{"relation":"#);
        out.string(relation);
        out.raw(r#","url":"#);
        out.string(url);
        out.raw("}");
    }
    out.raw(r#"],"entry":["#);
    let mut first = true;
    let entries = result
        .matches
        .iter()
        .map(|r| (r, "match"))
        .chain(result.included.iter().map(|r| (r, "include")));
    for (resource, mode) in entries {
        let Some(body) = &resource.body else { continue };
        if !first {
            out.raw(",");
        }
        first = false;
        out.raw(r#"{"fullUrl":"#);
        out.string(&format!(
            "{base}/{}/{}",
            resource.resource_type, resource.id
        ));
        out.raw(r#","resource":"#);
        out.raw(body);
        out.raw(&format!(r#","search":{{"mode":"{mode}"}}}}"#));
    }
    if !warnings.is_empty() {
        let outcome = warnings.iter().fold(OperationOutcome::new(), |o, w| {
            o.warning(keel_model::IssueType::NotSupported, w.clone())
        });
        if !first {
            out.raw(",");
        }
        out.raw(r#"{"resource":"#);
        out.raw(&outcome.to_json().to_string());
        out.raw(r#","search":{"mode":"outcome"}}"#);
    }
    out.raw("]}");
    out.0
}

fn body_len(r: &StoredResource) -> usize {
    r.body.as_deref().map_or(0, str::len) + 96
}

/// A `history` Bundle.
pub fn history(base: &str, page: &HistoryPage, links: &[(&str, String)]) -> String {
    let mut out = JsonText(String::with_capacity(
        256 + page.versions.iter().map(body_len).sum::<usize>(),
    ));
    out.raw(&format!(
        r#"{{"resourceType":"Bundle","type":"history","total":{},"link":["#,
        page.total
    ));
    for (i, (relation, url)) in links.iter().enumerate() {
        if i > 0 {
            out.raw(",");
        }
        out.raw(&json!({"relation": relation, "url": url}).to_string());
    }
    out.raw(r#"],"entry":["#);
    for (i, v) in page.versions.iter().enumerate() {
        if i > 0 {
            out.raw(",");
        }
        out.raw(r#"{"fullUrl":"#);
        out.string(&format!("{base}/{}/{}", v.resource_type, v.id));
        if let Some(body) = &v.body {
            out.raw(r#","resource":"#);
            out.raw(body);
        }
        let url = match v.method {
            WriteMethod::Create => v.resource_type.clone(),
            _ => format!("{}/{}", v.resource_type, v.id),
        };
        let status = match v.method {
            WriteMethod::Create => "201 Created",
            WriteMethod::Update => "200 OK",
            WriteMethod::Delete => "204 No Content",
        };
        out.raw(
            &json!({
                "request": {"method": v.method.as_http(), "url": url},
                "response": {"status": status, "etag": etag(v.version), "lastModified": format_instant(v.last_updated)}
            })
            .to_string()
            .replacen('{', ",", 1),
        );
    }
    out.raw("]}");
    out.0
}

/// The response Bundle of a batch or transaction.
pub fn bundle_response(base: &str, response: &BundleResponse) -> Value {
    let kind = match response.kind {
        BundleKind::Batch => "batch-response",
        BundleKind::Transaction => "transaction-response",
    };
    let entries: Vec<Value> = response
        .entries
        .iter()
        .map(|result| match result {
            Ok(entry) => {
                let mut out = serde_json::Map::new();
                let mut resp = serde_json::Map::new();
                resp.insert("status".into(), json!(entry.status));
                if let Some(stored) = &entry.resource {
                    out.insert("fullUrl".into(), json!(format!("{base}/{}/{}", stored.resource_type, stored.id)));
                    resp.insert("location".into(), json!(format!("{}/{}/_history/{}", stored.resource_type, stored.id, stored.version)));
                    resp.insert("etag".into(), json!(etag(stored.version)));
                    resp.insert("lastModified".into(), json!(format_instant(stored.last_updated)));
                }
                if let Some(body) = &entry.body {
                    out.insert("resource".into(), body.clone());
                }
                out.insert("response".into(), Value::Object(resp));
                Value::Object(out)
            }
            Err(error) => {
                let status = crate::outcome::status_of(error);
                json!({"response": {"status": format!("{status} {}", reason_phrase(status)), "outcome": crate::outcome::outcome_of(error, None).to_json()}})
            }
        })
        .collect();
    json!({"resourceType": "Bundle", "type": kind, "entry": entries})
}

pub fn etag(version: u64) -> String {
    format!("W/\"{version}\"")
}

pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        404 => "Not Found",
        409 => "Conflict",
        410 => "Gone",
        412 => "Precondition Failed",
        422 => "Unprocessable Entity",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "",
    }
}

/// RFC 7231 IMF-fixdate, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
pub fn http_date(ms: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let instant = format_instant(ms); // YYYY-MM-DDThh:mm:ss.fffZ
    let day_index = ms.div_euclid(86_400_000).rem_euclid(7) as usize;
    let month: usize = instant[5..7].parse().unwrap_or(1);
    format!(
        "{}, {} {} {} {} GMT",
        DAYS[day_index],
        &instant[8..10],
        MONTHS[month - 1],
        &instant[0..4],
        &instant[11..19]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates() {
        assert_eq!(http_date(784_111_777_000), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
    }
}
