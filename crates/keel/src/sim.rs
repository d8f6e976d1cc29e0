//! `keel sim`: the simulated PCN. `keel sim generate` writes a synthetic population (native
//! JSON Lines and/or FHIR R4 NDJSON that `keel import` loads); `keel sim serve` serves it
//! through every simulator — PDS, GP Connect, EMIS-style and TPP-style — each on its own address
//! with its own fault controls.

use clap::{Args, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use keel_sim::date::Date;
use keel_sim::output::{self, Format, WriteOptions};
use keel_sim::population::{NHS_NUMBER_CAPACITY, Options, Population};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args)]
pub struct SimArgs {
    #[command(subcommand)]
    command: SimCommand,
}

#[derive(Subcommand)]
enum SimCommand {
    /// Generate a synthetic PCN population into a directory.
    Generate(GenerateArgs),
    /// Serve the population through the simulators (PDS, GP Connect, EMIS-style, TPP-style)
    /// until interrupted.
    Serve(ServeArgs),
    /// Two CSV files of the same people with realistic errors, and the truth (for `keel match`).
    Linkage(crate::sim_linkage::LinkageArgs),
}

#[derive(Args)]
struct ServeArgs {
    /// Seed of the population (as for `generate`).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// People in the PCN.
    #[arg(long, default_value_t = 40_000)]
    patients: u64,
    /// Practices in the PCN.
    #[arg(long, default_value_t = 5)]
    practices: usize,
    /// Address of the PDS simulator.
    #[arg(long, default_value = "127.0.0.1:9100")]
    pds: std::net::SocketAddr,
    /// Address of the GP Connect providers (one service root per practice).
    #[arg(long, default_value = "127.0.0.1:9101")]
    gp_connect: std::net::SocketAddr,
    /// Address of the EMIS-style supplier API (the EMIS-style practices).
    #[arg(long, default_value = "127.0.0.1:9102")]
    emis: std::net::SocketAddr,
    /// Address of the TPP-style supplier API (the TPP-style practices).
    #[arg(long, default_value = "127.0.0.1:9103")]
    tpp: std::net::SocketAddr,
    /// Faults to inject from the start into every simulator, as the JSON that
    /// `/_admin/faults` takes, e.g.
    /// '{"seed": 7, "error_rate": 0.1, "latency": {"kind": "fixed", "ms": 50}}'. Each simulator
    /// has its own `/_admin/faults` to change them at runtime.
    #[arg(long)]
    faults: Option<String>,
    /// Switch a GP Connect capability off at a practice, as ODS:capability (capability:
    /// structured, html or appointments); repeatable. Its interactions then answer 403
    /// ACCESS DENIED and the practice's CapabilityStatement leaves it out.
    #[arg(long = "gp-connect-disable", value_name = "ODS:CAPABILITY")]
    gp_connect_disable: Vec<String>,
    /// Write the practice connections of the simulated PCN (for `keel serve --connections`)
    /// to this file once the simulators listen.
    #[arg(long)]
    connections_out: Option<PathBuf>,
    /// Write the simulated PCN (code, name, member practices; for `keel serve --pcn`) to this
    /// file.
    #[arg(long)]
    pcn_out: Option<PathBuf>,
    /// The timeout (ms) written into those connections.
    #[arg(long, default_value_t = 2_000)]
    connection_timeout_ms: u64,
}

#[derive(Clone, Copy, ValueEnum)]
enum FormatArg {
    /// Compact JSON Lines per practice under DIR/native/.
    Native,
    /// FHIR R4 NDJSON, one file per resource type, at the top of DIR (for `keel import DIR`).
    Fhir,
    /// Both.
    Both,
}

#[derive(Args)]
struct GenerateArgs {
    /// Seed: the same seed and options give byte-identical output.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// People in the PCN.
    #[arg(long, default_value_t = 40_000)]
    patients: u64,
    /// Practices in the PCN.
    #[arg(long, default_value_t = 5)]
    practices: usize,
    /// Demographics and registrations only (no clinical records).
    #[arg(long)]
    demographics_only: bool,
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
    /// What to write.
    #[arg(long, value_enum, default_value_t = FormatArg::Native)]
    format: FormatArg,
    /// The population's "today" (YYYY-MM-DD).
    #[arg(long, default_value = "2026-01-05", value_parser = parse_date)]
    as_of: Date,
    /// Generator threads (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

fn parse_date(s: &str) -> Result<Date, String> {
    let parts: Vec<&str> = s.split('-').collect();
    let bad = || format!("expected YYYY-MM-DD, got {s:?}");
    if parts.len() != 3 {
        return Err(bad());
    }
    let y: i32 = parts[0].parse().map_err(|_| bad())?;
    let m: u32 = parts[1].parse().map_err(|_| bad())?;
    let d: u32 = parts[2].parse().map_err(|_| bad())?;
    if !(1900..=2200).contains(&y) || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return Err(bad());
    }
    let date = Date::ymd(y, m, d);
    if date.civil() != (y, m, d) {
        return Err(bad());
    }
    Ok(date)
}

pub fn run(args: SimArgs) -> Result<ExitCode, String> {
    match args.command {
        SimCommand::Generate(g) => generate(g),
        SimCommand::Serve(s) => serve(s),
        SimCommand::Linkage(l) => crate::sim_linkage::run(l),
    }
}

fn serve(args: ServeArgs) -> Result<ExitCode, String> {
    use keel_sim::faults::{FaultConfig, FaultHandle};
    use keel_sim::{emis, gpconnect, pds, tpp};

    let faults = match &args.faults {
        Some(json) => FaultConfig::from_json_str(json).map_err(|e| format!("--faults: {e}"))?,
        None => FaultConfig::default(),
    };
    faults.validate().map_err(|e| format!("--faults: {e}"))?;
    let options = Options {
        seed: args.seed,
        patients: args.patients,
        practices: args.practices.max(1),
        demographics_only: false,
        as_of: Options::default().as_of,
    };
    let demographics = Population::generate(Options {
        demographics_only: true,
        ..options.clone()
    });
    let pds_sim = pds::PdsSimulator::new(pds::from_population(&demographics));
    let records = std::sync::Arc::new(keel_sim::records::PracticeRecords::new(
        Population::generate(options),
    ));
    let practices: Vec<(String, &'static str)> = records
        .population()
        .pcn()
        .practices
        .iter()
        .map(|p| (p.ods.as_str().to_string(), p.system.key()))
        .collect();
    let gp_connect = gpconnect::GpConnectSimulator::new(records.clone());
    for item in &args.gp_connect_disable {
        let bad =
            || format!("--gp-connect-disable {item}: expected ODS:structured|html|appointments");
        let (ods, key) = item.split_once(':').ok_or_else(bad)?;
        let capability = gpconnect::capabilities::Capability::from_key(key).ok_or_else(bad)?;
        let practice = practices
            .iter()
            .position(|(code, _)| code.eq_ignore_ascii_case(ods))
            .ok_or_else(|| format!("--gp-connect-disable: no practice {ods} in the PCN"))?;
        gp_connect.disable_capability(practice, capability);
    }
    let roots: Vec<String> = (0..practices.len())
        .map(|i| {
            format!(
                "{} ({}, ASID {})",
                practices[i].0,
                practices[i].1,
                gp_connect.asid(i).unwrap_or("?")
            )
        })
        .collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async move {
        let bind = |name: &str, addr: std::net::SocketAddr, e: std::io::Error| {
            format!("cannot listen for {name} on {addr}: {e}")
        };
        let (at, _pds) =
            pds::serve_with_faults(pds_sim, args.pds, FaultHandle::new(faults.clone()))
                .await
                .map_err(|e| bind("PDS", args.pds, e))?;
        println!(
            "keel sim: PDS listening on http://{at}{} (faults at /_admin/faults)",
            pds::BASE_PATH
        );
        let (gp_at, _gpc) = gpconnect::serve(
            gp_connect.clone(),
            args.gp_connect,
            FaultHandle::new(faults.clone()),
        )
        .await
        .map_err(|e| bind("GP Connect", args.gp_connect, e))?;
        println!(
            "keel sim: GP Connect listening on http://{gp_at}/{{ODS}}/STU3/1/gpconnect for {}",
            roots.join(", ")
        );
        let (emis_at, _emis) = emis::serve(
            emis::EmisSimulator::new(records.clone()),
            args.emis,
            FaultHandle::new(faults.clone()),
        )
        .await
        .map_err(|e| bind("EMIS-style", args.emis, e))?;
        println!(
            "keel sim: EMIS-style listening on http://{emis_at}{}/practices/{{ODS}}",
            emis::BASE_PATH
        );
        let (tpp_at, _tpp) = tpp::serve(
            tpp::TppSimulator::new(records.clone()),
            args.tpp,
            FaultHandle::new(faults),
        )
        .await
        .map_err(|e| bind("TPP-style", args.tpp, e))?;
        println!(
            "keel sim: TPP-style listening on http://{tpp_at}{}/{{ODS}}",
            tpp::BASE_PATH
        );
        if let Some(path) = &args.connections_out {
            let connections = keel_sim::connections::for_pcn(
                records.population().pcn(),
                &gp_connect,
                keel_sim::connections::SimulatorAddresses {
                    gp_connect: gp_at,
                    emis: emis_at,
                    tpp: tpp_at,
                },
                args.connection_timeout_ms,
            );
            let text = serde_json::to_string_pretty(&connections).map_err(|e| e.to_string())?;
            std::fs::write(path, text)
                .map_err(|e| format!("--connections-out {}: {e}", path.display()))?;
            println!(
                "keel sim: practice connections written to {}",
                path.display()
            );
        }
        if let Some(path) = &args.pcn_out {
            let pcn = records.population().pcn();
            let tenant = keel_core::access::Pcn {
                code: pcn.ods.clone(),
                name: pcn.name.clone(),
                practices: pcn.practices.iter().map(|p| p.ods.clone()).collect(),
                hub: None,
            };
            let text = serde_json::to_string_pretty(&tenant).map_err(|e| e.to_string())?;
            std::fs::write(path, text).map_err(|e| format!("--pcn-out {}: {e}", path.display()))?;
            println!("keel sim: the PCN written to {}", path.display());
        }
        tokio::signal::ctrl_c().await.map_err(|e| e.to_string())?;
        Ok(ExitCode::SUCCESS)
    })
}

fn generate(args: GenerateArgs) -> Result<ExitCode, String> {
    if args.practices == 0 {
        return Err("--practices must be at least 1".into());
    }
    if args.patients > NHS_NUMBER_CAPACITY {
        eprintln!(
            "keel sim: note: the 999 test range holds {NHS_NUMBER_CAPACITY} distinct valid NHS numbers; \
             the {} persons beyond that get none (quality issue test-range-exhausted)",
            args.patients - NHS_NUMBER_CAPACITY
        );
    }
    let population = Population::generate(Options {
        seed: args.seed,
        patients: args.patients,
        practices: args.practices,
        demographics_only: args.demographics_only,
        as_of: args.as_of,
    });
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let format = match args.format {
        FormatArg::Native => Format::Native,
        FormatArg::Fhir => Format::Fhir,
        FormatArg::Both => Format::Both,
    };
    let target = if args.quiet {
        ProgressDrawTarget::hidden()
    } else {
        ProgressDrawTarget::stderr()
    };
    let bar = ProgressBar::with_draw_target(Some(args.patients), target);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} persons  {msg}",
        )
        .map_err(|e| e.to_string())?,
    );
    let started = std::time::Instant::now();
    let summary = output::write(
        &population,
        &WriteOptions {
            out: args.out.clone(),
            format,
            threads,
        },
        |p| {
            bar.set_position(p.persons_done);
            let secs = started.elapsed().as_secs_f64().max(1e-9);
            bar.set_message(format!(
                "{} records, {} entries ({:.0} entries/s), {} MB",
                p.records,
                p.entries,
                p.entries as f64 / secs,
                p.bytes >> 20
            ));
        },
    )
    .map_err(|e| format!("cannot write the population: {e}"))?;
    bar.finish_and_clear();
    let secs = summary.elapsed.as_secs_f64().max(1e-9);
    let pcn = population.pcn();
    for p in &pcn.practices {
        println!(
            "practice {} {:<34} {:<10} list {:>7}  legacy {}",
            p.ods,
            p.name,
            p.system.key(),
            p.list_size,
            p.config.legacy_scheme.key()
        );
    }
    if !summary.fhir.is_empty() {
        let resources: u64 = summary.fhir.iter().map(|(_, n)| n).sum();
        let by_type: Vec<String> = summary
            .fhir
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(t, n)| format!("{t} {n}"))
            .collect();
        println!("FHIR resources: {resources} ({})", by_type.join(", "));
    }
    println!(
        "generated {} persons, {} records, {} entries (largest record {}) into {} in {:.1} s \
         ({:.0} entries/s, {:.0} records/s, {:.0} persons/s, {} MB written)",
        summary.persons,
        summary.records,
        summary.entries,
        summary.max_entries,
        args.out.display(),
        secs,
        summary.entries as f64 / secs,
        summary.records as f64 / secs,
        summary.persons as f64 / secs,
        summary.bytes >> 20
    );
    Ok(ExitCode::SUCCESS)
}
