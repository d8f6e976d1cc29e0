//! `keel demo`: the one-command demonstration. In one process: generates a synthetic PCN (five
//! practices on EMIS-style and TPP-style systems, a few thousand patients), serves it through
//! the PDS, GP Connect, EMIS-style and TPP-style simulators on free local ports, imports the
//! population's demographics into Keel's store, registers the practice connections, and serves
//! Keel — the FHIR API (development tokens from `keel token` accepted) and the clinician web UI
//! at `/ui/` with its demonstration users — printing the URL and how to sign in.

use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use keel_api::AppState;
use keel_api::auth::{Authentication, TokenVerifier};
use keel_core::access::{AccessControl, Pcn};
use keel_core::audit::{AuditTrail, CheckpointSigner};
use keel_core::integration::PracticeConnection;
use keel_core::policy::Policy;
use keel_integrations::circuit::CircuitPolicy;
use keel_integrations::directory::Directory;
use keel_integrations::http::Endpoint;
use keel_integrations::pds::PdsClient;
use keel_model::{NhsNumber, OdsCode};
use keel_sim::faults::{FaultConfig, FaultHandle};
use keel_sim::model::{Confidentiality, NhsNumberStatus, PatientRecord, RegistrationType};
use keel_sim::output::{self, Format, WriteOptions};
use keel_sim::population::{Options, Population};
use keel_sim::{emis, gpconnect, pds, tpp};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Practices in the demonstration PCN.
const PRACTICES: usize = 5;
/// Adapter call timeout written into the demonstration's practice connections.
const CONNECTION_TIMEOUT_MS: u64 = 2_000;

#[derive(Args)]
pub struct DemoArgs {
    /// Data directory of the demonstration's embedded database (kept between runs).
    #[arg(long, env = "KEEL_DATA", default_value = "./keel-demo-data")]
    data: PathBuf,
    /// Address Keel listens on (the simulators take free local ports).
    #[arg(long, env = "KEEL_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Seed of the synthetic population (the same seed gives the same patients).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// People in the PCN.
    #[arg(long, default_value_t = 3_000)]
    patients: u64,
}

/// One step of the preparation, shown as a spinner and then a tick with its time.
struct Step {
    bar: ProgressBar,
    started: Instant,
}

impl Step {
    fn start(n: usize, of: usize, what: &str) -> Step {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_message(format!("[{n}/{of}] {what}"));
        bar.enable_steady_tick(Duration::from_millis(120));
        Step {
            bar,
            started: Instant::now(),
        }
    }

    fn done(self, summary: &str) {
        self.bar.finish_and_clear();
        eprintln!(
            "  ✓ {summary} ({:.1} s)",
            self.started.elapsed().as_secs_f64()
        );
    }
}

const STEPS: usize = 5;

pub fn run(args: DemoArgs) -> Result<ExitCode, String> {
    let started = Instant::now();
    std::fs::create_dir_all(&args.data)
        .map_err(|e| format!("cannot create {}: {e}", args.data.display()))?;
    eprintln!(
        "keel demo: preparing a simulated PCN in {}",
        args.data.display()
    );

    let step = Step::start(1, STEPS, "generating the synthetic population");
    let options = Options {
        seed: args.seed,
        patients: args.patients,
        practices: PRACTICES,
        demographics_only: false,
        as_of: Options::default().as_of,
    };
    let demographics = Population::generate(Options {
        demographics_only: true,
        ..options.clone()
    });
    let population = Population::generate(options);
    let pcn = population.pcn().clone();
    let examples = example_patients(&population);
    step.done(&format!(
        "{} people in {} practices ({})",
        args.patients,
        pcn.practices.len(),
        pcn.practices
            .iter()
            .map(|p| p.system.key())
            .collect::<Vec<_>>()
            .join(", ")
    ));

    let step = Step::start(2, STEPS, "importing demographics into Keel's store");
    let export = args.data.join("demo-population");
    output::write(
        &demographics,
        &WriteOptions {
            out: export.clone(),
            format: Format::Fhir,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        },
        |_| {},
    )
    .map_err(|e| format!("cannot write the population: {e}"))?;
    let imported = crate::import::run(crate::import::ImportArgs::of(
        vec![export],
        args.data.clone(),
    ))?;
    if imported != ExitCode::SUCCESS {
        return Err("the population could not be imported (see above)".into());
    }
    step.done("Patients, practices and staff stored");

    let pds_records = pds::from_population(&demographics);
    let records = Arc::new(keel_sim::records::PracticeRecords::new(population));
    let gp_connect = gpconnect::GpConnectSimulator::new(records.clone());

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(crate::serve::MAX_STORE_THREADS)
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(async move {
        let step = Step::start(
            3,
            STEPS,
            "starting the PDS, GP Connect, EMIS-style and TPP-style simulators",
        );
        let any_port: SocketAddr = ([127, 0, 0, 1], 0).into();
        let faults = || FaultHandle::new(FaultConfig::default());
        let bind =
            |name: &str, e: std::io::Error| format!("cannot start the {name} simulator: {e}");
        let (pds_at, _pds) =
            pds::serve_with_faults(pds::PdsSimulator::new(pds_records), any_port, faults())
                .await
                .map_err(|e| bind("PDS", e))?;
        let (gp_at, _gpc) = gpconnect::serve(gp_connect.clone(), any_port, faults())
            .await
            .map_err(|e| bind("GP Connect", e))?;
        let (emis_at, _emis) = emis::serve(
            emis::EmisSimulator::new(records.clone()),
            any_port,
            faults(),
        )
        .await
        .map_err(|e| bind("EMIS-style", e))?;
        let (tpp_at, _tpp) =
            tpp::serve(tpp::TppSimulator::new(records.clone()), any_port, faults())
                .await
                .map_err(|e| bind("TPP-style", e))?;
        step.done("simulators listening");
        for (name, at) in [
            ("PDS", pds_at),
            ("GP Connect", gp_at),
            ("EMIS-style", emis_at),
            ("TPP-style", tpp_at),
        ] {
            // The exact lines scripts read to inject faults.
            println!("keel demo: {name} simulator faults at http://{at}/_admin/faults");
        }

        let step = Step::start(4, STEPS, "registering the practice connections");
        let instance = format!("{:x}", std::process::id());
        let ctx = crate::serve::start_context(&instance, "demo");
        let connections = keel_sim::connections::for_pcn(
            &pcn,
            &gp_connect,
            keel_sim::connections::SimulatorAddresses {
                gp_connect: gp_at,
                emis: emis_at,
                tpp: tpp_at,
            },
            CONNECTION_TIMEOUT_MS,
        );
        let connections: Vec<PracticeConnection> = serde_json::from_value(connections)
            .map_err(|e| format!("the simulated connections: {e}"))?;
        let pds_url = format!("http://{pds_at}{}", pds::BASE_PATH);
        let pds_client = PdsClient::new(Endpoint::new(&pds_url, Duration::from_secs(5)))
            .map_err(|e| format!("PDS client: {e}"))?;
        let consumer = keel_integrations::gpconnect::request::Consumer {
            asid: "200000000001".into(),
            endpoint: format!("http://{}/", args.listen),
            organisation: OdsCode::parse("U00000").map_err(|e| e.to_string())?,
            product: "keel".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        };
        let directory = Directory::open_with(
            consumer,
            Some(pds_client),
            Some(args.data.join("practice-connections.json")),
            CircuitPolicy {
                failure_threshold: 5,
                cooldown: Duration::from_secs(30),
            },
        )
        .map_err(|e| e.to_string())?;
        crate::serve::register_connections(
            &directory,
            connections,
            &ctx,
            "keel demo: the simulated PCN",
        )?;
        let directory = Arc::new(directory);
        step.done(&format!("{} practices connected", pcn.practices.len()));

        let step = Step::start(5, STEPS, "starting Keel and the clinician web UI");
        let store = crate::open_store(&args.data, None, keel_store::Durability::EveryCommit)?;
        let signer = CheckpointSigner::new(
            crate::audit_key::open_or_create(&args.data)?,
            crate::audit::CHECKPOINT_EVERY,
        );
        let trail = Arc::new(AuditTrail::start(store.clone(), signer));
        let tenant = Pcn {
            code: pcn.ods.clone(),
            name: pcn.name.clone(),
            practices: pcn.practices.iter().map(|p| p.ods.clone()).collect(),
            hub: None,
        };
        let policy = Policy::default_policy().map_err(|e| format!("the shipped policy: {e}"))?;
        let fhir = Arc::new(
            crate::service_over(store)
                .with_access(AccessControl::new(policy, Some(tenant)))
                .with_audit(trail.clone()),
        );
        let verifier = crate::serve::trust_dev_issuer(
            TokenVerifier::new(crate::token::DEFAULT_AUDIENCE.to_string(), 60),
            &args.data,
        )?;
        let api = Arc::new(
            AppState::new(
                fhir.clone(),
                None,
                instance.clone(),
                Authentication::Required(verifier),
            )
            .with_directory(directory.clone()),
        );
        let web = Arc::new(keel_web::WebState::new(
            fhir,
            directory.clone(),
            directory.pds().cloned(),
            api.http_metrics().clone(),
            instance.clone(),
        ));
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
        let local = listener.local_addr().map_err(|e| e.to_string())?;
        tokio::spawn(crate::serve::probe_every_practice(
            directory,
            crate::serve::start_context(&instance, "probe"),
        ));
        let worker = keel_api::job_worker::JobWorker::spawn(
            api.fhir.clone(),
            keel_api::job_worker::WorkerConfig {
                node: format!("demo-{instance}"),
                lease: Duration::from_secs(30),
                poll: Duration::from_millis(500),
            },
        )
        .map_err(|e| format!("cannot start the background-job worker: {e}"))?;
        step.done("Keel serving");
        // The exact line end-to-end tests and scripts wait for.
        println!("keel: listening on http://{local}/fhir");
        print_welcome(local, started.elapsed(), &examples);
        axum::serve(listener, keel_web::router(web).merge(keel_api::router(api)))
            .with_graceful_shutdown(crate::serve::shutdown_signal())
            .await
            .map_err(|e| format!("server error: {e}"))?;
        drop(worker);
        trail.shutdown();
        Ok(ExitCode::SUCCESS)
    })
}

/// Patients worth opening: per practice, a registered patient with problems, medications and
/// observations (the first practices' first), with the practice's name.
fn example_patients(population: &Population) -> Vec<(NhsNumber, String)> {
    let pcn = population.pcn();
    let mut found: Vec<Option<(NhsNumber, String)>> = vec![None; pcn.practices.len()];
    for person in population.persons() {
        let r: &PatientRecord = person.primary();
        if found[r.practice].is_some() || !is_good_example(r) {
            continue;
        }
        if let Some(nhs) = r.nhs_number {
            let practice = &pcn.practices[r.practice];
            found[r.practice] = Some((
                nhs,
                format!(
                    "{} ({}, {})",
                    practice.name,
                    practice.ods,
                    practice.system.key()
                ),
            ));
        }
        if found.iter().all(Option::is_some) {
            break;
        }
    }
    found.into_iter().flatten().collect()
}

fn is_good_example(r: &PatientRecord) -> bool {
    r.registration.is_active()
        && r.death_date.is_none()
        && r.registration.kind == RegistrationType::Regular
        && r.nhs_status == NhsNumberStatus::Verified
        && r.confidentiality == Confidentiality::Unrestricted
        && r.clinical.conditions.len() > 1
        && !r.clinical.medications.is_empty()
        && r.clinical.observations.len() > 3
}

fn print_welcome(at: SocketAddr, took: Duration, examples: &[(NhsNumber, String)]) {
    println!();
    println!("Keel demo ready in {:.1} s.", took.as_secs_f64());
    println!();
    println!("  Open http://{at}/ui/ and sign in: choose a role and an organisation (no password;");
    println!("  development sign-in, synthetic patients only). The demonstration users:");
    for u in &keel_web::session::DEMO_USERS {
        println!(
            "    {:<28} {:<16} {} {}",
            u.job, u.name, u.role_code, u.role_name
        );
    }
    println!();
    println!("  Patients to look up (NHS numbers from the 999 test range):");
    for (nhs, practice) in examples {
        println!("    {}  registered at {practice}", nhs.as_str());
    }
    println!();
    println!(
        "  The FHIR API is at http://{at}/fhir (bearer tokens from `keel token`); Ctrl-C stops."
    );
}
