//! Keel's adapters: how Keel reaches GP systems and national services, each an HTTP client plus
//! a pure mapping into the canonical model ([`keel_model::record`]) behind the capability
//! contract ([`keel_core::integration`]).
//!
//! - [`circuit`]: a circuit breaker per practice connection (open after repeated failures,
//!   refuse at once for a cooldown, then one trial call).
//! - [`directory`]: the practice directory — versioned practice connections, the adapters built
//!   from them, their probes, and the federated record of a patient at their registered practice (found
//!   through PDS).
//! - [`emis`]: an EMIS-style supplier API (XML, GUIDs, IM1-style session) behind the
//!   capability contract: every record section mapped with its provenance, confidential
//!   items withheld, idempotent writes by client request id.
//! - [`guarded`]: the decorator every adapter call passes through — circuit breaker, read time
//!   budget, one retry of a read after an early transport failure, a trace event and metrics
//!   per call, with no patient identifier in either.
//! - [`http`]: one client setup for every adapter — per-endpoint timeouts, request ids, and the
//!   classification of transport failures into what is safe to do next (a read that failed
//!   may be asked again; a write whose answer was lost has an unknown outcome).
//! - [`gpconnect`]: GP Connect (FHIR STU3) for one practice — Access Record Structured mapped
//!   section by section into the canonical record, and Appointment Management with bookings
//!   checked after a lost answer.
//! - [`pds`]: the Personal Demographics Service FHIR R4 API — retrieve (following superseded
//!   numbers) and search, mapped to [`keel_model::record::Demographics`] with the patient's
//!   restriction (S-flag / V-flag).
//! - [`probing`]: what probing a practice's interfaces found (GP Connect's CapabilityStatement
//!   mapped to operations), kept with the practice so its capability profile is built from
//!   configuration plus probes; a failed probe keeps the previous result.
//! - [`telemetry`]: the Prometheus metrics of adapter calls (by practice, interface, operation
//!   and outcome) and circuit states.
//! - [`tpp`]: the TPP-style supplier API (IM1-style session, journal with CTV3 first) — every
//!   record section, patient lookup, and writes checked by `ExternalReference` after a lost
//!   answer, since the supplier has no client request id.
//!
//! # The same patient through different routes
//!
//! A patient's record read through their supplier's API and through GP Connect maps to the same
//! canonical content — the same items with the same codes as recorded (SNOMED CT, Read v2, CTV3,
//! dm+d), statuses, dates, values and units — except where the routes genuinely carry different
//! things (test: `tests/cross_route.rs`):
//!
//! | difference | GP Connect | EMIS-style / TPP-style API |
//! |---|---|---|
//! | LOINC beside SNOMED CT on observations | sent by the provider, kept | not carried |
//! | unit of a quantity | UCUM code (`mm[Hg]`) | the unit text as recorded (`mmHg`) |
//! | blood pressure component codes | as the provider sends them | added by Keel, marked translated |
//! | display texts, source attributes, item ids | the provider's | the supplier's |
//! | provenance source system | `gp-connect` | `emis-style` / `tpp-style` |
//! | documents | not offered (no Documents capability) | read |

pub mod circuit;
pub mod directory;
pub mod emis;
pub mod gpconnect;
pub mod guarded;
pub mod http;
pub mod pds;
pub mod probing;
pub mod telemetry;
pub mod tpp;
