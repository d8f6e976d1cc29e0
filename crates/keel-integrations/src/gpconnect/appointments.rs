//! The pure side of Appointment Management (reference sheet §3.7): free slots from a search
//! Bundle, the Appointment Keel books and cancels, and finding Keel's own booking again after
//! a lost answer.
//!
//! GP Connect has no idempotency key. Keel writes its [`WriteKey`] into the appointment's
//! `comment` ("Keel booking reference ...", visible to the practice), so a booking whose answer
//! was lost can be recognised among the patient's appointments by slot and key.

use keel_core::integration::{BookingRequest, FreeSlot, WriteKey, WriteReceipt};
use keel_model::{ClinicalDate, OdsCode};
use serde_json::{Value, json};

const BOOKING_ORG_EXT: &str =
    "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-GPConnect-BookingOrganisation-1";
const CANCELLATION_EXT: &str = "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-GPConnect-AppointmentCancellationReason-1";
const ODS_SYSTEM: &str = "https://fhir.nhs.uk/Id/ods-organization-code";

fn array(value: &Value) -> impl Iterator<Item = &Value> {
    value.as_array().into_iter().flatten()
}

/// The free slots of a slot search Bundle, their start and end exactly as sent (a booking
/// sends them back).
///
/// # Errors
/// When a Slot has no id or its times are not dates.
pub fn map_slots(bundle: &Value) -> Result<Vec<FreeSlot>, String> {
    if bundle["resourceType"] != "Bundle" {
        return Err("the answer is not a Bundle".into());
    }
    let resources: Vec<&Value> = array(&bundle["entry"]).map(|e| &e["resource"]).collect();
    let find = |reference: &str| {
        let (kind, id) = reference.split_once('/')?;
        resources
            .iter()
            .copied()
            .find(|r| r["resourceType"] == kind && r["id"] == id)
    };
    let mut slots = Vec::new();
    for slot in resources.iter().filter(|r| r["resourceType"] == "Slot") {
        if slot["status"] != "free" {
            continue;
        }
        let id = slot["id"].as_str().ok_or("a Slot has no id")?;
        let start = slot["start"].as_str().ok_or("a Slot has no start")?;
        let end = slot["end"].as_str().ok_or("a Slot has no end")?;
        let schedule = slot
            .pointer("/schedule/reference")
            .and_then(Value::as_str)
            .and_then(find);
        let clinician = schedule
            .into_iter()
            .flat_map(|s| array(&s["actor"]))
            .filter_map(|a| a["reference"].as_str())
            .filter(|r| r.starts_with("Practitioner/"))
            .find_map(|r| find(r).and_then(|p| array(&p["name"]).find_map(name_text)));
        let service = [Some(*slot), schedule]
            .into_iter()
            .flatten()
            .find_map(|r| r.pointer("/serviceType/0/text").and_then(Value::as_str))
            .map(str::to_string);
        let date = |text: &str| {
            ClinicalDate::parse(text).map_err(|_| "a Slot's time is not a date".to_string())
        };
        slots.push(FreeSlot {
            source_id: id.to_string(),
            start: date(start)?,
            end: date(end)?,
            clinician,
            service,
        });
    }
    Ok(slots)
}

fn name_text(name: &Value) -> Option<String> {
    let parts: Vec<&str> = array(&name["prefix"])
        .chain(array(&name["given"]))
        .filter_map(Value::as_str)
        .chain(name["family"].as_str())
        .collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}

/// The comment that carries Keel's key on the booked appointment.
pub fn booking_comment(key: &WriteKey) -> String {
    format!("Keel booking reference {}", key.0)
}

/// The Appointment booking `request`'s slot at its start and end as the search sent them, for
/// `booking_organisation`.
pub fn booking(request: &BookingRequest, booking_organisation: &OdsCode) -> Value {
    let mut appointment = json!({
        "resourceType": "Appointment",
        "contained": [{
            "resourceType": "Organization",
            "id": "booking-organisation",
            "identifier": [{"system": ODS_SYSTEM, "value": booking_organisation.as_str()}],
        }],
        "extension": [{"url": BOOKING_ORG_EXT, "valueReference": {"reference": "#booking-organisation"}}],
        "status": "booked",
        "start": request.slot.start.as_str(),
        "end": request.slot.end.as_str(),
        "slot": [{"reference": format!("Slot/{}", request.slot.source_id)}],
        "comment": booking_comment(&request.key),
        "participant": [{
            "actor": {"reference": format!("Patient/{}", request.patient.source_patient_id)},
            "status": "accepted",
        }],
    });
    if let Some(description) = &request.description {
        appointment["description"] = json!(description);
    }
    appointment
}

/// What a write made: the Appointment's id and version (`meta.versionId`, else the ETag's).
///
/// # Errors
/// When the Appointment has no id.
pub fn receipt(appointment: &Value, etag: Option<&str>) -> Result<WriteReceipt, String> {
    let id = appointment["id"]
        .as_str()
        .ok_or("the Appointment has no id")?;
    let version = appointment
        .pointer("/meta/versionId")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| etag.map(etag_version));
    Ok(WriteReceipt {
        source_id: id.to_string(),
        version,
    })
}

/// `W/"3"` → `3`.
fn etag_version(etag: &str) -> String {
    etag.trim_start_matches("W/").trim_matches('"').to_string()
}

/// Keel's booking of `slot_id` under `key` among a patient's appointments (a searchset
/// Bundle), if it is there and still booked.
pub fn find_booking(bundle: &Value, slot_id: &str, key: &WriteKey) -> Option<WriteReceipt> {
    let slot = format!("Slot/{slot_id}");
    let comment = booking_comment(key);
    array(&bundle["entry"])
        .map(|e| &e["resource"])
        .filter(|a| a["resourceType"] == "Appointment" && a["status"] == "booked")
        .filter(|a| array(&a["slot"]).any(|s| s["reference"] == slot.as_str()))
        .find(|a| a["comment"] == comment.as_str())
        .and_then(|a| receipt(a, None).ok())
}

/// The cancellation of `current` (the Appointment as read): only the status and the reason
/// change.
pub fn cancellation(current: &Value, reason: &str) -> Value {
    let mut appointment = current.clone();
    appointment["status"] = json!("cancelled");
    let reason = json!({"url": CANCELLATION_EXT, "valueString": reason});
    match appointment["extension"].as_array_mut() {
        Some(extensions) => extensions.push(reason),
        None => appointment["extension"] = json!([reason]),
    }
    appointment
}

/// The reason an Appointment was cancelled with, if it is cancelled.
pub fn cancelled_reason(appointment: &Value) -> Option<&str> {
    if appointment["status"] != "cancelled" {
        return None;
    }
    array(&appointment["extension"])
        .find(|e| e["url"] == CANCELLATION_EXT)
        .and_then(|e| e["valueString"].as_str())
        .or(Some(""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_core::integration::PatientAtPractice;

    fn request() -> BookingRequest {
        BookingRequest {
            key: WriteKey("k-1".into()),
            patient: PatientAtPractice {
                practice: OdsCode::parse("Y90001").expect("valid"),
                source_patient_id: "Y90001-0000001".into(),
                nhs_number: None,
            },
            slot: FreeSlot {
                source_id: "s-1".into(),
                start: ClinicalDate::parse("2026-01-06T09:00:00+00:00").expect("valid"),
                end: ClinicalDate::parse("2026-01-06T09:10:00+00:00").expect("valid"),
                clinician: None,
                service: None,
            },
            description: Some("Review".into()),
        }
    }

    #[test]
    fn a_booking_carries_the_key_and_is_found_again_by_slot_and_key() {
        let mut booked = booking(&request(), &OdsCode::parse("A11111").expect("valid"));
        assert_eq!(booked["slot"][0]["reference"], "Slot/s-1");
        assert_eq!(booked["description"], "Review");
        booked["id"] = json!("a-1");
        booked["meta"] = json!({"versionId": "1"});
        let search = json!({"resourceType": "Bundle", "entry": [{"resource": booked}]});
        assert_eq!(
            find_booking(&search, "s-1", &WriteKey("k-1".into())),
            Some(WriteReceipt {
                source_id: "a-1".into(),
                version: Some("1".into())
            })
        );
        assert_eq!(
            find_booking(&search, "s-1", &WriteKey("other".into())),
            None
        );
        assert_eq!(find_booking(&search, "s-2", &WriteKey("k-1".into())), None);
        let cancelled = cancellation(&search["entry"][0]["resource"], "Patient request");
        assert_eq!(cancelled_reason(&cancelled), Some("Patient request"));
        assert_eq!(cancelled["start"], "2026-01-06T09:00:00+00:00");
    }

    #[test]
    fn the_version_comes_from_meta_or_the_etag() {
        let receipt = receipt(&json!({"id": "a"}), Some("W/\"4\"")).expect("id");
        assert_eq!(receipt.version.as_deref(), Some("4"));
    }
}
