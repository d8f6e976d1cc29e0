//! The Personal Demographics Service (PDS) FHIR R4 adapter (reference sheet §4): retrieve by NHS
//! number, following superseded numbers, and search; each answer mapped to canonical
//! [`Demographics`] with the patient's [`Restriction`].
//!
//! Mapping ([`map_patient`]) and its losses: the usual name (else the first), the home address's
//! postcode only, the registered practice's ODS code, the NHS number verification status as a
//! flag; other names, addresses, telecoms, contacts and pharmacies are not carried (this adapter
//! answers "who is this", not "how to reach them"). For restricted patients PDS itself removes
//! address, telecom and registered practice (S-flag), and name and birth date too (V-flag);
//! the mapping never fills them from elsewhere.
//!
//! Every call passes Keel's guard, as practice adapter calls do ([`crate::guarded`]): one
//! circuit breaker for the service (while open, calls fail at once as unavailable), the adapter
//! call metrics and one trace event (practice label `X26`, interface `pds`, operation
//! `retrieve` or `search`, no patient details). Calls are not retried: the endpoint's timeout
//! bounds each one.

use keel_core::RequestContext;
use keel_core::identity::pds_trace::{
    PdsPatient, PdsRetrieval, PdsSearchAnswer, PdsService, PdsTraceQuery,
};
use keel_core::integration::{BoxFuture, IntegrationError, Interface};
use keel_model::record::Demographics;
use keel_model::{ClinicalDate, NhsNumber, OdsCode, Provenance, SourceSystem};
use serde_json::Value;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use crate::circuit::{CircuitBreaker, CircuitPolicy};
use crate::http::{self, Endpoint};
use crate::telemetry::{CallOutcome, IntegrationMetrics, trace_call};

/// The ODS code of NHS England, which runs PDS: the source named in provenance and errors.
pub const PDS_ODS: &str = "X26";

const NHS_NUMBER_SYSTEM: &str = "https://fhir.nhs.uk/Id/nhs-number";
const CONFIDENTIALITY_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality";
const VERIFICATION_EXT: &str =
    "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSNumberVerificationStatus";

/// How PDS restricts a patient's details.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restriction {
    Unrestricted,
    /// S-flag (`R`): address, telecom and registered practice are never shown or stored.
    Restricted,
    /// `V`: name and birth date are withheld too.
    VeryRestricted,
}

/// A patient as PDS holds them.
#[derive(Debug, Clone, PartialEq)]
pub struct PdsRecord {
    pub demographics: Demographics,
    pub restriction: Restriction,
    /// PDS's record version (`meta.versionId`), needed for an update.
    pub version: String,
    /// The NHS number is "present and verified" (`01`).
    pub verified: bool,
    pub provenance: Provenance,
}

/// The answer to a retrieve.
#[derive(Debug, Clone, PartialEq)]
pub enum Retrieval {
    Found(PdsRecord),
    /// The number asked for was merged into another: replace it locally with the surviving
    /// record's number, which is `record.demographics.nhs_number`.
    Superseded {
        record: PdsRecord,
    },
    NotFound,
    /// PDS marked the record invalid; it must not be used.
    Invalidated,
}

/// One search result with PDS's score (1.0 = exact).
#[derive(Debug, Clone, PartialEq)]
pub struct PdsMatch {
    pub record: PdsRecord,
    pub score: f64,
}

/// The answer to a search.
#[derive(Debug, Clone, PartialEq)]
pub enum SearchOutcome {
    /// Best first; empty when nothing matched.
    Matches(Vec<PdsMatch>),
    /// More matched than `max_results`: the search must be narrowed, not guessed from.
    TooManyMatches,
}

/// A PDS FHIR R4 client. Clones share one guard (circuit and metrics).
#[derive(Debug, Clone)]
pub struct PdsClient {
    endpoint: Endpoint,
    http: reqwest::Client,
    source: OdsCode,
    guard: Arc<Guard>,
}

#[derive(Debug)]
struct Guard {
    circuit: CircuitBreaker,
    metrics: IntegrationMetrics,
}

impl PdsClient {
    /// A client with the default circuit policy, counting its calls in metrics of its own.
    ///
    /// # Errors
    /// If the HTTP client cannot be set up.
    pub fn new(endpoint: Endpoint) -> Result<PdsClient, reqwest::Error> {
        let http = http::client(&endpoint)?;
        let source = OdsCode::parse(PDS_ODS).expect("X26 is a valid ODS code");
        Ok(PdsClient {
            endpoint,
            http,
            source,
            guard: Arc::new(Guard {
                circuit: CircuitBreaker::new(CircuitPolicy::default()),
                metrics: IntegrationMetrics::new(),
            }),
        })
    }

    /// This client behind a circuit following `policy`, counting its calls in `metrics` (the
    /// practice directory's, so that PDS appears on `/metrics` beside the practices).
    pub fn guarded_by(self, policy: CircuitPolicy, metrics: IntegrationMetrics) -> PdsClient {
        let guard = Guard {
            circuit: CircuitBreaker::new(policy),
            metrics,
        };
        guard.metrics.set_circuit(
            &self.source,
            Interface::Pds,
            guard.circuit.state(Instant::now()),
        );
        PdsClient {
            guard: Arc::new(guard),
            ..self
        }
    }

    /// One call through the guard; `outcome_of` names a success's outcome.
    async fn guarded<T>(
        &self,
        ctx: &RequestContext,
        operation: &'static str,
        call: impl Future<Output = Result<T, IntegrationError>>,
        outcome_of: fn(&T) -> CallOutcome,
    ) -> Result<T, IntegrationError> {
        let Guard { circuit, metrics } = self.guard.as_ref();
        let started = Instant::now();
        let (answer, outcome, attempts) = match circuit.admit(started) {
            Err(open) => (
                Err(IntegrationError::Unavailable {
                    practice: self.source.clone(),
                    reason: open.to_string(),
                }),
                CallOutcome::CircuitOpen,
                0,
            ),
            Ok(permit) => {
                let answer = call.await;
                let outcome = match &answer {
                    Ok(value) => outcome_of(value),
                    Err(e) => CallOutcome::of_error(e),
                };
                let state = permit.settle(outcome.is_connection_failure(), Instant::now());
                metrics.set_circuit(&self.source, Interface::Pds, state);
                (answer, outcome, 1)
            }
        };
        let latency = started.elapsed();
        metrics.record_call(&self.source, Interface::Pds, operation, outcome, latency);
        trace_call(
            ctx,
            &self.source,
            Interface::Pds,
            operation,
            outcome,
            latency,
            attempts,
        );
        answer
    }

    fn get(&self, ctx: &RequestContext, url: String) -> reqwest::RequestBuilder {
        self.http
            .get(url)
            .header("Accept", "application/fhir+json")
            .header("X-Request-ID", http::request_id())
            .header("X-Correlation-ID", ctx.correlation_id.as_str())
    }

    /// Retrieves the patient with `nhs_number`.
    ///
    /// # Errors
    /// [`IntegrationError::Unavailable`] when PDS cannot be reached or fails;
    /// [`IntegrationError::Malformed`] when its answer cannot be read.
    pub async fn retrieve(
        &self,
        ctx: &RequestContext,
        nhs_number: NhsNumber,
    ) -> Result<Retrieval, IntegrationError> {
        let found = |r: &Retrieval| match r {
            Retrieval::Found(_) | Retrieval::Superseded { .. } => CallOutcome::Ok,
            Retrieval::NotFound | Retrieval::Invalidated => CallOutcome::NotFound,
        };
        self.guarded(
            ctx,
            "retrieve",
            self.request_retrieve(ctx, nhs_number),
            found,
        )
        .await
    }

    async fn request_retrieve(
        &self,
        ctx: &RequestContext,
        nhs_number: NhsNumber,
    ) -> Result<Retrieval, IntegrationError> {
        let url = self
            .endpoint
            .url(&format!("/Patient/{}", nhs_number.as_str()));
        let response = self
            .get(ctx, url)
            .send()
            .await
            .map_err(|e| http::read_failed(&self.source, &self.endpoint, &e))?;
        let status = response.status().as_u16();
        let body: Value = response
            .json()
            .await
            .map_err(|e| http::read_failed(&self.source, &self.endpoint, &e))?;
        match status {
            200 => {
                let record =
                    map_patient(&body, &self.source).map_err(|reason| self.malformed(reason))?;
                if record.demographics.nhs_number == Some(nhs_number) {
                    Ok(Retrieval::Found(record))
                } else {
                    Ok(Retrieval::Superseded { record })
                }
            }
            404 if spine_code(&body) == "INVALIDATED_RESOURCE" => Ok(Retrieval::Invalidated),
            404 => Ok(Retrieval::NotFound),
            400 => Err(IntegrationError::Refused {
                practice: self.source.clone(),
                reason: format!("PDS refused the NHS number ({})", spine_code(&body)),
            }),
            _ => Err(http::unexpected_status(&self.source, status)),
        }
    }

    /// Searches PDS by demographics.
    ///
    /// # Errors
    /// [`IntegrationError::Refused`] when PDS rejects the search data (with its reason);
    /// [`IntegrationError::Unavailable`] or [`IntegrationError::Malformed`] as for retrieve.
    pub async fn search(
        &self,
        ctx: &RequestContext,
        query: &PdsTraceQuery,
    ) -> Result<SearchOutcome, IntegrationError> {
        let answered = |_: &SearchOutcome| CallOutcome::Ok;
        self.guarded(ctx, "search", self.request_search(ctx, query), answered)
            .await
    }

    async fn request_search(
        &self,
        ctx: &RequestContext,
        query: &PdsTraceQuery,
    ) -> Result<SearchOutcome, IntegrationError> {
        let mut params: Vec<(&str, String)> =
            vec![("birthdate", format!("eq{}", query.birth_date))];
        if !query.family.is_empty() {
            params.push(("family", query.family.clone()));
        }
        params.extend(query.given.iter().map(|g| ("given", g.clone())));
        if let Some(gender) = &query.gender {
            params.push(("gender", gender.clone()));
        }
        if let Some(postcode) = &query.postcode {
            params.push(("address-postalcode", postcode.clone()));
        }
        if query.fuzzy {
            params.push(("_fuzzy-match", "true".into()));
        }
        params.push(("_max-results", query.max_results.clamp(1, 50).to_string()));
        let response = self
            .get(ctx, self.endpoint.url("/Patient"))
            .query(&params)
            .send()
            .await
            .map_err(|e| http::read_failed(&self.source, &self.endpoint, &e))?;
        let status = response.status().as_u16();
        let body: Value = response
            .json()
            .await
            .map_err(|e| http::read_failed(&self.source, &self.endpoint, &e))?;
        match status {
            200 if body["resourceType"] == "OperationOutcome" => {
                if spine_code(&body) == "TOO_MANY_MATCHES" {
                    Ok(SearchOutcome::TooManyMatches)
                } else {
                    Err(self.malformed(format!("an unexpected outcome {}", spine_code(&body))))
                }
            }
            200 => {
                let entries = body["entry"].as_array().map(Vec::as_slice).unwrap_or(&[]);
                let mut matches = Vec::with_capacity(entries.len());
                for entry in entries {
                    let record = map_patient(&entry["resource"], &self.source)
                        .map_err(|reason| self.malformed(reason))?;
                    let score = entry
                        .pointer("/search/score")
                        .and_then(Value::as_f64)
                        .unwrap_or(0.0);
                    matches.push(PdsMatch { record, score });
                }
                Ok(SearchOutcome::Matches(matches))
            }
            400 => Err(IntegrationError::Refused {
                practice: self.source.clone(),
                reason: format!(
                    "PDS refused the search ({}): {}",
                    spine_code(&body),
                    body.pointer("/issue/0/diagnostics")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                ),
            }),
            _ => Err(http::unexpected_status(&self.source, status)),
        }
    }

    fn malformed(&self, reason: String) -> IntegrationError {
        IntegrationError::Malformed {
            practice: self.source.clone(),
            reason,
        }
    }
}

/// The core's port to PDS (identity resolution), over this client.
impl PdsService for PdsClient {
    fn retrieve<'a>(
        &'a self,
        ctx: &'a RequestContext,
        nhs_number: NhsNumber,
    ) -> BoxFuture<'a, Result<PdsRetrieval, IntegrationError>> {
        Box::pin(async move {
            Ok(match PdsClient::retrieve(self, ctx, nhs_number).await? {
                Retrieval::Found(record) => PdsRetrieval::Current(record.into()),
                Retrieval::Superseded { record } => PdsRetrieval::Superseded(record.into()),
                Retrieval::NotFound => PdsRetrieval::NotFound,
                Retrieval::Invalidated => PdsRetrieval::Invalidated,
            })
        })
    }

    fn search<'a>(
        &'a self,
        ctx: &'a RequestContext,
        query: &'a PdsTraceQuery,
    ) -> BoxFuture<'a, Result<PdsSearchAnswer, IntegrationError>> {
        Box::pin(async move {
            Ok(match PdsClient::search(self, ctx, query).await? {
                SearchOutcome::Matches(matches) => PdsSearchAnswer::Matches(
                    matches
                        .into_iter()
                        .map(|m| (m.record.into(), m.score))
                        .collect(),
                ),
                SearchOutcome::TooManyMatches => PdsSearchAnswer::TooManyMatches,
            })
        })
    }
}

impl From<PdsRecord> for PdsPatient {
    fn from(record: PdsRecord) -> PdsPatient {
        PdsPatient {
            demographics: record.demographics,
            restricted: record.restriction != Restriction::Unrestricted,
        }
    }
}

fn spine_code(outcome: &Value) -> &str {
    outcome
        .pointer("/issue/0/details/coding/0/code")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// Maps a PDS Patient to a [`PdsRecord`] (see the module docs for what is carried).
///
/// # Errors
/// A description of what is missing or malformed: no valid NHS number, or an invalid date.
pub fn map_patient(patient: &Value, source: &OdsCode) -> Result<PdsRecord, String> {
    if patient["resourceType"] != "Patient" {
        return Err("not a Patient".into());
    }
    let id = patient["id"].as_str().ok_or("the Patient has no id")?;
    let nhs_number =
        NhsNumber::parse(id).map_err(|_| "the Patient id is not a valid NHS number")?;
    let nhs_identifier = patient["identifier"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|i| i["system"] == NHS_NUMBER_SYSTEM);
    let verified = nhs_identifier
        .and_then(|i| i["extension"].as_array())
        .into_iter()
        .flatten()
        .filter(|e| e["url"] == VERIFICATION_EXT)
        .any(|e| e.pointer("/valueCodeableConcept/coding/0/code") == Some(&Value::from("01")));
    let names = patient["name"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let name = names
        .iter()
        .find(|n| n["use"] == "usual")
        .or_else(|| names.first());
    let family = name.and_then(|n| n["family"].as_str()).map(str::to_string);
    let given = name
        .and_then(|n| n["given"].as_array())
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect();
    let date = |field: &str| -> Result<Option<ClinicalDate>, String> {
        patient[field]
            .as_str()
            .map(|d| ClinicalDate::parse(d).map_err(|_| format!("{field} is not a date")))
            .transpose()
    };
    let postcode = patient["address"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|a| a["use"] == "home")
        .and_then(|a| a["postalCode"].as_str())
        .map(str::to_string);
    let registered_practice = patient
        .pointer("/generalPractitioner/0/identifier/value")
        .and_then(Value::as_str)
        .and_then(|ods| OdsCode::parse(ods).ok());
    let restriction = patient
        .pointer("/meta/security")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|l| l["system"] == CONFIDENTIALITY_SYSTEM)
        .and_then(|l| l["code"].as_str())
        .map_or(Restriction::Unrestricted, |code| match code {
            "R" => Restriction::Restricted,
            "V" => Restriction::VeryRestricted,
            _ => Restriction::Unrestricted,
        });
    let version = patient
        .pointer("/meta/versionId")
        .and_then(Value::as_str)
        .unwrap_or("1")
        .to_string();
    let demographics = Demographics {
        nhs_number: Some(nhs_number),
        source_patient_id: nhs_number.as_str().to_string(),
        family,
        given,
        birth_date: date("birthDate")?,
        gender: patient["gender"].as_str().map(str::to_string),
        postcode,
        registered_practice,
        deceased: date("deceasedDateTime")?,
    };
    let provenance = Provenance::new(source.clone(), SourceSystem::Pds)
        .with_retrieved(http::now())
        .with_source_version(version.clone());
    Ok(PdsRecord {
        demographics,
        restriction,
        version,
        verified,
        provenance,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn x26() -> OdsCode {
        OdsCode::parse(PDS_ODS).expect("valid")
    }

    #[test]
    fn a_restricted_patient_maps_without_location_and_never_gains_it() {
        let patient = json!({
            "resourceType": "Patient", "id": "9000000009",
            "meta": {"versionId": "3", "security": [{"system": CONFIDENTIALITY_SYSTEM, "code": "R"}]},
            "name": [{"use": "usual", "family": "Smith", "given": ["Jane", "Anne"]}],
            "gender": "female", "birthDate": "1950-03-02",
        });
        let record = map_patient(&patient, &x26()).expect("maps");
        assert_eq!(record.restriction, Restriction::Restricted);
        assert_eq!(record.version, "3");
        assert_eq!(record.demographics.family.as_deref(), Some("Smith"));
        assert_eq!(record.demographics.given, ["Jane", "Anne"]);
        assert_eq!(record.demographics.postcode, None);
        assert_eq!(record.demographics.registered_practice, None);
        assert!(!record.verified);
    }

    #[test]
    fn a_patient_without_a_valid_nhs_number_is_refused() {
        for id in [json!("123"), json!(null), json!("9000000008")] {
            let patient = json!({"resourceType": "Patient", "id": id});
            assert!(map_patient(&patient, &x26()).is_err(), "{id}");
        }
    }

    proptest! {
        #[test]
        fn mapping_any_json_never_panics(text in "\\PC{0,200}") {
            if let Ok(value) = serde_json::from_str::<Value>(&text) {
                let _ = map_patient(&value, &x26());
            }
        }
    }
}
