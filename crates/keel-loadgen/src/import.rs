//! `import`: POSTs Bundle files (transaction or batch) to the base URL and measures resources per
//! second. Files are read, decompressed and counted before the clock starts.

use crate::client::Client;
use crate::discover::snippet;
use crate::load::ProcessFigures;
use crate::procfs;
use crate::target::Target;
use bytes::Bytes;
use hdrhistogram::Histogram;
use serde_json::Value;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// At most this many failures are kept for the report.
const MAX_FAILURES_KEPT: usize = 20;

/// A Bundle ready to send.
#[derive(Clone, Debug)]
pub struct BundleFile {
    pub path: PathBuf,
    pub body: Bytes,
    /// Number of entries.
    pub entries: u64,
    /// `Bundle.type`.
    pub kind: String,
    /// Sent alone before the others (Synthea's hospital and practitioner files, which the
    /// patient Bundles refer to).
    pub first: bool,
}

/// Shape of an import run.
#[derive(Clone, Debug)]
pub struct ImportConfig {
    pub connections: usize,
    pub timeout: Duration,
    pub pid: Option<u32>,
}

/// Figures of an import run.
#[derive(Clone, Debug)]
pub struct ImportResult {
    pub files: u64,
    pub files_ok: u64,
    pub entries: u64,
    pub entries_ok: u64,
    pub bytes_sent: u64,
    pub elapsed: Duration,
    /// Time per Bundle, in microseconds.
    pub latency: Histogram<u64>,
    pub failures: Vec<String>,
    pub failures_total: u64,
    pub server: Option<ProcessFigures>,
    pub loadgen_cpu_seconds: Option<f64>,
}

impl ImportResult {
    pub fn files_failed(&self) -> u64 {
        self.files - self.files_ok
    }

    pub fn entries_failed(&self) -> u64 {
        self.entries - self.entries_ok
    }
}

/// The Bundle files under `paths` (files as given, directories searched recursively, sorted),
/// Synthea's information files first.
pub fn collect_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found = Vec::new();
            walk_dir(path, &mut found)?;
            found.sort();
            files.extend(found);
        } else if path.is_file() {
            files.push(path.clone());
        } else {
            return Err(format!("no such file or directory: {}", path.display()));
        }
    }
    // Stable: keeps the given order otherwise.
    files.sort_by_key(|f| !is_first(f));
    Ok(files)
}

fn walk_dir(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    for entry in entries {
        let path = entry
            .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
            .path();
        if path.is_dir() {
            walk_dir(&path, out)?;
        } else if is_bundle_file(&path) {
            out.push(path);
        }
    }
    Ok(())
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `.json`, `.json.bz2` or `.json.xz`.
pub fn is_bundle_file(path: &Path) -> bool {
    let name = file_name(path);
    name.ends_with(".json") || name.ends_with(".json.bz2") || name.ends_with(".json.xz")
}

fn is_first(path: &Path) -> bool {
    let name = file_name(path);
    name.contains("hospitalInformation") || name.contains("practitionerInformation")
}

/// Reads, decompresses and counts one Bundle file.
pub fn load_file(path: &Path) -> Result<BundleFile, String> {
    let raw = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let name = file_name(path);
    let body = if name.ends_with(".bz2") {
        let mut out = Vec::with_capacity(raw.len() * 8);
        bzip2::read::MultiBzDecoder::new(raw.as_slice())
            .read_to_end(&mut out)
            .map_err(|e| format!("{}: bad bzip2 data: {e}", path.display()))?;
        out
    } else if name.ends_with(".xz") {
        let mut out = Vec::with_capacity(raw.len() * 8);
        liblzma::read::XzDecoder::new(raw.as_slice())
            .read_to_end(&mut out)
            .map_err(|e| format!("{}: bad xz data: {e}", path.display()))?;
        out
    } else {
        raw
    };
    let bundle: Value =
        serde_json::from_slice(&body).map_err(|e| format!("{}: not JSON: {e}", path.display()))?;
    if bundle.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
        return Err(format!("{}: not a Bundle", path.display()));
    }
    let kind = bundle
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let entries = bundle
        .get("entry")
        .and_then(Value::as_array)
        .map_or(0, Vec::len) as u64;
    Ok(BundleFile {
        path: path.to_path_buf(),
        body: Bytes::from(body),
        entries,
        kind,
        first: is_first(path),
    })
}

/// Loads every file, on as many threads as there are cores.
pub fn load_files(paths: &[PathBuf]) -> Result<Vec<BundleFile>, String> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(paths.len().max(1));
    let next = AtomicUsize::new(0);
    let mut slots: Vec<Option<Result<BundleFile, String>>> = vec![None; paths.len()];
    let results: Vec<Vec<(usize, Result<BundleFile, String>)>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(path) = paths.get(i) else { break };
                        done.push((i, load_file(path)));
                    }
                    done
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_default())
            .collect()
    });
    for (i, result) in results.into_iter().flatten() {
        slots[i] = Some(result);
    }
    slots
        .into_iter()
        .map(|s| s.unwrap_or_else(|| Err("a file loader failed".into())))
        .collect()
}

/// POSTs every file to the base URL: the `first` files one at a time, then the others over
/// `connections` connections.
pub async fn run(
    target: &Target,
    files: Vec<BundleFile>,
    config: &ImportConfig,
) -> Result<ImportResult, String> {
    if config.connections == 0 {
        return Err("--connections must be at least 1".into());
    }
    // Check that the server is there before starting the clock.
    tokio::net::TcpStream::connect(target.addr)
        .await
        .map_err(|e| format!("cannot connect to {}: {e}", target.addr))?;
    let sampler = match config.pid {
        Some(pid) => Some(procfs::RssSampler::start(pid)?),
        None => None,
    };
    let pid_text = config.pid.map(|p| p.to_string());
    let server_cpu_start = pid_text.as_deref().and_then(procfs::cpu_seconds);
    let self_cpu_start = procfs::cpu_seconds("self");
    let started = Instant::now();
    let shared = Arc::new(Mutex::new(ImportResult {
        files: files.len() as u64,
        files_ok: 0,
        entries: files.iter().map(|f| f.entries).sum(),
        entries_ok: 0,
        bytes_sent: 0,
        elapsed: Duration::ZERO,
        latency: Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds"),
        failures: Vec::new(),
        failures_total: 0,
        server: None,
        loadgen_cpu_seconds: None,
    }));
    let (first, rest): (Vec<BundleFile>, Vec<BundleFile>) =
        files.into_iter().partition(|f| f.first);
    let mut client = Client::new(target, config.timeout);
    for file in &first {
        post_one(&mut client, target, file, &shared).await;
    }
    let rest = Arc::new(rest);
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..config.connections.min(rest.len().max(1)) {
        let (target, rest, next, shared) =
            (target.clone(), rest.clone(), next.clone(), shared.clone());
        let timeout = config.timeout;
        tasks.push(tokio::spawn(async move {
            let mut client = Client::new(&target, timeout);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(file) = rest.get(i) else { break };
                post_one(&mut client, &target, file, &shared).await;
            }
        }));
    }
    for task in tasks {
        task.await
            .map_err(|e| format!("an import task failed: {e}"))?;
    }
    let elapsed = started.elapsed();
    let mut result = Arc::try_unwrap(shared)
        .map_err(|_| "import tasks still running".to_string())?
        .into_inner()
        .map_err(|_| "an import task panicked".to_string())?;
    result.elapsed = elapsed;
    result.loadgen_cpu_seconds = procfs::cpu_seconds("self")
        .zip(self_cpu_start)
        .map(|(b, a)| b - a);
    if let (Some(sampler), Some(pid)) = (sampler, config.pid) {
        let cpu_seconds = pid_text
            .as_deref()
            .and_then(procfs::cpu_seconds)
            .zip(server_cpu_start)
            .map(|(b, a)| b - a);
        let rss_start_kib = sampler.start_kib;
        result.server = Some(ProcessFigures {
            pid,
            rss_start_kib,
            rss_peak_kib: sampler.finish(),
            cpu_seconds,
        });
    }
    Ok(result)
}

async fn post_one(
    client: &mut Client,
    target: &Target,
    file: &BundleFile,
    shared: &Mutex<ImportResult>,
) {
    let started = Instant::now();
    let outcome = client.post(&target.path_for(""), file.body.clone()).await;
    let micros = u64::try_from(started.elapsed().as_micros())
        .unwrap_or(u64::MAX)
        .max(1);
    let (entries_ok, failure) = match outcome {
        Ok(response) if response.status.is_success() => {
            let ok = successful_entries(&response.body)
                .unwrap_or(file.entries)
                .min(file.entries);
            let failure = (ok < file.entries).then(|| {
                format!(
                    "{}: {} of {} entries failed",
                    file.path.display(),
                    file.entries - ok,
                    file.entries
                )
            });
            (ok, failure)
        }
        Ok(response) => (
            0,
            Some(format!(
                "{}: {} {}",
                file.path.display(),
                response.status,
                snippet(&response.body)
            )),
        ),
        Err(e) => (0, Some(format!("{}: {e}", file.path.display()))),
    };
    let Ok(mut r) = shared.lock() else { return };
    r.bytes_sent += file.body.len() as u64;
    r.entries_ok += entries_ok;
    r.latency.saturating_record(micros);
    match failure {
        None => r.files_ok += 1,
        Some(message) => {
            r.failures_total += 1;
            if r.failures.len() < MAX_FAILURES_KEPT {
                r.failures.push(message);
            }
        }
    }
}

/// The number of entries of a batch or transaction response whose status is 2xx, if the body is
/// such a response.
pub fn successful_entries(body: &[u8]) -> Option<u64> {
    let bundle: Value = serde_json::from_slice(body).ok()?;
    if bundle.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
        return None;
    }
    let entries = bundle.get("entry")?.as_array()?;
    Some(
        entries
            .iter()
            .filter(|e| {
                e.get("response")
                    .and_then(|r| r.get("status"))
                    .and_then(Value::as_str)
                    .is_some_and(|s| s.trim_start().starts_with('2'))
            })
            .count() as u64,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn loads_and_orders_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let bundle = br#"{"resourceType":"Bundle","type":"transaction","entry":[{"resource":{"resourceType":"Patient"}},{}]}"#;
        std::fs::write(dir.path().join("b.json"), bundle).expect("write");
        std::fs::write(dir.path().join("0-hospitalInformation1.json"), bundle).expect("write");
        let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 6);
        xz.write_all(bundle).expect("xz");
        std::fs::write(dir.path().join("a.json.xz"), xz.finish().expect("xz")).expect("write");
        let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
        bz.write_all(bundle).expect("bz2");
        std::fs::write(dir.path().join("c.json.bz2"), bz.finish().expect("bz2")).expect("write");
        std::fs::write(dir.path().join("notes.txt"), "x").expect("write");
        let files = collect_files(&[dir.path().to_path_buf()]).expect("collect");
        let names: Vec<String> = files.iter().map(|f| file_name(f)).collect();
        assert_eq!(
            names,
            [
                "0-hospitalInformation1.json",
                "a.json.xz",
                "b.json",
                "c.json.bz2"
            ]
        );
        let loaded = load_files(&files).expect("load");
        assert!(
            loaded
                .iter()
                .all(|f| f.entries == 2 && f.kind == "transaction" && f.body.as_ref() == bundle)
        );
        assert!(loaded[0].first && !loaded[1].first);
    }

    #[test]
    fn counts_successful_entries() {
        let body = br#"{"resourceType":"Bundle","type":"batch-response","entry":[
            {"response":{"status":"201 Created"}},{"response":{"status":"400 Bad Request"}},{"response":{"status":"200"}}]}"#;
        assert_eq!(successful_entries(body), Some(2));
        assert_eq!(successful_entries(b"{}"), None);
    }
}
