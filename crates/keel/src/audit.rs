//! `keel audit`: operator commands over the audit trail.

use clap::{Args, Subcommand};
use keel_core::audit::{self, AuditEntry};
use keel_core::store::{ResourceStore, StoreError};
use keel_store::{PostgresStore, SqliteStore};
use std::num::NonZeroU64;
use std::path::PathBuf;
use std::process::ExitCode;

/// A signed checkpoint every this many audit entries.
pub const CHECKPOINT_EVERY: NonZeroU64 = NonZeroU64::new(100).expect("non-zero");

/// Entries read per store call while verifying.
const READ_BATCH: usize = 10_000;

#[derive(Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    command: AuditCommand,
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check the audit log's hash chain and signed checkpoints. Exit code 0: intact;
    /// 1: tampered (the first tampering and where it is are printed); 2: could not check.
    Verify {
        /// Data directory of the embedded database.
        #[arg(long, env = "KEEL_DATA", default_value_os_t = crate::default_data_dir())]
        data: PathBuf,
        /// The PostgreSQL database the nodes share, instead of the embedded one in `--data`
        /// (which still holds the signing key).
        #[arg(long, env = "KEEL_DATABASE")]
        database: Option<String>,
    },
}

pub fn run(args: AuditArgs) -> Result<ExitCode, String> {
    match args.command {
        AuditCommand::Verify { data, database } => verify(&data, database.as_deref()),
    }
}

fn verify(data: &std::path::Path, database: Option<&str>) -> Result<ExitCode, String> {
    let store: Box<dyn ResourceStore> = match database {
        Some(url) => Box::new(
            PostgresStore::open(url)
                .map_err(|e| format!("cannot open the PostgreSQL database: {e}"))?,
        ),
        None if !data.join("keel.sqlite").is_file() => {
            return Err(format!("no Keel database in {}", data.display()));
        }
        None => Box::new(
            SqliteStore::open_dir(data)
                .map_err(|e| format!("cannot open the data directory {}: {e}", data.display()))?,
        ),
    };
    let key = crate::audit_key::public(data)?;
    let read = read_log(store.as_ref());
    let (entries, checkpoints) = match read {
        Ok(log) => log,
        Err(StoreError::Integrity(why)) => {
            println!("keel audit: TAMPERED: the log cannot be read as written: {why}");
            return Ok(ExitCode::from(1));
        }
        Err(e) => return Err(format!("cannot read the audit log: {e}")),
    };
    match audit::verify(&entries, &checkpoints, &key, CHECKPOINT_EVERY) {
        Ok(range) if range.last == 0 => {
            println!("keel audit: the audit log is empty");
            Ok(ExitCode::SUCCESS)
        }
        Ok(range) => {
            println!(
                "keel audit: verified entries 1 to {}; signed through {} ({} checkpoints)",
                range.last, range.signed_through, range.checkpoints
            );
            if range.signed_through < range.last {
                println!(
                    "keel audit: entries {} to {} are chained but not yet covered by a signed checkpoint",
                    range.signed_through + 1,
                    range.last
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(tampering) => {
            println!(
                "keel audit: TAMPERED at sequence {}: {tampering}",
                tampering.sequence()
            );
            Ok(ExitCode::from(1))
        }
    }
}

fn read_log(
    store: &dyn ResourceStore,
) -> Result<(Vec<AuditEntry>, Vec<audit::Checkpoint>), StoreError> {
    let mut reader = store.reader()?;
    let mut entries: Vec<AuditEntry> = Vec::new();
    loop {
        let from = entries.last().map_or(0, |e| e.sequence + 1);
        let batch = reader.audit_entries(from, READ_BATCH)?;
        let done = batch.len() < READ_BATCH;
        entries.extend(batch);
        if done {
            break;
        }
    }
    Ok((entries, reader.audit_checkpoints()?))
}
