//! The practice directory over the whole simulated PCN (PDS, GP Connect, EMIS-style and
//! TPP-style simulators over real HTTP): versioned connections, routing by capability profile,
//! the registered practice found through PDS, honest gaps, and capability profiles built from
//! configuration plus GP Connect's CapabilityStatement.

use std::net::SocketAddr;
use std::sync::Arc;

use keel_core::integration::{
    IntegrationError, Interface, Operation, PracticeConnection, SectionContent,
};
use keel_core::{CorrelationId, RequestContext};
use keel_integrations::directory::{Directory, DirectoryError, RecordError};
use keel_integrations::gpconnect::request::Consumer;
use keel_integrations::http::Endpoint;
use keel_integrations::pds::PdsClient;
use keel_model::record::RecordSection;
use keel_model::{NhsNumber, OdsCode, SectionState, SourceSystem};
use keel_sim::connections::{self, SimulatorAddresses};
use keel_sim::faults::{FaultConfig, FaultHandle};
use keel_sim::gpconnect::capabilities::Capability;
use keel_sim::model::{
    Confidentiality, GpSystem, NhsNumberStatus, PatientRecord, RegistrationType,
};
use keel_sim::records::PracticeRecords;
use keel_sim::{Options, Population, emis, gpconnect, pds, tpp};

struct Pcn {
    records: Arc<PracticeRecords>,
    connections: Vec<PracticeConnection>,
    pds: PdsClient,
    gp: gpconnect::GpConnectSimulator,
    gp_faults: FaultHandle,
    tpp_faults: FaultHandle,
}

fn ctx() -> RequestContext {
    RequestContext::local_development(CorrelationId::parse("test-directory").expect("valid"))
}

fn consumer() -> Consumer {
    Consumer {
        asid: "200000000359".into(),
        endpoint: "https://keel.example/".into(),
        organisation: OdsCode::parse("U12345").expect("valid"),
        product: "keel".into(),
        version: "test".into(),
    }
}

async fn start() -> Pcn {
    let options = Options {
        patients: 2000,
        practices: 4,
        ..Options::default()
    };
    let records = Arc::new(PracticeRecords::new(Population::generate(options.clone())));
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    let gp = gpconnect::GpConnectSimulator::new(records.clone());
    let gp_faults = FaultHandle::default();
    let (gp_at, _g) = gpconnect::serve(gp.clone(), any, gp_faults.clone())
        .await
        .expect("bind");
    let (emis_at, _e) = emis::serve(
        emis::EmisSimulator::new(records.clone()),
        any,
        FaultHandle::default(),
    )
    .await
    .expect("bind");
    let tpp_faults = FaultHandle::default();
    let (tpp_at, _t) = tpp::serve(
        tpp::TppSimulator::new(records.clone()),
        any,
        tpp_faults.clone(),
    )
    .await
    .expect("bind");
    let demographics = Population::generate(Options {
        demographics_only: true,
        ..options
    });
    let pds_sim = pds::PdsSimulator::new(pds::from_population(&demographics));
    let (pds_at, _p) = pds::serve(pds_sim, any).await.expect("bind");
    let json = connections::for_pcn(
        records.population().pcn(),
        &gp,
        SimulatorAddresses {
            gp_connect: gp_at,
            emis: emis_at,
            tpp: tpp_at,
        },
        1_000,
    );
    let connections = serde_json::from_value(json).expect("the simulated PCN's connections");
    let pds = PdsClient::new(Endpoint::new(
        format!("http://{pds_at}{}", pds::BASE_PATH),
        std::time::Duration::from_secs(2),
    ))
    .expect("client");
    Pcn {
        records,
        connections,
        pds,
        gp,
        gp_faults,
        tpp_faults,
    }
}

fn directory(pcn: &Pcn, file: Option<std::path::PathBuf>) -> Directory {
    let directory = Directory::open(consumer(), Some(pcn.pds.clone()), file).expect("open");
    for c in &pcn.connections {
        directory
            .register(&ctx(), c.clone(), None, Some("initial".into()))
            .expect("register");
    }
    directory
}

/// A patient GP Connect and PDS will both serve, at a practice on `system`.
fn servable(pcn: &Pcn, system: GpSystem) -> PatientRecord {
    let population = pcn.records.population();
    population
        .persons()
        .map(|p| p.primary().clone())
        .find(|r| {
            population.pcn().practices[r.practice].system == system
                && r.registration.is_active()
                && r.death_date.is_none()
                && r.registration.kind == RegistrationType::Regular
                && r.nhs_status == NhsNumberStatus::Verified
                && r.confidentiality == Confidentiality::Unrestricted
                && r.clinical.conditions.len() > 1
        })
        .expect("such a patient")
}

fn nhs(r: &PatientRecord) -> NhsNumber {
    r.nhs_number.expect("an NHS number")
}

fn source_systems(section: &SectionContent) -> Vec<SourceSystem> {
    let json = serde_json::to_value(section).expect("serialise");
    json["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| serde_json::from_value(i["provenance"]["source_system"].clone()).expect("system"))
        .collect()
}

#[tokio::test]
async fn the_record_comes_from_the_registered_practice_through_its_supplier_api() {
    let pcn = start().await;
    let directory = directory(&pcn, None);
    for (system, source) in [
        (GpSystem::EmisStyle, SourceSystem::EmisStyle),
        (GpSystem::TppStyle, SourceSystem::TppStyle),
    ] {
        let patient = servable(&pcn, system);
        let record = directory
            .record(&ctx(), nhs(&patient), None, &[RecordSection::Problems])
            .await
            .expect("record");
        assert_eq!(
            record.practice,
            pcn.records.population().pcn().practices[patient.practice].ods
        );
        assert!(!record.is_partial());
        let systems = source_systems(&record.sections[0]);
        assert!(!systems.is_empty());
        assert!(systems.iter().all(|s| *s == source), "{systems:?}");
    }
}

#[tokio::test]
async fn disabling_the_supplier_api_routes_reads_to_gp_connect_and_refuses_writes_naming_why() {
    let pcn = start().await;
    let directory = directory(&pcn, None);
    let patient = servable(&pcn, GpSystem::EmisStyle);
    let ods = pcn.records.population().pcn().practices[patient.practice]
        .ods
        .clone();
    let mut changed = directory
        .history(&ods)
        .last()
        .expect("registered")
        .connection
        .clone();
    for i in &mut changed.interfaces {
        if i.interface == Interface::EmisStyle {
            i.enabled = false;
        }
    }
    let v2 = directory
        .register(
            &ctx(),
            changed.clone(),
            Some(1),
            Some("supplier API suspended".into()),
        )
        .expect("new version");
    assert_eq!(v2.version, 2);
    assert_eq!(v2.changed_by, "local development");

    let record = directory
        .record(
            &ctx(),
            nhs(&patient),
            None,
            &[RecordSection::Problems, RecordSection::Documents],
        )
        .await
        .expect("record");
    let systems = source_systems(&record.sections[0]);
    assert!(
        systems.iter().all(|s| *s == SourceSystem::GpConnect),
        "{systems:?}"
    );
    let SectionState::Unavailable { reason } = serde_json::from_value::<SectionState>(
        serde_json::to_value(&record.sections[1]).expect("json")["state"].clone(),
    )
    .expect("state") else {
        panic!("documents cannot be had through GP Connect");
    };
    assert!(reason.contains("read-documents"), "{reason}");

    let practice = directory.practice(&ods).expect("connected");
    let err = practice
        .system_for(Operation::CreateTask)
        .err()
        .expect("refused");
    assert!(matches!(err, IntegrationError::NotSupported { .. }));
    assert!(err.to_string().contains("emis-style is disabled"), "{err}");

    // A change made from a stale version is refused and changes nothing.
    let stale = directory.register(&ctx(), changed, Some(1), None);
    assert!(matches!(
        stale,
        Err(DirectoryError::VersionConflict { current: 2, .. })
    ));
    assert_eq!(directory.history(&ods).len(), 2);
}

#[tokio::test]
async fn a_practice_in_an_outage_gives_unavailable_sections_never_empty_ones() {
    let pcn = start().await;
    let directory = directory(&pcn, None);
    let patient = servable(&pcn, GpSystem::TppStyle);
    pcn.tpp_faults
        .set(FaultConfig {
            outage: true,
            ..FaultConfig::default()
        })
        .expect("valid");
    let record = directory
        .record(&ctx(), nhs(&patient), None, &RecordSection::ALL)
        .await
        .expect("a partial record, not an error");
    assert!(record.patient.is_none());
    assert!(record.is_partial());
    assert!(record.sections.iter().all(SectionContent::is_unavailable));
}

#[tokio::test]
async fn connections_are_saved_with_every_version_and_bad_ones_change_nothing() {
    let pcn = start().await;
    let dir = tempfile_dir();
    let file = dir.join("practice-connections.json");
    let first = directory(&pcn, Some(file.clone()));
    let ods = pcn.connections[0].ods.clone();
    let mut broken = pcn.connections[0].clone();
    broken.local_configuration.clear();
    let refused = first.register(&ctx(), broken, Some(1), None);
    assert!(
        matches!(refused, Err(DirectoryError::Invalid(ref m)) if m.contains("local configuration")),
        "{refused:?}"
    );

    let reopened = Directory::open(consumer(), None, Some(file)).expect("reopen");
    assert_eq!(reopened.current().len(), pcn.connections.len());
    assert_eq!(reopened.history(&ods), first.history(&ods));
    assert!(reopened.practice(&ods).is_some());
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test]
async fn without_pds_or_a_hint_the_registered_practice_is_unknown() {
    let pcn = start().await;
    let directory = Directory::open(consumer(), None, None).expect("open");
    let patient = servable(&pcn, GpSystem::EmisStyle);
    let answer = directory
        .record(&ctx(), nhs(&patient), None, &[RecordSection::Problems])
        .await;
    assert!(matches!(
        answer,
        Err(RecordError::RegisteredPracticeUnknown(_))
    ));
    let elsewhere = OdsCode::parse("Y99999").expect("valid");
    let answer = directory
        .record(
            &ctx(),
            nhs(&patient),
            Some(elsewhere),
            &[RecordSection::Problems],
        )
        .await;
    assert!(matches!(answer, Err(RecordError::PracticeNotConnected(_))));
}

#[tokio::test]
async fn a_probe_finds_appointments_switched_off_and_booking_is_refused_before_any_request() {
    let pcn = start().await;
    let directory = directory(&pcn, None);
    let ods = pcn.records.population().pcn().practices[0].ods.clone();
    let other = pcn.records.population().pcn().practices[1].ods.clone();
    pcn.gp
        .disable_capability(0, Capability::AppointmentManagement);

    // Configuration alone: booking goes to GP Connect (and would be refused there, 403).
    let practice = directory.practice(&ods).expect("connected");
    assert!(practice.probes.is_empty());
    let before = practice
        .system_for(Operation::BookAppointment)
        .map(|s| s.interface());
    assert_eq!(before, Ok(Interface::GpConnect));

    let status = directory
        .probe(&ctx(), &ods)
        .await
        .expect("a known practice");
    assert!(status.failures.is_empty(), "{:?}", status.failures);
    assert_eq!(status.probes.len(), 1, "only GP Connect can be asked");
    let probe = &status.probes[0];
    assert_eq!(probe.interface, Interface::GpConnect);
    assert!(probe.offered.contains(&Operation::FindPatient));
    assert!(probe.offered.contains(&Operation::ReadProblems));
    assert!(!probe.offered.contains(&Operation::SearchFreeSlots));
    assert!(!probe.offered.contains(&Operation::BookAppointment));

    let practice = directory.practice(&ods).expect("connected");
    for operation in [
        Operation::SearchFreeSlots,
        Operation::BookAppointment,
        Operation::CancelAppointment,
    ] {
        let err = practice.system_for(operation).err().expect("refused");
        assert!(
            matches!(err, IntegrationError::NotSupported { .. }),
            "{err}"
        );
        assert!(
            err.to_string()
                .contains("the gp-connect CapabilityStatement does not offer it"),
            "{err}"
        );
    }
    // Reads still go to the supplier's API; the other practice still offers everything.
    let supplier = practice.connection.system.supplier_interface();
    assert_eq!(
        practice
            .system_for(Operation::ReadProblems)
            .map(|s| s.interface()),
        Ok(supplier)
    );
    assert_eq!(directory.probe_status(&ods), Some(status));
    let everything = directory.probe_all(&ctx()).await;
    assert_eq!(everything.len(), pcn.connections.len());
    assert!(
        everything[&other].probes[0]
            .offered
            .contains(&Operation::BookAppointment)
    );
    let other_practice = directory.practice(&other).expect("connected");
    assert_eq!(
        other_practice
            .system_for(Operation::BookAppointment)
            .map(|s| s.interface()),
        Ok(Interface::GpConnect)
    );
}

#[tokio::test]
async fn a_failed_probe_is_reported_and_keeps_what_was_known() {
    let pcn = start().await;
    let directory = directory(&pcn, None);
    let ods = pcn.records.population().pcn().practices[0].ods.clone();
    let other = pcn.records.population().pcn().practices[1].ods.clone();
    pcn.gp
        .disable_capability(0, Capability::AppointmentManagement);
    let first = directory.probe(&ctx(), &ods).await.expect("probed");
    assert!(first.failures.is_empty());

    pcn.gp_faults
        .set(FaultConfig {
            outage: true,
            ..FaultConfig::default()
        })
        .expect("valid");
    // Never probed before: the failure is reported and configuration alone routes.
    let unprobed = directory
        .probe(&ctx(), &other)
        .await
        .expect("a known practice");
    assert!(unprobed.probes.is_empty());
    assert_eq!(unprobed.failures.len(), 1);
    assert_eq!(unprobed.failures[0].interface, Interface::GpConnect);
    assert!(
        unprobed.failures[0].reason.contains("unavailable"),
        "{:?}",
        unprobed.failures
    );
    let practice = directory.practice(&other).expect("connected");
    assert_eq!(
        practice.capability_profile(),
        practice.connection.capability_profile()
    );

    // Probed before: the earlier probe stays in force beside the failure.
    let again = directory
        .probe(&ctx(), &ods)
        .await
        .expect("a known practice");
    assert_eq!(again.probes, first.probes);
    assert_eq!(again.failures.len(), 1);
    let err = directory
        .practice(&ods)
        .expect("connected")
        .system_for(Operation::BookAppointment)
        .err()
        .expect("still refused");
    assert!(err.to_string().contains("CapabilityStatement"), "{err}");

    // A new version of the connection starts unprobed.
    let mut renamed = pcn.connections[0].clone();
    renamed.name = format!("{} (renamed)", renamed.name);
    directory
        .register(&ctx(), renamed, Some(1), None)
        .expect("new version");
    assert_eq!(directory.probe_status(&ods), Some(Default::default()));
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "keel-directory-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}
