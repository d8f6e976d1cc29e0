//! `keel import`: loads Bundles and NDJSON files through the same core service the API uses.
//!
//! A reader thread decompresses and parses the next units of work while the main thread
//! stores the current one. Each unit (a Bundle, or a chunk of NDJSON lines) commits in one
//! transaction together with its checkpoint, so after a crash a re-run skips exactly what was
//! committed.

use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use keel_core::fhir::{FhirService, PreparedBundle};
use keel_core::{CorrelationId, FhirError, FhirResult, RequestContext};
use serde_json::{Value, json};
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, sync_channel};
use std::time::Instant;

#[derive(Args)]
pub struct ImportArgs {
    /// Files or directories of Bundles (.json) and NDJSON (.ndjson), optionally .bz2 or .xz.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Data directory of the embedded database.
    #[arg(long, env = "KEEL_DATA", default_value_os_t = crate::default_data_dir())]
    data: PathBuf,
    /// PostgreSQL database (`postgres://user@host:port/db`) to import into instead of the
    /// embedded one in `--data` (which still holds the import lock).
    #[arg(long, env = "KEEL_DATABASE")]
    database: Option<String>,
    /// NDJSON lines per transaction.
    #[arg(long, default_value_t = 1000)]
    chunk: usize,
}

impl ImportArgs {
    /// An import of `paths` into `data` with the default chunk size.
    pub(crate) fn of(paths: Vec<PathBuf>, data: PathBuf) -> ImportArgs {
        ImportArgs {
            paths,
            data,
            database: None,
            chunk: 1000,
        }
    }
}

/// Units the reader may have parsed ahead of the writer.
const READ_AHEAD: usize = 8;

/// A failure to report: where, and what.
struct Failure {
    file: PathBuf,
    location: String,
    message: String,
}

/// One transaction's worth of work, parsed and ready to store.
struct Unit {
    file: PathBuf,
    /// The Bundle checked and indexed by the reader thread, or why it could not be.
    bundle: FhirResult<PreparedBundle>,
    /// Checkpoint key and the value to record when the unit commits.
    checkpoint: (String, String),
    /// NDJSON line number of each entry (empty for a JSON file: locations are entry indexes).
    lines: Vec<usize>,
    /// The file is finished after this unit.
    last_of_file: bool,
}

/// What the reader thread sends.
enum Message {
    Unit(Unit),
    /// A line that could not be parsed; the rest of the file goes on.
    LineFailure(Failure),
    /// The file could not be read at all.
    FileFailure(Failure),
    /// A file already imported by an earlier run.
    Skipped,
    /// JSON that is not FHIR (no `resourceType`), such as a manifest beside the data: skipped
    /// and named in the summary.
    NotFhir(PathBuf),
}

pub fn run(args: ImportArgs) -> Result<ExitCode, String> {
    // Every unit commits with its checkpoint, so after any crash a re-run redoes exactly what
    // was lost: commits need not be synced one by one.
    let fhir = crate::open_service(
        &args.data,
        args.database.as_deref(),
        keel_store::Durability::Resumable,
    )?;
    // One import per data directory at a time: two would both store what neither has
    // checkpointed yet. The lock is released when the process ends, however it ends.
    let lock_path = args.data.join("import.lock");
    let lock = File::create(&lock_path)
        .map_err(|e| format!("cannot create {}: {e}", lock_path.display()))?;
    lock.try_lock()
        .map_err(|_| format!("another keel import is running on {}", args.data.display()))?;
    let files = collect_files(&args.paths)?;
    let progress =
        ProgressBar::with_draw_target(Some(files.len() as u64), ProgressDrawTarget::stderr());
    progress.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} files  {msg}",
        )
        .map_err(|e| e.to_string())?,
    );
    let started = Instant::now();
    let ctx = RequestContext::local_development(
        CorrelationId::parse("import").ok_or("bad correlation id")?,
    );
    let chunk = args.chunk.max(1);
    let (sender, receiver) = sync_channel::<Message>(READ_AHEAD);
    let reader_fhir = fhir.clone();
    let reader_files = files.clone();
    let reader = std::thread::Builder::new()
        .name("keel-reader".into())
        .spawn(move || read_all(&reader_fhir, &reader_files, chunk, &sender))
        .map_err(|e| format!("cannot start the reader thread: {e}"))?;
    let Tally {
        resources,
        failures,
        not_fhir,
    } = store_all(&fhir, &ctx, &receiver, &progress, started);
    progress.finish_and_clear();
    reader
        .join()
        .map_err(|_| "the reader thread panicked".to_string())?;
    // Closing the store folds what the import wrote into the database file: part of its time.
    drop(fhir);
    let elapsed = started.elapsed();
    for f in &failures {
        eprintln!(
            "keel import: {}: {}: {}",
            f.file.display(),
            f.location,
            f.message
        );
    }
    for file in &not_fhir {
        eprintln!(
            "keel import: {}: skipped: JSON without a resourceType is not FHIR",
            file.display()
        );
    }
    println!(
        "imported {resources} resources from {} files in {:.1} s ({:.0} resources/s); {} failure(s)",
        files.len(),
        elapsed.as_secs_f64(),
        resources as f64 / elapsed.as_secs_f64().max(1e-9),
        failures.len()
    );
    if let Some(url) = &args.database {
        // The planner's statistics follow a bulk load only when asked: stale ones can turn a
        // chained search into a nested loop over every row.
        keel_store::PostgresStore::open(url)
            .and_then(|store| store.analyze())
            .map_err(|e| format!("cannot update the PostgreSQL statistics: {e}"))?;
    }
    Ok(if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn rate(count: u64, started: Instant) -> f64 {
    count as f64 / started.elapsed().as_secs_f64().max(1e-9)
}

/// Units stored in one store transaction (each on its own savepoint), by entry count. Each
/// commit writes every index page it touched to the log, so larger groups write less (20,000
/// against 4,000 took the Blaze import's system time from 4.8 s to 2.9 s).
const GROUP_ENTRIES: usize = 20_000;

/// The main thread: stores the units, grouping whatever the reader has ready into one store
/// transaction (fewer commits), each unit still all or nothing with its own checkpoint.
fn store_all(
    fhir: &FhirService,
    ctx: &RequestContext,
    receiver: &Receiver<Message>,
    progress: &ProgressBar,
    started: Instant,
) -> Tally {
    let mut tally = Tally {
        resources: 0,
        failures: Vec::new(),
        not_fhir: Vec::new(),
    };
    let mut group: Vec<Unit> = Vec::new();
    let mut group_entries = 0;
    loop {
        let message = if group.is_empty() {
            match receiver.recv() {
                Ok(m) => m,
                Err(_) => break,
            }
        } else {
            match receiver.try_recv() {
                Ok(m) => m,
                Err(TryRecvError::Empty) => {
                    tally.store_group(fhir, ctx, std::mem::take(&mut group), progress);
                    group_entries = 0;
                    progress.set_message(format!(
                        "{} resources, {:.0} resources/s",
                        tally.resources,
                        rate(tally.resources, started)
                    ));
                    continue;
                }
                Err(TryRecvError::Disconnected) => break,
            }
        };
        match message {
            Message::Skipped => progress.inc(1),
            Message::NotFhir(file) => {
                tally.not_fhir.push(file);
                progress.inc(1);
            }
            Message::FileFailure(f) => {
                tally.failures.push(f);
                progress.inc(1);
            }
            Message::LineFailure(f) => tally.failures.push(f),
            Message::Unit(unit) => {
                group_entries += entry_count(&unit.bundle);
                group.push(unit);
                if group_entries >= GROUP_ENTRIES {
                    tally.store_group(fhir, ctx, std::mem::take(&mut group), progress);
                    group_entries = 0;
                }
            }
        }
    }
    tally.store_group(fhir, ctx, group, progress);
    tally
}

fn entry_count(bundle: &FhirResult<PreparedBundle>) -> usize {
    bundle.as_ref().map_or(0, PreparedBundle::len)
}

struct Tally {
    resources: u64,
    failures: Vec<Failure>,
    not_fhir: Vec<PathBuf>,
}

impl Tally {
    fn store_group(
        &mut self,
        fhir: &FhirService,
        ctx: &RequestContext,
        group: Vec<Unit>,
        progress: &ProgressBar,
    ) {
        if group.is_empty() {
            return;
        }
        let mut described = Vec::with_capacity(group.len());
        let mut bundles = Vec::with_capacity(group.len());
        for unit in group {
            let entries = entry_count(&unit.bundle) as u64;
            match unit.bundle {
                Ok(bundle) => {
                    described.push((unit.file, unit.lines, entries, unit.last_of_file));
                    bundles.push((bundle, unit.checkpoint));
                }
                Err(error) => {
                    self.record(&unit.file, &unit.lines, error);
                    if unit.last_of_file {
                        progress.inc(1);
                    }
                }
            }
        }
        if bundles.is_empty() {
            return;
        }
        let results = match fhir.process_bundles_with_checkpoints(ctx, bundles) {
            Ok(results) => results,
            Err(e) => {
                // The whole group failed to commit: report every unit of it.
                for (file, _, _, last) in described {
                    self.failures.push(Failure {
                        file,
                        location: "file".into(),
                        message: e.to_string(),
                    });
                    if last {
                        progress.inc(1);
                    }
                }
                return;
            }
        };
        for ((file, lines, entries, last), result) in described.into_iter().zip(results) {
            match result {
                Ok(response) => {
                    self.resources += entries;
                    for entry in response.entries {
                        if let Err(e) = entry {
                            self.resources -= 1;
                            self.record(&file, &lines, e);
                        }
                    }
                }
                Err(e) => self.record(&file, &lines, e),
            }
            if last {
                progress.inc(1);
            }
        }
    }

    /// Records a failure at the entry (or NDJSON line) it names, else at the file.
    fn record(&mut self, file: &Path, lines: &[usize], error: FhirError) {
        let (location, message) = match error {
            FhirError::InEntry { index, source } => (
                match lines.get(index) {
                    Some(line) => format!("line {line}"),
                    None => format!("entry {index}"),
                },
                source.to_string(),
            ),
            other => ("file".to_string(), other.to_string()),
        };
        self.failures.push(Failure {
            file: file.to_path_buf(),
            location,
            message,
        });
    }
}

/// The reader thread: turns files into units. Stops early if the main thread has gone.
fn read_all(fhir: &FhirService, files: &[PathBuf], chunk: usize, sender: &SyncSender<Message>) {
    for file in files {
        let result = read_file(fhir, file, chunk, sender);
        let message = match result {
            Ok(()) => continue,
            Err(ReadError::Receiver) => return,
            Err(ReadError::File(message)) => Message::FileFailure(Failure {
                file: file.clone(),
                location: "file".into(),
                message,
            }),
        };
        if sender.send(message).is_err() {
            return;
        }
    }
}

enum ReadError {
    /// The main thread stopped listening.
    Receiver,
    File(String),
}

fn read_file(
    fhir: &FhirService,
    path: &Path,
    chunk: usize,
    sender: &SyncSender<Message>,
) -> Result<(), ReadError> {
    let send = |m: Message| sender.send(m).map_err(|_| ReadError::Receiver);
    let size = std::fs::metadata(path)
        .map_err(|e| ReadError::File(e.to_string()))?
        .len();
    let key = format!(
        "import:{}:{size}",
        path.canonicalize().unwrap_or(path.to_path_buf()).display()
    );
    let done = fhir
        .checkpoint(&key)
        .map_err(|e| ReadError::File(e.to_string()))?;
    if is_ndjson(path) {
        let skip: usize = done.as_deref().and_then(|d| d.parse().ok()).unwrap_or(0);
        return read_ndjson(fhir, path, &key, skip, chunk, &send);
    }
    if done.is_some() {
        return send(Message::Skipped); // committed by an earlier run
    }
    let mut text = String::new();
    open(path)
        .map_err(ReadError::File)?
        .read_to_string(&mut text)
        .map_err(|e| ReadError::File(format!("cannot read: {e}")))?;
    let json: Value =
        serde_json::from_str(&text).map_err(|e| ReadError::File(format!("not valid JSON: {e}")))?;
    drop(text);
    if json.get("resourceType").is_none() {
        return send(Message::NotFhir(path.to_path_buf()));
    }
    let bundle = fhir.prepare_bundle(as_transaction(json));
    send(Message::Unit(Unit {
        file: path.to_path_buf(),
        bundle,
        checkpoint: (key, "done".into()),
        lines: Vec::new(),
        last_of_file: true,
    }))
}

fn read_ndjson(
    fhir: &FhirService,
    path: &Path,
    key: &str,
    skip: usize,
    chunk: usize,
    send: &dyn Fn(Message) -> Result<(), ReadError>,
) -> Result<(), ReadError> {
    let reader = BufReader::new(open(path).map_err(ReadError::File)?);
    let mut resources = Vec::with_capacity(chunk);
    let mut lines = Vec::with_capacity(chunk);
    let mut consumed = skip;
    let mut pending = 0;
    let flush = |resources: &mut Vec<Value>,
                 lines: &mut Vec<usize>,
                 consumed: usize,
                 last: bool|
     -> Result<(), ReadError> {
        let bundle = fhir.prepare_bundle(transaction_of(std::mem::take(resources).into_iter()));
        send(Message::Unit(Unit {
            file: path.to_path_buf(),
            bundle,
            checkpoint: (key.to_string(), consumed.to_string()),
            lines: std::mem::take(lines),
            last_of_file: last,
        }))
    };
    for (index, line) in reader.lines().enumerate().skip(skip) {
        let number = index + 1;
        let line = line.map_err(|e| ReadError::File(format!("line {number}: cannot read: {e}")))?;
        consumed = number;
        pending += 1;
        if !line.trim().is_empty() {
            match serde_json::from_str(&line) {
                Ok(v) => {
                    resources.push(v);
                    lines.push(number);
                }
                Err(e) => send(Message::LineFailure(Failure {
                    file: path.to_path_buf(),
                    location: format!("line {number}"),
                    message: format!("not valid JSON: {e}"),
                }))?,
            }
        }
        if pending == chunk {
            flush(&mut resources, &mut lines, consumed, false)?;
            pending = 0;
        }
    }
    flush(&mut resources, &mut lines, consumed, true)
}

/// Files named on the command line, and the importable files in named directories, sorted by
/// name (so `0-hospitalInformation...` loads before the patients that refer to it).
fn collect_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| is_json(p) || is_ndjson(p))
                .collect();
            found.sort();
            out.extend(found);
        } else if path.is_file() {
            out.push(path.clone());
        } else {
            return Err(format!("{} does not exist", path.display()));
        }
    }
    // A file named twice (or also found in a named directory) is imported once.
    let mut seen = std::collections::HashSet::new();
    out.retain(|p| seen.insert(p.canonicalize().unwrap_or_else(|_| p.clone())));
    Ok(out)
}

/// The file name without a compression suffix.
fn base_name(path: &Path) -> String {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name.trim_end_matches(".bz2")
        .trim_end_matches(".xz")
        .to_string()
}

fn is_json(path: &Path) -> bool {
    base_name(path).ends_with(".json")
}

fn is_ndjson(path: &Path) -> bool {
    base_name(path).ends_with(".ndjson")
}

fn open(path: &Path) -> Result<Box<dyn Read>, String> {
    let file = File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let name = path.to_string_lossy();
    Ok(if name.ends_with(".bz2") {
        Box::new(bzip2::read::MultiBzDecoder::new(file))
    } else if name.ends_with(".xz") {
        Box::new(liblzma::read::XzDecoder::new(file))
    } else {
        Box::new(file)
    })
}

/// A transaction or batch Bundle as it is; any other Bundle's resources, or a single resource,
/// wrapped in a transaction.
fn as_transaction(json: Value) -> Value {
    let is_bundle = json.get("resourceType").and_then(Value::as_str) == Some("Bundle");
    match json.get("type").and_then(Value::as_str) {
        Some("transaction" | "batch") if is_bundle => json,
        _ if is_bundle => {
            let resources = json
                .get("entry")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|e| e.get("resource").cloned());
            transaction_of(resources)
        }
        _ => transaction_of(std::iter::once(json)),
    }
}

/// A transaction that stores each resource: PUT when it has an id (so references between
/// files hold), POST otherwise.
fn transaction_of(resources: impl Iterator<Item = Value>) -> Value {
    let entries: Vec<Value> = resources
        .map(|r| {
            let rt = r
                .get("resourceType")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            match r.get("id").and_then(Value::as_str) {
                Some(id) => {
                    let url = format!("{rt}/{id}");
                    json!({"fullUrl": url, "resource": r, "request": {"method": "PUT", "url": url}})
                }
                None => json!({"resource": r, "request": {"method": "POST", "url": rt}}),
            }
        })
        .collect();
    json!({"resourceType": "Bundle", "type": "transaction", "entry": entries})
}
