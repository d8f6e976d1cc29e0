//! Read throughput with authentication and audit on, against the same benchmark with both off
//! (issue 5: within 15%).
//!
//! One embedded store (synced commits, as `keel serve` runs it) holding 2,000 Patients of a PCN
//! practice. Two servers over it on loopback, the same router and access policy:
//! - off: no authentication (local development), no audit trail;
//! - on: ES256 bearer tokens verified on every request (a GP of the practice, direct care),
//!   the access view and policy decision on every read, and one audit record per request,
//!   group-committed to the hash chain before the response leaves.
//!
//! Each round runs `CONNECTIONS` keep-alive clients reading random Patients for `SECONDS`,
//! alternating off and on; the medians of the rounds are compared. Every response must be a
//! 200. Run: `cargo bench -p keel-api --bench read_auth_audit`. To profile one server, set
//! `BENCH_ONLY=off|on|auth|audit`: its load then runs round after round until stopped (attach
//! `perf record -p PID`).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use keel_api::AppState;
use keel_api::auth::{Authentication, KeySet, TokenVerifier};
use keel_core::access::{AccessControl, Pcn};
use keel_core::audit::{AuditTrail, CheckpointSigner};
use keel_core::clock::{SequentialIds, SystemClock};
use keel_core::fhir::FhirService;
use keel_core::policy::Policy;
use keel_core::store::ResourceStore;
use keel_core::{CorrelationId, RequestContext};
use keel_model::OdsCode;
use keel_store::{Durability, SqliteStore};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::{Value, json};
use std::num::NonZeroU64;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The allocator `keel serve` runs with.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const PATIENTS: usize = 2_000;
const CONNECTIONS: usize = 32;
const SECONDS: u64 = 10;
const ROUNDS: usize = 3;
const PRACTICE: &str = "A81001";
const ISSUER: &str = "https://issuer.bench/realms/Healthcare";
const AUDIENCE: &str = "keel-bench";

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn ResourceStore> =
        Arc::new(SqliteStore::open_dir_with(dir.path(), Durability::EveryCommit).expect("store"));
    seed(&store);
    let (jwks, token) = issuer();
    let trail = Arc::new(AuditTrail::start(
        store.clone(),
        CheckpointSigner::new(
            ed25519_dalek::SigningKey::from_bytes(&[7; 32]),
            NonZeroU64::new(100).expect("non-zero"),
        ),
    ));
    let off = service(&store, None);
    let on = service(&store, Some(trail.clone()));
    let (mut offs, mut ons) = (Vec::new(), Vec::new());
    let (mut auths, mut audits) = (Vec::new(), Vec::new());
    runtime.block_on(async {
        let off_origin = serve(off.clone(), Authentication::Disabled).await;
        let on_origin = serve(on, Authentication::Required(verifier(&jwks))).await;
        // The parts on their own: authentication and access decisions without audit, and
        // audit of local-development reads (no token, no decision).
        let auth_origin = serve(off, Authentication::Required(verifier(&jwks))).await;
        let audit_origin = serve(service(&store, Some(trail)), Authentication::Disabled).await;
        // For a profiler: one server's load, round after round, until the process is stopped.
        if let Ok(only) = std::env::var("BENCH_ONLY") {
            let (origin, bearer) = match only.as_str() {
                "off" => (&off_origin, None),
                "on" => (&on_origin, Some(token.as_str())),
                "auth" => (&auth_origin, Some(token.as_str())),
                "audit" => (&audit_origin, None),
                other => panic!("BENCH_ONLY={other}: expected off, on, auth or audit"),
            };
            loop {
                println!("{only}: {:.0} reads/s", load(origin, bearer).await);
            }
        }
        for round in 1..=ROUNDS {
            let a = load(&off_origin, None).await;
            let b = load(&on_origin, Some(&token)).await;
            let c = load(&auth_origin, Some(&token)).await;
            let d = load(&audit_origin, None).await;
            println!(
                "round {round}: off {a:.0} reads/s, on {b:.0} ({:+.1}%); auth and access only {c:.0}; audit only {d:.0}",
                100.0 * (b / a - 1.0)
            );
            offs.push(a);
            ons.push(b);
            auths.push(c);
            audits.push(d);
        }
    });
    println!(
        "parts (medians): auth and access decisions only {:.0} reads/s, audit only {:.0} reads/s",
        median(&mut auths),
        median(&mut audits)
    );
    let (off, on) = (median(&mut offs), median(&mut ons));
    println!(
        "read throughput, {CONNECTIONS} connections, {PATIENTS} patients: auth+audit off {off:.0} reads/s, on {on:.0} reads/s: {:.1}% (target: within 15%)",
        100.0 * (on / off - 1.0)
    );
    let mut reader = store.reader().expect("reader");
    let last = reader
        .audit_entries(0, usize::MAX >> 1)
        .expect("audit")
        .len();
    println!("audit entries written by the 'on' rounds: {last}");
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn service(store: &Arc<dyn ResourceStore>, trail: Option<Arc<AuditTrail>>) -> Arc<FhirService> {
    let pcn = Pcn {
        code: OdsCode::parse("U12345").expect("ods"),
        name: "Bench PCN".into(),
        practices: vec![OdsCode::parse(PRACTICE).expect("ods")],
        hub: None,
    };
    let access = AccessControl::new(Policy::default_policy().expect("policy"), Some(pcn));
    let service = FhirService::new(
        store.clone(),
        Arc::new(SystemClock::default()),
        Arc::new(SequentialIds::new("bench")),
    )
    .with_access(access);
    Arc::new(match trail {
        Some(trail) => service.with_audit(trail),
        None => service,
    })
}

fn seed(store: &Arc<dyn ResourceStore>) {
    let fhir = FhirService::new(
        store.clone(),
        Arc::new(SystemClock::default()),
        Arc::new(SequentialIds::new("seed")),
    );
    let entries: Vec<Value> = (0..PATIENTS)
        .map(|n| {
            json!({"resource": {"resourceType": "Patient", "id": format!("p{n}"),
                "name": [{"family": format!("Bench{n}"), "given": ["Read"]}],
                "generalPractitioner": [{"identifier": {"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": PRACTICE}}]},
                "request": {"method": "PUT", "url": format!("Patient/p{n}")}})
        })
        .collect();
    let ctx = RequestContext::local_development(CorrelationId::parse("seed").expect("id"));
    fhir.process_bundle(
        &ctx,
        json!({"resourceType": "Bundle", "type": "transaction", "entry": entries}),
    )
    .expect("seed");
}

/// A verifier trusting `jwks`.
fn verifier(jwks: &str) -> TokenVerifier {
    TokenVerifier::new(AUDIENCE.into(), 30)
        .trust(ISSUER.into(), KeySet::from_jwks(jwks).expect("jwks"))
}

/// The JWKS of a new ES256 key, and a GP's token signed with it.
fn issuer() -> (String, String) {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .expect("key")
        .as_ref()
        .to_vec();
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8, &rng).expect("key");
    let point = pair.public_key().as_ref();
    let jwks = json!({"keys": [{"kty": "EC", "crv": "P-256", "alg": "ES256", "kid": "bench",
        "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..65])}]});
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let claims = json!({
        "iss": ISSUER, "aud": AUDIENCE, "sub": "555000000001", "exp": now + 3600, "nbf": now - 5,
        "nhsid_useruid": "555000000001", "selected_roleid": "r1",
        "nhsid_nrbac_roles": [{"person_roleid": "r1", "org_code": PRACTICE, "role_code": "S8000:G8000:R8000"}]
    });
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("bench".into());
    let token =
        jsonwebtoken::encode(&header, &claims, &EncodingKey::from_ec_der(&pkcs8)).expect("sign");
    (jwks.to_string(), token)
}

async fn serve(fhir: Arc<FhirService>, authentication: Authentication) -> String {
    let state = Arc::new(AppState::new(fhir, None, "bench".into(), authentication));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let origin = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        axum::serve(listener, keel_api::router(state))
            .await
            .expect("serve");
    });
    origin
}

/// Reads per second over `SECONDS` with `CONNECTIONS` clients (after a one-second warm-up).
async fn load(origin: &str, token: Option<&str>) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let warm_until = Instant::now() + Duration::from_secs(1);
    let until = warm_until + Duration::from_secs(SECONDS);
    let tasks: Vec<_> = (0..CONNECTIONS)
        .map(|c| {
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .build()
                .expect("client");
            let origin = origin.to_string();
            let token = token.map(str::to_string);
            let done = done.clone();
            tokio::spawn(async move {
                let mut n = c * 7919;
                while Instant::now() < until {
                    n = (n * 31 + 17) % PATIENTS;
                    let mut request = client.get(format!("{origin}/fhir/Patient/p{n}"));
                    if let Some(token) = &token {
                        request = request.bearer_auth(token);
                    }
                    let response = request.send().await.expect("send");
                    assert_eq!(
                        response.status(),
                        200,
                        "{}",
                        response.text().await.unwrap_or_default()
                    );
                    response.bytes().await.expect("body");
                    if Instant::now() > warm_until {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("client task");
    }
    done.load(Ordering::Relaxed) as f64 / SECONDS as f64
}
