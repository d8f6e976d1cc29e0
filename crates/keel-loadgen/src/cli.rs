//! The command line: `read`, `search` and `import`.

use crate::client::Client;
use crate::discover::{self, Limits};
use crate::duration::parse_duration;
use crate::import::{self, ImportConfig};
use crate::load::{self, LoadConfig, LoadResult, Order, Stream};
use crate::report::{self, RunInfo};
use crate::rng::SplitMix64;
use crate::target::Target;
use crate::template::{Rows, Template, encode_value};
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(
    name = "keel-loadgen",
    version,
    about = "Load generator for any FHIR R4 base URL (plain HTTP/1.1 keep-alive): read, search and import workloads",
    long_about = "Load generator for any FHIR R4 base URL, for Keel's benchmarks: the same workload runs against Keel or \
                  another server side by side. Every run stops by itself. Only loopback base URLs are accepted unless \
                  --allow-remote is given. Exit status: 0 all requests succeeded, 1 some failed, 2 the run could not be made."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Discover ids of a type, then GET {base}/{type}/{id} over N keep-alive connections.
    Read(ReadArgs),
    /// Send query templates such as `Observation?patient={Patient}&code=http://loinc.org|8480-6`.
    Search(SearchArgs),
    /// POST Bundle files (transaction or batch) to the base URL and report resources per second.
    Import(ImportArgs),
}

/// Where to send requests and how to report.
#[derive(Args, Debug, Clone)]
pub struct TargetArgs {
    /// FHIR R4 base URL (plain http; a loopback address unless --allow-remote).
    #[arg(
        long,
        env = "KEEL_LOADGEN_BASE",
        default_value = "http://127.0.0.1:8080/fhir"
    )]
    pub base: String,
    /// Allow a base URL whose host is not a loopback address. Never point this at a server you
    /// are not responsible for.
    #[arg(long)]
    pub allow_remote: bool,
    /// Print one JSON object with every figure instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Threads of the load generator (1 is plenty up to tens of thousands of requests per second).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Sample the resident memory (VmRSS) of this process every 250 ms and report its peak, with
    /// its CPU use (the server under test).
    #[arg(long)]
    pub pid: Option<u32>,
}

/// Shape of a timed run.
#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// Keep-alive connections, each driven by one task sending requests back to back.
    #[arg(long, default_value_t = 32)]
    pub connections: usize,
    /// Measured time (after the warm-up), e.g. 20s, 500ms, 2m.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Time before measuring starts, with the same load.
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// Longest wait for one response (it then counts as a timeout).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Seed of the random choices (same seed, same sequence per connection).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// How each connection picks among the candidate requests.
    #[arg(long, value_enum, default_value_t = OrderArg::Random)]
    pub order: OrderArg,
    /// Discover at most this many ids per type.
    #[arg(long, default_value_t = 10_000)]
    pub max_ids: usize,
    /// Follow at most this many search pages per discovery.
    #[arg(long, default_value_t = 100)]
    pub max_pages: usize,
    /// Discover and prepare, print a few of the requests that would be sent, and stop without
    /// loading the server.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderArg {
    Random,
    RoundRobin,
}

impl OrderArg {
    fn order(self) -> Order {
        match self {
            OrderArg::Random => Order::Random,
            OrderArg::RoundRobin => Order::RoundRobin,
        }
    }

    fn name(self) -> &'static str {
        match self {
            OrderArg::Random => "random",
            OrderArg::RoundRobin => "round-robin",
        }
    }
}

#[derive(Args, Debug, Clone)]
pub struct ReadArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub run: RunArgs,
    /// Resource type to read.
    #[arg(long = "type", value_name = "TYPE")]
    pub ty: String,
    /// Discover the ids with GET {base}/{type}?_count=1000&_elements=id and its next links (the
    /// default).
    #[arg(long, conflicts_with = "ids_file")]
    pub ids_from_search: bool,
    /// Read the ids from this file instead (one a line).
    #[arg(long, value_name = "FILE")]
    pub ids_file: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct SearchArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub run: RunArgs,
    /// A query relative to the base, with placeholders {Type} (a random id of that type) and
    /// {Type.path.to.field} (a value from a sampled resource of that type). Repeat for several
    /// queries, sent round-robin and reported separately.
    #[arg(long = "query", value_name = "TEMPLATE", required = true)]
    pub queries: Vec<String>,
    /// Resources sampled per type for {Type.path} placeholders (GET {base}/{Type}?_count=N).
    #[arg(long, default_value_t = 500)]
    pub sample: usize,
    /// Concrete requests generated per query before the run; each request picks one at random.
    #[arg(long, default_value_t = 10_000)]
    pub pool: usize,
}

#[derive(Args, Debug, Clone)]
pub struct ImportArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Bundles POSTed at once (one connection each).
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Longest wait for the response to one Bundle.
    #[arg(long, default_value = "300s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Bundle files (.json, .json.bz2, .json.xz) or directories of them.
    #[arg(required = true, value_name = "FILES")]
    pub files: Vec<PathBuf>,
}

/// Runs a parsed command line and prints its report.
pub fn main_with(cli: Cli) -> ExitCode {
    let threads = match &cli.command {
        Command::Read(a) => a.target.threads,
        Command::Search(a) => a.target.threads,
        Command::Import(a) => a.target.threads,
    };
    let runtime = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(r) => r,
        Err(e) => {
            eprintln!("keel-loadgen: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run_command(cli.command)) {
        Ok(Outcome { text, json, failed }) => {
            match json {
                Some(value) => println!("{value}"),
                None => print!("{text}"),
            }
            if failed {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(message) => {
            eprintln!("keel-loadgen: {message}");
            ExitCode::from(2)
        }
    }
}

/// A finished run: its report, and whether anything failed.
pub struct Outcome {
    pub text: String,
    pub json: Option<Value>,
    pub failed: bool,
}

pub async fn run_command(command: Command) -> Result<Outcome, String> {
    match command {
        Command::Read(args) => read(&args).await,
        Command::Search(args) => search(&args).await,
        Command::Import(args) => import(&args).await,
    }
}

fn note(quiet: bool, message: impl AsRef<str>) {
    if !quiet {
        eprintln!("keel-loadgen: {}", message.as_ref());
    }
}

fn load_config(run: &RunArgs, pid: Option<u32>) -> LoadConfig {
    LoadConfig {
        connections: run.connections,
        warmup: run.warmup,
        duration: run.duration,
        timeout: run.timeout,
        seed: run.seed,
        order: run.order.order(),
        pid,
    }
}

fn run_info(
    command: &'static str,
    target: &Target,
    t: &TargetArgs,
    run: &RunArgs,
    extra: Vec<(&'static str, Value)>,
) -> RunInfo {
    RunInfo {
        command,
        base: target.base_url.clone(),
        connections: run.connections,
        threads: t.threads.max(1),
        warmup: run.warmup,
        duration: run.duration,
        seed: run.seed,
        order: run.order.name(),
        extra,
    }
}

fn outcome(info: &RunInfo, names: &[String], result: &LoadResult, json: bool) -> Outcome {
    let failed = result.total().errors() > 0;
    if json {
        Outcome {
            text: String::new(),
            json: Some(report::load_json(info, names, result)),
            failed,
        }
    } else {
        Outcome {
            text: report::load_table(info, names, result),
            json: None,
            failed,
        }
    }
}

/// The report of a `--dry-run`: up to five request targets per stream.
fn dry_run(command: &str, streams: &[Stream], json: bool) -> Outcome {
    let samples: Vec<(String, Vec<String>)> = streams
        .iter()
        .map(|s| {
            (
                s.name.clone(),
                s.targets.iter().take(5).map(ToString::to_string).collect(),
            )
        })
        .collect();
    if json {
        let requests: serde_json::Map<String, Value> = samples
            .into_iter()
            .map(|(name, targets)| (name, json!(targets)))
            .collect();
        return Outcome {
            text: String::new(),
            json: Some(json!({"command": command, "dry_run": true, "requests": requests})),
            failed: false,
        };
    }
    let mut text = String::new();
    for (name, targets) in samples {
        text.push_str(&format!("{name}\n"));
        for t in targets {
            text.push_str(&format!("  GET {t}\n"));
        }
    }
    Outcome {
        text,
        json: None,
        failed: false,
    }
}

fn limits(run: &RunArgs, max: usize) -> Limits {
    Limits {
        max,
        max_pages: run.max_pages.max(1),
    }
}

/// `read`.
pub async fn read(args: &ReadArgs) -> Result<Outcome, String> {
    let target = Target::resolve(&args.target.base, args.target.allow_remote).await?;
    let ty = args.ty.trim();
    if ty.is_empty() || !ty.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(format!("not a resource type: {ty:?}"));
    }
    let ids = match &args.ids_file {
        Some(file) => std::fs::read_to_string(file)
            .map_err(|e| format!("cannot read {}: {e}", file.display()))?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .take(args.run.max_ids)
            .map(str::to_string)
            .collect(),
        None => {
            let mut client = Client::new(&target, args.run.timeout);
            discover::discover_ids(
                &mut client,
                &target,
                ty,
                limits(&args.run, args.run.max_ids),
            )
            .await?
        }
    };
    if ids.is_empty() {
        return Err(format!("no {ty} ids found at {}", target.base_url));
    }
    note(
        args.target.json,
        format!(
            "{} {ty} ids; {} connections for {:?}",
            ids.len(),
            args.run.connections,
            args.run.warmup + args.run.duration
        ),
    );
    let targets = ids
        .iter()
        .map(|id| target.uri(&target.path_for(&format!("{ty}/{}", encode_value(id)))))
        .collect::<Result<Vec<_>, _>>()?;
    let name = format!("{ty}/{{id}}");
    let result = load::run(
        &target,
        vec![Stream {
            name: name.clone(),
            targets,
        }],
        &load_config(&args.run, args.target.pid),
    )
    .await?;
    let info = run_info(
        "read",
        &target,
        &args.target,
        &args.run,
        vec![("type", json!(ty)), ("ids", json!(ids.len()))],
    );
    Ok(outcome(&info, &[name], &result, args.target.json))
}

/// `search`.
pub async fn search(args: &SearchArgs) -> Result<Outcome, String> {
    let target = Target::resolve(&args.target.base, args.target.allow_remote).await?;
    let templates = args
        .queries
        .iter()
        .map(|q| Template::parse(q))
        .collect::<Result<Vec<_>, _>>()?;
    let mut client = Client::new(&target, args.run.timeout);
    // What each type is needed for: ids only, or a sample of resources for paths.
    let mut id_types = BTreeMap::new();
    let mut sampled_types = BTreeMap::new();
    for t in &templates {
        for (ty, paths) in t.types() {
            if paths.is_empty() {
                id_types.insert(ty, Vec::new());
            } else {
                sampled_types.insert(ty, Vec::new());
            }
        }
    }
    for (ty, ids) in id_types.iter_mut() {
        *ids = discover::discover_ids(
            &mut client,
            &target,
            ty,
            limits(&args.run, args.run.max_ids),
        )
        .await?;
        note(args.target.json, format!("{} {ty} ids", ids.len()));
    }
    for (ty, resources) in sampled_types.iter_mut() {
        *resources = discover::sample_resources(
            &mut client,
            &target,
            ty,
            limits(&args.run, args.sample.max(1)),
        )
        .await?;
        note(
            args.target.json,
            format!("{} {ty} resources sampled", resources.len()),
        );
    }
    let mut streams = Vec::new();
    for (i, t) in templates.iter().enumerate() {
        let mut sources = BTreeMap::new();
        for (ty, paths) in t.types() {
            let rows = if paths.is_empty() {
                Rows {
                    rows: id_types
                        .get(&ty)
                        .map(|ids| ids.iter().map(|id| (id.clone(), Vec::new())).collect())
                        .unwrap_or_default(),
                }
            } else {
                let rows = discover::rows_of(
                    sampled_types
                        .get(&ty)
                        .map(Vec::as_slice)
                        .unwrap_or_default(),
                    &paths,
                );
                if rows.rows.is_empty() {
                    return Err(format!(
                        "no sampled {ty} has a value at every path {} needs",
                        t.source
                    ));
                }
                rows
            };
            sources.insert(ty, rows);
        }
        let count = if sources.is_empty() {
            1
        } else {
            args.pool.max(1)
        };
        let mut rng = SplitMix64::for_stream(args.run.seed, 1_000_000 + i as u64);
        let rendered = t.render_pool(&sources, count, &mut rng)?;
        let targets = rendered
            .iter()
            .map(|r| target.uri(&target.path_for(r)))
            .collect::<Result<Vec<_>, _>>()?;
        streams.push(Stream {
            name: t.source.clone(),
            targets,
        });
    }
    drop(client);
    if args.run.dry_run {
        return Ok(dry_run("search", &streams, args.target.json));
    }
    let names: Vec<String> = streams.iter().map(|s| s.name.clone()).collect();
    let result = load::run(&target, streams, &load_config(&args.run, args.target.pid)).await?;
    let info = run_info("search", &target, &args.target, &args.run, Vec::new());
    Ok(outcome(&info, &names, &result, args.target.json))
}

/// `import`.
pub async fn import(args: &ImportArgs) -> Result<Outcome, String> {
    let target = Target::resolve(&args.target.base, args.target.allow_remote).await?;
    let prepare_started = Instant::now();
    let paths = import::collect_files(&args.files)?;
    if paths.is_empty() {
        return Err("no Bundle files (.json, .json.bz2, .json.xz) found".into());
    }
    let files = tokio::task::spawn_blocking(move || import::load_files(&paths))
        .await
        .map_err(|e| format!("loading the files failed: {e}"))??;
    let prepare = prepare_started.elapsed();
    note(
        args.target.json,
        format!(
            "{} files, {} resources read in {:.1} s",
            files.len(),
            files.iter().map(|f| f.entries).sum::<u64>(),
            prepare.as_secs_f64()
        ),
    );
    let config = ImportConfig {
        connections: args.connections,
        timeout: args.timeout,
        pid: args.target.pid,
    };
    let result = import::run(&target, files, &config).await?;
    let failed = result.failures_total > 0;
    Ok(if args.target.json {
        Outcome {
            text: String::new(),
            json: Some(report::import_json(
                &target.base_url,
                args.connections,
                prepare,
                &result,
            )),
            failed,
        }
    } else {
        Outcome {
            text: report::import_table(&target.base_url, args.connections, prepare, &result),
            json: None,
            failed,
        }
    })
}
