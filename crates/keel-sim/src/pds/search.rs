//! `GET /Patient` search (reference sheet §4, "Search").
//!
//! Follows the sheet: parameter set, `eq`/`ge`/`le` date prefixes, wildcards (`*`, not in the
//! first two characters of `family`, not with fuzzy), minimum combinations (non-fuzzy:
//! family + birthdate; fuzzy: given+family+birthdate, or family+birthdate+gender+postcode, or
//! given+birthdate+gender+postcode), `_max-results` 1–50, `address-postcode` rejected.
//!
//! Assumptions (the sheet gives no algorithm):
//! - Non-fuzzy: every supplied criterion must match, names case-insensitively; score 1.0.
//! - Fuzzy: a name scores 1.0 when equal ignoring case, 0.95 when equal after also folding
//!   accents, 0.8 for one edit (insert, delete, substitute, swap adjacent letters) or a Soundex
//!   match; no match otherwise. Dates, gender, postcode, GP, email and phone must match. The
//!   result's score is the product of its names' scores, rounded to two places.
//! - `_exact-match=true` keeps only results scoring 1.0.
//! - Unknown parameters → 400 `ADDITIONAL_PROPERTIES`; malformed values → 400
//!   `INVALID_SEARCH_DATA`; a missing combination → 400 `MISSING_VALUE`.

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::{ApiError, FULL_URL_BASE, ODS_SYSTEM, operation_outcome, redact};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prefix {
    Eq,
    Ge,
    Le,
}

/// A parsed search.
#[derive(Debug, Default)]
pub struct Query {
    family: Option<String>,
    given: Vec<String>,
    gender: Option<String>,
    birthdate: Vec<(Prefix, String)>,
    death_date: Vec<(Prefix, String)>,
    postcode: Option<String>,
    gp: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    fuzzy: bool,
    exact: bool,
    max_results: usize,
}

fn parse_bool(name: &str, v: &str) -> Result<bool, ApiError> {
    match v.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(ApiError::invalid_search(&format!(
            "Invalid value - '{v}' in field '{name}'"
        ))),
    }
}

fn parse_date(name: &str, v: &str) -> Result<(Prefix, String), ApiError> {
    let (prefix, date) = if let Some(d) = v.strip_prefix("eq") {
        (Prefix::Eq, d)
    } else if let Some(d) = v.strip_prefix("ge") {
        (Prefix::Ge, d)
    } else if let Some(d) = v.strip_prefix("le") {
        (Prefix::Le, d)
    } else {
        (Prefix::Eq, v)
    };
    let b = date.as_bytes();
    let ok = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !ok {
        return Err(ApiError::invalid_search(&format!(
            "Invalid value - '{v}' in field '{name}'"
        )));
    }
    Ok((prefix, date.to_string()))
}

fn single(slot: &mut Option<String>, name: &str, v: &str) -> Result<(), ApiError> {
    if slot.is_some() {
        return Err(ApiError::invalid_search(&format!(
            "Too many values for field '{name}'"
        )));
    }
    *slot = Some(v.to_string());
    Ok(())
}

impl Query {
    pub(crate) fn parse(pairs: &[(String, String)]) -> Result<Query, ApiError> {
        let mut q = Query {
            max_results: 50,
            ..Query::default()
        };
        for (k, v) in pairs {
            match k.as_str() {
                "family" => {
                    if v.chars().count() > 35 {
                        return Err(ApiError::invalid_search("family longer than 35 characters"));
                    }
                    single(&mut q.family, k, v)?;
                }
                "given" => q.given.push(v.clone()),
                "gender" => {
                    if !matches!(v.as_str(), "male" | "female" | "other" | "unknown") {
                        return Err(ApiError::invalid_search(&format!(
                            "Invalid value - '{v}' in field 'gender'"
                        )));
                    }
                    single(&mut q.gender, k, v)?;
                }
                "birthdate" => q.birthdate.push(parse_date(k, v)?),
                "death-date" => q.death_date.push(parse_date(k, v)?),
                "address-postalcode" => single(&mut q.postcode, k, v)?,
                "address-postcode" => {
                    return Err(ApiError::invalid_search(
                        "'address-postcode' is deprecated; use 'address-postalcode'",
                    ));
                }
                "general-practitioner" => single(&mut q.gp, k, v)?,
                "email" => single(&mut q.email, k, v)?,
                "phone" => single(&mut q.phone, k, v)?,
                "_fuzzy-match" => q.fuzzy = parse_bool(k, v)?,
                "_exact-match" => q.exact = parse_bool(k, v)?,
                "_history" => {
                    parse_bool(k, v)?;
                }
                "_max-results" => match v.parse::<usize>() {
                    Ok(n) if (1..=50).contains(&n) => q.max_results = n,
                    _ => {
                        return Err(ApiError::invalid_search(&format!(
                            "Invalid value - '{v}' in field '_max-results'"
                        )));
                    }
                },
                other => {
                    return Err(ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "structure",
                        "ADDITIONAL_PROPERTIES",
                        "Additional properties are not allowed",
                        Some(&format!(
                            "Invalid request with error - unexpected parameter '{other}'"
                        )),
                    ));
                }
            }
        }
        // Wildcards.
        let has_wild = |s: &str| s.contains('*');
        let any_wild = q.family.as_deref().is_some_and(has_wild)
            || q.given.iter().any(|g| has_wild(g))
            || q.postcode.as_deref().is_some_and(has_wild);
        if q.fuzzy && any_wild {
            return Err(ApiError::invalid_search(
                "Wildcards cannot be used with fuzzy search",
            ));
        }
        if let Some(f) = &q.family
            && f.chars().take(2).any(|c| c == '*')
        {
            return Err(ApiError::invalid_search(
                "Wildcard not allowed in first two characters of 'family'",
            ));
        }
        if q.email.iter().chain(q.phone.iter()).any(|s| has_wild(s)) {
            return Err(ApiError::invalid_search(
                "Wildcards not allowed in 'email' or 'phone'",
            ));
        }
        // Minimum combinations.
        let (fam, giv, dob) = (
            q.family.is_some(),
            !q.given.is_empty(),
            !q.birthdate.is_empty(),
        );
        let (sex, pc) = (q.gender.is_some(), q.postcode.is_some());
        let ok = if q.fuzzy {
            (giv && fam && dob) || (fam && dob && sex && pc) || (giv && dob && sex && pc)
        } else {
            fam && dob
        };
        if !ok {
            let needed = if q.fuzzy {
                "given+family+birthdate, family+birthdate+gender+address-postalcode or given+birthdate+gender+address-postalcode"
            } else {
                "family and birthdate"
            };
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "required",
                "MISSING_VALUE",
                "Required value is missing",
                Some(&format!(
                    "Not enough search parameters were provided: {needed} are required"
                )),
            ));
        }
        Ok(q)
    }
}

/// Runs `q` over `patients`; the response body (searchset Bundle or TOO_MANY_MATCHES).
pub(crate) fn run<'a>(q: &Query, patients: impl Iterator<Item = &'a Value>) -> Value {
    let mut hits: Vec<(f64, &Value)> = patients
        .filter(|p| super::confidentiality_of(p) != "REDACTED")
        .filter(|p| !(redact::is_restricted(p) && (q.postcode.is_some() || q.gp.is_some())))
        .filter_map(|p| score(q, p).map(|s| (s, p)))
        .filter(|(s, _)| !q.exact || *s >= 1.0)
        .collect();
    if hits.len() > q.max_results {
        return operation_outcome(
            "information",
            "multiple-matches",
            "TOO_MANY_MATCHES",
            "Too Many Matches",
            None,
        );
    }
    hits.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| id(a.1).cmp(id(b.1))));
    let entries: Vec<Value> = hits
        .into_iter()
        .map(|(s, p)| {
            json!({
                "fullUrl": format!("{FULL_URL_BASE}/Patient/{}", id(p)),
                "search": {"score": s},
                "resource": redact::for_search(p.clone()),
            })
        })
        .collect();
    let mut bundle = json!({"resourceType": "Bundle", "type": "searchset", "total": entries.len()});
    if !entries.is_empty() {
        bundle["entry"] = Value::Array(entries);
    }
    bundle
}

fn id(p: &Value) -> &str {
    p.get("id").and_then(Value::as_str).unwrap_or("")
}

fn strs(v: Option<&Value>) -> Vec<&str> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// The score of `p` against `q`, or `None` if it does not match.
fn score(q: &Query, p: &Value) -> Option<f64> {
    let mut total = 1.0_f64;
    // Names: the best-scoring of the patient's names.
    if q.family.is_some() || !q.given.is_empty() {
        let names = p.get("name").and_then(Value::as_array)?;
        let best = names
            .iter()
            .filter_map(|n| name_score(q, n))
            .fold(None, |acc: Option<f64>, s| {
                Some(acc.map_or(s, |a| a.max(s)))
            })?;
        total *= best;
    }
    if let Some(g) = &q.gender
        && p.get("gender").and_then(Value::as_str) != Some(g.as_str())
    {
        return None;
    }
    if !q.birthdate.is_empty() {
        let dob = p.get("birthDate").and_then(Value::as_str)?;
        if !dates_match(&q.birthdate, dob) {
            return None;
        }
    }
    if !q.death_date.is_empty() {
        let dod = p.get("deceasedDateTime").and_then(Value::as_str)?;
        if !dates_match(&q.death_date, dod.get(..10)?) {
            return None;
        }
    }
    if let Some(pc) = &q.postcode {
        let want = pc.replace(' ', "").to_uppercase();
        let addrs = p.get("address").and_then(Value::as_array)?;
        let any = addrs.iter().any(|a| {
            a.get("postalCode")
                .and_then(Value::as_str)
                .is_some_and(|got| glob(&want, &got.replace(' ', "").to_uppercase()))
        });
        if !any {
            return None;
        }
    }
    if let Some(gp) = &q.gp {
        let gps = p.get("generalPractitioner").and_then(Value::as_array)?;
        let any = gps.iter().any(|g| {
            g.pointer("/identifier/system").and_then(Value::as_str) == Some(ODS_SYSTEM)
                && g.pointer("/identifier/value").and_then(Value::as_str) == Some(gp.as_str())
        });
        if !any {
            return None;
        }
    }
    for (want, system) in [(&q.email, "email"), (&q.phone, "phone")] {
        if let Some(want) = want {
            let telecom = p.get("telecom").and_then(Value::as_array)?;
            let any = telecom.iter().any(|t| {
                t.get("system").and_then(Value::as_str) == Some(system)
                    && t.get("value").and_then(Value::as_str) == Some(want.as_str())
            });
            if !any {
                return None;
            }
        }
    }
    Some((total * 100.0).round() / 100.0)
}

fn name_score(q: &Query, name: &Value) -> Option<f64> {
    let mut s = 1.0;
    if let Some(f) = &q.family {
        let got = name.get("family").and_then(Value::as_str)?;
        s *= term_score(q.fuzzy, f, got)?;
    }
    let given = strs(name.get("given"));
    for (i, want) in q.given.iter().enumerate() {
        let got = given.get(i)?;
        // A wildcard matches the start of the first given name only.
        if i > 0 && want.contains('*') {
            return None;
        }
        s *= term_score(q.fuzzy, want, got)?;
    }
    Some(s)
}

fn term_score(fuzzy: bool, want: &str, got: &str) -> Option<f64> {
    let (w, g) = (want.to_lowercase(), got.to_lowercase());
    if !fuzzy {
        return glob(&w, &g).then_some(1.0);
    }
    if w == g {
        return Some(1.0);
    }
    let (wf, gf) = (fold(&w), fold(&g));
    if wf == gf {
        return Some(0.95);
    }
    if within_one_edit(&wf, &gf) || (!wf.is_empty() && soundex(&wf) == soundex(&gf)) {
        return Some(0.8);
    }
    None
}

fn dates_match(conds: &[(Prefix, String)], date: &str) -> bool {
    conds.iter().all(|(p, d)| match p {
        Prefix::Eq => date == d,
        Prefix::Ge => date >= d.as_str(),
        Prefix::Le => date <= d.as_str(),
    })
}

/// `*` matches any run of characters; everything else literally.
fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let mut rest = text;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            let Some(r) = rest.strip_prefix(part) else {
                return false;
            };
            rest = r;
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            match rest.find(part) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
    }
    true
}

/// Lower-cases and removes common Latin accents.
pub fn fold(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars().flat_map(char::to_lowercase) {
        let r = match c {
            'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' => "a",
            'ç' | 'ć' | 'č' => "c",
            'è' | 'é' | 'ê' | 'ë' | 'ē' => "e",
            'ì' | 'í' | 'î' | 'ï' | 'ī' => "i",
            'ñ' | 'ń' => "n",
            'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' => "o",
            'ù' | 'ú' | 'û' | 'ü' | 'ū' => "u",
            'ý' | 'ÿ' => "y",
            'ß' => "ss",
            'š' => "s",
            'ž' => "z",
            _ => {
                out.push(c);
                continue;
            }
        };
        out.push_str(r);
    }
    out
}

/// Whether `a` and `b` differ by at most one insertion, deletion, substitution or swap of
/// adjacent characters.
pub fn within_one_edit(a: &str, b: &str) -> bool {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    if a == b {
        return true;
    }
    let (la, lb) = (a.len(), b.len());
    if la.abs_diff(lb) > 1 {
        return false;
    }
    let pre = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    if la == lb {
        // Substitution or adjacent swap.
        if a[pre + 1..] == b[pre + 1..] {
            return true;
        }
        return pre + 1 < la
            && a[pre] == b[pre + 1]
            && a[pre + 1] == b[pre]
            && a[pre + 2..] == b[pre + 2..];
    }
    let (long, short) = if la > lb { (&a, &b) } else { (&b, &a) };
    long[pre + 1..] == short[pre..]
}

/// American Soundex of the ASCII letters of `s`.
pub fn soundex(s: &str) -> String {
    let code = |c: char| match c {
        'b' | 'f' | 'p' | 'v' => '1',
        'c' | 'g' | 'j' | 'k' | 'q' | 's' | 'x' | 'z' => '2',
        'd' | 't' => '3',
        'l' => '4',
        'm' | 'n' => '5',
        'r' => '6',
        'h' | 'w' => 'h',
        _ => '0',
    };
    let letters: Vec<char> = s
        .chars()
        .filter(char::is_ascii_alphabetic)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    let Some(&first) = letters.first() else {
        return String::new();
    };
    let mut out = String::new();
    out.push(first.to_ascii_uppercase());
    let mut last = code(first);
    for &c in &letters[1..] {
        let d = code(c);
        if d == 'h' {
            continue;
        }
        if d != '0' && d != last {
            out.push(d);
            if out.len() == 4 {
                break;
            }
        }
        last = d;
    }
    while out.len() < 4 {
        out.push('0');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soundex_and_edits() {
        assert_eq!(soundex("Robert"), "R163");
        assert_eq!(soundex("Rupert"), "R163");
        assert_eq!(soundex("Ashcraft"), "A261");
        assert!(within_one_edit("smith", "smyth"));
        assert!(within_one_edit("smith", "msith"));
        assert!(within_one_edit("smith", "smth"));
        assert!(within_one_edit("smith", "smiths"));
        assert!(!within_one_edit("smith", "jones"));
        assert_eq!(fold("Zoë Müller"), "zoe muller");
        assert!(glob("ls*", "ls16ae"));
        assert!(glob("sm*th", "smith"));
        assert!(!glob("sm*x", "smith"));
    }
}
