//! `keel`: the command that wires Keel together.

mod audit;
mod audit_key;
mod backup;
mod data_environment;
mod demo;
mod dev_issuer;
mod import;
mod match_cmd;
mod serve;
mod sim;
mod sim_linkage;
mod token;

use clap::{Parser, Subcommand};
use keel_core::clock::{IdSource, SystemClock};
use keel_core::fhir::FhirService;
use keel_core::store::ResourceStore;
use keel_store::{Durability, PostgresStore, SqliteStore};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Parser)]
#[command(
    name = "keel",
    version,
    about = "Keel: an open FHIR R4 backbone for primary care networks"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The one-command demonstration: a simulated PCN, Keel and the clinician web UI.
    Demo(demo::DemoArgs),
    /// Serve the FHIR R4 API.
    Serve(serve::ServeArgs),
    /// Load FHIR Bundles or NDJSON files (plain, .bz2 or .xz) into the store.
    Import(import::ImportArgs),
    /// The simulated PCN: generate a synthetic population.
    Sim(sim::SimArgs),
    /// The audit trail: `keel audit verify`.
    Audit(audit::AuditArgs),
    /// A development bearer token for a CIS2-style user (development data directories only).
    Token(token::TokenArgs),
    /// Link two CSV files of people, or deduplicate one, with the probabilistic matcher.
    Match(match_cmd::MatchArgs),
    /// Back up the embedded database while Keel keeps serving (PostgreSQL: `pg_dump`).
    Backup(backup::BackupArgs),
    /// Restore a `keel backup` into a new data directory.
    Restore(backup::RestoreArgs),
}

/// mimalloc: measurably faster than the system allocator for the many small, short-lived
/// allocations of JSON handling (see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let result = match cli.command {
        Command::Demo(args) => demo::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Import(args) => import::run(args),
        Command::Sim(args) => sim::run(args),
        Command::Audit(args) => audit::run(args),
        Command::Token(args) => token::run(args),
        Command::Match(args) => match_cmd::run(args),
        Command::Backup(args) => backup::backup(args),
        Command::Restore(args) => backup::restore(args),
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("keel: {message}");
            ExitCode::from(2)
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("KEEL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: a log file keeps plain `field=value` text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .init();
}

/// Random UUIDs as resource ids.
struct UuidIds;

impl IdSource for UuidIds {
    fn new_id(&self) -> String {
        uuid::Uuid::new_v4().to_string()
    }
}

/// Opens the store (PostgreSQL at `database`, else the embedded store in `data`) and the FHIR
/// service over it.
fn open_service(
    data: &Path,
    database: Option<&str>,
    durability: Durability,
) -> Result<Arc<FhirService>, String> {
    Ok(Arc::new(service_over(open_store(
        data, database, durability,
    )?)))
}

/// The store: PostgreSQL when a `postgres://` URL is given, else the embedded SQLite database
/// in `data`, with commits as durable as `durability` asks.
fn open_store(
    data: &Path,
    database: Option<&str>,
    durability: Durability,
) -> Result<Arc<dyn ResourceStore>, String> {
    match database {
        Some(url) => {
            // The node's own files (audit key, import lock) stay in `data`.
            std::fs::create_dir_all(data)
                .map_err(|e| format!("cannot create {}: {e}", data.display()))?;
            PostgresStore::open_with(url, durability)
                .map(|store| Arc::new(store) as Arc<dyn ResourceStore>)
                .map_err(|e| format!("cannot open the PostgreSQL database: {e}"))
        }
        None => SqliteStore::open_dir_with(data, durability)
            .map(|store| Arc::new(store) as Arc<dyn ResourceStore>)
            .map_err(|e| format!("cannot open the data directory {}: {e}", data.display())),
    }
}

/// The FHIR service over `store`, on the system clock.
fn service_over(store: Arc<dyn ResourceStore>) -> FhirService {
    FhirService::new(store, Arc::new(SystemClock::default()), Arc::new(UuidIds))
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("./keel-data")
}
