//! Derives keel-fhir's compact R4 definitions file from the HL7 FHIR R4 package.
//!
//! Input: the extracted npm package `hl7.fhir.r4.examples@4.0.1` (CC0), as laid
//! out by `scripts/fetch-test-assets.sh` under
//! `$KEEL_TEST_ASSETS/hl7.fhir.r4.examples/package` (default
//! `<repo>/.test-assets`). It reads only the conformance bundles:
//!
//! * `Bundle-resources.json`: StructureDefinitions (with snapshots) of all resources,
//! * `Bundle-types.json`: StructureDefinitions of all data types,
//! * `Bundle-valuesets.json`, `Bundle-v2-valuesets.json`, `Bundle-v3-valuesets.json`:
//!   ValueSets and CodeSystems,
//! * `Bundle-searchParams.json`: all SearchParameters.
//!
//! Output: `crates/keel-fhir/data/r4-definitions.json.gz`, a gzip (fixed header:
//! mtime 0, no file name, OS byte 255) of one compact JSON document. The output
//! is deterministic: object keys are sorted, name and code lists are sorted,
//! search parameters are sorted by URL, and elements keep snapshot order (the
//! canonical FHIR element order).
//!
//! Format (version 1; keys shown in logical order, written sorted). Optional keys
//! are left out when empty/false/0: `min`, `types`, `targets`, `contentRef`,
//! `binding`, `summary`, `modifier`, `abstract`, `base`, `expression`, `target`,
//! `modifier`, `comparator`, `component`. Read by `keel_fhir::definitions`:
//!
//! ```text
//! { "format": 1, "fhirVersion": "4.0.1",
//!   "resourceTypes": [concrete resource names], "abstractResourceTypes": [...],
//!   "primitiveTypes": [...], "complexTypes": [...],
//!   "structures": [ { "name", "kind": "resource"|"primitive"|"complex", "abstract", "base",
//!                     "elements": [ { "path", "min", "max", "types": [ { "code", "targets" } ],
//!                                     "contentRef", "binding", "summary", "modifier" } ] } ],
//!   "valueSets": { url: null (not enumerable) | { system: [codes] } },
//!   "searchParams": [ { "url", "code", "base", "type", "expression", "target",
//!                       "modifier", "comparator", "component": [ { "definition", "expression" } ] } ] }
//! ```
//!
//! `binding` is only present for `required` bindings. `valueSets` holds exactly the
//! value sets referenced by a required binding.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

/// Version of the derived file's layout; bump when the loader must change.
pub const FORMAT_VERSION: u64 = 1;

/// Where `scripts/fetch-test-assets.sh` extracts the package, relative to the assets dir.
pub const PACKAGE_SUBDIR: &str = "hl7.fhir.r4.examples/package";

/// Error raised while reading the package or producing the file.
#[derive(Debug)]
pub struct GenError(pub String);

impl fmt::Display for GenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for GenError {}

fn err(msg: impl Into<String>) -> GenError {
    GenError(msg.into())
}

/// The workspace root (two levels above this crate's manifest).
pub fn workspace_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| here.to_path_buf())
}

/// `$KEEL_TEST_ASSETS`, or `<repo>/.test-assets`.
pub fn default_assets_dir() -> PathBuf {
    match std::env::var_os("KEEL_TEST_ASSETS") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => workspace_root().join(".test-assets"),
    }
}

/// The extracted package directory inside [`default_assets_dir`].
pub fn default_package_dir() -> PathBuf {
    default_assets_dir().join(PACKAGE_SUBDIR)
}

/// The committed output file, `crates/keel-fhir/data/r4-definitions.json.gz`.
pub fn default_output_path() -> PathBuf {
    workspace_root().join("crates/keel-fhir/data/r4-definitions.json.gz")
}

/// Checks that `package_dir` looks like the extracted package, with a helpful message if not.
pub fn check_package_dir(package_dir: &Path) -> Result<(), GenError> {
    let probe = package_dir.join("Bundle-resources.json");
    if probe.is_file() {
        Ok(())
    } else {
        Err(err(format!(
            "FHIR R4 package not found: {} is missing. Run scripts/fetch-test-assets.sh \
             (it extracts hl7.fhir.r4.examples@4.0.1 into $KEEL_TEST_ASSETS, default <repo>/.test-assets).",
            probe.display()
        )))
    }
}

/// Produces the gzip-compressed definitions file.
pub fn generate(package_dir: &Path) -> Result<Vec<u8>, GenError> {
    let json = generate_json(package_dir)?;
    compress(&json)
}

/// Gzip with a fixed header (mtime 0, no name, OS 255) and best compression.
pub fn compress(json: &[u8]) -> Result<Vec<u8>, GenError> {
    let mut enc = flate2::GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(Vec::new(), flate2::Compression::best());
    enc.write_all(json)
        .map_err(|e| err(format!("gzip failed: {e}")))?;
    enc.finish().map_err(|e| err(format!("gzip failed: {e}")))
}

/// Produces the uncompressed canonical JSON document.
pub fn generate_json(package_dir: &Path) -> Result<Vec<u8>, GenError> {
    check_package_dir(package_dir)?;
    let resources = read_bundle(package_dir, "Bundle-resources.json")?;
    let types = read_bundle(package_dir, "Bundle-types.json")?;
    let mut terminology = read_bundle(package_dir, "Bundle-valuesets.json")?;
    terminology.extend(read_bundle(package_dir, "Bundle-v2-valuesets.json")?);
    terminology.extend(read_bundle(package_dir, "Bundle-v3-valuesets.json")?);
    let search_params = read_bundle(package_dir, "Bundle-searchParams.json")?;

    let mut concrete = BTreeSet::new();
    let mut abstract_resources = BTreeSet::new();
    let mut primitives = BTreeSet::new();
    let mut complex = BTreeSet::new();
    let mut structures: BTreeMap<String, Value> = BTreeMap::new();
    let mut required_value_sets = BTreeSet::new();

    for sd in resources.iter().chain(types.iter()) {
        if str_of(sd, "resourceType") != Some("StructureDefinition") {
            continue;
        }
        let kind = str_of(sd, "kind").unwrap_or("");
        if str_of(sd, "derivation") == Some("constraint") {
            continue; // profiles (SimpleQuantity, MoneyQuantity, vitalsigns, ...)
        }
        let name = str_of(sd, "id")
            .or_else(|| str_of(sd, "type"))
            .ok_or_else(|| err("StructureDefinition without id"))?
            .to_string();
        let is_abstract = sd.get("abstract").and_then(Value::as_bool).unwrap_or(false);
        let out_kind = match kind {
            "resource" => {
                if is_abstract {
                    abstract_resources.insert(name.clone());
                } else {
                    concrete.insert(name.clone());
                }
                "resource"
            }
            "primitive-type" => {
                primitives.insert(name.clone());
                "primitive"
            }
            "complex-type" => {
                complex.insert(name.clone());
                "complex"
            }
            _ => continue, // logical models (MetadataResource)
        };
        let structure = structure_json(sd, &name, out_kind, is_abstract, &mut required_value_sets)?;
        if structures.insert(name.clone(), structure).is_some() {
            return Err(err(format!("duplicate StructureDefinition {name}")));
        }
    }

    let value_sets = value_sets_json(&terminology, &required_value_sets);
    let mut params: Vec<(String, Value)> = Vec::new();
    for sp in &search_params {
        if str_of(sp, "resourceType") != Some("SearchParameter") {
            continue;
        }
        params.push(search_param_json(sp)?);
    }
    params.sort_by(|a, b| a.0.cmp(&b.0));
    for pair in params.windows(2) {
        if pair[0].0 == pair[1].0 {
            return Err(err(format!("duplicate SearchParameter url {}", pair[0].0)));
        }
    }

    let mut doc = Map::new();
    doc.insert("format".into(), Value::from(FORMAT_VERSION));
    doc.insert("fhirVersion".into(), Value::from("4.0.1"));
    doc.insert("resourceTypes".into(), string_array(concrete));
    doc.insert(
        "abstractResourceTypes".into(),
        string_array(abstract_resources),
    );
    doc.insert("primitiveTypes".into(), string_array(primitives));
    doc.insert("complexTypes".into(), string_array(complex));
    doc.insert(
        "structures".into(),
        Value::Array(structures.into_values().collect()),
    );
    doc.insert("valueSets".into(), value_sets);
    doc.insert(
        "searchParams".into(),
        Value::Array(params.into_iter().map(|(_, v)| v).collect()),
    );
    let mut doc = Value::Object(doc);
    sort_keys(&mut doc);
    let mut out = serde_json::to_vec(&doc).map_err(|e| err(format!("serialising failed: {e}")))?;
    out.push(b'\n');
    Ok(out)
}

/// Sorts the keys of every object (arrays keep their order).
fn sort_keys(v: &mut Value) {
    match v {
        Value::Object(map) => {
            let sorted: BTreeMap<String, Value> = std::mem::take(map).into_iter().collect();
            for (k, mut child) in sorted {
                sort_keys(&mut child);
                map.insert(k, child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(sort_keys),
        _ => {}
    }
}

fn read_bundle(dir: &Path, file: &str) -> Result<Vec<Value>, GenError> {
    let path = dir.join(file);
    let bytes =
        std::fs::read(&path).map_err(|e| err(format!("cannot read {}: {e}", path.display())))?;
    let bundle: Value = serde_json::from_slice(&bytes)
        .map_err(|e| err(format!("cannot parse {}: {e}", path.display())))?;
    let entries = bundle
        .get("entry")
        .and_then(Value::as_array)
        .ok_or_else(|| err(format!("{} is not a Bundle with entries", path.display())))?;
    Ok(entries
        .iter()
        .filter_map(|e| e.get("resource").cloned())
        .collect())
}

fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn string_array<I: IntoIterator<Item = String>>(items: I) -> Value {
    Value::Array(items.into_iter().map(Value::from).collect())
}

fn strip_version(url: &str) -> &str {
    url.split('|').next().unwrap_or(url)
}

/// "http://hl7.org/fhir/StructureDefinition/Patient" -> "Patient".
fn profile_type_name(url: &str) -> &str {
    let url = strip_version(url);
    url.rsplit('/').next().unwrap_or(url)
}

fn structure_json(
    sd: &Value,
    name: &str,
    kind: &str,
    is_abstract: bool,
    required_value_sets: &mut BTreeSet<String>,
) -> Result<Value, GenError> {
    let mut out = Map::new();
    out.insert("name".into(), Value::from(name));
    out.insert("kind".into(), Value::from(kind));
    if is_abstract {
        out.insert("abstract".into(), Value::Bool(true));
    }
    if let Some(base) = str_of(sd, "baseDefinition") {
        out.insert("base".into(), Value::from(profile_type_name(base)));
    }
    let snapshot = sd
        .get("snapshot")
        .and_then(|s| s.get("element"))
        .and_then(Value::as_array)
        .ok_or_else(|| err(format!("StructureDefinition {name} has no snapshot")))?;
    let mut elements = Vec::new();
    if kind != "primitive" {
        for el in snapshot {
            let path =
                str_of(el, "path").ok_or_else(|| err(format!("{name}: element without path")))?;
            if !path.contains('.') {
                continue; // the root element
            }
            elements.push(element_json(el, path, kind, required_value_sets)?);
        }
    }
    out.insert("elements".into(), Value::Array(elements));
    Ok(Value::Object(out))
}

fn element_json(
    el: &Value,
    path: &str,
    kind: &str,
    required_value_sets: &mut BTreeSet<String>,
) -> Result<Value, GenError> {
    let mut out = Map::new();
    out.insert("path".into(), Value::from(path));
    let min = el.get("min").and_then(Value::as_u64).unwrap_or(0);
    if min != 0 {
        out.insert("min".into(), Value::from(min));
    }
    let max = str_of(el, "max").ok_or_else(|| err(format!("{path}: no max")))?;
    out.insert("max".into(), Value::from(max));

    // Resource.id is declared as System.String with fhir-type "string" in the 4.0.1
    // snapshots; the R4 specification defines it as `id`.
    let is_resource_id =
        kind == "resource" && path.matches('.').count() == 1 && path.ends_with(".id");
    let mut types = Vec::new();
    for t in el
        .get("type")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let raw = str_of(t, "code").ok_or_else(|| err(format!("{path}: type without code")))?;
        let code = if is_resource_id {
            "id".to_string()
        } else {
            map_type_code(t, raw)
        };
        let mut tj = Map::new();
        tj.insert("code".into(), Value::from(code));
        let mut targets: Vec<String> = Vec::new();
        for p in t
            .get("targetProfile")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(p) = p.as_str() {
                let n = profile_type_name(p).to_string();
                if !targets.contains(&n) {
                    targets.push(n);
                }
            }
        }
        if !targets.is_empty() {
            tj.insert("targets".into(), string_array(targets));
        }
        types.push(Value::Object(tj));
    }
    if !types.is_empty() {
        out.insert("types".into(), Value::Array(types));
    }
    if let Some(cr) = str_of(el, "contentReference") {
        let cr = cr.strip_prefix('#').unwrap_or(cr);
        out.insert("contentRef".into(), Value::from(cr));
    }
    if let Some(b) = el.get("binding")
        && str_of(b, "strength") == Some("required")
        && let Some(vs) = str_of(b, "valueSet")
    {
        let vs = strip_version(vs).to_string();
        required_value_sets.insert(vs.clone());
        out.insert("binding".into(), Value::from(vs));
    }
    if el.get("isSummary").and_then(Value::as_bool) == Some(true) {
        out.insert("summary".into(), Value::Bool(true));
    }
    if el.get("isModifier").and_then(Value::as_bool) == Some(true) {
        out.insert("modifier".into(), Value::Bool(true));
    }
    Ok(Value::Object(out))
}

/// Maps FHIRPath system types (used for `id`, `url` and primitive `value`
/// elements) to the FHIR type named by the `structuredefinition-fhir-type`
/// extension, falling back to the obvious FHIR primitive.
fn map_type_code(t: &Value, raw: &str) -> String {
    let Some(system) = raw.strip_prefix("http://hl7.org/fhirpath/System.") else {
        return raw.to_string();
    };
    for ext in t
        .get("extension")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if str_of(ext, "url")
            == Some("http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type")
            && let Some(v) = str_of(ext, "valueUrl").or_else(|| str_of(ext, "valueUri"))
        {
            return v.to_string();
        }
    }
    match system {
        "String" => "string",
        "Boolean" => "boolean",
        "Integer" => "integer",
        "Decimal" => "decimal",
        "Date" => "date",
        "DateTime" => "dateTime",
        "Time" => "time",
        other => other,
    }
    .to_string()
}

// ---------------------------------------------------------------------------
// Terminology

struct Terminology<'a> {
    value_sets: HashMap<&'a str, &'a Value>,
    code_systems: HashMap<&'a str, &'a Value>,
}

type Enumeration = BTreeMap<String, BTreeSet<String>>;

fn value_sets_json(resources: &[Value], required: &BTreeSet<String>) -> Value {
    let mut t = Terminology {
        value_sets: HashMap::new(),
        code_systems: HashMap::new(),
    };
    for r in resources {
        let Some(url) = str_of(r, "url") else {
            continue;
        };
        match str_of(r, "resourceType") {
            Some("ValueSet") => {
                t.value_sets.insert(url, r);
            }
            Some("CodeSystem") => {
                t.code_systems.insert(url, r);
            }
            _ => {}
        }
    }
    let mut out = Map::new();
    for url in required {
        let mut visiting = HashSet::new();
        let value = match t.enumerate(url, &mut visiting) {
            Some(systems) => Value::Object(
                systems
                    .into_iter()
                    .map(|(system, codes)| (system, string_array(codes)))
                    .collect(),
            ),
            None => Value::Null,
        };
        out.insert(url.clone(), value);
    }
    Value::Object(out)
}

impl Terminology<'_> {
    /// Enumerates a value set as system -> codes, or `None` when it cannot be
    /// enumerated from the package (filters, external or incomplete code
    /// systems, unknown value sets). Excludes are ignored, so the result may be a
    /// superset: the validator then accepts slightly more, never less.
    fn enumerate(&self, url: &str, visiting: &mut HashSet<String>) -> Option<Enumeration> {
        if !visiting.insert(url.to_string()) {
            return Some(Enumeration::new()); // cycle: contributes nothing new
        }
        let vs = self.value_sets.get(url)?;
        let includes = vs.get("compose")?.get("include")?.as_array()?;
        let mut out = Enumeration::new();
        for inc in includes {
            if inc.get("filter").is_some() {
                return None;
            }
            for nested in inc
                .get("valueSet")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let nested = strip_version(nested.as_str()?);
                merge(&mut out, self.enumerate(nested, visiting)?);
            }
            let Some(system) = str_of(inc, "system") else {
                continue;
            };
            let codes = out.entry(system.to_string()).or_default();
            if let Some(concepts) = inc.get("concept").and_then(Value::as_array) {
                for c in concepts {
                    codes.insert(str_of(c, "code")?.to_string());
                }
            } else {
                let cs = self.code_systems.get(system)?;
                if str_of(cs, "content") != Some("complete") {
                    return None;
                }
                collect_concepts(cs.get("concept")?, codes)?;
            }
        }
        Some(out)
    }
}

fn merge(into: &mut Enumeration, from: Enumeration) {
    for (system, codes) in from {
        into.entry(system).or_default().extend(codes);
    }
}

fn collect_concepts(concepts: &Value, out: &mut BTreeSet<String>) -> Option<()> {
    for c in concepts.as_array()? {
        out.insert(str_of(c, "code")?.to_string());
        if let Some(children) = c.get("concept") {
            collect_concepts(children, out)?;
        }
    }
    Some(())
}

// ---------------------------------------------------------------------------
// Search parameters

/// The modifiers R4 (section 3.1.1.5) allows for each search parameter type; the
/// package's SearchParameters declare none explicitly. For reference parameters
/// `:[type]` (a target resource type name) is also allowed.
fn default_modifiers(kind: &str) -> &'static [&'static str] {
    match kind {
        "string" => &["missing", "exact", "contains"],
        "token" => &[
            "missing", "text", "not", "above", "below", "in", "not-in", "of-type",
        ],
        "reference" => &["missing", "identifier", "above", "below"],
        "uri" => &["missing", "above", "below"],
        "date" | "number" | "quantity" | "composite" => &["missing"],
        _ => &[],
    }
}

fn search_param_json(sp: &Value) -> Result<(String, Value), GenError> {
    let url = str_of(sp, "url").ok_or_else(|| err("SearchParameter without url"))?;
    let code = str_of(sp, "code").ok_or_else(|| err(format!("{url}: no code")))?;
    let kind = str_of(sp, "type").ok_or_else(|| err(format!("{url}: no type")))?;
    let strings = |key: &str| -> Vec<String> {
        sp.get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect()
    };
    let mut out = Map::new();
    out.insert("url".into(), Value::from(url));
    out.insert("code".into(), Value::from(code));
    out.insert("base".into(), string_array(strings("base")));
    out.insert("type".into(), Value::from(kind));
    if let Some(expr) = str_of(sp, "expression") {
        out.insert("expression".into(), Value::from(expr));
    }
    let targets = strings("target");
    if !targets.is_empty() {
        out.insert("target".into(), string_array(targets));
    }
    let mut modifiers = strings("modifier");
    if modifiers.is_empty() {
        modifiers = default_modifiers(kind)
            .iter()
            .map(|s| s.to_string())
            .collect();
    }
    if !modifiers.is_empty() {
        out.insert("modifier".into(), string_array(modifiers));
    }
    let comparators = strings("comparator");
    if !comparators.is_empty() {
        out.insert("comparator".into(), string_array(comparators));
    }
    let mut components = Vec::new();
    for c in sp
        .get("component")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let mut cj = Map::new();
        cj.insert(
            "definition".into(),
            Value::from(str_of(c, "definition").unwrap_or_default()),
        );
        cj.insert(
            "expression".into(),
            Value::from(str_of(c, "expression").unwrap_or_default()),
        );
        components.push(Value::Object(cj));
    }
    if !components.is_empty() {
        out.insert("component".into(), Value::Array(components));
    }
    Ok((url.to_string(), Value::Object(out)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn gunzip(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut out)
            .expect("committed file is valid gzip");
        out
    }

    /// Regenerates the definitions from the package and checks they are
    /// byte-identical to the committed `crates/keel-fhir/data/r4-definitions.json.gz`.
    #[test]
    fn committed_definitions_are_up_to_date() {
        let package = default_package_dir();
        if let Err(e) = check_package_dir(&package) {
            panic!("{e}");
        }
        let fresh = generate_json(&package).expect("generation succeeds");
        let again = generate_json(&package).expect("generation succeeds");
        assert!(fresh == again, "generation is not deterministic");
        let fresh_gz = compress(&fresh).expect("compress");
        let committed_path = default_output_path();
        let committed = std::fs::read(&committed_path).unwrap_or_else(|e| {
            panic!(
                "cannot read {}: {e}; run `cargo run -p keel-fhir-gen`",
                committed_path.display()
            )
        });
        assert!(
            gunzip(&committed) == fresh,
            "{} is stale: its content differs from what the package gives; run `cargo run -p keel-fhir-gen`",
            committed_path.display()
        );
        assert!(
            committed == fresh_gz,
            "{}: same content but different gzip bytes (compressor changed?); run `cargo run -p keel-fhir-gen`",
            committed_path.display()
        );
    }

    #[test]
    fn gzip_header_is_fixed() {
        let gz = compress(b"{}").expect("compress");
        // magic, method, flags (no name), mtime 0, xfl, OS 255
        assert_eq!(&gz[..4], &[0x1f, 0x8b, 8, 0]);
        assert_eq!(&gz[4..8], &[0, 0, 0, 0]);
        assert_eq!(gz[9], 255);
    }

    #[test]
    fn system_types_map_to_fhir_types() {
        let t: Value = serde_json::from_str(
            r#"{"extension":[{"url":"http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type","valueUrl":"uri"}],
                "code":"http://hl7.org/fhirpath/System.String"}"#,
        )
        .expect("json");
        assert_eq!(
            map_type_code(&t, "http://hl7.org/fhirpath/System.String"),
            "uri"
        );
        assert_eq!(
            map_type_code(&Value::Null, "http://hl7.org/fhirpath/System.Boolean"),
            "boolean"
        );
        assert_eq!(map_type_code(&Value::Null, "HumanName"), "HumanName");
    }
}
