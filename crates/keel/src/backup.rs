//! `keel backup` and `keel restore` for the embedded database. A backup is a directory: a
//! consistent copy of the database taken while Keel keeps serving (`VACUUM INTO` on one read
//! snapshot), beside copies of the data directory's other files (the audit signing key above
//! all: without it the restored audit log cannot be verified). PostgreSQL databases are backed
//! up with `pg_dump` / `pg_restore` (README).

use clap::Args;
use keel_core::store::ResourceStore;
use keel_store::{Durability, SqliteStore};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The database file and the files SQLite keeps beside it while it is open.
const DATABASE_FILE: &str = "keel.sqlite";
const NOT_COPIED: [&str; 4] = [
    "keel.sqlite",
    "keel.sqlite-wal",
    "keel.sqlite-shm",
    "import.lock",
];

#[derive(Args)]
pub struct BackupArgs {
    /// Data directory of the embedded database (it may be in use by `keel serve`).
    #[arg(long, env = "KEEL_DATA", default_value_os_t = crate::default_data_dir())]
    data: PathBuf,
    /// The backup directory to create (it must not exist yet).
    #[arg(long)]
    to: PathBuf,
}

#[derive(Args)]
pub struct RestoreArgs {
    /// A directory written by `keel backup`.
    #[arg(long)]
    from: PathBuf,
    /// The data directory to restore into (it must hold no database yet).
    #[arg(long, env = "KEEL_DATA", default_value_os_t = crate::default_data_dir())]
    data: PathBuf,
}

pub fn backup(args: BackupArgs) -> Result<ExitCode, String> {
    if !args.data.join(DATABASE_FILE).is_file() {
        return Err(format!("no Keel database in {}", args.data.display()));
    }
    if args.to.exists() {
        return Err(format!(
            "{} exists already: a backup goes into a new directory",
            args.to.display()
        ));
    }
    std::fs::create_dir_all(&args.to)
        .map_err(|e| format!("cannot create {}: {e}", args.to.display()))?;
    let store = SqliteStore::open_dir(&args.data).map_err(|e| {
        format!(
            "cannot open the data directory {}: {e}",
            args.data.display()
        )
    })?;
    store
        .backup_to(&args.to.join(DATABASE_FILE))
        .map_err(|e| format!("cannot back up the database: {e}"))?;
    let copied = copy_files(&args.data, &args.to)?;
    println!(
        "keel backup: the database and {copied} other file(s) of {} are in {}",
        args.data.display(),
        args.to.display()
    );
    Ok(ExitCode::SUCCESS)
}

pub fn restore(args: RestoreArgs) -> Result<ExitCode, String> {
    if !args.from.join(DATABASE_FILE).is_file() {
        return Err(format!("{} is not a Keel backup", args.from.display()));
    }
    if args.data.join(DATABASE_FILE).exists() {
        return Err(format!(
            "{} holds a database already: restore into a new data directory",
            args.data.display()
        ));
    }
    std::fs::create_dir_all(&args.data)
        .map_err(|e| format!("cannot create {}: {e}", args.data.display()))?;
    copy_files(&args.from, &args.data)?;
    std::fs::copy(args.from.join(DATABASE_FILE), args.data.join(DATABASE_FILE))
        .map_err(|e| format!("cannot copy the database: {e}"))?;
    // The restored database must open and answer before it is reported as restored.
    SqliteStore::open_dir_with(&args.data, Durability::EveryCommit)
        .and_then(|store| store.ping())
        .map_err(|e| format!("the restored database does not open: {e}"))?;
    println!(
        "keel restore: {} restored into {}",
        args.from.display(),
        args.data.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Copies the regular files of `from` but the database's own into `to`; returns how many.
fn copy_files(from: &Path, to: &Path) -> Result<usize, String> {
    let entries =
        std::fs::read_dir(from).map_err(|e| format!("cannot read {}: {e}", from.display()))?;
    let mut copied = 0;
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot read {}: {e}", from.display()))?;
        let name = entry.file_name();
        let is_file = entry.file_type().map(|t| t.is_file()).unwrap_or(false);
        if !is_file || NOT_COPIED.iter().any(|n| name == *n) {
            continue;
        }
        std::fs::copy(entry.path(), to.join(&name))
            .map_err(|e| format!("cannot copy {}: {e}", entry.path().display()))?;
        copied += 1;
    }
    Ok(copied)
}
