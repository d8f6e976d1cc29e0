//! Acceptance: `keel backup` of a data directory in use by `keel serve`, then `keel restore`
//! into a new one, gives the same resources, versions and audit chain, and `keel audit verify`
//! passes on the restored copy.

mod common;

use common::{Server, keel};
use serde_json::{Value, json};
use std::path::Path;

fn patient(family: &str, nhs: &str) -> Value {
    json!({"resourceType": "Patient", "name": [{"family": family, "given": ["Ann"]}],
        "gender": "female", "birthDate": "1970-01-01",
        "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": nhs}]})
}

/// Every version (type, id, version, method, body) in write order, and the audit log's rows.
type Contents = (
    Vec<(String, String, i64, String, Option<String>)>,
    Vec<(i64, Vec<u8>, Vec<u8>)>,
    Vec<(i64, Vec<u8>, Vec<u8>)>,
);

fn contents(data: &Path) -> Contents {
    let conn = rusqlite::Connection::open(data.join("keel.sqlite")).expect("open");
    let versions = conn
        .prepare(
            "SELECT r.rtype, r.id, v.version, v.method, v.body FROM versions v \
             JOIN resources r ON r.rid = v.rid ORDER BY v.seq",
        )
        .expect("prepare")
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    let rows = |sql: &str| -> Vec<(i64, Vec<u8>, Vec<u8>)> {
        conn.prepare(sql)
            .expect("prepare")
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows")
    };
    let audit = rows("SELECT sequence, record, hash FROM audit ORDER BY sequence");
    let checkpoints =
        rows("SELECT sequence, hash, signature FROM audit_checkpoints ORDER BY sequence");
    (versions, audit, checkpoints)
}

#[test]
fn a_backup_taken_while_serving_restores_the_same_resources_versions_and_audit_chain() {
    let original = tempfile::tempdir().expect("tempdir");
    let server = Server::start(original.path());
    let client = Server::client();
    let mut ids = Vec::new();
    for (n, nhs) in ["9990000018", "9990000026", "9990000034"]
        .iter()
        .enumerate()
    {
        let created: Value = client
            .post(format!("{}/Patient", server.base))
            .json(&patient(&format!("Backup{n}"), nhs))
            .send()
            .expect("create")
            .json()
            .expect("body");
        ids.push(created["id"].as_str().expect("id").to_string());
    }
    let mut updated = patient("Renamed", "9990000018");
    updated["id"] = json!(ids[0]);
    let status = client
        .put(format!("{}/Patient/{}", server.base, ids[0]))
        .json(&updated)
        .send()
        .expect("update")
        .status();
    assert!(status.is_success(), "{status}");
    let status = client
        .delete(format!("{}/Patient/{}", server.base, ids[1]))
        .send()
        .expect("delete")
        .status();
    assert!(status.is_success(), "{status}");

    // Online: the server keeps running while the backup is taken.
    let backups = tempfile::tempdir().expect("tempdir");
    let backup_dir = backups.path().join("backup");
    let out = keel()
        .args(["backup", "--data"])
        .arg(original.path())
        .arg("--to")
        .arg(&backup_dir)
        .output()
        .expect("keel backup");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let health = client
        .get(format!("{}/Patient/{}", server.base, ids[2]))
        .send()
        .expect("read during backup")
        .status();
    assert!(health.is_success(), "{health}");
    server.kill();

    let restored = backups.path().join("restored");
    let out = keel()
        .args(["restore", "--from"])
        .arg(&backup_dir)
        .arg("--data")
        .arg(&restored)
        .output()
        .expect("keel restore");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let (versions, audit, checkpoints) = contents(original.path());
    let (restored_versions, restored_audit, restored_checkpoints) = contents(&restored);
    assert_eq!(versions.len(), 5, "three creates, an update and a deletion");
    assert_eq!(restored_versions, versions);
    // The read after the backup left one more audit record in the original only.
    assert!(audit.len() >= 6, "{} audit records", audit.len());
    assert_eq!(restored_audit[..], audit[..restored_audit.len()]);
    assert_eq!(restored_audit.len(), audit.len() - 1);
    assert_eq!(restored_checkpoints, checkpoints);

    let verify = keel()
        .args(["audit", "verify", "--data"])
        .arg(&restored)
        .output()
        .expect("keel audit verify");
    assert!(
        verify.status.success(),
        "{}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );

    let out = keel()
        .args(["restore", "--from"])
        .arg(&backup_dir)
        .arg("--data")
        .arg(&restored)
        .output()
        .expect("keel restore again");
    assert!(
        !out.status.success(),
        "a restore never overwrites a database"
    );
}
