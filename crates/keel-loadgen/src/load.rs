//! The closed-loop engine behind `read` and `search`: exactly N keep-alive connections, one task
//! each, sending requests back to back for a fixed time.
//!
//! The hot loop does as little as it can: request targets are parsed before the run (a clone of
//! a [`Uri`] only bumps reference counts), headers are shared values, the response body is read
//! and dropped frame by frame without being parsed, and each connection task keeps its own
//! counters and histograms, merged once at the end. The connection's I/O future is polled by the
//! same task that sends on it, so a request costs no cross-task wake-ups.

use crate::client::{Conn, FHIR_JSON, connect};
use crate::procfs;
use crate::rng::SplitMix64;
use crate::target::Target;
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{ACCEPT, CONNECTION, HOST, HeaderValue};
use hyper::{Request, Uri};
use std::collections::BTreeMap;
use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Latencies are recorded in microseconds, from 1 µs to this, with 3 significant digits.
const HIST_MAX_MICROS: u64 = 3_600_000_000;

/// A named set of request targets (one per `--query`, or the reads of one type).
#[derive(Clone, Debug)]
pub struct Stream {
    pub name: String,
    pub targets: Vec<Uri>,
}

/// How a connection picks the next target of a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// Uniformly at random, from a generator seeded per connection.
    Random,
    /// In order, each connection starting at a different offset.
    RoundRobin,
}

/// Shape of a run.
#[derive(Clone, Debug)]
pub struct LoadConfig {
    pub connections: usize,
    pub warmup: Duration,
    pub duration: Duration,
    /// Longest wait for one response; a request that takes longer counts as a timeout and its
    /// connection is replaced.
    pub timeout: Duration,
    pub seed: u64,
    pub order: Order,
    /// Process whose memory and CPU are watched.
    pub pid: Option<u32>,
}

/// Figures of one stream (or of several merged).
#[derive(Clone, Debug)]
pub struct StreamStats {
    /// 2xx responses.
    pub ok: u64,
    /// Other responses, by status code.
    pub statuses: BTreeMap<u16, u64>,
    /// Connections refused or broken, and malformed responses.
    pub transport_errors: u64,
    /// Requests without a response within the timeout.
    pub timeouts: u64,
    /// Response body bytes received.
    pub body_bytes: u64,
    /// Latency of the 2xx responses, in microseconds.
    pub latency: Histogram<u64>,
}

impl StreamStats {
    pub fn new() -> StreamStats {
        StreamStats {
            ok: 0,
            statuses: BTreeMap::new(),
            transport_errors: 0,
            timeouts: 0,
            body_bytes: 0,
            latency: Histogram::new_with_bounds(1, HIST_MAX_MICROS, 3)
                .expect("valid histogram bounds"),
        }
    }

    pub fn errors(&self) -> u64 {
        self.statuses.values().sum::<u64>() + self.transport_errors + self.timeouts
    }

    pub fn requests(&self) -> u64 {
        self.ok + self.errors()
    }

    pub fn merge(&mut self, other: &StreamStats) {
        self.ok += other.ok;
        for (status, n) in &other.statuses {
            *self.statuses.entry(*status).or_default() += n;
        }
        self.transport_errors += other.transport_errors;
        self.timeouts += other.timeouts;
        self.body_bytes += other.body_bytes;
        // Same bounds on both sides, so this cannot fail.
        let _ = self.latency.add(&other.latency);
    }
}

impl Default for StreamStats {
    fn default() -> Self {
        StreamStats::new()
    }
}

/// CPU and memory of the watched process.
#[derive(Clone, Debug)]
pub struct ProcessFigures {
    pub pid: u32,
    pub rss_start_kib: u64,
    pub rss_peak_kib: u64,
    /// CPU seconds used in the measured window (all threads), if readable.
    pub cpu_seconds: Option<f64>,
}

/// Result of a run.
#[derive(Clone, Debug)]
pub struct LoadResult {
    pub streams: Vec<StreamStats>,
    /// From the end of the warm-up to the last measured response.
    pub measured: Duration,
    /// Wall time over which CPU use was measured.
    pub cpu_window: Duration,
    pub warmup_requests: u64,
    /// Connections opened again after one broke (after the initial `connections`).
    pub reconnects: u64,
    pub server: Option<ProcessFigures>,
    /// CPU seconds of this load generator in the measured window.
    pub loadgen_cpu_seconds: Option<f64>,
}

impl LoadResult {
    pub fn total(&self) -> StreamStats {
        let mut total = StreamStats::new();
        for s in &self.streams {
            total.merge(s);
        }
        total
    }
}

struct Ctx {
    target: Target,
    streams: Vec<Stream>,
    host: HeaderValue,
    accept: HeaderValue,
    warm_end: Instant,
    end: Instant,
    timeout: Duration,
    seed: u64,
    order: Order,
    connections: usize,
}

#[derive(Default)]
struct ConnStats {
    streams: Vec<StreamStats>,
    warmup_requests: u64,
    reconnects: u64,
    last_done: Option<Instant>,
}

/// Runs the workload: opens `connections` connections, then sends requests on all of them until
/// `warmup + duration` has passed. Requests that start during the warm-up are not counted.
pub async fn run(
    target: &Target,
    streams: Vec<Stream>,
    config: &LoadConfig,
) -> Result<LoadResult, String> {
    if streams.is_empty() || streams.iter().any(|s| s.targets.is_empty()) {
        return Err("nothing to request".into());
    }
    if config.connections == 0 {
        return Err("--connections must be at least 1".into());
    }
    let mut conns = Vec::with_capacity(config.connections);
    for _ in 0..config.connections {
        conns.push(connect::<Empty<Bytes>>(target).await?);
    }
    let sampler = match config.pid {
        Some(pid) => Some(procfs::RssSampler::start(pid)?),
        None => None,
    };
    let started = Instant::now();
    let warm_end = started + config.warmup;
    let end = warm_end + config.duration;
    let stream_count = streams.len();
    let ctx = Arc::new(Ctx {
        target: target.clone(),
        streams,
        host: target.host_header(),
        accept: HeaderValue::from_static(FHIR_JSON),
        warm_end,
        end,
        timeout: config.timeout,
        seed: config.seed,
        order: config.order,
        connections: config.connections,
    });
    let mut tasks = Vec::with_capacity(config.connections);
    for (index, conn) in conns.into_iter().enumerate() {
        tasks.push(tokio::spawn(connection_task(ctx.clone(), index, conn)));
    }

    tokio::time::sleep_until(warm_end.into()).await;
    let pid_text = config.pid.map(|p| p.to_string());
    let cpu_start = Instant::now();
    let server_cpu_start = pid_text.as_deref().and_then(procfs::cpu_seconds);
    let self_cpu_start = procfs::cpu_seconds("self");

    let mut merged: Vec<StreamStats> = (0..stream_count).map(|_| StreamStats::new()).collect();
    let mut warmup_requests = 0;
    let mut reconnects = 0;
    let mut last_done = end;
    // Every request is bounded by the timeout, so the tasks end by `end + timeout`; the margin
    // only guards against a bug.
    let hard_stop = tokio::time::Instant::from(end + config.timeout + Duration::from_secs(5));
    for task in tasks {
        let handle = task.abort_handle();
        match tokio::time::timeout_at(hard_stop, task).await {
            Ok(Ok(stats)) => {
                for (m, s) in merged.iter_mut().zip(&stats.streams) {
                    m.merge(s);
                }
                warmup_requests += stats.warmup_requests;
                reconnects += stats.reconnects;
                if let Some(t) = stats.last_done {
                    last_done = last_done.max(t);
                }
            }
            Ok(Err(e)) => return Err(format!("a connection task failed: {e}")),
            Err(_) => {
                handle.abort();
                return Err("a connection task did not stop in time".into());
            }
        }
    }
    let cpu_window = cpu_start.elapsed();
    let loadgen_cpu_seconds = procfs::cpu_seconds("self")
        .zip(self_cpu_start)
        .map(|(b, a)| b - a);
    let server = match (sampler, config.pid) {
        (Some(sampler), Some(pid)) => {
            let cpu_seconds = pid_text
                .as_deref()
                .and_then(procfs::cpu_seconds)
                .zip(server_cpu_start)
                .map(|(b, a)| b - a);
            let rss_start_kib = sampler.start_kib;
            Some(ProcessFigures {
                pid,
                rss_start_kib,
                rss_peak_kib: sampler.finish(),
                cpu_seconds,
            })
        }
        _ => None,
    };
    Ok(LoadResult {
        streams: merged,
        measured: last_done.saturating_duration_since(warm_end),
        cpu_window,
        warmup_requests,
        reconnects,
        server,
        loadgen_cpu_seconds,
    })
}

/// Picks the next (stream, target) for one connection.
struct Picker {
    rng: SplitMix64,
    next_stream: usize,
    positions: Vec<usize>,
}

impl Picker {
    fn new(ctx: &Ctx, index: usize) -> Picker {
        let positions = ctx
            .streams
            .iter()
            .map(|s| index * s.targets.len() / ctx.connections)
            .collect();
        Picker {
            rng: SplitMix64::for_stream(ctx.seed, index as u64),
            next_stream: index % ctx.streams.len(),
            positions,
        }
    }

    fn next(&mut self, ctx: &Ctx) -> (usize, usize) {
        let stream = self.next_stream;
        self.next_stream = (stream + 1) % ctx.streams.len();
        let len = ctx.streams[stream].targets.len();
        let target = match ctx.order {
            Order::Random => self.rng.below(len),
            Order::RoundRobin => {
                let p = self.positions[stream] % len;
                self.positions[stream] = p + 1;
                p
            }
        };
        (stream, target)
    }
}

async fn connection_task(ctx: Arc<Ctx>, index: usize, first: Conn<Empty<Bytes>>) -> ConnStats {
    let mut stats = ConnStats {
        streams: (0..ctx.streams.len()).map(|_| StreamStats::new()).collect(),
        ..ConnStats::default()
    };
    let mut picker = Picker::new(&ctx, index);
    let mut conn = Some(first);
    loop {
        if Instant::now() >= ctx.end {
            break;
        }
        let (mut sender, connection) = match conn.take() {
            Some(c) => c,
            None => match connect::<Empty<Bytes>>(&ctx.target).await {
                Ok(c) => {
                    stats.reconnects += 1;
                    c
                }
                Err(_) => {
                    let now = Instant::now();
                    if now >= ctx.warm_end && now < ctx.end {
                        // Counted against the stream that would have been asked next.
                        let (stream, _) = picker.next(&ctx);
                        stats.streams[stream].transport_errors += 1;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        let mut connection = pin!(connection);
        let mut requests = pin!(send_loop(&ctx, &mut sender, &mut stats, &mut picker));
        let finished = tokio::select! {
            biased;
            finished = &mut requests => finished,
            // The connection closed or failed: the request loop notices on its next send.
            _ = &mut connection => requests.await,
        };
        if finished {
            break;
        }
    }
    stats
}

/// Sends requests back to back until the end of the run (returns true) or until the connection
/// breaks or is closed by the server (returns false).
async fn send_loop(
    ctx: &Ctx,
    sender: &mut SendRequest<Empty<Bytes>>,
    stats: &mut ConnStats,
    picker: &mut Picker,
) -> bool {
    loop {
        let started = Instant::now();
        if started >= ctx.end {
            return true;
        }
        let (stream, target) = picker.next(ctx);
        let mut request = Request::new(Empty::<Bytes>::new());
        *request.uri_mut() = ctx.streams[stream].targets[target].clone();
        let headers = request.headers_mut();
        headers.insert(HOST, ctx.host.clone());
        headers.insert(ACCEPT, ctx.accept.clone());
        let outcome = tokio::time::timeout(ctx.timeout, exchange(sender, request)).await;
        let done = Instant::now();
        let measured = started >= ctx.warm_end;
        if measured {
            stats.last_done = Some(done);
        } else {
            stats.warmup_requests += 1;
        }
        let s = &mut stats.streams[stream];
        match outcome {
            Ok(Ok(exchanged)) => {
                if measured {
                    s.body_bytes += exchanged.body_bytes;
                    if exchanged.status.is_success() {
                        s.ok += 1;
                        let micros = u64::try_from(done.duration_since(started).as_micros())
                            .unwrap_or(u64::MAX);
                        s.latency.saturating_record(micros.max(1));
                    } else {
                        *s.statuses.entry(exchanged.status.as_u16()).or_default() += 1;
                    }
                }
                if exchanged.close {
                    return false;
                }
            }
            Ok(Err(_)) => {
                if measured {
                    s.transport_errors += 1;
                }
                return false;
            }
            Err(_) => {
                if measured {
                    s.timeouts += 1;
                }
                return false;
            }
        }
    }
}

struct Exchanged {
    status: hyper::StatusCode,
    body_bytes: u64,
    close: bool,
}

async fn exchange(
    sender: &mut SendRequest<Empty<Bytes>>,
    request: Request<Empty<Bytes>>,
) -> Result<Exchanged, hyper::Error> {
    sender.ready().await?;
    let response = sender.send_request(request).await?;
    let status = response.status();
    let close = response
        .headers()
        .get(CONNECTION)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
    let mut body = response.into_body();
    let mut body_bytes = 0u64;
    while let Some(frame) = body.frame().await {
        if let Some(data) = frame?.data_ref() {
            body_bytes += data.len() as u64;
        }
    }
    Ok(Exchanged {
        status,
        body_bytes,
        close,
    })
}
