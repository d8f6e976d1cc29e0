//! Tampering with a real audit log, row by row in its SQLite file, is found by
//! `keel audit verify` run as the real binary, which says what was done and where.

mod common;

use ed25519_dalek::SigningKey;
use keel_core::audit::{self, AuditOutcome, AuditRecord, CheckpointSigner, Subject};
use keel_core::store::ResourceStore;
use keel_core::{CorrelationId, RequestContext};
use keel_model::Instant;
use keel_store::SqliteStore;
use std::num::NonZeroU64;
use std::path::Path;

/// `keel audit verify` expects a checkpoint every 100 entries (the binary's CHECKPOINT_EVERY).
const CHECKPOINT_EVERY: u64 = 100;
const ENTRIES: usize = 250;

fn record(n: usize) -> AuditRecord {
    AuditRecord::new(
        &RequestContext::local_development(CorrelationId::parse(&format!("req-{n}")).expect("id")),
        Instant::parse("2026-01-02T03:04:05Z").expect("instant"),
        Subject {
            interaction: "read".into(),
            patients: vec![format!("Patient/p{n}")],
            resources: vec![format!("Patient/p{n}")],
        },
        AuditOutcome::Permit,
    )
}

/// A data directory whose signing key `keel serve` created, with `ENTRIES` audit entries
/// signed by it.
fn prepared_data(dir: &Path) {
    common::Server::start(dir).kill();
    let secret = dir.join("audit-signing-key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&secret)
            .expect("key")
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o777,
            0o600,
            "the signing key is readable by its owner only"
        );
    }
    assert!(dir.join("audit-signing-key.pub").is_file());
    let text = std::fs::read_to_string(&secret).expect("read key");
    let text = text.trim();
    let mut seed = [0u8; 32];
    for (i, byte) in seed.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).expect("hex");
    }
    let signer = CheckpointSigner::new(
        SigningKey::from_bytes(&seed),
        NonZeroU64::new(CHECKPOINT_EVERY).expect("non-zero"),
    );
    let store = SqliteStore::open_dir(dir).expect("open");
    let mut tx = store.begin().expect("begin");
    for n in 0..ENTRIES {
        audit::append(tx.as_mut(), &record(n), &signer).expect("append");
    }
    tx.commit().expect("commit");
}

fn verify(dir: &Path) -> (i32, String) {
    let output = common::keel()
        .args(["audit", "verify", "--data"])
        .arg(dir)
        .output()
        .expect("run keel audit verify");
    (
        output.status.code().expect("exit code"),
        String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr),
    )
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
    }
}

/// (what was done, SQL run on the file, expected exit code, expected report)
const CASES: &[(&str, &str, i32, &str)] = &[
    (
        "nothing",
        "",
        0,
        "verified entries 1 to 250; signed through 200 (2 checkpoints)",
    ),
    (
        "an edited record",
        "UPDATE audit SET record = CAST(replace(CAST(record AS TEXT), 'p41', 'p99') AS BLOB) WHERE sequence = 42",
        1,
        "TAMPERED at sequence 42: entry 42 was edited",
    ),
    (
        "an edited hash",
        "UPDATE audit SET hash = randomblob(32) WHERE sequence = 42",
        1,
        "TAMPERED at sequence 42: entry 42 does not follow",
    ),
    (
        "a deleted row",
        "DELETE FROM audit WHERE sequence = 42",
        1,
        "TAMPERED at sequence 42: entries 42 to 42 were deleted",
    ),
    (
        "a deleted row with the rest renumbered",
        "DELETE FROM audit WHERE sequence = 42;
         UPDATE audit SET sequence = -sequence WHERE sequence > 42;
         UPDATE audit SET sequence = -sequence - 1 WHERE sequence < 0;",
        1,
        "TAMPERED at sequence 42: entries 42 to 42 were deleted",
    ),
    (
        "an inserted row",
        "UPDATE audit SET sequence = -sequence WHERE sequence >= 42;
         UPDATE audit SET sequence = -sequence + 1 WHERE sequence < 0;
         INSERT INTO audit(sequence, record, hash) VALUES (42, (SELECT record FROM audit WHERE sequence = 41), randomblob(32));",
        1,
        "TAMPERED at sequence 42: an entry was inserted at 42",
    ),
    (
        "two rows swapped",
        "UPDATE audit SET sequence = -1 WHERE sequence = 42;
         UPDATE audit SET sequence = 42 WHERE sequence = 77;
         UPDATE audit SET sequence = 77 WHERE sequence = -1;",
        1,
        "TAMPERED at sequence 42: entries were reordered: the entry at 42 belongs at 77",
    ),
    (
        "a forged checkpoint",
        "UPDATE audit_checkpoints SET signature = randomblob(64) WHERE sequence = 100",
        1,
        "TAMPERED at sequence 100: checkpoint 100 has an invalid signature",
    ),
    (
        "a deleted checkpoint",
        "DELETE FROM audit_checkpoints WHERE sequence = 100",
        1,
        "TAMPERED at sequence 100: checkpoint 100 is missing",
    ),
    (
        "the signed end of the log deleted",
        "DELETE FROM audit WHERE sequence > 150",
        1,
        "TAMPERED at sequence 151: the log ends at 150 but checkpoint 200 was signed",
    ),
];

#[test]
fn tampering_with_audit_rows_is_found_and_located_by_keel_audit_verify() {
    let template = tempfile::tempdir().expect("tempdir");
    prepared_data(template.path());
    let mut failures = Vec::new();
    for (what, sql, code, expected) in CASES {
        let dir = tempfile::tempdir().expect("tempdir");
        copy_dir(template.path(), dir.path());
        if !sql.is_empty() {
            let conn = rusqlite::Connection::open(dir.path().join("keel.sqlite")).expect("open");
            conn.execute_batch(sql).expect("tamper");
        }
        let (got_code, report) = verify(dir.path());
        if got_code != *code || !report.contains(expected) {
            failures.push(format!(
                "{what}: expected exit {code} and {expected:?}, got exit {got_code}: {report}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn an_empty_log_verifies() {
    let dir = tempfile::tempdir().expect("tempdir");
    common::Server::start(dir.path()).kill();
    let (code, report) = verify(dir.path());
    assert_eq!(
        (code, report.trim()),
        (0, "keel audit: the audit log is empty")
    );
}
