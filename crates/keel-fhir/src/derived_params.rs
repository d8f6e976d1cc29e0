//! Search parameters whose index rows would repeat other parameters' rows, found from the R4
//! expressions themselves. `Observation.combo-code` (`Observation.code |
//! Observation.component.code`) is the rows of `code` and `component-code` together;
//! `Observation.patient` (`Observation.subject.where(resolve() is Patient)`) is the rows of
//! `subject` that point at a Patient. Storing them again would add a fifth to the index rows of
//! a Synthea population for nothing, so a store keeps only the sources and searches them.

use crate::definitions::{Definitions, SearchParamType};
use crate::index::indexable;
use std::collections::HashMap;

/// Where a derived parameter's rows are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DerivedRows {
    /// The rows of these parameters together.
    UnionOf(Vec<String>),
    /// The rows of the reference parameter `param` that point at a `target_type`. (Its
    /// `:identifier` rows are still its own: a logical reference names no type.)
    TargetsOf { param: String, target_type: String },
}

/// The parameters of `resource_type` that are derived, by code.
pub fn derived_params(defs: &Definitions, resource_type: &str) -> HashMap<String, DerivedRows> {
    let params: Vec<(&str, SearchParamType, Vec<String>)> = defs
        .search_params(resource_type)
        .filter(|d| indexable(d))
        .filter_map(|d| {
            let branches = branches_for(d.expression.as_deref()?, resource_type);
            (!branches.is_empty()).then_some((d.code.as_str(), d.kind, branches))
        })
        .collect();
    // A source is a parameter with exactly one branch for the type, found by that branch.
    let source = |branch: &str, kind: SearchParamType, not: &str| -> Option<&str> {
        params
            .iter()
            .find(|(code, k, b)| *code != not && *k == kind && b.len() == 1 && b[0] == branch)
            .map(|(code, _, _)| *code)
    };
    let mut derived = HashMap::new();
    for (code, kind, branches) in &params {
        if let [branch] = branches.as_slice() {
            if *kind != SearchParamType::Reference {
                continue;
            }
            let Some((path, target_type)) = resolved_as(branch) else {
                continue;
            };
            if let Some(param) = source(path, *kind, code) {
                derived.insert(
                    code.to_string(),
                    DerivedRows::TargetsOf {
                        param: param.to_string(),
                        target_type: target_type.to_string(),
                    },
                );
            }
        } else {
            let members: Option<Vec<String>> = branches
                .iter()
                .map(|b| source(b, *kind, code).map(str::to_string))
                .collect();
            if let Some(members) = members {
                derived.insert(code.to_string(), DerivedRows::UnionOf(members));
            }
        }
    }
    // A source must hold rows of its own.
    let sources_stored = |rows: &DerivedRows| match rows {
        DerivedRows::UnionOf(members) => members.iter().all(|m| !derived.contains_key(m)),
        DerivedRows::TargetsOf { param, .. } => !derived.contains_key(param),
    };
    derived
        .iter()
        .filter(|(_, rows)| sources_stored(rows))
        .map(|(code, rows)| (code.clone(), rows.clone()))
        .collect()
}

/// The `|` branches of `expression` that apply to `resource_type`, without spaces or the
/// parentheses around a whole branch.
fn branches_for(expression: &str, resource_type: &str) -> Vec<String> {
    let prefix = format!("{resource_type}.");
    split_union(expression)
        .into_iter()
        .map(|b| {
            let compact: String = b.chars().filter(|c| !c.is_whitespace()).collect();
            strip_outer_parentheses(&compact).to_string()
        })
        .filter(|b| b.starts_with(&prefix))
        .collect()
}

/// The top-level branches of a `|` union.
fn split_union(expression: &str) -> Vec<&str> {
    let (mut depth, mut start, mut out) = (0i32, 0, Vec::new());
    for (i, c) in expression.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            '|' if depth == 0 => {
                out.push(&expression[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&expression[start..]);
    out
}

fn strip_outer_parentheses(mut s: &str) -> &str {
    while s.starts_with('(') && s.ends_with(')') && balanced(&s[1..s.len() - 1]) {
        s = &s[1..s.len() - 1];
    }
    s
}

/// Whether the parentheses of `s` balance without ever closing more than they opened.
fn balanced(s: &str) -> bool {
    let mut depth = 0i32;
    for c in s.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ => {}
        }
        if depth < 0 {
            return false;
        }
    }
    depth == 0
}

/// `path.where(resolve()isType)` as `(path, Type)`.
fn resolved_as(branch: &str) -> Option<(&str, &str)> {
    let (path, rest) = branch.split_once(".where(resolve()is")?;
    let target_type = rest.strip_suffix(')')?;
    target_type
        .chars()
        .all(|c| c.is_ascii_alphanumeric())
        .then_some((path, target_type))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::definitions;

    #[test]
    fn observation_combos_and_patient_are_derived() {
        let derived = derived_params(definitions::r4(), "Observation");
        assert_eq!(
            derived.get("combo-code"),
            Some(&DerivedRows::UnionOf(vec![
                "code".into(),
                "component-code".into()
            ]))
        );
        assert_eq!(
            derived.get("patient"),
            Some(&DerivedRows::TargetsOf {
                param: "subject".into(),
                target_type: "Patient".into()
            })
        );
        // value-quantity also covers SampledData, so combo-value-quantity has rows of its own.
        assert_eq!(derived.get("combo-value-quantity"), None);
        assert_eq!(derived.get("code"), None);
        assert_eq!(derived.get("subject"), None);
    }

    #[test]
    fn a_parameter_with_its_own_element_is_not_derived() {
        // Immunization.patient is an element of its own, not a filtered subject.
        let derived = derived_params(definitions::r4(), "Immunization");
        assert_eq!(derived.get("patient"), None);
    }

    #[test]
    fn every_source_is_stored_and_of_the_same_type() {
        let defs = definitions::r4();
        for rt in defs.resource_types() {
            for (code, rows) in derived_params(defs, rt) {
                let kind = defs.search_param(rt, &code).expect("derived").kind;
                let sources = match &rows {
                    DerivedRows::UnionOf(members) => members.clone(),
                    DerivedRows::TargetsOf { param, .. } => vec![param.clone()],
                };
                let derived = derived_params(defs, rt);
                for source in sources {
                    assert_eq!(
                        defs.search_param(rt, &source).expect("source").kind,
                        kind,
                        "{rt}.{code}"
                    );
                    assert!(
                        !derived.contains_key(&source),
                        "{rt}.{code} from derived {source}"
                    );
                }
            }
        }
    }
}
