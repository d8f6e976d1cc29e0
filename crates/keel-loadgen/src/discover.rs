//! Finding what to ask for: ids of a type, and samples of resources for `{Type.path}` values.

use crate::client::Client;
use crate::target::Target;
use crate::template::{Rows, extract};
use serde_json::Value;
use std::collections::HashSet;

/// Limits of a discovery.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// At most this many resources.
    pub max: usize,
    /// At most this many pages (requests).
    pub max_pages: usize,
}

/// Up to `limits.max` distinct ids of `ty`, from `GET {base}/{ty}?_count=1000&_elements=id` and
/// its `next` links.
pub async fn discover_ids(
    client: &mut Client,
    target: &Target,
    ty: &str,
    limits: Limits,
) -> Result<Vec<String>, String> {
    let count = limits.max.clamp(1, 1000);
    let first = target.path_for(&format!("{ty}?_count={count}&_elements=id"));
    let mut ids = Vec::new();
    let mut seen = HashSet::new();
    walk(client, target, ty, &first, limits, |resource| {
        if let Some(id) = resource.get("id").and_then(Value::as_str)
            && seen.insert(id.to_string())
        {
            ids.push(id.to_string());
        }
        ids.len()
    })
    .await?;
    Ok(ids)
}

/// Up to `limits.max` resources of `ty`, from `GET {base}/{ty}?_count=N` and its `next` links.
pub async fn sample_resources(
    client: &mut Client,
    target: &Target,
    ty: &str,
    limits: Limits,
) -> Result<Vec<Value>, String> {
    let count = limits.max.clamp(1, 1000);
    let first = target.path_for(&format!("{ty}?_count={count}"));
    let mut resources = Vec::new();
    walk(client, target, ty, &first, limits, |resource| {
        resources.push(resource.clone());
        resources.len()
    })
    .await?;
    Ok(resources)
}

/// The rows (id and values at `paths`) of the resources that have a value at every path.
pub fn rows_of(resources: &[Value], paths: &[Vec<String>]) -> Rows {
    let rows = resources
        .iter()
        .filter_map(|resource| {
            let id = resource.get("id").and_then(Value::as_str)?;
            let values: Option<Vec<String>> = paths.iter().map(|p| extract(resource, p)).collect();
            Some((id.to_string(), values?))
        })
        .collect();
    Rows { rows }
}

/// Pages through a search, calling `each` with every resource of `ty` (not `OperationOutcome`s
/// or included resources); `each` returns how many have been collected so far.
async fn walk(
    client: &mut Client,
    target: &Target,
    ty: &str,
    first: &str,
    limits: Limits,
    mut each: impl FnMut(&Value) -> usize,
) -> Result<(), String> {
    let mut next = Some(first.to_string());
    let mut pages = 0;
    let mut visited = HashSet::new();
    while let Some(path) = next.take() {
        if pages >= limits.max_pages || !visited.insert(path.clone()) {
            break;
        }
        pages += 1;
        let response = client.get(&path).await?;
        if !response.status.is_success() {
            return Err(format!(
                "GET {path} answered {}: {}",
                response.status,
                snippet(&response.body)
            ));
        }
        let bundle: Value = serde_json::from_slice(&response.body)
            .map_err(|e| format!("GET {path}: not JSON: {e}"))?;
        if bundle.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
            return Err(format!("GET {path}: not a Bundle"));
        }
        let entries = bundle
            .get("entry")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        for entry in entries {
            let Some(resource) = entry.get("resource") else {
                continue;
            };
            if resource.get("resourceType").and_then(Value::as_str) != Some(ty) {
                continue;
            }
            if each(resource) >= limits.max {
                return Ok(());
            }
        }
        next = next_link(&bundle).map(|link| target.path_of_link(link));
    }
    Ok(())
}

/// The `next` link of a Bundle.
pub fn next_link(bundle: &Value) -> Option<&str> {
    bundle
        .get("link")?
        .as_array()?
        .iter()
        .find(|l| l.get("relation").and_then(Value::as_str) == Some("next"))?
        .get("url")?
        .as_str()
}

/// The start of a response body, for error messages.
pub fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(300)]);
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
