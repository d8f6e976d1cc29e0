//! Figures as one JSON object (`--json`) or as a readable table.

use crate::import::ImportResult;
use crate::load::{LoadResult, ProcessFigures, StreamStats};
use hdrhistogram::Histogram;
use serde_json::{Map, Value, json};
use std::fmt::Write;
use std::time::Duration;

/// What a load run was, for the report's header.
#[derive(Clone, Debug)]
pub struct RunInfo {
    pub command: &'static str,
    pub base: String,
    pub connections: usize,
    pub threads: usize,
    pub warmup: Duration,
    pub duration: Duration,
    pub seed: u64,
    pub order: &'static str,
    /// Extra header figures (for example `type` and `ids`).
    pub extra: Vec<(&'static str, Value)>,
}

fn ms(micros: u64) -> f64 {
    micros as f64 / 1000.0
}

fn round(x: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (x * f).round() / f
}

fn latency_json(h: &Histogram<u64>) -> Value {
    if h.is_empty() {
        return json!({"p50": null, "p90": null, "p99": null, "p99_9": null, "max": null, "mean": null});
    }
    json!({
        "p50": ms(h.value_at_quantile(0.5)),
        "p90": ms(h.value_at_quantile(0.9)),
        "p99": ms(h.value_at_quantile(0.99)),
        "p99_9": ms(h.value_at_quantile(0.999)),
        "max": ms(h.max()),
        "mean": round(h.mean() / 1000.0, 3),
    })
}

fn rate(count: u64, over: Duration) -> f64 {
    let secs = over.as_secs_f64();
    if secs > 0.0 {
        round(count as f64 / secs, 1)
    } else {
        0.0
    }
}

fn stream_json(stats: &StreamStats, measured: Duration) -> Map<String, Value> {
    let statuses: Map<String, Value> = stats
        .statuses
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    let mut m = Map::new();
    m.insert("requests".into(), json!(stats.requests()));
    m.insert("ok".into(), json!(stats.ok));
    m.insert("errors".into(), json!(stats.errors()));
    m.insert("errors_by_status".into(), Value::Object(statuses));
    m.insert("transport_errors".into(), json!(stats.transport_errors));
    m.insert("timeouts".into(), json!(stats.timeouts));
    m.insert(
        "throughput_rps".into(),
        json!(rate(stats.requests(), measured)),
    );
    m.insert("body_bytes".into(), json!(stats.body_bytes));
    m.insert("latency_ms".into(), latency_json(&stats.latency));
    m
}

fn mib(kib: u64) -> f64 {
    round(kib as f64 / 1024.0, 1)
}

fn process_json(p: &Option<ProcessFigures>, window: Duration) -> Value {
    match p {
        None => Value::Null,
        Some(p) => json!({
            "pid": p.pid,
            "rss_start_mib": mib(p.rss_start_kib),
            "rss_peak_mib": mib(p.rss_peak_kib),
            "cpu_s": p.cpu_seconds.map(|c| round(c, 2)),
            "cpu_cores": p.cpu_seconds.map(|c| cores(c, window)),
        }),
    }
}

fn cores(cpu_seconds: f64, window: Duration) -> f64 {
    let w = window.as_secs_f64();
    if w > 0.0 {
        round(cpu_seconds / w, 2)
    } else {
        0.0
    }
}

/// The JSON object of a `read` or `search` run. Totals are at the top level; `search` adds one
/// object per query under `queries`.
pub fn load_json(info: &RunInfo, names: &[String], result: &LoadResult) -> Value {
    let mut m = Map::new();
    m.insert("command".into(), json!(info.command));
    m.insert("base".into(), json!(info.base));
    for (k, v) in &info.extra {
        m.insert((*k).into(), v.clone());
    }
    m.insert("connections".into(), json!(info.connections));
    m.insert("threads".into(), json!(info.threads));
    m.insert("seed".into(), json!(info.seed));
    m.insert("order".into(), json!(info.order));
    m.insert("warmup_s".into(), json!(info.warmup.as_secs_f64()));
    m.insert("duration_s".into(), json!(info.duration.as_secs_f64()));
    m.insert(
        "measured_s".into(),
        json!(round(result.measured.as_secs_f64(), 3)),
    );
    m.extend(stream_json(&result.total(), result.measured));
    if info.command == "search" {
        let queries: Vec<Value> = names
            .iter()
            .zip(&result.streams)
            .map(|(name, s)| {
                let mut q = Map::new();
                q.insert("query".into(), json!(name));
                q.extend(stream_json(s, result.measured));
                Value::Object(q)
            })
            .collect();
        m.insert("queries".into(), Value::Array(queries));
    }
    m.insert("warmup_requests".into(), json!(result.warmup_requests));
    m.insert("reconnects".into(), json!(result.reconnects));
    m.insert(
        "server".into(),
        process_json(&result.server, result.cpu_window),
    );
    m.insert(
        "loadgen".into(),
        json!({
            "cpu_s": result.loadgen_cpu_seconds.map(|c| round(c, 2)),
            "cpu_cores": result.loadgen_cpu_seconds.map(|c| cores(c, result.cpu_window)),
        }),
    );
    Value::Object(m)
}

fn fmt_ms(h: &Histogram<u64>, q: Option<f64>) -> String {
    if h.is_empty() {
        return "-".into();
    }
    let micros = match q {
        Some(q) => h.value_at_quantile(q),
        None => h.max(),
    };
    format!("{:.3}", ms(micros))
}

fn table_row(out: &mut String, name: &str, s: &StreamStats, measured: Duration) {
    let h = &s.latency;
    let _ = writeln!(
        out,
        "{:>10} {:>8} {:>10.1} {:>9} {:>9} {:>9} {:>9} {:>9}  {name}",
        s.requests(),
        s.errors(),
        rate(s.requests(), measured),
        fmt_ms(h, Some(0.5)),
        fmt_ms(h, Some(0.9)),
        fmt_ms(h, Some(0.99)),
        fmt_ms(h, Some(0.999)),
        fmt_ms(h, None),
    );
}

fn error_line(s: &StreamStats) -> Option<String> {
    if s.errors() == 0 {
        return None;
    }
    let statuses: Vec<String> = s
        .statuses
        .iter()
        .map(|(k, v)| format!("{k} x{v}"))
        .collect();
    let statuses = if statuses.is_empty() {
        "none".to_string()
    } else {
        statuses.join(", ")
    };
    Some(format!(
        "errors: status {statuses}; transport {}; timeouts {}",
        s.transport_errors, s.timeouts
    ))
}

fn process_lines(
    out: &mut String,
    server: &Option<ProcessFigures>,
    loadgen_cpu: Option<f64>,
    window: Duration,
) {
    if let Some(p) = server {
        let cpu = p.cpu_seconds.map_or(String::new(), |c| {
            format!("; CPU {:.2} cores ({c:.1} s)", cores(c, window))
        });
        let _ = writeln!(
            out,
            "server pid {}: RSS {:.1} MiB at start, peak {:.1} MiB{cpu}",
            p.pid,
            mib(p.rss_start_kib),
            mib(p.rss_peak_kib)
        );
    }
    if let Some(c) = loadgen_cpu {
        let _ = writeln!(
            out,
            "keel-loadgen: CPU {:.2} cores ({c:.1} s)",
            cores(c, window)
        );
    }
}

/// The table of a `read` or `search` run.
pub fn load_table(info: &RunInfo, names: &[String], result: &LoadResult) -> String {
    let mut out = String::new();
    let extra: Vec<String> = info
        .extra
        .iter()
        .map(|(k, v)| format!("{k} {}", v.as_str().map_or(v.to_string(), str::to_string)))
        .collect();
    let _ = writeln!(out, "keel-loadgen {} against {}", info.command, info.base);
    let _ = writeln!(
        out,
        "{}{}{} connections, {} thread(s), seed {}, {} order, warm-up {:.1} s, measured {:.2} s",
        extra.join(", "),
        if extra.is_empty() { "" } else { ", " },
        info.connections,
        info.threads,
        info.seed,
        info.order,
        info.warmup.as_secs_f64(),
        result.measured.as_secs_f64()
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:>10} {:>8} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9}  request",
        "requests", "errors", "req/s", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms"
    );
    for (name, s) in names.iter().zip(&result.streams) {
        table_row(&mut out, name, s, result.measured);
    }
    let total = result.total();
    if result.streams.len() > 1 {
        table_row(&mut out, "(total)", &total, result.measured);
    }
    let _ = writeln!(out);
    for (name, s) in names.iter().zip(&result.streams) {
        if let Some(line) = error_line(s) {
            let _ = writeln!(out, "{name}: {line}");
        }
    }
    if result.reconnects > 0 {
        let _ = writeln!(out, "reconnections: {}", result.reconnects);
    }
    process_lines(
        &mut out,
        &result.server,
        result.loadgen_cpu_seconds,
        result.cpu_window,
    );
    out
}

/// The JSON object of an `import` run.
pub fn import_json(base: &str, connections: usize, prepare: Duration, r: &ImportResult) -> Value {
    json!({
        "command": "import",
        "base": base,
        "connections": connections,
        "files": r.files,
        "files_ok": r.files_ok,
        "files_failed": r.files_failed(),
        "resources": r.entries,
        "resources_ok": r.entries_ok,
        "resources_failed": r.entries_failed(),
        "bytes_sent": r.bytes_sent,
        "prepare_s": round(prepare.as_secs_f64(), 3),
        "elapsed_s": round(r.elapsed.as_secs_f64(), 3),
        "resources_per_s": rate(r.entries_ok, r.elapsed),
        "mib_per_s": round(r.bytes_sent as f64 / 1_048_576.0 / r.elapsed.as_secs_f64().max(1e-9), 2),
        "bundle_latency_ms": latency_json(&r.latency),
        "failures": r.failures,
        "server": process_json(&r.server, r.elapsed),
        "loadgen": {
            "cpu_s": r.loadgen_cpu_seconds.map(|c| round(c, 2)),
            "cpu_cores": r.loadgen_cpu_seconds.map(|c| cores(c, r.elapsed)),
        },
    })
}

/// The table of an `import` run.
pub fn import_table(base: &str, connections: usize, prepare: Duration, r: &ImportResult) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "keel-loadgen import against {base}");
    let _ = writeln!(
        out,
        "{} files ({} failed) over {connections} connections, read and decompressed in {:.2} s before the clock started",
        r.files,
        r.files_failed(),
        prepare.as_secs_f64()
    );
    let _ = writeln!(
        out,
        "{} of {} resources imported in {:.2} s: {:.1} resources/s, {:.2} MiB/s of JSON",
        r.entries_ok,
        r.entries,
        r.elapsed.as_secs_f64(),
        rate(r.entries_ok, r.elapsed),
        r.bytes_sent as f64 / 1_048_576.0 / r.elapsed.as_secs_f64().max(1e-9)
    );
    let h = &r.latency;
    let _ = writeln!(
        out,
        "per Bundle: p50 {} ms, p90 {} ms, p99 {} ms, max {} ms",
        fmt_ms(h, Some(0.5)),
        fmt_ms(h, Some(0.9)),
        fmt_ms(h, Some(0.99)),
        fmt_ms(h, None)
    );
    for f in &r.failures {
        let _ = writeln!(out, "failed: {f}");
    }
    if r.failures_total > r.failures.len() as u64 {
        let _ = writeln!(
            out,
            "... and {} more failures",
            r.failures_total - r.failures.len() as u64
        );
    }
    process_lines(&mut out, &r.server, r.loadgen_cpu_seconds, r.elapsed);
    out
}
