//! GUIDs of the EMIS-style API: name-based (version 5) UUIDs of the ids the FHIR export gives
//! the same items ([`crate::fhir`]), so one item has one GUID on every run and both
//! renderings can be matched.
//!
//! `GUID = UUIDv5(NAMESPACE, name)` where `NAMESPACE = UUIDv5(NAMESPACE_URL,
//! "https://keel.invalid/sim/emis-style")` and `name` is the export id: the patient record id
//! (`Y90001-0000012`), an item id (`Y90001-0000012-c3`, `...-ms5`, `...-mi5-2`, `...-o7`,
//! `...-a1`, `...-i2`, `...-e4`, `...-p9`, `...-t1`), a booked slot's appointment id
//! (`Y90001-fa-3-20260106-0900`) or a staff id (`Y90001-S03`). Items written through the API
//! are named `{record id}-w{n}` (`n` counts that patient's accepted writes from 1) and sessions
//! `session-{n}` (`n` counts logins from 1). GUIDs are written upper-case and hyphenated.

use std::sync::LazyLock;

use uuid::Uuid;

static NAMESPACE: LazyLock<Uuid> =
    LazyLock::new(|| Uuid::new_v5(&Uuid::NAMESPACE_URL, b"https://keel.invalid/sim/emis-style"));

/// A GUID of the EMIS-style API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Guid(Uuid);

impl Guid {
    /// The GUID named `name` (see the module docs).
    pub fn named(name: &str) -> Guid {
        Guid(Uuid::new_v5(&NAMESPACE, name.as_bytes()))
    }

    /// The item `{record}-{kind}{n}`.
    pub fn item(record: &str, kind: &str, n: u32) -> Guid {
        let mut name = String::with_capacity(record.len() + kind.len() + 12);
        name.push_str(record);
        name.push('-');
        name.push_str(kind);
        name.push_str(&n.to_string());
        Guid::named(&name)
    }

    /// Parses a hyphenated GUID, in either case, with or without braces.
    pub fn parse(s: &str) -> Option<Guid> {
        let inner = s
            .strip_prefix('{')
            .and_then(|t| t.strip_suffix('}'))
            .unwrap_or(s);
        if inner.len() != 36 {
            return None;
        }
        Uuid::try_parse(inner).ok().map(Guid)
    }

    /// `XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX`, upper-case.
    pub fn text(self) -> GuidText {
        let mut buf = [0u8; 36];
        self.0.hyphenated().encode_upper(&mut buf);
        GuidText(buf)
    }
}

impl std::fmt::Display for Guid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.text().as_str())
    }
}

/// A GUID's text, without allocating.
pub struct GuidText([u8; 36]);

impl GuidText {
    pub fn as_str(&self) -> &str {
        // Always ASCII hex digits and hyphens.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids_are_stable_version_5_and_round_trip() {
        let g = Guid::named("Y90001-0000012");
        assert_eq!(
            Guid::item("Y90001-0000012", "c", 3),
            Guid::named("Y90001-0000012-c3")
        );
        let text = g.to_string();
        assert_eq!(text, text.to_uppercase());
        assert_eq!(&text[14..15], "5", "version 5");
        assert_eq!(Guid::parse(&text), Some(g));
        assert_eq!(Guid::parse(&text.to_lowercase()), Some(g));
        assert_eq!(Guid::parse(&format!("{{{text}}}")), Some(g));
        assert_eq!(Guid::parse("not-a-guid"), None);
        assert_eq!(Guid::parse(&text.replace('-', "")), None);
        assert_ne!(g, Guid::named("Y90001-0000013"));
    }
}
