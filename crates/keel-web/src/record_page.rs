//! The patient record page: demographics, then each section from the registered practice with
//! its state — data, "nothing recorded", "withheld", "unavailable", "failed" or "not shown to
//! your role" — each item with where it came from and when it was retrieved (stale retrievals
//! labelled), and blood pressure and HbA1c trends as charts with tables. Pure: no I/O, so its
//! render time is measured on its own (`benches/record_page.rs`).

use keel_core::fhir::{Access, RecordAccess};
use keel_core::integration::{FederatedRecord, SectionContent};
use keel_model::record::{
    Demographics, MedicationStatus, ObservationValue, RecordItem, RecordSection, Section,
    SectionWarning,
};
use keel_model::{CodeableConcept, NhsNumber, Provenance, Quantity, SectionState, SourceSystem};

use crate::charts::{Series, trend};
use crate::html::Text;
use crate::w;

/// A retrieval older than this is labelled stale.
pub const STALE_AFTER_SECS: i64 = 24 * 60 * 60;

const SNOMED_CT: &str = "http://snomed.info/sct";
const SYSTOLIC: [&str; 2] = ["72313002", "271649006"];
const DIASTOLIC: [&str; 2] = ["1091811000000102", "271650006"];
const HBA1C: [&str; 2] = ["999791000000106", "1049301000000100"];

/// What the record page shows.
pub struct RecordPage<'a> {
    pub nhs_number: NhsNumber,
    pub access: &'a RecordAccess,
    pub record: &'a FederatedRecord,
    /// The registered practice's name.
    pub practice_name: &'a str,
    /// Now, in seconds since the Unix epoch (for staleness).
    pub now_unix: i64,
}

/// The page's main content.
pub fn render(page: &RecordPage<'_>) -> String {
    let mut out = String::with_capacity(64 * 1024);
    let record = page.record;
    let demographics = record.patient.as_ref().map(|(_, d)| d);
    let name = demographics.map_or_else(|| "Patient".to_string(), display_name);
    w!(
        out,
        "<a class=\"nhsuk-back-link\" href=\"/ui/search\">Back to search</a>\
         <h1><span class=\"nhsuk-caption-l\">Patient record</span>{}</h1>",
        Text(&name)
    );
    if page.access.break_glass_in_force {
        out.push_str(
            "<div class=\"nhsuk-warning-callout\" role=\"status\"><h2>Break-glass access in force</h2>\
             <p>You are seeing this record under break-glass. This access is flagged in the audit \
             trail and the privacy officer is alerted.</p></div>",
        );
    }
    demographics_card(&mut out, page, demographics);
    let mut contents: Vec<&SectionContent> = record.sections.iter().collect();
    contents.sort_by_key(|c| c.section());
    out.push_str(
        "<nav class=\"keel-contents\" aria-label=\"Sections of the record\"><ul class=\"keel-contents__list\">",
    );
    for section in RecordSection::ALL {
        w!(
            out,
            "<li><a href=\"#{}\">{}</a></li>",
            section.key(),
            section.title()
        );
    }
    out.push_str("</ul></nav>");
    for section in RecordSection::ALL {
        w!(
            out,
            "<section aria-labelledby=\"{k}-heading\" id=\"{k}\" data-section=\"{k}\"><h2 id=\"{k}-heading\">{}</h2>",
            section.title(),
            k = section.key()
        );
        let access = page.access.section(section);
        match (access, contents.iter().find(|c| c.section() == section)) {
            (Access::Refused { .. }, _) | (_, None) => {
                not_permitted(&mut out, &page.access.section(section));
            }
            (Access::Permitted, Some(content)) => {
                section_body(&mut out, page, content);
            }
        }
        out.push_str("</section>");
    }
    out
}

pub fn display_name(d: &Demographics) -> String {
    let mut name = d.given.join(" ");
    if let Some(family) = &d.family {
        if !name.is_empty() {
            name.push(' ');
        }
        name.push_str(&family.to_uppercase());
    }
    if name.is_empty() {
        "Name not shown".into()
    } else {
        name
    }
}

/// The NHS number in its 3-3-4 display form.
pub fn spaced(nhs: &NhsNumber) -> String {
    let s = nhs.as_str();
    format!("{} {} {}", &s[..3], &s[3..6], &s[6..])
}

fn demographics_card(out: &mut String, page: &RecordPage<'_>, d: Option<&Demographics>) {
    out.push_str(
        "<div class=\"nhsuk-card nhsuk-card--feature\" data-testid=\"demographics\"><h2>Demographics</h2><dl class=\"nhsuk-summary-list\">",
    );
    let row = |out: &mut String, key: &str, value: &str| {
        w!(
            out,
            "<div class=\"nhsuk-summary-list__row\"><dt class=\"nhsuk-summary-list__key\">{}</dt><dd class=\"nhsuk-summary-list__value\">{}</dd></div>",
            Text(key),
            Text(value)
        );
    };
    row(out, "NHS number", &spaced(&page.nhs_number));
    let practice = format!("{} ({})", page.practice_name, page.record.practice.as_str());
    row(out, "Registered practice", &practice);
    match d {
        Some(d) => {
            let unknown = "Not recorded";
            row(
                out,
                "Date of birth",
                d.birth_date.as_ref().map_or(unknown, |b| b.as_str()),
            );
            row(out, "Gender", d.gender.as_deref().unwrap_or(unknown));
            row(out, "Postcode", d.postcode.as_deref().unwrap_or(unknown));
            if let Some(died) = &d.deceased {
                row(out, "Date of death", died.as_str());
            }
        }
        None => row(
            out,
            "Details",
            "Unavailable: the practice's system could not be reached",
        ),
    }
    out.push_str("</dl></div>");
}

fn not_permitted(out: &mut String, access: &Access) {
    w!(
        out,
        "<div class=\"keel-state keel-state--not-permitted\" data-state=\"not-permitted\">\
         <span class=\"keel-state__label\">Not shown to your role</span>{}</div>",
        Text(&access.explanation())
    );
}

fn state_box(out: &mut String, kind: &str, label: &str, text: &str) {
    w!(
        out,
        "<div class=\"keel-state keel-state--{kind}\" data-state=\"{kind}\"><span class=\"keel-state__label\">{}</span>{}</div>",
        Text(label),
        Text(text)
    );
}

fn section_body(out: &mut String, page: &RecordPage<'_>, content: &SectionContent) {
    match content {
        SectionContent::Problems(s) => {
            items(out, page, s, &["Problem", "Status", "Onset"], |out, p| {
                cell(out, &concept(&p.code));
                cell(
                    out,
                    if p.status == keel_model::record::ProblemStatus::Active {
                        "Active"
                    } else {
                        "Past"
                    },
                );
                cell(out, p.onset.as_ref().map_or("", |d| d.as_str()));
            })
        }
        SectionContent::Medications(s) => items(
            out,
            page,
            s,
            &["Medication", "Dosage", "Course", "Last issued"],
            |out, m| {
                cell(out, &concept(&m.medication));
                cell(out, m.dosage.as_deref().unwrap_or(""));
                let status = match m.status {
                    MedicationStatus::Active => "active",
                    MedicationStatus::Completed => "completed",
                    MedicationStatus::Stopped => "stopped",
                };
                let course = match m.course {
                    keel_model::record::CourseKind::Acute => "Acute",
                    keel_model::record::CourseKind::Repeat => "Repeat",
                };
                cell(out, &format!("{course}, {status}"));
                cell(
                    out,
                    m.issues.iter().map(|i| i.date.as_str()).max().unwrap_or(""),
                );
            },
        ),
        SectionContent::Allergies(s) => items(
            out,
            page,
            s,
            &["Allergy", "Reaction", "Recorded"],
            |out, a| {
                cell(out, &concept(&a.substance));
                cell(out, &a.reaction.as_ref().map(concept).unwrap_or_default());
                cell(out, a.recorded.as_ref().map_or("", |d| d.as_str()));
            },
        ),
        SectionContent::Observations(s) => {
            if s.state == SectionState::Recorded {
                observation_charts(out, s);
            }
            items(out, page, s, &["Observation", "Value", "Date"], |out, o| {
                cell(out, &concept(&o.code));
                let mut value = o.value.as_ref().map(observation_value).unwrap_or_default();
                for c in &o.components {
                    if !value.is_empty() {
                        value.push_str("; ");
                    }
                    value.push_str(&format!(
                        "{} {}",
                        concept(&c.code),
                        observation_value(&c.value)
                    ));
                }
                cell(out, &value);
                cell(out, o.effective.as_ref().map_or("", |d| d.as_str()));
            });
        }
        SectionContent::Immunisations(s) => items(
            out,
            page,
            s,
            &["Vaccination", "Product", "Date"],
            |out, i| {
                cell(out, &concept(&i.vaccine));
                cell(out, i.product.as_deref().unwrap_or(""));
                cell(out, i.date.as_ref().map_or("", |d| d.as_str()));
            },
        ),
        SectionContent::Consultations(s) => items(
            out,
            page,
            s,
            &["Date", "Type", "Clinician", "Notes"],
            |out, c| {
                cell(out, c.start.as_ref().map_or("", |d| d.as_str()));
                cell(out, c.kind.as_deref().unwrap_or(""));
                cell(out, c.clinician.as_deref().unwrap_or(""));
                cell(out, c.text.as_deref().unwrap_or(""));
            },
        ),
        SectionContent::Documents(s) => {
            items(out, page, s, &["Document", "Type", "Created"], |out, d| {
                cell(out, &d.title);
                cell(out, &d.content_type);
                cell(out, d.created.as_ref().map_or("", |c| c.as_str()));
            })
        }
    }
}

fn cell(out: &mut String, text: &str) {
    w!(out, "<td>{}</td>", Text(text));
}

/// The words for a concept: its text, else the first display, else the first code.
fn concept(c: &CodeableConcept) -> String {
    if let Some(text) = &c.text {
        return text.clone();
    }
    c.codings()
        .iter()
        .find_map(|coding| coding.display.clone())
        .or_else(|| c.codings().first().map(|coding| coding.code.clone()))
        .unwrap_or_else(|| "Not coded".into())
}

fn quantity(q: &Quantity) -> String {
    let comparator = q.comparator.map_or("", |c| c.as_code());
    match &q.unit {
        Some(unit) => format!("{comparator}{} {unit}", q.value.as_str()),
        None => format!("{comparator}{}", q.value.as_str()),
    }
}

fn observation_value(v: &ObservationValue) -> String {
    match v {
        ObservationValue::Quantity(q) => quantity(q),
        ObservationValue::Text(t) => t.clone(),
        ObservationValue::Concept(c) => concept(c),
    }
}

/// A section's state box, or its items as a table with their provenance.
fn items<T>(
    out: &mut String,
    page: &RecordPage<'_>,
    section: &Section<T>,
    headings: &[&str],
    row: impl Fn(&mut String, &T),
) {
    match &section.state {
        SectionState::NothingRecorded => {
            state_box(
                out,
                "nothing-recorded",
                "Nothing recorded",
                "The practice holds no entries in this section.",
            );
            return;
        }
        SectionState::Withheld { reason } => {
            state_box(out, "withheld", "Withheld", reason);
            return;
        }
        SectionState::Unavailable { reason } => {
            state_box(out, "unavailable", "Unavailable", reason);
            return;
        }
        SectionState::Failed { reason } => {
            state_box(out, "failed", "Failed", reason);
            return;
        }
        SectionState::Recorded => {}
    }
    for warning in &section.warnings {
        let text = match warning {
            SectionWarning::ConfidentialItemsWithheld => {
                "Some entries are withheld (confidentiality, patient preference or the access policy)."
            }
            SectionWarning::DataInTransit { .. } => {
                "The record is still being transferred from the previous practice: older entries may be missing."
            }
            SectionWarning::DataAwaitingFiling => {
                "Some entries are waiting to be filed at the practice and are not shown."
            }
        };
        w!(
            out,
            "<p class=\"nhsuk-inset-text\" data-warning=\"true\">{}</p>",
            Text(text)
        );
    }
    w!(
        out,
        "<table class=\"nhsuk-table\" data-state=\"recorded\"><caption>{} ({} entries)</caption><thead><tr>",
        section.section.title(),
        section.items.len()
    );
    for h in headings {
        w!(out, "<th scope=\"col\">{h}</th>");
    }
    out.push_str("<th scope=\"col\">Source</th></tr></thead><tbody>");
    for item in &section.items {
        out.push_str("<tr>");
        row(out, &item.content);
        provenance_cell(out, page, item);
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
}

fn system_name(system: SourceSystem) -> &'static str {
    match system {
        SourceSystem::EmisStyle => "EMIS-style",
        SourceSystem::TppStyle => "TPP-style",
        SourceSystem::GpConnect => "GP Connect",
        SourceSystem::Pds => "PDS",
        SourceSystem::Keel => "Keel",
    }
}

fn provenance_cell<T>(out: &mut String, page: &RecordPage<'_>, item: &RecordItem<T>) {
    let p: &Provenance = &item.provenance;
    w!(
        out,
        "<td class=\"keel-provenance\">{} via {}",
        Text(p.source_organisation.as_str()),
        system_name(p.source_system)
    );
    match &p.retrieved {
        Some(at) => {
            w!(out, "<br>retrieved {}", Text(at.as_str()));
            if is_stale(at.as_str(), page.now_unix) {
                out.push_str(
                    " <span class=\"keel-stale\">(stale: retrieved over 24 hours ago)</span>",
                );
            }
        }
        None => out.push_str("<br>retrieval time not known"),
    }
    out.push_str("</td>");
}

/// Was `retrieved` (an RFC 3339 instant) more than [`STALE_AFTER_SECS`] before `now_unix`?
/// An instant that cannot be read counts as stale.
pub fn is_stale(retrieved: &str, now_unix: i64) -> bool {
    match time::OffsetDateTime::parse(retrieved, &time::format_description::well_known::Rfc3339) {
        Ok(at) => now_unix - at.unix_timestamp() > STALE_AFTER_SECS,
        Err(_) => true,
    }
}

fn has_any(c: &CodeableConcept, codes: &[&str], words: &str) -> bool {
    codes.iter().any(|code| c.has(SNOMED_CT, code))
        || concept(c).to_ascii_lowercase().contains(words)
}

fn number(v: &ObservationValue) -> Option<f64> {
    match v {
        ObservationValue::Quantity(q) => Some(q.value.to_f64()),
        _ => None,
    }
}

/// Blood pressure and HbA1c trends, oldest first.
fn observation_charts(out: &mut String, s: &Section<keel_model::record::Observation>) {
    let mut dated: Vec<&keel_model::record::Observation> = s
        .items
        .iter()
        .map(|i| &i.content)
        .filter(|o| o.effective.is_some())
        .collect();
    dated.sort_by(|a, b| {
        a.effective
            .as_ref()
            .map(|d| d.as_str())
            .cmp(&b.effective.as_ref().map(|d| d.as_str()))
    });
    let mut systolic = Series {
        name: "Systolic",
        points: Vec::new(),
    };
    let mut diastolic = Series {
        name: "Diastolic",
        points: Vec::new(),
    };
    let mut hba1c = Series {
        name: "HbA1c",
        points: Vec::new(),
    };
    let mut hba1c_unit = "";
    for o in dated {
        let date = o.effective.as_ref().map_or("", |d| d.date_part());
        for c in &o.components {
            if let Some(v) = number(&c.value) {
                if has_any(&c.code, &SYSTOLIC, "systolic") {
                    systolic.points.push((date, v));
                } else if has_any(&c.code, &DIASTOLIC, "diastolic") {
                    diastolic.points.push((date, v));
                }
            }
        }
        if has_any(&o.code, &HBA1C, "hba1c")
            && let Some(ObservationValue::Quantity(q)) = &o.value
        {
            hba1c.points.push((date, q.value.to_f64()));
            hba1c_unit = q.unit.as_deref().unwrap_or("");
        }
    }
    if !systolic.points.is_empty() || !diastolic.points.is_empty() {
        out.push_str("<h3>Blood pressure trend</h3>");
        trend(
            out,
            "bp-chart",
            "Blood pressure",
            "mmHg",
            &[systolic, diastolic],
        );
    }
    if !hba1c.points.is_empty() {
        out.push_str("<h3>HbA1c trend</h3>");
        let unit = hba1c_unit.to_string();
        trend(out, "hba1c-chart", "HbA1c", &unit, &[hba1c]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retrieval_over_a_day_old_is_stale() {
        let now = 1_750_000_000;
        assert!(!is_stale("2025-06-15T15:06:40Z", now));
        assert!(is_stale("2025-06-14T15:06:39Z", now));
        assert!(is_stale("not a time", now));
    }

    #[test]
    fn each_section_state_is_drawn_from_the_data() {
        let practice = keel_model::OdsCode::parse("Y90001").expect("valid");
        let sections = [
            RecordSection::Problems,
            RecordSection::Medications,
            RecordSection::Allergies,
        ];
        let record = FederatedRecord {
            practice,
            patient: None,
            sections: vec![
                SectionContent::empty(RecordSection::Problems, SectionState::NothingRecorded),
                SectionContent::unavailable(RecordSection::Medications, "not offered"),
                SectionContent::empty(
                    RecordSection::Allergies,
                    SectionState::Failed {
                        reason: "no answer within 2000 ms".into(),
                    },
                ),
            ],
        };
        let access = RecordAccess::everything_permitted(&sections);
        let html = render(&RecordPage {
            nhs_number: NhsNumber::parse("9990000018").expect("valid"),
            access: &access,
            record: &record,
            practice_name: "Test practice",
            now_unix: 0,
        });
        let state_of = |key: &str| {
            let at = html
                .find(&format!("data-section=\"{key}\""))
                .expect("section");
            let rest = &html[at..];
            let start = rest.find("data-state=\"").expect("state") + 12;
            rest[start..].split('"').next().expect("quoted").to_string()
        };
        assert_eq!(state_of("problems"), "nothing-recorded");
        assert_eq!(state_of("medications"), "unavailable");
        assert_eq!(state_of("allergies"), "failed");
        assert!(html.contains("no answer within 2000 ms"));
        assert_eq!(state_of("observations"), "not-permitted", "not asked for");
    }

    #[test]
    fn nhs_numbers_show_three_three_four() {
        let nhs = NhsNumber::parse("9990000018").expect("valid");
        assert_eq!(spaced(&nhs), "999 000 0018");
    }
}
