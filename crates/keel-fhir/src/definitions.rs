//! The official FHIR R4 (4.0.1) definitions: resource and data type names,
//! element trees, required-binding codes and search parameters.
//!
//! The data is derived from the HL7 package `hl7.fhir.r4.examples@4.0.1` by the
//! `keel-fhir-gen` tool into `data/r4-definitions.json.gz`, which is embedded
//! with `include_bytes!` and decoded once, on first use of [`r4`]. No I/O.
//!
//! Lookups used on hot paths (element children by JSON property name, search
//! parameters by resource type and code) are precomputed hash maps.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::io::Read;
use std::sync::LazyLock;

use serde::Deserialize;

static R4_DATA: &[u8] = include_bytes!("../data/r4-definitions.json.gz");

static R4: LazyLock<Definitions> = LazyLock::new(|| match Definitions::from_gzip(R4_DATA) {
    Ok(defs) => defs,
    Err(e) => panic!("embedded R4 definitions are invalid: {e}"),
});

/// The FHIR R4 (4.0.1) definitions, decoded on first use.
pub fn r4() -> &'static Definitions {
    &R4
}

// ---------------------------------------------------------------------------
// A small, fast, non-cryptographic hasher (FxHash) for the lookup tables. Their
// keys are fixed at load time, so hash flooding is not a concern: untrusted
// input only ever probes them.

#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher {
    hash: u64,
}

const FX_SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(FX_SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }
}

pub(crate) type FxBuild = BuildHasherDefault<FxHasher>;
pub(crate) type FxHashMap<K, V> = HashMap<K, V, FxBuild>;
pub(crate) type FxHashSet<K> = HashSet<K, FxBuild>;

// ---------------------------------------------------------------------------
// Public types

/// The type of a search parameter (R4 `SearchParamType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SearchParamType {
    Number,
    Date,
    String,
    Token,
    Reference,
    Composite,
    Quantity,
    Uri,
    Special,
}

impl SearchParamType {
    /// Parses the R4 code (`"token"`, `"reference"`, ...).
    pub fn parse(code: &str) -> Option<Self> {
        Some(match code {
            "number" => Self::Number,
            "date" => Self::Date,
            "string" => Self::String,
            "token" => Self::Token,
            "reference" => Self::Reference,
            "composite" => Self::Composite,
            "quantity" => Self::Quantity,
            "uri" => Self::Uri,
            "special" => Self::Special,
            _ => return None,
        })
    }

    /// The R4 code.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Number => "number",
            Self::Date => "date",
            Self::String => "string",
            Self::Token => "token",
            Self::Reference => "reference",
            Self::Composite => "composite",
            Self::Quantity => "quantity",
            Self::Uri => "uri",
            Self::Special => "special",
        }
    }
}

/// One component of a composite search parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchParamComponent {
    /// Canonical URL of the component's SearchParameter.
    pub definition: String,
    /// FHIRPath expression, relative to each item the composite's expression selects.
    pub expression: String,
}

/// A search parameter from the R4 specification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchParamDef {
    /// The name used in URLs (`code`, `patient`, `_id`, ...).
    pub code: String,
    /// Resource types the parameter applies to (may be `Resource` or `DomainResource`).
    pub base: Vec<String>,
    pub kind: SearchParamType,
    /// FHIRPath expression. For multi-base parameters it is a `|` union covering all
    /// bases; branches for other types select nothing. `None` for `_text`,
    /// `_content` and `_query`.
    pub expression: Option<String>,
    /// Target resource types of a reference parameter.
    pub targets: Vec<String>,
    /// Canonical URL of the SearchParameter.
    pub url: String,
    /// Allowed modifiers. The R4 package declares none, so these are the ones R4
    /// (section 3.1.1.5) defines for the parameter's type; a reference
    /// parameter also accepts `:[type]` for each target type.
    pub modifiers: Vec<String>,
    /// Allowed prefixes (`eq`, `ne`, `gt`, ...) for number, date and quantity parameters.
    pub comparators: Vec<String>,
    /// Components of a composite parameter.
    pub components: Vec<SearchParamComponent>,
}

/// A type of an element, with the allowed target types for `Reference` and `canonical`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeRef {
    /// FHIR type code: `string`, `CodeableConcept`, `Reference`, `BackboneElement`, ...
    pub code: String,
    /// Target resource types (`Reference`) or target definitions (`canonical`);
    /// `Resource` means any.
    pub targets: Vec<String>,
}

/// How an element's value is checked; resolved at load time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TypeKind {
    Primitive(Primitive),
    /// A complex data type or backbone element: the container of its children.
    Complex(u32),
    /// Any resource (`contained`, `Bundle.entry.resource`, ...).
    Resource,
}

/// The R4 primitive types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Primitive {
    Boolean,
    Integer,
    UnsignedInt,
    PositiveInt,
    Decimal,
    String,
    Markdown,
    Code,
    Id,
    Uri,
    Url,
    Canonical,
    Oid,
    Uuid,
    Base64Binary,
    Instant,
    Date,
    DateTime,
    Time,
    Xhtml,
}

impl Primitive {
    pub(crate) fn parse(code: &str) -> Option<Self> {
        Some(match code {
            "boolean" => Self::Boolean,
            "integer" => Self::Integer,
            "unsignedInt" => Self::UnsignedInt,
            "positiveInt" => Self::PositiveInt,
            "decimal" => Self::Decimal,
            "string" => Self::String,
            "markdown" => Self::Markdown,
            "code" => Self::Code,
            "id" => Self::Id,
            "uri" => Self::Uri,
            "url" => Self::Url,
            "canonical" => Self::Canonical,
            "oid" => Self::Oid,
            "uuid" => Self::Uuid,
            "base64Binary" => Self::Base64Binary,
            "instant" => Self::Instant,
            "date" => Self::Date,
            "dateTime" => Self::DateTime,
            "time" => Self::Time,
            "xhtml" => Self::Xhtml,
            _ => return None,
        })
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Boolean => "boolean",
            Self::Integer => "integer",
            Self::UnsignedInt => "unsignedInt",
            Self::PositiveInt => "positiveInt",
            Self::Decimal => "decimal",
            Self::String => "string",
            Self::Markdown => "markdown",
            Self::Code => "code",
            Self::Id => "id",
            Self::Uri => "uri",
            Self::Url => "url",
            Self::Canonical => "canonical",
            Self::Oid => "oid",
            Self::Uuid => "uuid",
            Self::Base64Binary => "base64Binary",
            Self::Instant => "instant",
            Self::Date => "date",
            Self::DateTime => "dateTime",
            Self::Time => "time",
            Self::Xhtml => "xhtml",
        }
    }
}

/// An element of a resource or data type, from the R4 snapshot.
#[derive(Debug, Clone)]
pub struct ElementDef {
    /// Full path, e.g. `Observation.component.value[x]`.
    pub path: String,
    /// Last path segment, e.g. `value[x]`, `status`.
    pub name: String,
    pub min: u32,
    /// `None` for `*`.
    pub max: Option<u32>,
    /// Allowed types (one, except for choice elements; none for content references).
    pub types: Vec<TypeRef>,
    /// Whether the element is a choice `[x]` element.
    pub choice: bool,
    /// For elements defined by reference, the path whose definition they reuse
    /// (e.g. `Questionnaire.item.item` -> `Questionnaire.item`).
    pub content_reference: Option<String>,
    /// Canonical URL of the value set of a `required` binding.
    pub binding: Option<String>,
    pub is_summary: bool,
    pub is_modifier: bool,
    /// Parallel to `types` (one entry for content references).
    pub(crate) kinds: Vec<TypeKind>,
    /// Index into the value sets when `binding` is set.
    pub(crate) value_set: Option<u32>,
}

impl ElementDef {
    /// Whether the element repeats (max `*` or > 1), i.e. is a JSON array.
    pub fn is_array(&self) -> bool {
        self.max.is_none_or(|m| m > 1)
    }

    /// The JSON property name without the `[x]` suffix (`value` for `value[x]`).
    pub fn base_name(&self) -> &str {
        self.name.strip_suffix("[x]").unwrap_or(&self.name)
    }

    /// JSON property names of a choice element's variants, e.g. `valueQuantity`.
    pub fn choice_names(&self) -> impl Iterator<Item = String> + '_ {
        let base = self.base_name();
        self.types
            .iter()
            .filter(|_| self.choice)
            .map(move |t| format!("{base}{}", choice_suffix(&t.code)))
    }
}

/// The suffix a type gives a choice element: `Quantity`, `DateTime`, `String` ...
pub fn choice_suffix(type_code: &str) -> String {
    let mut chars = type_code.chars();
    match chars.next() {
        Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

/// The codes of a value set bound with strength `required`.
#[derive(Debug, Clone)]
pub struct ValueSetDef {
    pub url: String,
    /// `None` when the package cannot enumerate it (filters, external code
    /// systems such as UCUM, BCP-13 or ISO 4217): such bindings are not checked.
    systems: Option<FxHashMap<Box<str>, FxHashSet<Box<str>>>>,
    all_codes: FxHashSet<Box<str>>,
}

impl ValueSetDef {
    /// Whether the codes are known.
    pub fn is_enumerable(&self) -> bool {
        self.systems.is_some()
    }

    /// Whether `code` (from any of the value set's systems) is in it; `None` if not enumerable.
    pub fn contains_code(&self, code: &str) -> Option<bool> {
        self.systems.as_ref()?;
        Some(self.all_codes.contains(code))
    }

    /// Whether `system`/`code` is in it; `None` if not enumerable.
    pub fn contains(&self, system: &str, code: &str) -> Option<bool> {
        let systems = self.systems.as_ref()?;
        Some(
            systems
                .get(system)
                .is_some_and(|codes| codes.contains(code)),
        )
    }

    /// Whether the value set draws codes from `system`.
    pub fn includes_system(&self, system: &str) -> bool {
        self.systems
            .as_ref()
            .is_some_and(|s| s.contains_key(system))
    }

    /// The code systems it draws from (empty when not enumerable).
    pub fn systems(&self) -> impl Iterator<Item = &str> {
        self.systems.iter().flat_map(|s| s.keys().map(|k| &**k))
    }
}

/// A child of a container, keyed by JSON property name.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Child {
    pub(crate) elem: u32,
    /// For choice elements, the variant's index in `types`; [`Child::NO_VARIANT`]
    /// for the bare name (`value`, only used by path lookups).
    pub(crate) variant: u16,
}

impl Child {
    pub(crate) const NO_VARIANT: u16 = u16::MAX;
}

/// The children of a resource, data type or backbone element.
#[derive(Debug, Default)]
pub(crate) struct Container {
    pub(crate) path: String,
    pub(crate) children: FxHashMap<Box<str>, Child>,
    /// Elements with min >= 1.
    pub(crate) required: Vec<u32>,
    /// All direct child elements, in snapshot order.
    pub(crate) elements: Vec<u32>,
}

/// Kind of a type definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StructureKind {
    Resource,
    Primitive,
    Complex,
}

#[derive(Debug)]
struct Structure {
    kind: StructureKind,
    is_abstract: bool,
    base: Option<String>,
    container: u32,
    /// Its elements: `elements[start..end]`, in snapshot order.
    elements: (u32, u32),
}

/// The FHIR R4 definitions. Obtain with [`r4`].
#[derive(Debug)]
pub struct Definitions {
    fhir_version: String,
    resource_types: Vec<String>,
    resource_type_set: FxHashSet<String>,
    data_type_set: FxHashSet<String>,
    primitive_types: Vec<String>,
    complex_types: Vec<String>,
    structures: FxHashMap<String, Structure>,
    pub(crate) elements: Vec<ElementDef>,
    paths: FxHashMap<String, u32>,
    pub(crate) containers: Vec<Container>,
    pub(crate) value_sets: Vec<ValueSetDef>,
    value_set_index: FxHashMap<String, u32>,
    choice_names: HashSet<String>,
    search_params: Vec<SearchParamDef>,
    /// Resource type -> indices of its parameters (own and inherited), sorted by code.
    params_by_type: FxHashMap<String, Vec<u32>>,
    /// Resource type -> code -> index.
    param_by_type_code: FxHashMap<String, FxHashMap<String, u32>>,
    param_by_url: FxHashMap<String, u32>,
}

impl Definitions {
    /// The FHIR version, `4.0.1`.
    pub fn fhir_version(&self) -> &str {
        &self.fhir_version
    }

    /// Whether `name` is a concrete resource type (`Patient`; not `Resource` or `DomainResource`).
    pub fn is_resource_type(&self, name: &str) -> bool {
        self.resource_type_set.contains(name)
    }

    /// Concrete resource types, sorted.
    pub fn resource_types(&self) -> impl Iterator<Item = &str> {
        self.resource_types.iter().map(String::as_str)
    }

    /// Whether `name` is a data type, primitive (`dateTime`, `code`) or complex
    /// (`Quantity`, `CodeableConcept`, including the abstract `Element` and `BackboneElement`).
    pub fn is_data_type(&self, name: &str) -> bool {
        self.data_type_set.contains(name)
    }

    /// Whether `name` is a primitive data type (`boolean`, `dateTime`, `xhtml` ...).
    pub fn is_primitive_type(&self, name: &str) -> bool {
        self.structures
            .get(name)
            .is_some_and(|s| s.kind == StructureKind::Primitive)
    }

    /// Primitive data type names, sorted.
    pub fn primitive_types(&self) -> impl Iterator<Item = &str> {
        self.primitive_types.iter().map(String::as_str)
    }

    /// Complex data type names, sorted.
    pub fn complex_types(&self) -> impl Iterator<Item = &str> {
        self.complex_types.iter().map(String::as_str)
    }

    /// Kind of a resource or data type (abstract ones included).
    pub fn structure_kind(&self, name: &str) -> Option<StructureKind> {
        self.structures.get(name).map(|s| s.kind)
    }

    /// Whether a type is abstract (`Resource`, `DomainResource`, `Element`, `BackboneElement`).
    pub fn is_abstract(&self, name: &str) -> bool {
        self.structures.get(name).is_some_and(|s| s.is_abstract)
    }

    /// The type a resource or data type specialises (`Patient` -> `DomainResource`).
    pub fn base_type(&self, name: &str) -> Option<&str> {
        self.structures.get(name)?.base.as_deref()
    }

    /// Whether `name` is `ancestor` or derives from it (`Patient`, `DomainResource`).
    pub fn derives_from(&self, name: &str, ancestor: &str) -> bool {
        let mut current = Some(name);
        while let Some(n) = current {
            if n == ancestor {
                return true;
            }
            current = self.base_type(n);
        }
        false
    }

    /// Search parameters of a resource type, including those defined on
    /// `Resource` (and `DomainResource` for domain resources), sorted by code.
    pub fn search_params(&self, resource_type: &str) -> impl Iterator<Item = &SearchParamDef> {
        self.params_by_type
            .get(resource_type)
            .into_iter()
            .flatten()
            .map(|&i| &self.search_params[i as usize])
    }

    /// The search parameter `code` of `resource_type` (inherited ones included).
    pub fn search_param(&self, resource_type: &str, code: &str) -> Option<&SearchParamDef> {
        let i = *self.param_by_type_code.get(resource_type)?.get(code)?;
        Some(&self.search_params[i as usize])
    }

    /// A search parameter by canonical URL (e.g. for composite components).
    pub fn search_param_by_url(&self, url: &str) -> Option<&SearchParamDef> {
        let i = *self.param_by_url.get(url)?;
        Some(&self.search_params[i as usize])
    }

    /// All search parameters, sorted by URL.
    pub fn all_search_params(&self) -> impl Iterator<Item = &SearchParamDef> {
        self.search_params.iter()
    }

    /// Names (without `[x]`) of every choice element of every type, e.g.
    /// `value`, `effective`, `onset`, `deceased`.
    pub fn choice_element_names(&self) -> &HashSet<String> {
        &self.choice_names
    }

    /// The element at `path`. Accepts snapshot paths (`Observation.component.value[x]`),
    /// bare or typed choice names (`Observation.value`, `Observation.valueQuantity`)
    /// and paths through data types and content references
    /// (`Observation.code.coding.system` -> `Coding.system`,
    /// `Questionnaire.item.item.linkId` -> `Questionnaire.item.linkId`).
    pub fn element(&self, path: &str) -> Option<&ElementDef> {
        if let Some(&i) = self.paths.get(path) {
            return Some(&self.elements[i as usize]);
        }
        let mut segments = path.split('.');
        let root = segments.next()?;
        let mut container = Some(self.structures.get(root)?.container);
        let mut found = None;
        for segment in segments {
            let c = &self.containers[container? as usize];
            let name = segment.strip_suffix("[x]").unwrap_or(segment);
            let child = *c.children.get(name)?;
            let elem = &self.elements[child.elem as usize];
            found = Some(elem);
            let kind = if child.variant == Child::NO_VARIANT {
                if elem.kinds.len() == 1 {
                    elem.kinds.first()
                } else {
                    None
                }
            } else {
                elem.kinds.get(usize::from(child.variant))
            };
            container = match kind {
                Some(TypeKind::Complex(c)) => Some(*c),
                _ => None,
            };
        }
        found
    }

    /// The elements of a resource or data type, in snapshot order (all depths).
    pub fn elements(&self, type_name: &str) -> impl Iterator<Item = &ElementDef> {
        let range = self
            .structures
            .get(type_name)
            .map_or(0..0, |s| s.elements.0 as usize..s.elements.1 as usize);
        self.elements[range].iter()
    }

    /// The direct children of an element (or type), in snapshot order, following
    /// data types and content references: `HumanName`, `Patient.contact`,
    /// `Patient.name` (-> HumanName's children).
    pub fn children(&self, path: &str) -> impl Iterator<Item = &ElementDef> {
        let container = if let Some(s) = self.structures.get(path) {
            Some(s.container)
        } else {
            self.element(path).and_then(|e| match e.kinds.as_slice() {
                [TypeKind::Complex(c)] => Some(*c),
                _ => None,
            })
        };
        container
            .into_iter()
            .flat_map(move |c| self.containers[c as usize].elements.iter())
            .map(move |&i| &self.elements[i as usize])
    }

    /// A value set used by a `required` binding.
    pub fn value_set(&self, url: &str) -> Option<&ValueSetDef> {
        let url = url.split('|').next().unwrap_or(url);
        let i = *self.value_set_index.get(url)?;
        Some(&self.value_sets[i as usize])
    }

    /// The value set of an element's `required` binding.
    pub fn required_value_set(&self, element: &ElementDef) -> Option<&ValueSetDef> {
        element.value_set.map(|i| &self.value_sets[i as usize])
    }

    // -- crate-internal accessors used by the validator --------------------

    pub(crate) fn container_of_type(&self, name: &str) -> Option<u32> {
        self.structures.get(name).map(|s| s.container)
    }

    /// Decodes the gzip'd definitions file.
    pub fn from_gzip(bytes: &[u8]) -> Result<Self, String> {
        let mut json = Vec::with_capacity(bytes.len() * 16);
        flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut json)
            .map_err(|e| format!("gunzip: {e}"))?;
        let doc: FileDoc = serde_json::from_slice(&json).map_err(|e| format!("parse: {e}"))?;
        Self::build(doc)
    }

    fn build(doc: FileDoc) -> Result<Self, String> {
        if doc.format != 1 {
            return Err(format!("unsupported definitions format {}", doc.format));
        }

        // Value sets.
        let mut value_sets = Vec::with_capacity(doc.value_sets.len());
        let mut value_set_index = FxHashMap::default();
        for (url, systems) in doc.value_sets {
            let mut all_codes = FxHashSet::default();
            let systems = systems.map(|systems| {
                systems
                    .into_iter()
                    .map(|(system, codes)| {
                        let codes: FxHashSet<Box<str>> =
                            codes.into_iter().map(String::into_boxed_str).collect();
                        all_codes.extend(codes.iter().cloned());
                        (system.into_boxed_str(), codes)
                    })
                    .collect()
            });
            value_set_index.insert(url.clone(), value_sets.len() as u32);
            value_sets.push(ValueSetDef {
                url,
                systems,
                all_codes,
            });
        }

        // Structures, elements and containers.
        let mut structures = FxHashMap::default();
        let mut elements: Vec<ElementDef> = Vec::new();
        let mut paths: FxHashMap<String, u32> = FxHashMap::default();
        let mut containers: Vec<Container> = Vec::new();
        let mut container_by_path: FxHashMap<String, u32> = FxHashMap::default();
        let mut choice_names = HashSet::new();

        let mut container_for = |path: &str, containers: &mut Vec<Container>| -> u32 {
            if let Some(&c) = container_by_path.get(path) {
                return c;
            }
            let c = containers.len() as u32;
            containers.push(Container {
                path: path.to_string(),
                ..Container::default()
            });
            container_by_path.insert(path.to_string(), c);
            c
        };

        for s in doc.structures {
            let kind = match s.kind.as_str() {
                "resource" => StructureKind::Resource,
                "primitive" => StructureKind::Primitive,
                "complex" => StructureKind::Complex,
                other => return Err(format!("{}: unknown kind {other}", s.name)),
            };
            let root = container_for(&s.name, &mut containers);
            let start = elements.len() as u32;
            let end = start + s.elements.len() as u32;
            structures.insert(
                s.name.clone(),
                Structure {
                    kind,
                    is_abstract: s.is_abstract,
                    base: s.base,
                    container: root,
                    elements: (start, end),
                },
            );
            for e in s.elements {
                let (parent, name) = e
                    .path
                    .rsplit_once('.')
                    .ok_or_else(|| format!("bad element path {}", e.path))?;
                let parent_c = container_for(parent, &mut containers);
                let choice = name.ends_with("[x]");
                if choice {
                    choice_names.insert(name.trim_end_matches("[x]").to_string());
                }
                let max = match e.max.as_str() {
                    "*" => None,
                    n => Some(
                        n.parse::<u32>()
                            .map_err(|_| format!("{}: bad max {n}", e.path))?,
                    ),
                };
                let value_set = match &e.binding {
                    Some(url) => Some(
                        *value_set_index
                            .get(url)
                            .ok_or_else(|| format!("{}: unknown value set {url}", e.path))?,
                    ),
                    None => None,
                };
                let idx = elements.len() as u32;
                containers[parent_c as usize].elements.push(idx);
                if e.min > 0 {
                    containers[parent_c as usize].required.push(idx);
                }
                paths.insert(e.path.clone(), idx);
                elements.push(ElementDef {
                    name: name.to_string(),
                    path: e.path,
                    min: e.min,
                    max,
                    types: e
                        .types
                        .into_iter()
                        .map(|t| TypeRef {
                            code: t.code,
                            targets: t.targets,
                        })
                        .collect(),
                    choice,
                    content_reference: e.content_ref,
                    binding: e.binding,
                    is_summary: e.summary,
                    is_modifier: e.modifier,
                    kinds: Vec::new(),
                    value_set,
                });
            }
        }

        // Resolve each element's types to how its values are checked, and fill
        // the children maps (JSON property name -> element/variant).
        for e in elements.iter_mut() {
            let mut kinds = Vec::with_capacity(e.types.len().max(1));
            if let Some(target) = &e.content_reference {
                let c = container_by_path
                    .get(target.as_str())
                    .ok_or_else(|| format!("{}: unresolvable contentReference {target}", e.path))?;
                kinds.push(TypeKind::Complex(*c));
            }
            for t in &e.types {
                let kind = if let Some(p) = Primitive::parse(&t.code) {
                    TypeKind::Primitive(p)
                } else if t.code == "Resource" {
                    TypeKind::Resource
                } else if t.code == "BackboneElement" || t.code == "Element" {
                    // Inline children at this path; an empty one still allows id/extension.
                    match container_by_path.get(e.path.as_str()) {
                        Some(&c) => TypeKind::Complex(c),
                        None => TypeKind::Complex(
                            structures
                                .get(t.code.as_str())
                                .map(|s: &Structure| s.container)
                                .ok_or_else(|| format!("{}: no {}", e.path, t.code))?,
                        ),
                    }
                } else {
                    match structures.get(t.code.as_str()) {
                        Some(s) => TypeKind::Complex(s.container),
                        None => return Err(format!("{}: unknown type {}", e.path, t.code)),
                    }
                };
                kinds.push(kind);
            }
            e.kinds = kinds;
        }
        for (i, e) in elements.iter().enumerate() {
            let parent = &e.path[..e.path.len() - e.name.len() - 1];
            let c = container_by_path[parent] as usize;
            let children = &mut containers[c].children;
            if e.choice {
                let base = e.base_name();
                children.insert(
                    base.into(),
                    Child {
                        elem: i as u32,
                        variant: Child::NO_VARIANT,
                    },
                );
                for (v, t) in e.types.iter().enumerate() {
                    let key = format!("{base}{}", choice_suffix(&t.code));
                    children.insert(
                        key.into_boxed_str(),
                        Child {
                            elem: i as u32,
                            variant: v as u16,
                        },
                    );
                }
            } else {
                children.insert(
                    e.name.as_str().into(),
                    Child {
                        elem: i as u32,
                        variant: 0,
                    },
                );
            }
        }

        // Search parameters.
        let mut search_params = Vec::with_capacity(doc.search_params.len());
        for p in doc.search_params {
            let kind = SearchParamType::parse(&p.kind)
                .ok_or_else(|| format!("{}: unknown search parameter type {}", p.url, p.kind))?;
            search_params.push(SearchParamDef {
                code: p.code,
                base: p.base,
                kind,
                expression: p.expression,
                targets: p.target,
                url: p.url,
                modifiers: p.modifier,
                comparators: p.comparator,
                components: p
                    .component
                    .into_iter()
                    .map(|c| SearchParamComponent {
                        definition: c.definition,
                        expression: c.expression,
                    })
                    .collect(),
            });
        }
        let mut own: FxHashMap<&str, Vec<u32>> = FxHashMap::default();
        let mut param_by_url = FxHashMap::default();
        for (i, p) in search_params.iter().enumerate() {
            param_by_url.insert(p.url.clone(), i as u32);
            for b in &p.base {
                own.entry(b.as_str()).or_default().push(i as u32);
            }
        }
        let mut params_by_type: FxHashMap<String, Vec<u32>> = FxHashMap::default();
        let mut param_by_type_code: FxHashMap<String, FxHashMap<String, u32>> =
            FxHashMap::default();
        for (name, s) in &structures {
            if s.kind != StructureKind::Resource {
                continue;
            }
            let mut list = Vec::new();
            let mut current = Some(name.as_str());
            while let Some(n) = current {
                list.extend(own.get(n).into_iter().flatten().copied());
                current = structures.get(n).and_then(|s| s.base.as_deref());
            }
            list.sort_by(|&a, &b| {
                search_params[a as usize]
                    .code
                    .cmp(&search_params[b as usize].code)
            });
            let by_code = list
                .iter()
                .map(|&i| (search_params[i as usize].code.clone(), i))
                .collect();
            param_by_type_code.insert(name.clone(), by_code);
            params_by_type.insert(name.clone(), list);
        }

        let resource_type_set = doc.resource_types.iter().cloned().collect();
        let data_type_set = doc
            .primitive_types
            .iter()
            .chain(doc.complex_types.iter())
            .cloned()
            .collect();
        Ok(Self {
            fhir_version: doc.fhir_version,
            resource_types: doc.resource_types,
            resource_type_set,
            data_type_set,
            primitive_types: doc.primitive_types,
            complex_types: doc.complex_types,
            structures,
            elements,
            paths,
            containers,
            value_sets,
            value_set_index,
            choice_names,
            search_params,
            params_by_type,
            param_by_type_code,
            param_by_url,
        })
    }
}

// ---------------------------------------------------------------------------
// The file format written by keel-fhir-gen.

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FileDoc {
    format: u32,
    fhir_version: String,
    resource_types: Vec<String>,
    #[allow(dead_code)]
    abstract_resource_types: Vec<String>,
    primitive_types: Vec<String>,
    complex_types: Vec<String>,
    structures: Vec<FileStructure>,
    value_sets: HashMap<String, Option<HashMap<String, Vec<String>>>>,
    search_params: Vec<FileSearchParam>,
}

#[derive(Deserialize)]
struct FileStructure {
    name: String,
    kind: String,
    #[serde(default, rename = "abstract")]
    is_abstract: bool,
    #[serde(default)]
    base: Option<String>,
    elements: Vec<FileElement>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FileElement {
    path: String,
    #[serde(default)]
    min: u32,
    max: String,
    #[serde(default)]
    types: Vec<FileType>,
    #[serde(default)]
    content_ref: Option<String>,
    #[serde(default)]
    binding: Option<String>,
    #[serde(default)]
    summary: bool,
    #[serde(default)]
    modifier: bool,
}

#[derive(Deserialize)]
struct FileType {
    code: String,
    #[serde(default)]
    targets: Vec<String>,
}

#[derive(Deserialize)]
struct FileSearchParam {
    url: String,
    code: String,
    base: Vec<String>,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    expression: Option<String>,
    #[serde(default)]
    target: Vec<String>,
    #[serde(default)]
    modifier: Vec<String>,
    #[serde(default)]
    comparator: Vec<String>,
    #[serde(default)]
    component: Vec<FileComponent>,
}

#[derive(Deserialize)]
struct FileComponent {
    definition: String,
    expression: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_time() {
        let start = std::time::Instant::now();
        let defs = Definitions::from_gzip(R4_DATA).expect("valid");
        let elapsed = start.elapsed();
        println!(
            "decoded R4 definitions ({} bytes gz): {} elements, {} containers, {} search params in {:?}",
            R4_DATA.len(),
            defs.elements.len(),
            defs.containers.len(),
            defs.search_params.len(),
            elapsed
        );
        assert!(
            elapsed < std::time::Duration::from_secs(2),
            "definitions took {elapsed:?} to decode"
        );
    }

    #[test]
    fn type_names() {
        let d = r4();
        assert_eq!(d.fhir_version(), "4.0.1");
        assert!(d.is_resource_type("Patient"));
        assert!(d.is_resource_type("Observation"));
        assert!(d.is_resource_type("Bundle"));
        assert!(!d.is_resource_type("DomainResource"));
        assert!(!d.is_resource_type("Resource"));
        assert!(!d.is_resource_type("patient"));
        assert!(!d.is_resource_type("Quantity"));
        assert_eq!(d.resource_types().count(), 146);
        assert!(d.resource_types().any(|t| t == "Patient"));
        for t in [
            "Quantity",
            "dateTime",
            "CodeableConcept",
            "string",
            "xhtml",
            "Extension",
        ] {
            assert!(d.is_data_type(t), "{t}");
        }
        assert!(!d.is_data_type("Patient"));
        assert!(d.is_primitive_type("dateTime"));
        assert!(!d.is_primitive_type("Quantity"));
        assert_eq!(d.base_type("Patient"), Some("DomainResource"));
        assert_eq!(d.base_type("Age"), Some("Quantity"));
        assert!(d.derives_from("Patient", "Resource"));
        assert!(!d.derives_from("Bundle", "DomainResource"));
        assert!(d.is_abstract("DomainResource"));
    }

    #[test]
    fn elements_by_path() {
        let d = r4();
        let e = d.element("Observation.component.value[x]").expect("exists");
        assert!(e.choice);
        assert_eq!(e.min, 0);
        assert_eq!(e.max, Some(1));
        assert!(e.types.iter().any(|t| t.code == "Quantity"));
        assert!(e.choice_names().any(|n| n == "valueQuantity"));
        assert_eq!(
            d.element("Observation.valueQuantity")
                .map(|e| e.path.as_str()),
            Some("Observation.value[x]")
        );
        assert_eq!(
            d.element("Observation.value").map(|e| e.path.as_str()),
            Some("Observation.value[x]")
        );
        let status = d.element("Observation.status").expect("exists");
        assert_eq!(status.min, 1);
        assert_eq!(status.types[0].code, "code");
        let vs = d.required_value_set(status).expect("required binding");
        assert_eq!(vs.contains_code("final"), Some(true));
        assert_eq!(vs.contains_code("done"), Some(false));
        let subject = d.element("Observation.subject").expect("exists");
        assert_eq!(subject.types[0].code, "Reference");
        assert!(subject.types[0].targets.iter().any(|t| t == "Patient"));
        let item = d.element("Questionnaire.item.item").expect("exists");
        assert_eq!(
            item.content_reference.as_deref(),
            Some("Questionnaire.item")
        );
        assert_eq!(
            d.element("Questionnaire.item.item.linkId")
                .map(|e| e.path.as_str()),
            Some("Questionnaire.item.linkId")
        );
        assert_eq!(
            d.element("Observation.code.coding.system")
                .map(|e| e.path.as_str()),
            Some("Coding.system")
        );
        assert_eq!(
            d.element("Patient.name.given").map(|e| e.is_array()),
            Some(true)
        );
        assert!(d.element("Patient.foo").is_none());
        assert!(d.element("Nope.foo").is_none());
        assert_eq!(
            d.element("Patient.id").map(|e| e.types[0].code.as_str()),
            Some("id")
        );
        assert_eq!(
            d.element("Extension.url").map(|e| e.types[0].code.as_str()),
            Some("uri")
        );
        let gender = d.element("Patient.gender").expect("exists");
        let vs = d.required_value_set(gender).expect("bound");
        assert_eq!(
            vs.contains("http://hl7.org/fhir/administrative-gender", "male"),
            Some(true)
        );
        assert!(
            d.value_set("http://hl7.org/fhir/ValueSet/mimetypes")
                .is_some_and(|v| !v.is_enumerable())
        );
        let children: Vec<_> = d
            .children("Patient.contact")
            .map(|e| e.name.as_str())
            .collect();
        assert!(children.contains(&"relationship"));
        let children: Vec<_> = d
            .children("Patient.name")
            .map(|e| e.name.as_str())
            .collect();
        assert!(children.contains(&"family"));
        let all: Vec<_> = d.elements("Patient").map(|e| e.path.as_str()).collect();
        assert_eq!(all.first(), Some(&"Patient.id"));
        assert!(all.contains(&"Patient.link.type"));
        assert!(!all.iter().any(|p| !p.starts_with("Patient.")));
    }

    #[test]
    fn choice_names() {
        let names = r4().choice_element_names();
        for n in [
            "value",
            "effective",
            "onset",
            "deceased",
            "multipleBirth",
            "medication",
        ] {
            assert!(names.contains(n), "{n}");
        }
        assert!(!names.contains("status"));
    }

    #[test]
    fn search_parameters() {
        let d = r4();
        let code = d.search_param("Observation", "code").expect("exists");
        assert_eq!(code.kind, SearchParamType::Token);
        assert!(code.base.len() > 5);
        assert_eq!(
            d.search_param("Condition", "code").map(|p| &p.url),
            Some(&code.url)
        );
        let id = d
            .search_param("Patient", "_id")
            .expect("inherited from Resource");
        assert_eq!(id.expression.as_deref(), Some("Resource.id"));
        for c in [
            "_lastUpdated",
            "_profile",
            "_tag",
            "_security",
            "_source",
            "_text",
        ] {
            assert!(d.search_param("Patient", c).is_some(), "{c}");
        }
        assert!(d.search_param("Bundle", "_id").is_some());
        assert!(
            d.search_param("Bundle", "_text").is_none(),
            "Bundle is not a DomainResource"
        );
        let subject = d.search_param("Observation", "subject").expect("exists");
        assert_eq!(subject.kind, SearchParamType::Reference);
        assert!(subject.targets.iter().any(|t| t == "Patient"));
        let date = d.search_param("Observation", "date").expect("exists");
        assert!(date.comparators.iter().any(|c| c == "ge"));
        let cvq = d
            .search_param("Observation", "code-value-quantity")
            .expect("exists");
        assert_eq!(cvq.kind, SearchParamType::Composite);
        assert_eq!(cvq.components.len(), 2);
        assert!(
            d.search_param_by_url(&cvq.components[0].definition)
                .is_some()
        );
        let birth = d.search_param("Patient", "birthdate").expect("exists");
        assert_eq!(birth.kind, SearchParamType::Date);
        let given = d.search_param("Patient", "given").expect("exists");
        assert!(given.modifiers.iter().any(|m| m == "exact"));
        let codes: Vec<_> = d
            .search_params("Patient")
            .map(|p| p.code.as_str())
            .collect();
        assert!(codes.windows(2).all(|w| w[0] <= w[1]));
        assert!(codes.contains(&"_id") && codes.contains(&"gender"));
        assert_eq!(d.all_search_params().count(), 1375);
        for p in d.all_search_params() {
            assert_eq!(SearchParamType::parse(p.kind.as_str()), Some(p.kind));
        }
    }
}
