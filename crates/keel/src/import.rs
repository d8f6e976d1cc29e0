//! `keel import`: loads Bundles and NDJSON files through the same core service the API uses.
//!
//! Each unit of work (a Bundle, or a chunk of NDJSON lines) commits in one transaction
//! together with its checkpoint, so after a crash a re-run skips exactly what was committed.

use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use keel_core::fhir::{BundleKind, FhirService};
use keel_core::{CorrelationId, FhirError, RequestContext};
use serde_json::{Value, json};
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

#[derive(Args)]
pub struct ImportArgs {
    /// Files or directories of Bundles (.json) and NDJSON (.ndjson), optionally .bz2 or .xz.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Data directory of the embedded database.
    #[arg(long, env = "KEEL_DATA", default_value_os_t = crate::default_data_dir())]
    data: PathBuf,
    /// NDJSON lines per transaction.
    #[arg(long, default_value_t = 1000)]
    chunk: usize,
}

/// A failure to report: where, and what.
struct Failure {
    file: PathBuf,
    location: String,
    message: String,
}

struct Importer<'a> {
    fhir: &'a FhirService,
    ctx: RequestContext,
    progress: ProgressBar,
    failures: Vec<Failure>,
    resources: u64,
}

pub fn run(args: ImportArgs) -> Result<ExitCode, String> {
    let fhir = crate::open_service(&args.data)?;
    let files = collect_files(&args.paths)?;
    let progress = ProgressBar::with_draw_target(Some(files.len() as u64), ProgressDrawTarget::stderr());
    progress.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} files  {msg}")
            .map_err(|e| e.to_string())?,
    );
    let started = Instant::now();
    let ctx = RequestContext::local_development(CorrelationId::parse("import").ok_or("bad correlation id")?);
    let mut importer = Importer { fhir: &fhir, ctx, progress, failures: Vec::new(), resources: 0 };
    for file in &files {
        importer.progress.set_message(format!("{} resources, {:.0} resources/s", importer.resources, rate(importer.resources, started)));
        if let Err(message) = importer.import_file(file, args.chunk) {
            importer.failures.push(Failure { file: file.clone(), location: "file".into(), message });
        }
        importer.progress.inc(1);
    }
    importer.progress.finish_and_clear();
    for f in &importer.failures {
        eprintln!("keel import: {}: {}: {}", f.file.display(), f.location, f.message);
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "imported {} resources from {} files in {:.1} s ({:.0} resources/s); {} failure(s)",
        importer.resources,
        files.len(),
        seconds,
        rate(importer.resources, started),
        importer.failures.len()
    );
    Ok(if importer.failures.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn rate(count: u64, started: Instant) -> f64 {
    count as f64 / started.elapsed().as_secs_f64().max(1e-9)
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
                .filter(|p| is_importable(p))
                .collect();
            found.sort();
            out.extend(found);
        } else if path.is_file() {
            out.push(path.clone());
        } else {
            return Err(format!("{} does not exist", path.display()));
        }
    }
    Ok(out)
}

fn is_importable(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let base = name.trim_end_matches(".bz2").trim_end_matches(".xz");
    base.ends_with(".json") || base.ends_with(".ndjson")
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

impl Importer<'_> {
    fn import_file(&mut self, path: &Path, chunk: usize) -> Result<(), String> {
        let size = std::fs::metadata(path).map_err(|e| e.to_string())?.len();
        let key = format!("import:{}:{size}", path.canonicalize().unwrap_or(path.to_path_buf()).display());
        let done = self.fhir.checkpoint(&key).map_err(|e| e.to_string())?;
        let name = path.to_string_lossy();
        let base = name.trim_end_matches(".bz2").trim_end_matches(".xz");
        if base.ends_with(".ndjson") {
            let skip: usize = done.as_deref().and_then(|d| d.parse().ok()).unwrap_or(0);
            self.import_ndjson(path, &key, skip, chunk)
        } else {
            if done.is_some() {
                return Ok(()); // committed by an earlier run
            }
            let mut text = String::new();
            open(path)?.read_to_string(&mut text).map_err(|e| format!("cannot read: {e}"))?;
            let json: Value = serde_json::from_str(&text).map_err(|e| format!("not valid JSON: {e}"))?;
            drop(text);
            self.import_json(path, json, &key)
        }
    }

    fn import_json(&mut self, path: &Path, json: Value, key: &str) -> Result<(), String> {
        let is_bundle = json.get("resourceType").and_then(Value::as_str) == Some("Bundle");
        let bundle_type = json.get("type").and_then(Value::as_str).unwrap_or("");
        let bundle = if is_bundle && matches!(bundle_type, "transaction" | "batch") {
            json
        } else if is_bundle {
            // A collection or searchset: store its resources.
            let resources = json.get("entry").and_then(Value::as_array).into_iter().flatten().filter_map(|e| e.get("resource").cloned());
            transaction_of(resources)
        } else {
            transaction_of(std::iter::once(json))
        };
        let entries = bundle.get("entry").and_then(Value::as_array).map_or(0, Vec::len) as u64;
        self.submit(path, bundle, key, "done", &|index| format!("entry {index}"))?;
        self.resources += entries;
        Ok(())
    }

    fn import_ndjson(&mut self, path: &Path, key: &str, skip: usize, chunk: usize) -> Result<(), String> {
        let reader = BufReader::new(open(path)?);
        let mut batch: Vec<Value> = Vec::with_capacity(chunk);
        let mut first_line = skip;
        for (number, line) in reader.lines().enumerate().skip(skip) {
            let line = line.map_err(|e| format!("line {}: cannot read: {e}", number + 1))?;
            if line.trim().is_empty() {
                batch.push(Value::Null);
            } else {
                match serde_json::from_str(&line) {
                    Ok(v) => batch.push(v),
                    Err(e) => {
                        self.failures.push(Failure { file: path.to_path_buf(), location: format!("line {}", number + 1), message: format!("not valid JSON: {e}") });
                        batch.push(Value::Null);
                    }
                }
            }
            if batch.len() == chunk {
                self.flush_ndjson(path, key, &mut batch, &mut first_line)?;
            }
        }
        self.flush_ndjson(path, key, &mut batch, &mut first_line)
    }

    fn flush_ndjson(&mut self, path: &Path, key: &str, batch: &mut Vec<Value>, first_line: &mut usize) -> Result<(), String> {
        if batch.is_empty() {
            return Ok(());
        }
        let lines = batch.len();
        let start = *first_line;
        let (line_numbers, resources): (Vec<usize>, Vec<Value>) =
            batch.drain(..).enumerate().filter(|(_, v)| !v.is_null()).map(|(i, v)| (start + i + 1, v)).unzip();
        let count = resources.len() as u64;
        let next = start + lines;
        let locate = |index: usize| format!("line {}", line_numbers.get(index).copied().unwrap_or(0));
        self.submit(path, transaction_of(resources.into_iter()), key, &next.to_string(), &locate)?;
        *first_line = next;
        self.resources += count;
        Ok(())
    }

    /// Runs one Bundle with its checkpoint; failures are recorded with their location.
    fn submit(&mut self, path: &Path, bundle: Value, key: &str, checkpoint: &str, locate: &dyn Fn(usize) -> String) -> Result<(), String> {
        match self.fhir.process_bundle_with_checkpoint(&self.ctx, bundle, Some((key, checkpoint))) {
            Ok(response) => {
                if response.kind == BundleKind::Batch {
                    for (index, entry) in response.entries.iter().enumerate() {
                        if let Err(e) = entry {
                            self.failures.push(Failure { file: path.to_path_buf(), location: locate(index), message: e.to_string() });
                        }
                    }
                }
                Ok(())
            }
            Err(FhirError::InEntry { index, source }) => {
                self.failures.push(Failure { file: path.to_path_buf(), location: locate(index), message: source.to_string() });
                Ok(())
            }
            Err(e) => Err(e.to_string()),
        }
    }
}

/// A transaction that stores each resource: PUT when it has an id (so references between
/// files hold), POST otherwise.
fn transaction_of(resources: impl Iterator<Item = Value>) -> Value {
    let entries: Vec<Value> = resources
        .map(|r| {
            let rt = r.get("resourceType").and_then(Value::as_str).unwrap_or("").to_string();
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
