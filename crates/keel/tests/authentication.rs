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

/// Serves whatever JWKS `current` holds at any path, counting requests.
fn jwks_server(
    current: std::sync::Arc<std::sync::Mutex<String>>,
    hits: std::sync::Arc<std::sync::atomic::AtomicUsize>,
) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!(
        "http://{}/.well-known/jwks.json",
        listener.local_addr().expect("addr")
    );
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            hits.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let body = current.lock().expect("jwks").clone();
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

/// The keys of two JWKS documents in one.
fn both_keys(a: &str, b: &str) -> String {
    let a: Value = serde_json::from_str(a).expect("jwks");
    let b: Value = serde_json::from_str(b).expect("jwks");
    let mut keys = a["keys"].as_array().expect("keys").clone();
    keys.extend(b["keys"].as_array().expect("keys").iter().cloned());
    json!({ "keys": keys }).to_string()
}

/// An issuer's keys published at a URL: fetched at start, a rotated-in key is picked up when a
/// token names it, a revoked key stops working at the next refresh (even for a token accepted
/// before), and made-up key ids do not make Keel fetch more than once per interval.
#[test]
fn issuer_keys_published_at_a_url_follow_rotation_and_revocation() {
    let (old_dir, new_dir, serve_dir) = (
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    );
    let issued = |dir: &Path| {
        let out = token(dir, &["--purpose", "direct-care"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .expect("utf-8")
            .trim()
            .to_string()
    };
    let (old_token, new_token) = (issued(old_dir.path()), issued(new_dir.path()));
    let jwks =
        |dir: &Path| std::fs::read_to_string(dir.join("dev-issuer/jwks.json")).expect("jwks");
    let (old_keys, new_keys) = (jwks(old_dir.path()), jwks(new_dir.path()));

    let current = std::sync::Arc::new(std::sync::Mutex::new(old_keys.clone()));
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let url = jwks_server(current.clone(), hits.clone());
    let server = Server::spawn(
        keel()
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--jwks-refresh-secs",
                "1",
            ])
            .arg("--trust-issuer")
            .arg(format!("urn:keel:dev-issuer={url}"))
            .arg("--data")
            .arg(serve_dir.path())
            .stderr(std::process::Stdio::inherit()),
    );
    let client = Server::client();
    let status = |token: &str| {
        client
            .get(format!("{}/Patient", server.base))
            .bearer_auth(token)
            .send()
            .expect("get")
            .status()
            .as_u16()
    };
    assert_eq!(
        hits.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "fetched at start"
    );
    assert_eq!(status(&old_token), 200);
    assert_eq!(status(&new_token), 401, "not published yet");

    // Rotation: the new key is published beside the old one.
    *current.lock().expect("jwks") = both_keys(&old_keys, &new_keys);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(
        status(&new_token),
        200,
        "fetched again when a token named the new key"
    );
    assert_eq!(status(&old_token), 200);

    // Revocation: only the new key is published; the old one stops working.
    *current.lock().expect("jwks") = new_keys.clone();
    std::thread::sleep(std::time::Duration::from_millis(2500));
    assert_eq!(status(&old_token), 401, "a revoked key's token is refused");
    assert_eq!(status(&new_token), 200);

    // Tokens naming unknown keys do not make Keel fetch on every request.
    let before = hits.load(std::sync::atomic::Ordering::SeqCst);
    for _ in 0..50 {
        assert_eq!(status(&old_token), 401);
    }
    let after = hits.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        after - before <= 3,
        "{} fetches for 50 refused tokens",
        after - before
    );
}

#[test]
fn a_jwks_url_that_does_not_answer_stops_keel_serve_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let out = keel()
        .args(["serve", "--listen", "127.0.0.1:0", "--trust-issuer"])
        .arg(format!(
            "https://idp.example=http://127.0.0.1:{port}/jwks.json"
        ))
        .arg("--data")
        .arg(dir.path())
        .output()
        .expect("run keel serve");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--trust-issuer https://idp.example") && stderr.contains("JWKS"),
        "{stderr}"
    );
}
