//! `keel serve`: the FHIR API over HTTP, the practice directory with every adapter behind its
//! circuit breaker, `/metrics` and `/health/ready`. Once listening, every practice is probed in
//! the background (GP Connect's CapabilityStatement), so capability profiles are built from
//! configuration plus probes; until a practice's probe answers, configuration alone routes it.

use clap::Args;
use keel_api::AppState;
use keel_api::auth::{Authentication, KeySet, TokenVerifier};
use keel_api::job_worker::{JobWorker, WorkerConfig};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use keel_core::access::{AccessControl, Pcn};
use keel_core::audit::{AuditTrail, CheckpointSigner};
use keel_core::integration::PracticeConnection;
use keel_core::policy::Policy;
use keel_core::{CorrelationId, RequestContext};
use keel_integrations::circuit::CircuitPolicy;
use keel_integrations::directory::Directory;
use keel_integrations::http::Endpoint;
use keel_integrations::pds::PdsClient;
use keel_model::OdsCode;

use crate::data_environment::Environment;

/// Concurrent store calls (and so reader connections) at most.
pub(crate) const MAX_STORE_THREADS: usize = 16;

#[derive(Args)]
pub struct ServeArgs {
    /// Data directory of the embedded database.
    #[arg(long, env = "KEEL_DATA", default_value_os_t = crate::default_data_dir())]
    data: PathBuf,
    /// PostgreSQL database (`postgres://user@host:port/db`) instead of the embedded one in
    /// `--data`: several `keel serve` nodes may share it. `--data` still holds the node's
    /// files (the audit signing key: give every node the same one).
    #[arg(long, env = "KEEL_DATABASE")]
    database: Option<String>,
    /// Address to listen on.
    #[arg(long, env = "KEEL_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Public base URL of the FHIR API (default: derived from the Host header).
    #[arg(long, env = "KEEL_BASE_URL")]
    base_url: Option<String>,
    /// Worker threads for the HTTP server (default: one per core).
    #[arg(long, env = "KEEL_WORKERS")]
    workers: Option<usize>,
    /// Practice connections to register (a JSON array, as `keel sim serve --connections-out`
    /// writes): each one that differs from the directory's current version becomes a new
    /// version. The directory itself is kept in DATA/practice-connections.json.
    #[arg(long, env = "KEEL_CONNECTIONS")]
    connections: Option<PathBuf>,
    /// Base URL of the PDS FHIR R4 API: a patient's registered practice, and identity
    /// resolution (`POST /api/identity/trace`).
    #[arg(long, env = "KEEL_PDS_URL")]
    pds_url: Option<String>,
    /// Keel's ASID on the Spine (GP Connect `Ssp-From`).
    #[arg(long, env = "KEEL_ASID", default_value = "200000000001")]
    asid: String,
    /// The organisation Keel names in GP Connect requests when the user's is not known.
    #[arg(long, env = "KEEL_ODS", default_value = "U00000")]
    ods: String,
    /// Consecutive failures of a practice connection that open its circuit (calls then fail
    /// at once until the cooldown has passed).
    #[arg(long, env = "KEEL_CIRCUIT_FAILURES", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    circuit_failures: u32,
    /// Seconds an open circuit refuses calls before one trial call.
    #[arg(long, env = "KEEL_CIRCUIT_COOLDOWN_SECS", default_value_t = 30)]
    circuit_cooldown_secs: u64,
    /// A trusted token issuer and its JWKS, as `ISSUER=PATH` or `ISSUER=URL` (repeatable):
    /// tokens whose `iss` is ISSUER are checked with the RS256/ES256 keys of the JWKS file, or
    /// of the JWKS published at the http(s) URL (fetched at start, then kept current: see
    /// `--jwks-refresh-secs`), by `kid`.
    #[arg(
        long = "trust-issuer",
        env = "KEEL_TRUST_ISSUERS",
        value_delimiter = ','
    )]
    trust_issuers: Vec<String>,
    /// Also trust the data directory's development issuer (`keel token`); refused when
    /// DATA/environment says production.
    #[arg(long, env = "KEEL_DEV_ISSUER")]
    dev_issuer: bool,
    /// Seconds between fetches of a JWKS published at a URL; a token naming a key the issuer's
    /// keys lack has them fetched at once, at most once in this time.
    #[arg(long, env = "KEEL_JWKS_REFRESH_SECS", default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..))]
    jwks_refresh_secs: u64,
    /// The audience (`aud`) tokens must name.
    #[arg(long, env = "KEEL_AUDIENCE", default_value = crate::token::DEFAULT_AUDIENCE)]
    audience: String,
    /// Clock skew allowed on `exp` and `nbf`, in seconds.
    #[arg(long, env = "KEEL_CLOCK_SKEW_SECS", default_value_t = 60)]
    clock_skew_secs: u64,
    /// No authentication: every request is local development. Accepted only with a loopback
    /// `--listen` address.
    #[arg(long)]
    insecure_no_auth: bool,
    /// The PCN this node serves (JSON: code, name, practices, hub; `keel sim serve --pcn-out`
    /// writes one). Without it, users reach only patients registered at their own
    /// organisation or linked to it by an open task, referral or appointment.
    #[arg(long, env = "KEEL_PCN")]
    pcn: Option<PathBuf>,
    /// The access policy (JSON, see crates/keel-core/policy/default-policy.json); default: the
    /// policy Keel ships with.
    #[arg(long, env = "KEEL_POLICY")]
    policy: Option<PathBuf>,
    /// This node's name in background-job leases; nodes sharing a database need distinct
    /// names (default: derived from the process id and start time).
    #[arg(long, env = "KEEL_NODE")]
    node: Option<String>,
    /// Seconds a node holds a background job (a bulk export) without renewing its lease; a
    /// node that dies releases its jobs to the other nodes after this.
    #[arg(long, env = "KEEL_JOB_LEASE_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    job_lease_secs: u64,
}

pub fn run(args: ServeArgs) -> Result<ExitCode, String> {
    let authentication = authentication(&args)?;
    let store = crate::open_store(
        &args.data,
        args.database.as_deref(),
        keel_store::Durability::EveryCommit,
    )?;
    // Every request's audit record is appended to the store's hash chain before its response
    // leaves; there is no way to switch this off.
    let signer = CheckpointSigner::new(
        crate::audit_key::open_or_create(&args.data)?,
        crate::audit::CHECKPOINT_EVERY,
    );
    let trail = Arc::new(AuditTrail::start(store.clone(), signer));
    let fhir = Arc::new(
        crate::service_over(store)
            .with_access(access_control(&args)?)
            .with_audit(trail.clone()),
    );
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    // Store calls run on the blocking pool, one pooled database connection each: bounding the
    // pool bounds the connections and their page caches (memory).
    runtime.enable_all().max_blocking_threads(MAX_STORE_THREADS);
    if let Some(n) = args.workers {
        runtime.worker_threads(n.max(1));
    }
    let runtime = runtime
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
        let local = listener.local_addr().map_err(|e| e.to_string())?;
        let instance = format!("{:x}", std::process::id());
        let pds = pds_client(&args)?;
        let directory = open_directory(&args, pds, &instance)?;
        let mut state = AppState::new(
            fhir,
            args.base_url.clone(),
            instance.clone(),
            authentication,
        )
        .with_directory(directory.clone());
        if let Some(pds) = directory.pds() {
            state = state.with_pds(Arc::new(pds.clone()));
        }
        let state = Arc::new(state);
        // The exact line end-to-end tests and scripts wait for.
        println!("keel: listening on http://{local}/fhir");
        tokio::spawn(probe_every_practice(
            directory,
            start_context(&instance, "probe"),
        ));
        let indexing = state.fhir.clone();
        let ctx = start_context(&instance, "patient-index");
        tokio::task::spawn_blocking(move || {
            let started = std::time::Instant::now();
            match indexing.prepare_patient_index(&ctx) {
                Ok(patients) => tracing::info!(
                    patients,
                    seconds = started.elapsed().as_secs_f64(),
                    "patient index for $match ready"
                ),
                Err(e) => tracing::warn!(error = %e, "patient index for $match not built yet"),
            }
        });
        if let keel_api::auth::Authentication::Required(_) = &state.authentication {
            let refreshing = state.clone();
            let every = Duration::from_secs(args.jwks_refresh_secs);
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    if let keel_api::auth::Authentication::Required(verifier) =
                        &refreshing.authentication
                    {
                        verifier.refresh_published_keys().await;
                    }
                }
            });
        }
        let worker = JobWorker::spawn(state.fhir.clone(), worker_config(&args))
            .map_err(|e| format!("cannot start the background-job worker: {e}"))?;
        tracing::info!(%local, data = %args.data.display(), "keel serve started");
        axum::serve(listener, keel_api::router(state))
            .with_graceful_shutdown(shutdown_signal())
            .await
            .map_err(|e| format!("server error: {e}"))?;
        drop(worker);
        trail.shutdown();
        tracing::info!("keel serve stopped");
        Ok(ExitCode::SUCCESS)
    })
}

fn worker_config(args: &ServeArgs) -> WorkerConfig {
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    WorkerConfig {
        node: args
            .node
            .clone()
            .unwrap_or_else(|| format!("node-{:x}-{started:x}", std::process::id())),
        lease: Duration::from_secs(args.job_lease_secs),
        poll: Duration::from_millis(500),
    }
}

/// Where a trusted issuer's keys are.
enum JwksSource<'a> {
    File(&'a str),
    Url(&'a str),
}

/// `ISSUER=PATH` or `ISSUER=URL`; an issuer may itself hold `=`, so a URL is found by its scheme.
fn trusted_issuer(entry: &str) -> Result<(&str, JwksSource<'_>), String> {
    for scheme in ["=https://", "=http://"] {
        if let Some(at) = entry.find(scheme) {
            return Ok((&entry[..at], JwksSource::Url(&entry[at + 1..])));
        }
    }
    entry
        .rsplit_once('=')
        .filter(|(issuer, path)| !issuer.is_empty() && !path.is_empty())
        .map(|(issuer, path)| (issuer, JwksSource::File(path)))
        .ok_or_else(|| {
            format!("--trust-issuer '{entry}' is not ISSUER=JWKS_FILE or ISSUER=JWKS_URL")
        })
}

/// Fetches a JWKS before the server starts (a wrong URL stops `keel serve` at once).
fn fetch_jwks_now(url: &str) -> Result<KeySet, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a runtime to fetch the JWKS: {e}"))?
        .block_on(keel_api::auth::fetch_jwks(url))
}

/// The access policy and the tenant PCN.
fn access_control(args: &ServeArgs) -> Result<AccessControl, String> {
    let policy = match &args.policy {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("--policy {}: {e}", path.display()))?;
            Policy::from_json(&text).map_err(|e| format!("--policy {}: {e}", path.display()))?
        }
        None => Policy::default_policy().map_err(|e| format!("the shipped policy: {e}"))?,
    };
    let pcn = match &args.pcn {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("--pcn {}: {e}", path.display()))?;
            Some(
                serde_json::from_str::<Pcn>(&text)
                    .map_err(|e| format!("--pcn {}: {e}", path.display()))?,
            )
        }
        None => None,
    };
    tracing::info!(policy = %policy.version, pcn = pcn.as_ref().map(|p| p.code.as_str()), "access policy loaded");
    Ok(AccessControl::new(policy, pcn))
}

/// How requests are authenticated: bearer tokens from the trusted issuers, or nothing when
/// `--insecure-no-auth` is given on loopback.
fn authentication(args: &ServeArgs) -> Result<Authentication, String> {
    if args.insecure_no_auth {
        if !args.listen.ip().is_loopback() {
            return Err(format!(
                "--insecure-no-auth is refused on {}: only a loopback --listen address may run \
                 without authentication",
                args.listen
            ));
        }
        if args.dev_issuer || !args.trust_issuers.is_empty() {
            return Err("--insecure-no-auth cannot be combined with trusted issuers".into());
        }
        eprintln!(
            "keel: WARNING: --insecure-no-auth: requests are not authenticated; every caller \
             is local development (loopback only)"
        );
        return Ok(Authentication::Disabled);
    }
    let mut verifier = TokenVerifier::new(args.audience.clone(), args.clock_skew_secs);
    for entry in &args.trust_issuers {
        verifier = match trusted_issuer(entry)? {
            (issuer, JwksSource::File(path)) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("--trust-issuer {issuer}: cannot read {path}: {e}"))?;
                let keys = KeySet::from_jwks(&text)
                    .map_err(|e| format!("--trust-issuer {issuer}: {e}"))?;
                verifier.trust(issuer.to_string(), keys)
            }
            (issuer, JwksSource::Url(url)) => {
                let keys =
                    fetch_jwks_now(url).map_err(|e| format!("--trust-issuer {issuer}: {e}"))?;
                verifier.trust_published(
                    issuer.to_string(),
                    url.to_string(),
                    keys,
                    Duration::from_secs(args.jwks_refresh_secs),
                )
            }
        };
    }
    if args.dev_issuer {
        verifier = trust_dev_issuer(verifier, &args.data)?;
    } else if args.trust_issuers.is_empty() {
        return Err(
            "no token issuer is trusted: give --trust-issuer ISSUER=JWKS_FILE, \
             --dev-issuer (development), or --insecure-no-auth (loopback only)"
                .into(),
        );
    } else {
        crate::data_environment::claim(&args.data, Environment::Production)?;
    }
    Ok(Authentication::Required(verifier))
}

/// `verifier` also trusting the data directory's development issuer (`keel token`); refused
/// when the data directory says production.
pub(crate) fn trust_dev_issuer(
    verifier: TokenVerifier,
    data: &std::path::Path,
) -> Result<TokenVerifier, String> {
    crate::data_environment::require_development(data, "--dev-issuer")?;
    let dev = crate::dev_issuer::DevIssuer::open_or_create(data)?;
    let keys = KeySet::from_jwks(&dev.jwks).map_err(|e| format!("--dev-issuer: {e}"))?;
    tracing::warn!("trusting the development issuer: tokens from `keel token` are accepted");
    Ok(verifier.trust(crate::dev_issuer::ISSUER.to_string(), keys))
}

/// The PDS client of `--pds-url`, if given.
fn pds_client(args: &ServeArgs) -> Result<Option<PdsClient>, String> {
    args.pds_url
        .as_ref()
        .map(|url| {
            PdsClient::new(Endpoint::new(url, Duration::from_secs(5)))
                .map_err(|e| format!("--pds-url: {e}"))
        })
        .transpose()
}

/// The practice directory in the data directory, with `--connections` registered.
fn open_directory(
    args: &ServeArgs,
    pds: Option<PdsClient>,
    instance: &str,
) -> Result<Arc<Directory>, String> {
    use keel_integrations::gpconnect::request::Consumer;
    let consumer = Consumer {
        asid: args.asid.clone(),
        endpoint: args
            .base_url
            .clone()
            .unwrap_or_else(|| format!("http://{}/", args.listen)),
        organisation: OdsCode::parse(&args.ods).map_err(|e| format!("--ods: {e}"))?,
        product: "keel".into(),
        version: env!("CARGO_PKG_VERSION").into(),
    };
    let file = args.data.join("practice-connections.json");
    let policy = CircuitPolicy {
        failure_threshold: args.circuit_failures,
        cooldown: Duration::from_secs(args.circuit_cooldown_secs),
    };
    let directory =
        Directory::open_with(consumer, pds, Some(file), policy).map_err(|e| e.to_string())?;
    if let Some(path) = &args.connections {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("--connections {}: {e}", path.display()))?;
        let wanted: Vec<PracticeConnection> = serde_json::from_str(&text)
            .map_err(|e| format!("--connections {}: {e}", path.display()))?;
        register_connections(
            &directory,
            wanted,
            &start_context(instance, "start"),
            &format!("registered from {}", path.display()),
        )
        .map_err(|e| format!("--connections: {e}"))?;
    }
    Ok(Arc::new(directory))
}

/// Registers each of `wanted` that differs from the directory's current version of it as a
/// new version, for `why`.
pub(crate) fn register_connections(
    directory: &Directory,
    wanted: Vec<PracticeConnection>,
    ctx: &RequestContext,
    why: &str,
) -> Result<(), String> {
    for connection in wanted {
        let current = directory.history(&connection.ods).pop();
        if current.as_ref().is_some_and(|v| v.connection == connection) {
            continue;
        }
        let ods = connection.ods.clone();
        directory
            .register(
                ctx,
                connection,
                current.map(|v| v.version),
                Some(why.to_string()),
            )
            .map_err(|e| format!("{ods}: {e}"))?;
    }
    Ok(())
}

/// The context of what `keel serve` does by itself at start, as `{instance}-{what}`.
pub(crate) fn start_context(instance: &str, what: &str) -> RequestContext {
    RequestContext::local_development(
        CorrelationId::parse(&format!("{instance}-{what}"))
            .unwrap_or_else(|| CorrelationId::parse("keel-start").expect("a constant id is valid")),
    )
}

/// Probes every practice once and logs what could not be probed (practice, interface and
/// reason: nothing about a patient is involved).
pub(crate) async fn probe_every_practice(directory: Arc<Directory>, ctx: RequestContext) {
    let found = directory.probe_all(&ctx).await;
    for (ods, status) in &found {
        for failure in &status.failures {
            tracing::warn!(
                practice = ods.as_str(),
                interface = failure.interface.key(),
                reason = failure.reason.as_str(),
                "practice probe failed; its capability profile is from configuration"
            );
        }
    }
    let probed = found.values().filter(|s| !s.probes.is_empty()).count();
    tracing::info!(practices = found.len(), probed, "practices probed at start");
}

pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
