//! The store contract: behaviour every backend must have. Each case is a function over a fresh
//! store; `contract_tests!` instantiates them for each backend: SQLite, and PostgreSQL with a
//! fresh schema per test.

use keel_core::audit::{
    self, AuditEntry, AuditOutcome, AuditRecord, AuditTrail, CheckpointSigner, RequestAudit,
    Subject,
};
use keel_core::clock::{SequentialIds, SteppingClock};
use keel_core::fhir::FhirService;
use keel_core::store::{
    HistoryQuery, HistoryScope, NewVersion, ResourceStore, ScopedQuery, StoreError, Visibility,
    WriteMethod,
};
use keel_core::{CorrelationId, RequestContext};
use keel_fhir::definitions;
use keel_fhir::index::{IndexEntry, IndexValue};
use keel_fhir::search::{Handling, parse_query};
use serde_json::{Value, json};
use std::num::NonZeroU64;
use std::sync::Arc;

mod test_schema;

fn ctx() -> RequestContext {
    RequestContext::local_development(CorrelationId::parse("contract").expect("id"))
}

fn version(rt: &str, id: &str, v: u64, at: i64, index: Vec<IndexEntry>) -> NewVersion {
    NewVersion {
        resource_type: rt.into(),
        id: id.into(),
        version: v,
        last_updated: at,
        method: if v == 1 {
            WriteMethod::Create
        } else {
            WriteMethod::Update
        },
        body: Some(
            json!({"resourceType": rt, "id": id, "meta": {"versionId": v.to_string()}}).to_string(),
        ),
        index,
    }
}

fn token(param: &str, system: Option<&str>, code: &str) -> IndexEntry {
    IndexEntry {
        param: param.into(),
        value: IndexValue::Token {
            system: system.map(str::to_string),
            code: Some(code.into()),
            text: None,
        },
    }
}

/// `query` (a query string) on `rt` over the whole store.
fn whole_store_query(rt: &str, query: &str) -> ScopedQuery {
    let pairs = keel_core::fhir::parse_query_string(query);
    let q = parse_query(definitions::r4(), rt, &pairs, Handling::Strict).expect("query");
    ScopedQuery::whole_store(q)
}

fn search(store: &dyn ResourceStore, rt: &str, query: &str) -> (Vec<String>, Option<u64>) {
    let result = store
        .reader()
        .expect("reader")
        .search(&whole_store_query(rt, query))
        .expect("search");
    (
        result.matches.iter().map(|r| r.id.clone()).collect(),
        result.total,
    )
}

fn write_all(store: &dyn ResourceStore, versions: Vec<NewVersion>) {
    let mut tx = store.begin().expect("begin");
    for v in versions {
        tx.write(v).expect("write");
    }
    tx.commit().expect("commit");
}

pub fn versions_are_kept_and_the_latest_is_current(store: &dyn ResourceStore) {
    write_all(
        store,
        vec![
            version("Patient", "a", 1, 1000, vec![]),
            version("Patient", "a", 2, 2000, vec![]),
        ],
    );
    let mut reader = store.reader().expect("reader");
    let current = reader.read("Patient", "a").expect("read").expect("present");
    assert_eq!(
        (current.version, current.last_updated, current.method),
        (2, 2000, WriteMethod::Update)
    );
    assert_eq!(
        reader
            .read_version("Patient", "a", 1)
            .expect("vread")
            .map(|r| r.version),
        Some(1)
    );
    assert!(
        reader
            .read_version("Patient", "a", 3)
            .expect("vread")
            .is_none()
    );
    assert!(reader.read("Patient", "b").expect("read").is_none());
    assert!(
        reader.read("Observation", "a").expect("read").is_none(),
        "ids are per type"
    );
}

pub fn versions_follow_the_write_sequence_by_type(store: &dyn ResourceStore) {
    assert_eq!(
        store
            .reader()
            .expect("reader")
            .version_head()
            .expect("head"),
        0
    );
    let mut deleted = version("Patient", "a", 2, 4000, vec![]);
    deleted.body = None;
    deleted.method = WriteMethod::Delete;
    write_all(
        store,
        vec![
            version("Patient", "a", 1, 1000, vec![]),
            version("Observation", "o", 1, 2000, vec![]),
            version("Patient", "b", 1, 3000, vec![]),
        ],
    );
    write_all(store, vec![deleted]);
    let mut reader = store.reader().expect("reader");
    let head = reader.version_head().expect("head");
    let all = reader
        .versions_between("Patient", 0, head, 10)
        .expect("versions");
    let seen: Vec<(String, u64, bool)> = all
        .iter()
        .map(|v| {
            (
                v.resource.id.clone(),
                v.resource.version,
                v.resource.is_deleted(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            ("a".to_string(), 1, false),
            ("b".to_string(), 1, false),
            ("a".to_string(), 2, true)
        ]
    );
    assert!(all.windows(2).all(|w| w[0].sequence < w[1].sequence));
    assert_eq!(all.last().map(|v| v.sequence), Some(head));
    // Paging by sequence, and a range that ends before the newest.
    let first = reader
        .versions_between("Patient", 0, head, 1)
        .expect("page");
    let rest = reader
        .versions_between("Patient", first[0].sequence, head, 10)
        .expect("rest");
    assert_eq!(rest.len(), 2);
    let earlier = reader
        .versions_between("Patient", 0, head - 1, 10)
        .expect("range");
    assert_eq!(earlier.len(), 2);
    assert!(
        reader
            .versions_between("Patient", head, head, 10)
            .expect("empty")
            .is_empty()
    );
}

pub fn a_deletion_is_a_version_without_a_body(store: &dyn ResourceStore) {
    let mut delete = version("Patient", "d", 2, 2000, vec![]);
    delete.body = None;
    delete.method = WriteMethod::Delete;
    write_all(
        store,
        vec![
            version("Patient", "d", 1, 1000, vec![token("gender", None, "male")]),
            delete,
        ],
    );
    let current = store
        .reader()
        .expect("reader")
        .read("Patient", "d")
        .expect("read")
        .expect("present");
    assert!(current.is_deleted());
    assert_eq!(
        search(store, "Patient", "gender=male").1,
        Some(0),
        "deleted resources are not found"
    );
}

pub fn writing_a_version_twice_is_a_conflict(store: &dyn ResourceStore) {
    write_all(store, vec![version("Patient", "c", 1, 1000, vec![])]);
    // Reported by the write, or by the commit where the backend holds first versions back;
    // either way nothing of the transaction is stored.
    let mut tx = store.begin().expect("begin");
    tx.write(version("Patient", "d", 1, 1001, vec![]))
        .expect("a new resource");
    let written = tx.write(version("Patient", "c", 1, 1001, vec![]));
    let err = match written {
        Err(err) => {
            drop(tx); // uncommitted
            err
        }
        Ok(()) => tx.commit().expect_err("duplicate version"),
    };
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    let mut reader = store.reader().expect("reader");
    let c = reader.read("Patient", "c").expect("read").expect("kept");
    assert_eq!(
        (c.version, c.last_updated),
        (1, 1000),
        "the first write stands"
    );
    assert!(reader.read("Patient", "d").expect("read").is_none());
    drop(reader);
    // A later version that is taken is a conflict at once that changes nothing.
    write_all(
        store,
        vec![
            version("Patient", "c", 2, 1002, vec![]),
            version("Patient", "c", 3, 1003, vec![]),
        ],
    );
    let mut tx = store.begin().expect("begin");
    for taken in [2, 3] {
        let err = tx
            .write(version("Patient", "c", taken, 1004, vec![]))
            .expect_err("a taken version");
        assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    }
    tx.commit().expect("the transaction is still usable");
    let c = store
        .reader()
        .expect("reader")
        .read("Patient", "c")
        .expect("read")
        .expect("kept");
    assert_eq!((c.version, c.last_updated), (3, 1003), "nothing changed");
}

/// New resources written in a transaction are there for everything it reads next (by id,
/// by version, by search, the version head and the versions since), for a later version of
/// the same resource in it, and for everyone once committed, in the order written.
pub fn a_transaction_reads_the_resources_it_created(store: &dyn ResourceStore) {
    let mut tx = store.begin().expect("begin");
    let head = tx.version_head().expect("head");
    tx.write(version(
        "Patient",
        "n1",
        1,
        2000,
        vec![token("gender", None, "female")],
    ))
    .expect("write");
    assert_eq!(
        tx.read("Patient", "n1").expect("read").map(|r| r.version),
        Some(1)
    );
    tx.write(version(
        "Patient",
        "n2",
        1,
        2001,
        vec![token("gender", None, "female")],
    ))
    .expect("write");
    assert_eq!(
        tx.read_version("Patient", "n2", 1)
            .expect("vread")
            .map(|r| r.last_updated),
        Some(2001)
    );
    tx.write(version(
        "Patient",
        "n3",
        1,
        2002,
        vec![token("gender", None, "female")],
    ))
    .expect("write");
    let found = tx
        .search(&whole_store_query("Patient", "gender=female"))
        .expect("search");
    assert_eq!(found.total, Some(3));
    tx.write(version("Patient", "n4", 1, 2003, vec![]))
        .expect("write");
    assert_eq!(tx.version_head().expect("head"), head + 4);
    // A create, then an update of it, before anything reads.
    tx.write(version(
        "Patient",
        "n5",
        1,
        2004,
        vec![token("gender", None, "female")],
    ))
    .expect("write");
    tx.write(version(
        "Patient",
        "n5",
        2,
        2005,
        vec![token("gender", None, "male")],
    ))
    .expect("write");
    let written = tx
        .versions_between("Patient", head, head + 10, 10)
        .expect("versions");
    let order: Vec<(&str, u64)> = written
        .iter()
        .map(|v| (v.resource.id.as_str(), v.resource.version))
        .collect();
    assert_eq!(
        order,
        [
            ("n1", 1),
            ("n2", 1),
            ("n3", 1),
            ("n4", 1),
            ("n5", 1),
            ("n5", 2)
        ],
        "sequenced in the order written"
    );
    tx.commit().expect("commit");
    assert_eq!(search(store, "Patient", "gender=female").1, Some(3));
    assert_eq!(search(store, "Patient", "gender=male").1, Some(1));
}

pub fn an_uncommitted_transaction_leaves_nothing(store: &dyn ResourceStore) {
    {
        let mut tx = store.begin().expect("begin");
        tx.write(version(
            "Patient",
            "r",
            1,
            1000,
            vec![token("gender", None, "female")],
        ))
        .expect("write");
        tx.set_checkpoint("k", "v").expect("checkpoint");
        assert!(
            tx.read("Patient", "r").expect("read").is_some(),
            "a transaction sees its own writes"
        );
        assert!(
            store
                .reader()
                .expect("reader")
                .read("Patient", "r")
                .expect("read")
                .is_none(),
            "others do not"
        );
    } // dropped without commit
    let mut reader = store.reader().expect("reader");
    assert!(reader.read("Patient", "r").expect("read").is_none());
    assert!(reader.checkpoint("k").expect("checkpoint").is_none());
    assert_eq!(search(store, "Patient", "gender=female").1, Some(0));
}

pub fn checkpoints_commit_with_their_transaction(store: &dyn ResourceStore) {
    let mut tx = store.begin().expect("begin");
    tx.set_checkpoint("import:x", "10").expect("set");
    tx.set_checkpoint("import:x", "20").expect("overwrite");
    tx.commit().expect("commit");
    assert_eq!(
        store
            .reader()
            .expect("reader")
            .checkpoint("import:x")
            .expect("read")
            .as_deref(),
        Some("20")
    );
}

pub fn history_is_newest_first_with_since_and_paging(store: &dyn ResourceStore) {
    write_all(
        store,
        vec![
            version("Patient", "h", 1, 1000, vec![]),
            version("Observation", "o", 1, 1500, vec![]),
            version("Patient", "h", 2, 2000, vec![]),
        ],
    );
    let mut reader = store.reader().expect("reader");
    let q = |scope, since, count, offset| HistoryQuery {
        scope,
        since,
        count,
        offset,
    };
    let system = reader
        .history(
            &q(HistoryScope::System, None, 10, 0),
            &Visibility::whole_store(),
        )
        .expect("history");
    assert_eq!(system.total, 3);
    assert_eq!(
        system
            .versions
            .iter()
            .map(|v| (v.id.as_str(), v.version))
            .collect::<Vec<_>>(),
        vec![("h", 2), ("o", 1), ("h", 1)]
    );
    let typed = reader
        .history(
            &q(HistoryScope::Type("Patient".into()), None, 10, 0),
            &Visibility::whole_store(),
        )
        .expect("history");
    assert_eq!(typed.total, 2);
    let since = reader
        .history(
            &q(HistoryScope::System, Some(1500), 10, 0),
            &Visibility::whole_store(),
        )
        .expect("history");
    assert_eq!(since.total, 2);
    let page = reader
        .history(
            &q(
                HistoryScope::Instance {
                    resource_type: "Patient".into(),
                    id: "h".into(),
                },
                None,
                1,
                1,
            ),
            &Visibility::whole_store(),
        )
        .expect("history");
    assert_eq!(
        (page.total, page.versions.len(), page.versions[0].version),
        (2, 1, 1)
    );
}

pub fn search_uses_the_current_index_only(store: &dyn ResourceStore) {
    write_all(
        store,
        vec![
            version(
                "Patient",
                "s1",
                1,
                1000,
                vec![token("gender", None, "male")],
            ),
            version(
                "Patient",
                "s2",
                1,
                1001,
                vec![token("gender", None, "female")],
            ),
        ],
    );
    write_all(
        store,
        vec![version(
            "Patient",
            "s1",
            2,
            2000,
            vec![token("gender", None, "female")],
        )],
    );
    assert_eq!(search(store, "Patient", "gender=male"), (vec![], Some(0)));
    let (mut ids, total) = search(store, "Patient", "gender=female");
    ids.sort();
    assert_eq!(
        (ids, total),
        (vec!["s1".to_string(), "s2".to_string()], Some(2))
    );
}

pub fn search_ids_list_the_page_without_reading(store: &dyn ResourceStore) {
    write_all(
        store,
        vec![
            version(
                "Patient",
                "i1",
                1,
                1000,
                vec![token("gender", None, "male")],
            ),
            version(
                "Patient",
                "i2",
                1,
                1001,
                vec![token("gender", None, "male")],
            ),
            version(
                "Patient",
                "i3",
                1,
                1002,
                vec![token("gender", None, "female")],
            ),
        ],
    );
    let pairs = keel_core::fhir::parse_query_string("gender=male&_sort=-_id");
    let q = parse_query(definitions::r4(), "Patient", &pairs, Handling::Strict).expect("query");
    let mut tx = store.begin().expect("begin");
    tx.write(version(
        "Patient",
        "i4",
        1,
        1003,
        vec![token("gender", None, "male")],
    ))
    .expect("write");
    assert_eq!(
        tx.search_ids(&ScopedQuery::whole_store(q.clone()))
            .expect("ids"),
        vec!["i4", "i2", "i1"],
        "a transaction searches its own writes too"
    );
}

pub fn search_pages_are_stable_and_complete(store: &dyn ResourceStore) {
    let versions = (0..25)
        .map(|i| {
            version(
                "Patient",
                &format!("p{i:02}"),
                1,
                1000 + i,
                vec![token("gender", None, "other")],
            )
        })
        .collect();
    write_all(store, versions);
    let mut seen = Vec::new();
    for offset in (0..25).step_by(10) {
        let (ids, total) = search(
            store,
            "Patient",
            &format!("gender=other&_sort=_id&_count=10&_offset={offset}"),
        );
        assert_eq!(total, Some(25));
        seen.extend(ids);
    }
    let expected: Vec<String> = (0..25).map(|i| format!("p{i:02}")).collect();
    assert_eq!(seen, expected);
    let (desc, _) = search(store, "Patient", "_sort=-_lastUpdated&_count=3");
    assert_eq!(desc, vec!["p24", "p23", "p22"]);
}

pub fn ids_and_times_come_from_the_injected_sources(store: Arc<dyn ResourceStore>) {
    let fhir = FhirService::new(
        store,
        Arc::new(SteppingClock::starting_at(1_700_000_000_000)),
        Arc::new(SequentialIds::new("fixed")),
    );
    let outcome = fhir
        .create(
            &ctx(),
            "Patient",
            json!({"resourceType": "Patient", "gender": "male"}),
            None,
            &mut RequestAudit::default(),
        )
        .expect("create");
    let body: Value =
        serde_json::from_str(outcome.resource.body.as_deref().expect("body")).expect("json");
    assert_eq!(body["id"], "fixed-1");
    assert_eq!(body["meta"]["lastUpdated"], "2023-11-14T22:13:20.000Z");
    assert_eq!(outcome.resource.last_updated, 1_700_000_000_000);
}

/// Derived parameters (`combo-code`, `patient` of a `subject`) are served from their sources'
/// rows: every way of searching them finds what rows of their own would.
pub fn derived_parameters_find_what_their_own_rows_would(store: Arc<dyn ResourceStore>) {
    let fhir = FhirService::new(
        store.clone(),
        Arc::new(SteppingClock::starting_at(1_700_000_000_000)),
        Arc::new(SequentialIds::new("d")),
    );
    let put = |rt: &str, id: &str, body: Value| {
        let mut body = body;
        body["resourceType"] = json!(rt);
        body["id"] = json!(id);
        fhir.update(&ctx(), rt, id, body, None, &mut RequestAudit::default())
            .expect("stored");
    };
    let loinc = |code: &str| json!({"coding": [{"system": "http://loinc.org", "code": code}]});
    put("Patient", "p1", json!({"gender": "female"}));
    put("Patient", "p2", json!({"gender": "male"}));
    put("Group", "g1", json!({"type": "person", "actual": true}));
    put(
        "Observation",
        "o1",
        json!({"status": "final", "code": loinc("1234"), "subject": {"reference": "Patient/p1"},
               "component": [{"code": loinc("5678")}]}),
    );
    put(
        "Observation",
        "o2",
        json!({"status": "final", "code": loinc("5678"), "subject": {"reference": "Group/g1"}}),
    );
    put(
        "Observation",
        "o3",
        json!({"status": "final", "code": loinc("9999"), "subject": {"reference": "Patient/p2"}}),
    );
    put(
        "Observation",
        "o4",
        json!({"status": "final", "code": loinc("9999")}),
    );
    let ids = |rt: &str, query: &str| {
        let mut ids = search(store.as_ref(), rt, query).0;
        ids.sort();
        ids
    };
    assert_eq!(ids("Observation", "combo-code=5678"), ["o1", "o2"]);
    assert_eq!(
        ids("Observation", "combo-code=http://loinc.org|1234,9999"),
        ["o1", "o3", "o4"]
    );
    assert_eq!(ids("Observation", "combo-code:not=5678"), ["o3", "o4"]);
    assert_eq!(ids("Observation", "patient=p1"), ["o1"]);
    assert_eq!(ids("Observation", "patient=Patient/p2"), ["o3"]);
    assert!(ids("Observation", "patient=g1").is_empty());
    assert_eq!(ids("Observation", "subject=Group/g1"), ["o2"]);
    assert_eq!(ids("Observation", "patient:missing=true"), ["o2", "o4"]);
    assert_eq!(ids("Observation", "patient:missing=false"), ["o1", "o3"]);
    assert_eq!(ids("Observation", "patient.gender=female"), ["o1"]);
    assert_eq!(
        ids("Observation", "combo-code=9999&patient.gender=male"),
        ["o3"]
    );
    assert_eq!(
        ids("Patient", "_has:Observation:patient:combo-code=5678"),
        ["p1"]
    );
    let with_includes = |rt: &str, query: &str| {
        let result = store
            .reader()
            .expect("reader")
            .search(&whole_store_query(rt, query))
            .expect("search");
        let mut included: Vec<String> = result.included.iter().map(|r| r.id.clone()).collect();
        included.sort();
        included
    };
    assert_eq!(
        with_includes(
            "Observation",
            "combo-code=5678&_include=Observation:patient"
        ),
        ["p1"]
    );
    assert_eq!(
        with_includes("Patient", "_revinclude=Observation:patient"),
        ["o1", "o3"]
    );
    let (sorted, _) = search(
        store.as_ref(),
        "Observation",
        "_sort=-combo-code&patient:missing=false",
    );
    assert_eq!(sorted, ["o3", "o1"]);
}

pub fn referencing_finds_the_compartment(store: &dyn ResourceStore) {
    let reference = |param: &str, target: &str| IndexEntry {
        param: param.into(),
        value: IndexValue::Reference {
            target_type: Some("Patient".into()),
            target_id: Some(target.into()),
            url: format!("Patient/{target}"),
        },
    };
    write_all(
        store,
        vec![
            version("Patient", "x", 1, 1000, vec![]),
            version(
                "Observation",
                "o1",
                1,
                1001,
                vec![reference("subject", "x"), reference("patient", "x")],
            ),
            version(
                "Observation",
                "o2",
                1,
                1002,
                vec![reference("subject", "y")],
            ),
        ],
    );
    let found = store
        .reader()
        .expect("reader")
        .referencing("Patient", "x", &Visibility::whole_store())
        .expect("referencing");
    assert_eq!(
        found.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        vec!["o1"]
    );
}

fn audit_record(n: usize) -> AuditRecord {
    AuditRecord::new(
        &RequestContext::local_development(
            CorrelationId::parse(&format!("audit-{n}")).expect("id"),
        ),
        keel_model::Instant::parse("2026-01-02T03:04:05Z").expect("instant"),
        Subject {
            interaction: "read".into(),
            patients: vec![format!("Patient/{n}")],
            resources: vec![format!("Patient/{n}")],
        },
        AuditOutcome::Permit,
    )
}

fn audit_signer() -> CheckpointSigner {
    CheckpointSigner::new(
        ed25519_dalek::SigningKey::from_bytes(&[3; 32]),
        NonZeroU64::new(2).expect("non-zero"),
    )
}

pub fn audit_entries_append_in_a_transaction_and_read_back_in_order(store: &dyn ResourceStore) {
    let signer = audit_signer();
    let mut tx = store.begin().expect("begin");
    assert_eq!(tx.audit_head().expect("head"), None);
    let mut appended = Vec::new();
    for n in 0..5 {
        appended.push(audit::append(tx.as_mut(), &audit_record(n), &signer).expect("append"));
    }
    tx.commit().expect("commit");

    let mut reader = store.reader().expect("reader");
    let all = reader.audit_entries(0, 100).expect("entries");
    assert_eq!(all, appended);
    assert_eq!(
        all.iter().map(|e| e.sequence).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5]
    );
    let range = reader.audit_entries(2, 2).expect("range");
    assert_eq!(
        range.iter().map(|e| e.sequence).collect::<Vec<_>>(),
        vec![2, 3]
    );
    let checkpoints = reader.audit_checkpoints().expect("checkpoints");
    assert_eq!(
        checkpoints.iter().map(|c| c.sequence).collect::<Vec<_>>(),
        vec![2, 4]
    );
    let verified = audit::verify(&all, &checkpoints, &signer.verifying_key(), signer.every())
        .expect("verifies");
    assert_eq!((verified.last, verified.signed_through), (5, 4));

    // A later transaction continues the chain from the stored head.
    let mut tx = store.begin().expect("begin");
    assert_eq!(tx.audit_head().expect("head"), Some((5, appended[4].hash)));
    let sixth = audit::append(tx.as_mut(), &audit_record(5), &signer).expect("append");
    tx.commit().expect("commit");
    assert_eq!(sixth.sequence, 6);
}

pub fn audit_entries_roll_back_with_their_transaction(store: &dyn ResourceStore) {
    let signer = audit_signer();
    {
        let mut tx = store.begin().expect("begin");
        for n in 0..2 {
            audit::append(tx.as_mut(), &audit_record(n), &signer).expect("append");
        }
        assert_eq!(tx.audit_entries(0, 10).expect("entries").len(), 2);
    } // dropped without commit
    let mut reader = store.reader().expect("reader");
    assert!(reader.audit_entries(0, 10).expect("entries").is_empty());
    assert!(reader.audit_checkpoints().expect("checkpoints").is_empty());
}

pub fn an_audit_sequence_is_never_overwritten(store: &dyn ResourceStore) {
    let signer = audit_signer();
    let mut tx = store.begin().expect("begin");
    let first = audit::append(tx.as_mut(), &audit_record(0), &signer).expect("append");
    let again = AuditEntry {
        record: b"forged".to_vec(),
        ..first.clone()
    };
    assert!(matches!(
        tx.append_audit(&again),
        Err(StoreError::Conflict(_))
    ));
    tx.commit().expect("commit");
    assert_eq!(
        store
            .reader()
            .expect("reader")
            .audit_entries(0, 10)
            .expect("entries"),
        vec![first]
    );
}

/// The running trail: many callers at once, through the group-committing writer (blocking on
/// their records or awaiting them) and inside write transactions, give one linear chain holding every record exactly once, with its
/// checkpoints; after shutdown nothing more is taken.
pub fn the_audit_trail_keeps_one_linear_chain_under_concurrent_callers(
    store: Arc<dyn ResourceStore>,
) {
    const CALLERS: usize = 8;
    const EACH: usize = 25;
    let trail = Arc::new(AuditTrail::start(store.clone(), audit_signer()));
    let sequences: Vec<u64> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..CALLERS)
            .map(|caller| {
                let trail = trail.clone();
                let store = store.clone();
                scope.spawn(move || {
                    (0..EACH)
                        .map(|n| {
                            let record = audit_record(caller * 1000 + n);
                            match n % 5 {
                                0 => {
                                    let mut tx = store.begin().expect("begin");
                                    let sequence =
                                        trail.record_in(tx.as_mut(), &record).expect("in tx");
                                    tx.commit().expect("commit");
                                    sequence
                                }
                                // Awaited, as the HTTP edge does: woken by the writer.
                                1 | 2 => block_on(trail.submit(record).expect("queued"))
                                    .expect("committed"),
                                _ => trail.record(record).expect("record"),
                            }
                        })
                        .collect::<Vec<u64>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("caller"))
            .collect()
    });
    let mut sorted = sequences.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (1..=(CALLERS * EACH) as u64).collect::<Vec<_>>());
    let mut reader = store.reader().expect("reader");
    let entries = reader.audit_entries(0, 10_000).expect("entries");
    let checkpoints = reader.audit_checkpoints().expect("checkpoints");
    let signer = audit_signer();
    let verified = audit::verify(
        &entries,
        &checkpoints,
        &signer.verifying_key(),
        signer.every(),
    )
    .expect("an intact chain");
    assert_eq!(verified.last, (CALLERS * EACH) as u64);
    let mut recorded: Vec<String> = entries
        .iter()
        .map(|e| {
            let record: AuditRecord = serde_json::from_slice(&e.record).expect("decodes");
            record.subject.patients[0].clone()
        })
        .collect();
    recorded.sort();
    recorded.dedup();
    assert_eq!(recorded.len(), CALLERS * EACH, "every record exactly once");
    trail.shutdown();
    assert!(matches!(
        trail.record(audit_record(1)),
        Err(keel_core::audit::AuditError::Stopped)
    ));
}

/// Polls `future` on this thread until it is ready, parking between polls.
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::task::Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut context = std::task::Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let std::task::Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
        std::thread::park();
    }
}

pub fn jobs_are_claimed_once_per_lease_and_fenced(store: &dyn ResourceStore) {
    use keel_core::jobs::{Claim, JobOutput, JobState, NewJob};
    let new = |kind: &str, now| NewJob {
        kind: kind.into(),
        payload: format!("{{\"n\":{now}}}"),
        now,
    };
    // Enqueued in a transaction that rolls back: no job (the outbox commits with its change).
    {
        let mut tx = store.begin().expect("begin");
        tx.enqueue_job(&new("export", 1)).expect("enqueue");
    }
    let mut tx = store.begin().expect("begin");
    let first = tx.enqueue_job(&new("export", 10)).expect("enqueue");
    let other_kind = tx.enqueue_job(&new("other", 11)).expect("enqueue");
    tx.commit().expect("commit");
    assert_ne!(first, other_kind);

    let claim = |owner: &str, now: i64| {
        let mut tx = store.begin().expect("begin");
        let job = tx
            .claim_job(&Claim {
                kinds: &["export"],
                owner,
                now,
                lease_until: now + 100,
            })
            .expect("claim");
        tx.commit().expect("commit");
        job
    };
    let claimable = |now: i64| {
        store
            .reader()
            .expect("reader")
            .claimable_job(&["export"], now)
            .expect("claimable")
    };
    assert_eq!(claimable(20), Some(first), "a queued job is claimable");
    let a = claim("node-a", 20).expect("the queued export is claimed");
    assert_eq!((a.id, a.state, a.attempts), (first, JobState::Running, 1));
    assert_eq!(a.lease_owner.as_deref(), Some("node-a"));
    assert!(
        claim("node-b", 50).is_none(),
        "held under a live lease; the other kind is not asked for"
    );
    assert_eq!(claimable(50), None, "nor is it claimable then");
    assert_eq!(
        claimable(121),
        Some(first),
        "claimable once the lease expired"
    );

    let lease_a = a.lease().expect("lease");
    let part = |n: u32| JobOutput {
        part: n,
        name: "Patient".into(),
        count: 2,
    };
    let mut tx = store.begin().expect("begin");
    assert!(
        tx.renew_job_lease(&lease_a, 60, 110, "1 of 2")
            .expect("renew")
    );
    assert!(
        tx.add_job_output(&lease_a, &part(1), "{}\n{}\n")
            .expect("output")
    );
    tx.commit().expect("commit");

    // node-a stops renewing; after its lease ends node-b claims a new attempt, which starts
    // from nothing.
    assert!(claim("node-b", 100).is_none(), "renewed until 110");
    let b = claim("node-b", 111).expect("an ended lease is claimable");
    assert_eq!((b.id, b.attempts), (first, 2));
    let mut reader = store.reader().expect("reader");
    assert!(reader.job_outputs(first).expect("outputs").is_empty());
    drop(reader);

    // node-a's late writes are fenced off; node-b's count.
    let lease_b = b.lease().expect("lease");
    let mut tx = store.begin().expect("begin");
    assert!(
        !tx.renew_job_lease(&lease_a, 112, 200, "late")
            .expect("renew")
    );
    assert!(
        !tx.add_job_output(&lease_a, &part(1), "late\n")
            .expect("output")
    );
    assert!(
        !tx.finish_job(&lease_a, JobState::Done, "late", 112)
            .expect("finish")
    );
    assert!(
        tx.add_job_output(&lease_b, &part(1), "{\"b\":1}\n")
            .expect("output")
    );
    assert!(
        tx.finish_job(&lease_b, JobState::Done, "1 resource", 113)
            .expect("finish")
    );
    tx.commit().expect("commit");

    let mut reader = store.reader().expect("reader");
    let done = reader.job(first).expect("job").expect("exists");
    assert_eq!(done.state, JobState::Done);
    assert_eq!(done.result.as_deref(), Some("1 resource"));
    assert_eq!(reader.job_outputs(first).expect("outputs"), vec![part(1)]);
    assert_eq!(
        reader
            .job_output_content(first, 1)
            .expect("content")
            .as_deref(),
        Some("{\"b\":1}\n")
    );
    assert!(
        reader
            .job_output_content(first, 2)
            .expect("content")
            .is_none()
    );
    drop(reader);
    assert!(
        claim("node-c", 10_000).is_none(),
        "a finished job is not claimed again"
    );

    // Cancelling: a queued job, once; a finished one (its outputs go too).
    let mut tx = store.begin().expect("begin");
    let queued = tx.enqueue_job(&new("export", 200)).expect("enqueue");
    assert!(tx.cancel_job(queued, 201).expect("cancel"));
    assert!(!tx.cancel_job(queued, 202).expect("cancel twice"));
    assert!(tx.cancel_job(first, 202).expect("cancel a finished job"));
    assert!(tx.job_outputs(first).expect("outputs").is_empty());
    tx.commit().expect("commit");
    assert_eq!(
        store
            .reader()
            .expect("reader")
            .job(queued)
            .expect("job")
            .map(|j| j.state),
        Some(JobState::Cancelled)
    );
    assert!(
        claim("node-c", 10_000).is_none(),
        "a cancelled job is not claimed"
    );
}

pub fn idempotency_keys_are_recorded_once_with_their_transaction(store: &dyn ResourceStore) {
    {
        let mut tx = store.begin().expect("begin");
        tx.record_idempotent_response("k1", "rolled back", 1)
            .expect("record");
    }
    let mut reader = store.reader().expect("reader");
    assert!(reader.idempotent_response("k1").expect("read").is_none());
    drop(reader);
    let mut tx = store.begin().expect("begin");
    tx.record_idempotent_response("k1", "first", 2)
        .expect("record");
    assert!(matches!(
        tx.record_idempotent_response("k1", "second", 3),
        Err(StoreError::Conflict(_))
    ));
    // The transaction is still usable after the conflict.
    tx.set_checkpoint("after", "yes").expect("still usable");
    tx.commit().expect("commit");
    let mut reader = store.reader().expect("reader");
    assert_eq!(
        reader.idempotent_response("k1").expect("read").as_deref(),
        Some("first")
    );
    assert_eq!(
        reader.checkpoint("after").expect("read").as_deref(),
        Some("yes")
    );
}

macro_rules! contract_tests {
    ($make:expr) => {
        #[test]
        fn versions_are_kept_and_the_latest_is_current() {
            let (_guard, store) = $make;
            super::versions_are_kept_and_the_latest_is_current(store.as_ref());
        }
        #[test]
        fn versions_follow_the_write_sequence_by_type() {
            let (_guard, store) = $make;
            super::versions_follow_the_write_sequence_by_type(store.as_ref());
        }
        #[test]
        fn a_deletion_is_a_version_without_a_body() {
            let (_guard, store) = $make;
            super::a_deletion_is_a_version_without_a_body(store.as_ref());
        }
        #[test]
        fn a_transaction_reads_the_resources_it_created() {
            let (_guard, store) = $make;
            super::a_transaction_reads_the_resources_it_created(store.as_ref());
        }

        #[test]
        fn writing_a_version_twice_is_a_conflict() {
            let (_guard, store) = $make;
            super::writing_a_version_twice_is_a_conflict(store.as_ref());
        }
        #[test]
        fn an_uncommitted_transaction_leaves_nothing() {
            let (_guard, store) = $make;
            super::an_uncommitted_transaction_leaves_nothing(store.as_ref());
        }
        #[test]
        fn jobs_are_claimed_once_per_lease_and_fenced() {
            let (_guard, store) = $make;
            super::jobs_are_claimed_once_per_lease_and_fenced(store.as_ref());
        }
        #[test]
        fn idempotency_keys_are_recorded_once_with_their_transaction() {
            let (_guard, store) = $make;
            super::idempotency_keys_are_recorded_once_with_their_transaction(store.as_ref());
        }
        #[test]
        fn checkpoints_commit_with_their_transaction() {
            let (_guard, store) = $make;
            super::checkpoints_commit_with_their_transaction(store.as_ref());
        }
        #[test]
        fn history_is_newest_first_with_since_and_paging() {
            let (_guard, store) = $make;
            super::history_is_newest_first_with_since_and_paging(store.as_ref());
        }
        #[test]
        fn search_uses_the_current_index_only() {
            let (_guard, store) = $make;
            super::search_uses_the_current_index_only(store.as_ref());
        }
        #[test]
        fn search_ids_list_the_page_without_reading() {
            let (_guard, store) = $make;
            super::search_ids_list_the_page_without_reading(store.as_ref());
        }
        #[test]
        fn search_pages_are_stable_and_complete() {
            let (_guard, store) = $make;
            super::search_pages_are_stable_and_complete(store.as_ref());
        }
        #[test]
        fn ids_and_times_come_from_the_injected_sources() {
            let (_guard, store) = $make;
            super::ids_and_times_come_from_the_injected_sources(store);
        }
        #[test]
        fn derived_parameters_find_what_their_own_rows_would() {
            let (_guard, store) = $make;
            super::derived_parameters_find_what_their_own_rows_would(store);
        }
        #[test]
        fn referencing_finds_the_compartment() {
            let (_guard, store) = $make;
            super::referencing_finds_the_compartment(store.as_ref());
        }
        #[test]
        fn audit_entries_append_in_a_transaction_and_read_back_in_order() {
            let (_guard, store) = $make;
            super::audit_entries_append_in_a_transaction_and_read_back_in_order(store.as_ref());
        }
        #[test]
        fn audit_entries_roll_back_with_their_transaction() {
            let (_guard, store) = $make;
            super::audit_entries_roll_back_with_their_transaction(store.as_ref());
        }
        #[test]
        fn the_audit_trail_keeps_one_linear_chain_under_concurrent_callers() {
            let (_guard, store) = $make;
            super::the_audit_trail_keeps_one_linear_chain_under_concurrent_callers(store);
        }
        #[test]
        fn an_audit_sequence_is_never_overwritten() {
            let (_guard, store) = $make;
            super::an_audit_sequence_is_never_overwritten(store.as_ref());
        }
    };
}

mod sqlite {
    use keel_core::store::ResourceStore;
    use keel_store::SqliteStore;
    use std::sync::Arc;

    fn fresh() -> (tempfile::TempDir, Arc<dyn ResourceStore>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open_dir(dir.path()).expect("open");
        (dir, Arc::new(store))
    }

    contract_tests!(fresh());

    #[test]
    fn reopening_keeps_everything() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let store = SqliteStore::open_dir(dir.path()).expect("open");
            super::write_all(
                &store,
                vec![super::version(
                    "Patient",
                    "keep",
                    1,
                    1000,
                    vec![super::token("gender", None, "male")],
                )],
            );
        }
        let store = SqliteStore::open_dir(dir.path()).expect("reopen");
        assert_eq!(super::search(&store, "Patient", "gender=male").1, Some(1));
    }
}

mod postgres {
    use crate::test_schema::TestSchema;
    use keel_core::store::ResourceStore;
    use keel_store::PostgresStore;
    use std::sync::Arc;

    fn fresh() -> (TestSchema, Arc<dyn ResourceStore>) {
        let schema = TestSchema::create();
        let store = PostgresStore::open(&schema.url).expect("open");
        (schema, Arc::new(store))
    }

    contract_tests!(fresh());

    #[test]
    fn reopening_keeps_everything() {
        let schema = TestSchema::create();
        {
            let store = PostgresStore::open(&schema.url).expect("open");
            super::write_all(
                &store,
                vec![super::version(
                    "Patient",
                    "keep",
                    1,
                    1000,
                    vec![super::token("gender", None, "male")],
                )],
            );
        }
        let store = PostgresStore::open(&schema.url).expect("reopen");
        assert_eq!(super::search(&store, "Patient", "gender=male").1, Some(1));
    }

    /// Two stores on one database (two nodes): a transaction of one holds off the other's
    /// writers until it ends, so what a transaction reads before it writes stays true.
    #[test]
    fn a_transaction_holds_off_writers_of_every_node() {
        let schema = TestSchema::create();
        let first = PostgresStore::open(&schema.url).expect("open");
        let second = PostgresStore::open(&schema.url).expect("open");
        let mut tx = first.begin().expect("begin");
        assert!(tx.read("Patient", "only").expect("read").is_none());
        let other = std::thread::spawn(move || {
            let started = std::time::Instant::now();
            let mut tx = second.begin().expect("begin on the second node");
            let waited = started.elapsed();
            let found = tx.read("Patient", "only").expect("read").is_some();
            (waited, found)
        });
        std::thread::sleep(std::time::Duration::from_millis(300));
        tx.write(super::version("Patient", "only", 1, 1000, vec![]))
            .expect("write");
        tx.commit().expect("commit");
        let (waited, found) = other.join().expect("second node");
        assert!(
            waited >= std::time::Duration::from_millis(250),
            "the second writer waited ({waited:?})"
        );
        assert!(found, "and then saw the first one's write");
    }
}
