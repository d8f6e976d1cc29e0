//! Authentication with the real binary: `keel token` and `keel serve --dev-issuer` round
//! trip, `--insecure-no-auth` only on loopback, and development tokens only for development
//! data directories.

mod common;

use common::{Server, keel};
use serde_json::{Value, json};
use std::path::Path;

fn token(data: &Path, extra: &[&str]) -> std::process::Output {
    keel()
        .args([
            "token",
            "--role",
            "R8000",
            "--org",
            "A81001",
            "--user",
            "555021935107",
        ])
        .arg("--data")
        .arg(data)
        .args(extra)
        .output()
        .expect("run keel token")
}

#[test]
fn a_keel_token_is_accepted_by_keel_serve_with_the_dev_issuer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let issued = token(dir.path(), &["--purpose", "direct-care"]);
    assert!(
        issued.status.success(),
        "{}",
        String::from_utf8_lossy(&issued.stderr)
    );
    let token = String::from_utf8(issued.stdout)
        .expect("utf-8")
        .trim()
        .to_string();
    assert!(dir.path().join("dev-issuer/jwks.json").is_file());
    let server = Server::start_with_dev_issuer(dir.path());
    let client = Server::client();
    let origin = server.base.trim_end_matches("/fhir").to_string();

    let refused = client
        .get(format!("{}/Patient", server.base))
        .send()
        .expect("get");
    assert_eq!(refused.status(), 401);
    let accepted = client
        .get(format!("{}/Patient", server.base))
        .bearer_auth(&token)
        .send()
        .expect("get");
    assert_eq!(accepted.status(), 200);

    let connection = json!({"ods": "A81001", "name": "Test Practice", "system": "emis-style",
        "interfaces": []});
    let put = client
        .put(format!("{origin}/api/practices/A81001"))
        .bearer_auth(&token)
        .json(&connection)
        .send()
        .expect("put");
    assert!(put.status().is_success(), "{}", put.status());
    let shown: Value = client
        .get(format!("{origin}/api/practices/A81001"))
        .bearer_auth(&token)
        .send()
        .expect("get")
        .json()
        .expect("json");
    assert!(
        shown.to_string().contains("user 555021935107 (R8000)"),
        "{shown}"
    );
}

#[test]
fn insecure_no_auth_is_refused_off_loopback() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = keel()
        .args([
            "serve",
            "--insecure-no-auth",
            "--listen",
            "0.0.0.0:0",
            "--data",
        ])
        .arg(dir.path())
        .output()
        .expect("run keel serve");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("loopback"), "{stderr}");
}

#[test]
fn serve_refuses_to_start_with_no_trusted_issuer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = keel()
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(dir.path())
        .output()
        .expect("run keel serve");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no token issuer is trusted"), "{stderr}");
}

#[test]
fn development_tokens_are_refused_for_a_production_data_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("environment"), "production\n").expect("write");
    let issued = token(dir.path(), &[]);
    assert!(!issued.status.success());
    let stderr = String::from_utf8_lossy(&issued.stderr);
    assert!(stderr.contains("development only"), "{stderr}");
    assert!(!dir.path().join("dev-issuer").exists());
    let served = keel()
        .args(["serve", "--dev-issuer", "--listen", "127.0.0.1:0", "--data"])
        .arg(dir.path())
        .output()
        .expect("run keel serve");
    assert!(!served.status.success());
}
