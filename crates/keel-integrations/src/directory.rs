//! The practice directory: the registry of practice connections, each change kept as a new
//! version with who made it, when and why; the adapters built from the current versions; and
//! the federated record of a patient at their registered practice.
//!
//! The registered practice comes from PDS (the national truth) when PDS is configured and says;
//! otherwise from the caller's hint (e.g. the practice on Keel's own Patient resource). An
//! S-flag patient's practice is never taken from PDS (PDS withholds it) — then the hint is used.
//!
//! Versions are saved, all of them, to one JSON file written atomically (write, then rename).
//!
//! Every adapter is wrapped in a [`GuardedSystem`] with its own circuit breaker, so each call
//! is bounded, traced and counted the same way; [`Directory::connection_health`] reports the
//! circuits. Registering a new version of a practice builds new adapters with closed circuits.
//!
//! # Probing
//!
//! [`Directory::probe`] asks every adapter of a practice what its interface offers
//! ([`PracticeSystem::probe`]: GP Connect's CapabilityStatement; the supplier APIs cannot be
//! asked) and keeps the answers with the practice ([`ProbeStatus`]), so
//! [`Practice::system_for`] routes by configuration plus probes from then on. A failed probe
//! keeps the previous result and is reported beside it; it never fails anything else. A new
//! version of a connection starts unprobed (its adapters are new); answers that arrive after a
//! new version replaced the adapters probed are dropped. [`Directory::probe_all`] probes every
//! practice at once.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures_util::future::join_all;
use keel_core::integration::{
    FederatedRecord, IntegrationError, Interface, Practice, PracticeConnection, PracticeSystem,
    federated_record,
};
use keel_core::{Actor, RequestContext};
use keel_model::record::RecordSection;
use keel_model::{Instant, NhsNumber, OdsCode};
use serde::{Deserialize, Serialize};

use crate::circuit::{CircuitBreaker, CircuitPolicy, CircuitState};
use crate::emis::{EmisCredentials, EmisSystem};
use crate::gpconnect::request::Consumer;
use crate::gpconnect::{GpConnectSystem, provider_asid};
use crate::guarded::GuardedSystem;
use crate::http::{self, Endpoint};
use crate::pds::{PdsClient, Restriction, Retrieval};
use crate::probing::ProbeStatus;
use crate::telemetry::IntegrationMetrics;
use crate::tpp::{TppCredentials, TppSystem};

/// Local configuration keys the supplier adapters need.
pub const EMIS_APPLICATION_ID: &str = "emis-style.application-id";
pub const EMIS_USER_ID: &str = "emis-style.user-id";
pub const TPP_APPLICATION_ID: &str = "tpp-style.application-id";
pub const TPP_SESSION_TOKEN: &str = "tpp-style.session-token";

/// One version of a practice's connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectionVersion {
    pub version: u64,
    pub connection: PracticeConnection,
    pub changed_at: Instant,
    /// Who made the change (user id and role, system client, or local development).
    pub changed_by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Why a directory operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirectoryError {
    #[error("the connection is not valid: {0}")]
    Invalid(String),
    #[error(
        "version {expected} of {ods} is not the current one ({current}); read it again and retry"
    )]
    VersionConflict {
        ods: OdsCode,
        expected: u64,
        current: u64,
    },
    #[error("{0} is not in Keel's practice directory")]
    UnknownPractice(OdsCode),
    #[error("the practice connections could not be saved: {0}")]
    Storage(String),
}

/// Why a federated record could not be assembled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("the patient's registered practice is not known: {0}")]
    RegisteredPracticeUnknown(String),
    #[error("the patient is registered at {0}, which is not in Keel's practice directory")]
    PracticeNotConnected(OdsCode),
    #[error(transparent)]
    Integration(#[from] IntegrationError),
}

/// A practice with its adapters, their circuits, and what probing them found (its probes are
/// also the practice's).
struct Connected {
    practice: Arc<Practice>,
    circuits: Vec<(Interface, Arc<CircuitBreaker>)>,
    probing: ProbeStatus,
}

#[derive(Default)]
struct Registry {
    versions: BTreeMap<OdsCode, Vec<ConnectionVersion>>,
    practices: HashMap<OdsCode, Connected>,
}

/// One practice connection's health, for readiness.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConnectionHealth {
    pub practice: OdsCode,
    pub interface: Interface,
    pub circuit: CircuitState,
}

/// The practice directory (see the module docs).
pub struct Directory {
    consumer: Consumer,
    pds: Option<PdsClient>,
    file: Option<PathBuf>,
    circuit_policy: CircuitPolicy,
    metrics: IntegrationMetrics,
    registry: RwLock<Registry>,
}

impl std::fmt::Debug for Directory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Directory")
            .field("file", &self.file)
            .field("pds", &self.pds.is_some())
            .finish()
    }
}

impl Directory {
    /// A directory reaching GP Connect as `consumer` and PDS through `pds`, keeping its
    /// versions in `file` (loaded now if it exists), with the default circuit policy.
    ///
    /// # Errors
    /// If the file exists and cannot be read, or holds a connection that cannot be built.
    pub fn open(
        consumer: Consumer,
        pds: Option<PdsClient>,
        file: Option<PathBuf>,
    ) -> Result<Directory, DirectoryError> {
        Directory::open_with(consumer, pds, file, CircuitPolicy::default())
    }

    /// As [`Directory::open`], with every connection's circuit breaker following `policy`.
    ///
    /// # Errors
    /// As [`Directory::open`].
    pub fn open_with(
        consumer: Consumer,
        pds: Option<PdsClient>,
        file: Option<PathBuf>,
        circuit_policy: CircuitPolicy,
    ) -> Result<Directory, DirectoryError> {
        let mut registry = Registry::default();
        if let Some(path) = file.as_deref().filter(|p| p.exists()) {
            let text = std::fs::read_to_string(path)
                .map_err(|e| DirectoryError::Storage(format!("{}: {e}", path.display())))?;
            let versions: Vec<ConnectionVersion> = serde_json::from_str(&text)
                .map_err(|e| DirectoryError::Storage(format!("{}: {e}", path.display())))?;
            for v in versions {
                registry
                    .versions
                    .entry(v.connection.ods.clone())
                    .or_default()
                    .push(v);
            }
            for history in registry.versions.values_mut() {
                history.sort_by_key(|v| v.version);
            }
        }
        let metrics = IntegrationMetrics::new();
        let directory = Directory {
            consumer,
            pds: pds.map(|p| p.guarded_by(circuit_policy, metrics.clone())),
            file,
            circuit_policy,
            metrics,
            registry: RwLock::new(Registry::default()),
        };
        let mut practices = HashMap::new();
        for (ods, history) in &registry.versions {
            if let Some(current) = history.last() {
                practices.insert(ods.clone(), directory.build(&current.connection)?);
            }
        }
        registry.practices = practices;
        *directory.write() = registry;
        Ok(directory)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Registry> {
        self.registry.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Registry> {
        self.registry.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a new version of `connection`. `expected_version` is the version the change
    /// was made from (`None` for a practice not yet in the directory).
    ///
    /// # Errors
    /// [`DirectoryError::Invalid`] when the connection cannot work (nothing changes);
    /// [`DirectoryError::VersionConflict`] when someone else changed it first;
    /// [`DirectoryError::Storage`] when it cannot be saved (nothing changes).
    pub fn register(
        &self,
        ctx: &RequestContext,
        connection: PracticeConnection,
        expected_version: Option<u64>,
        reason: Option<String>,
    ) -> Result<ConnectionVersion, DirectoryError> {
        connection
            .validate()
            .map_err(|e| DirectoryError::Invalid(e.to_string()))?;
        let practice = self.build(&connection)?;
        let mut registry = self.write();
        let current = registry
            .versions
            .get(&connection.ods)
            .and_then(|h| h.last())
            .map_or(0, |v| v.version);
        if expected_version.unwrap_or(0) != current {
            return Err(DirectoryError::VersionConflict {
                ods: connection.ods.clone(),
                expected: expected_version.unwrap_or(0),
                current,
            });
        }
        let version = ConnectionVersion {
            version: current + 1,
            connection: connection.clone(),
            changed_at: http::now(),
            changed_by: describe(&ctx.actor),
            reason,
        };
        let mut all: Vec<ConnectionVersion> =
            registry.versions.values().flatten().cloned().collect();
        all.push(version.clone());
        self.save(&all)?;
        registry
            .versions
            .entry(connection.ods.clone())
            .or_default()
            .push(version.clone());
        registry.practices.insert(connection.ods, practice);
        Ok(version)
    }

    fn save(&self, all: &[ConnectionVersion]) -> Result<(), DirectoryError> {
        let Some(path) = &self.file else {
            return Ok(());
        };
        let text = serde_json::to_string_pretty(all)
            .map_err(|e| DirectoryError::Storage(e.to_string()))?;
        write_atomically(path, text.as_bytes())
            .map_err(|e| DirectoryError::Storage(format!("{}: {e}", path.display())))
    }

    /// The current version of every practice, by ODS code.
    pub fn current(&self) -> Vec<ConnectionVersion> {
        self.read()
            .versions
            .values()
            .filter_map(|h| h.last().cloned())
            .collect()
    }

    /// Every version of `ods`, oldest first.
    pub fn history(&self, ods: &OdsCode) -> Vec<ConnectionVersion> {
        self.read().versions.get(ods).cloned().unwrap_or_default()
    }

    /// The practice with its adapters, as currently connected.
    pub fn practice(&self, ods: &OdsCode) -> Option<Arc<Practice>> {
        self.read().practices.get(ods).map(|c| c.practice.clone())
    }

    /// The circuit state of every enabled interface of every practice, by practice.
    pub fn connection_health(&self) -> Vec<ConnectionHealth> {
        let now = std::time::Instant::now();
        let registry = self.read();
        let mut health: Vec<ConnectionHealth> = registry
            .practices
            .iter()
            .flat_map(|(ods, connected)| {
                connected
                    .circuits
                    .iter()
                    .map(move |(interface, circuit)| ConnectionHealth {
                        practice: ods.clone(),
                        interface: *interface,
                        circuit: circuit.state(now),
                    })
            })
            .collect();
        health.sort_by(|a, b| (&a.practice, a.interface).cmp(&(&b.practice, b.interface)));
        health
    }

    /// The PDS client the directory asks for patients' registered practices, behind the
    /// directory's circuit policy and counted in its metrics: the one to use for other PDS
    /// calls too.
    pub fn pds(&self) -> Option<&PdsClient> {
        self.pds.as_ref()
    }

    /// The metrics of every adapter call made through this directory.
    pub fn metrics(&self) -> &IntegrationMetrics {
        &self.metrics
    }

    /// The adapters for `connection`'s enabled interfaces, each guarded (see the module docs).
    fn build(&self, connection: &PracticeConnection) -> Result<Connected, DirectoryError> {
        let setting = |key: &str, interface: Interface| {
            connection
                .local_configuration
                .get(key)
                .cloned()
                .ok_or_else(|| {
                    DirectoryError::Invalid(format!(
                        "{} needs '{key}' in the local configuration",
                        interface.key()
                    ))
                })
        };
        let client_failed =
            |e: reqwest::Error| DirectoryError::Invalid(format!("HTTP client: {e}"));
        let mut systems: Vec<Arc<dyn PracticeSystem>> = Vec::new();
        let mut circuits = Vec::new();
        for c in connection.interfaces.iter().filter(|c| c.enabled) {
            let timeout = Duration::from_millis(c.timeout_ms);
            let endpoint = Endpoint::new(&c.base_url, timeout);
            let ods = connection.ods.clone();
            let adapter: Arc<dyn PracticeSystem> = match c.interface {
                Interface::EmisStyle => {
                    let credentials = EmisCredentials {
                        application_id: setting(EMIS_APPLICATION_ID, c.interface)?,
                        user_id: setting(EMIS_USER_ID, c.interface)?,
                    };
                    Arc::new(EmisSystem::new(ods, endpoint, credentials).map_err(client_failed)?)
                }
                Interface::TppStyle => {
                    let credentials = TppCredentials {
                        application_id: setting(TPP_APPLICATION_ID, c.interface)?,
                        session_token: setting(TPP_SESSION_TOKEN, c.interface)?,
                    };
                    Arc::new(TppSystem::new(ods, endpoint, credentials).map_err(client_failed)?)
                }
                Interface::GpConnect => {
                    let asid = provider_asid(connection)
                        .map(str::to_string)
                        .ok_or_else(|| {
                            DirectoryError::Invalid(format!(
                                "gp-connect needs '{}' in the local configuration",
                                crate::gpconnect::PROVIDER_ASID_KEY
                            ))
                        })?;
                    Arc::new(
                        GpConnectSystem::new(ods, endpoint, self.consumer.clone(), asid)
                            .map_err(client_failed)?,
                    )
                }
                Interface::Pds => {
                    return Err(DirectoryError::Invalid(
                        "PDS is a national service, not a practice interface".into(),
                    ));
                }
            };
            let circuit = Arc::new(CircuitBreaker::new(self.circuit_policy));
            circuits.push((c.interface, circuit.clone()));
            systems.push(Arc::new(GuardedSystem::new(
                adapter,
                timeout,
                circuit,
                self.metrics.clone(),
            )));
        }
        Ok(Connected {
            practice: Arc::new(Practice {
                connection: connection.clone(),
                systems,
                probes: Vec::new(),
            }),
            circuits,
            probing: ProbeStatus::default(),
        })
    }

    /// Probes every adapter of `ods` concurrently and keeps the answers with the practice (see
    /// the module docs); returns what probing has found, failures included.
    ///
    /// # Errors
    /// [`DirectoryError::UnknownPractice`] when `ods` is not in the directory.
    pub async fn probe(
        &self,
        ctx: &RequestContext,
        ods: &OdsCode,
    ) -> Result<ProbeStatus, DirectoryError> {
        let unknown = || DirectoryError::UnknownPractice(ods.clone());
        let probed = self.practice(ods).ok_or_else(unknown)?;
        let answers = join_all(
            probed
                .systems
                .iter()
                .map(|system| async move { (system.interface(), system.probe(ctx).await) }),
        )
        .await;
        let at = http::now();
        let mut registry = self.write();
        let connected = registry.practices.get_mut(ods).ok_or_else(unknown)?;
        let same_adapters = connected.practice.systems.len() == probed.systems.len()
            && connected
                .practice
                .systems
                .iter()
                .zip(&probed.systems)
                .all(|(a, b)| Arc::ptr_eq(a, b));
        if !same_adapters {
            return Ok(connected.probing.clone());
        }
        let probing = connected.probing.after(answers, &at);
        connected.practice = Arc::new(Practice {
            connection: probed.connection.clone(),
            systems: probed.systems.clone(),
            probes: probing.probes.clone(),
        });
        connected.probing = probing.clone();
        Ok(probing)
    }

    /// Probes every practice concurrently (each bounded by its connections' timeouts); what
    /// probing has found, by practice.
    pub async fn probe_all(&self, ctx: &RequestContext) -> BTreeMap<OdsCode, ProbeStatus> {
        let all: Vec<OdsCode> = self.read().practices.keys().cloned().collect();
        let probed = join_all(all.into_iter().map(|ods| async move {
            let status = self.probe(ctx, &ods).await;
            status.ok().map(|status| (ods, status))
        }))
        .await;
        probed.into_iter().flatten().collect()
    }

    /// What probing `ods` has found (empty when never probed).
    pub fn probe_status(&self, ods: &OdsCode) -> Option<ProbeStatus> {
        self.read().practices.get(ods).map(|c| c.probing.clone())
    }

    /// The record of `nhs_number` from their registered practice (see the module docs for how
    /// the practice is found; `practice_hint` is used when PDS cannot say).
    ///
    /// # Errors
    /// [`RecordError`]: the practice is unknown or not connected, or the patient has no record
    /// there. An unreachable practice is not an error: its sections are unavailable.
    pub async fn record(
        &self,
        ctx: &RequestContext,
        nhs_number: NhsNumber,
        practice_hint: Option<OdsCode>,
        sections: &[RecordSection],
    ) -> Result<FederatedRecord, RecordError> {
        let ods = self
            .registered_practice(ctx, nhs_number, practice_hint)
            .await?;
        let practice = self
            .practice(&ods)
            .ok_or(RecordError::PracticeNotConnected(ods))?;
        Ok(federated_record(ctx, &practice, nhs_number, sections).await?)
    }

    /// The record of `nhs_number` from `practice`, already known to be their registered
    /// practice ([`Directory::registered_practice`]).
    ///
    /// # Errors
    /// As [`Directory::record`].
    pub async fn record_at(
        &self,
        ctx: &RequestContext,
        practice: &OdsCode,
        nhs_number: NhsNumber,
        sections: &[RecordSection],
    ) -> Result<FederatedRecord, RecordError> {
        let connected = self
            .practice(practice)
            .ok_or_else(|| RecordError::PracticeNotConnected(practice.clone()))?;
        Ok(federated_record(ctx, &connected, nhs_number, sections).await?)
    }

    /// The registered practice of `nhs_number`: from PDS when it is configured and says,
    /// else `hint` (see the module docs).
    ///
    /// # Errors
    /// [`RecordError::RegisteredPracticeUnknown`] when neither says.
    pub async fn registered_practice(
        &self,
        ctx: &RequestContext,
        nhs_number: NhsNumber,
        hint: Option<OdsCode>,
    ) -> Result<OdsCode, RecordError> {
        let Some(pds) = &self.pds else {
            return hint.ok_or_else(|| {
                RecordError::RegisteredPracticeUnknown(
                    "PDS is not configured and no practice was given".into(),
                )
            });
        };
        let traced = match pds.retrieve(ctx, nhs_number).await {
            Ok(Retrieval::Found(record) | Retrieval::Superseded { record }) => Ok(record),
            Ok(Retrieval::NotFound) => Err("PDS holds no patient with this NHS number".into()),
            Ok(Retrieval::Invalidated) => Err("PDS has invalidated this NHS number".into()),
            Err(e) => Err(format!("PDS could not be asked ({e})")),
        };
        match traced {
            Ok(record) => match (record.demographics.registered_practice, record.restriction) {
                (Some(ods), Restriction::Unrestricted) => Ok(ods),
                _ => hint.ok_or_else(|| {
                    RecordError::RegisteredPracticeUnknown(
                        "PDS does not give the registered practice for this patient".into(),
                    )
                }),
            },
            Err(reason) => hint.ok_or(RecordError::RegisteredPracticeUnknown(reason)),
        }
    }
}

/// Who made a change, for the version history.
fn describe(actor: &Actor) -> String {
    match actor {
        Actor::User {
            user_id, role_code, ..
        } => format!("user {user_id} ({role_code})"),
        Actor::System { client_id, .. } => format!("system {client_id}"),
        Actor::LocalDevelopment => "local development".into(),
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, path)
}
