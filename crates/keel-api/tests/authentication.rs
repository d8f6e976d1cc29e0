//! Bearer token authentication over real HTTP: every refused token is a 401 OperationOutcome
//! with `WWW-Authenticate: Bearer ... error="invalid_token"`; a good token's user reaches the
//! request context (seen as the practice directory's `changed_by`).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use keel_api::AppState;
use keel_api::auth::{Authentication, KeySet, TokenVerifier};
use keel_core::clock::{SequentialIds, SystemClock};
use keel_core::fhir::FhirService;
use keel_integrations::directory::Directory;
use keel_integrations::gpconnect::request::Consumer;
use keel_model::OdsCode;
use keel_store::SqliteStore;
use reqwest::StatusCode;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

const ISSUER: &str = "https://issuer.test/realms/Healthcare";
const AUDIENCE: &str = "keel-test";
const KID: &str = "key-1";

/// A P-256 key: its PKCS#8 for signing and its JWKS.
struct TestKey {
    pkcs8: Vec<u8>,
    jwks: String,
}

fn test_key(kid: &str) -> TestKey {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .expect("key")
        .as_ref()
        .to_vec();
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8, &rng).expect("key");
    let point = pair.public_key().as_ref();
    let jwks = json!({"keys": [{"kty": "EC", "crv": "P-256", "alg": "ES256", "kid": kid,
        "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..65])}]})
    .to_string();
    TestKey { pkcs8, jwks }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

fn user_claims() -> Value {
    json!({
        "iss": ISSUER, "aud": AUDIENCE, "sub": "555021935107",
        "exp": now() + 600, "nbf": now() - 5,
        "nhsid_useruid": "555021935107",
        "selected_roleid": "role-2",
        "nhsid_nrbac_roles": [
            {"person_roleid": "role-1", "org_code": "Y90001", "role_code": "S8001:G8002:R8008"},
            {"person_roleid": "role-2", "org_code": "A81001", "role_code": "S8000:G8000:R8000",
             "activity_codes": ["B0380", "B0401"]}
        ]
    })
}

fn es256(key: &TestKey, kid: &str, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(kid.into());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_ec_der(&key.pkcs8)).expect("sign")
}

struct Running {
    origin: String,
    key: TestKey,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

async fn start() -> Running {
    let key = test_key(KID);
    let verifier = TokenVerifier::new(AUDIENCE.into(), 30)
        .trust(ISSUER.into(), KeySet::from_jwks(&key.jwks).expect("jwks"));
    let dir = tempfile::tempdir().expect("tempdir");
    let fhir = Arc::new(FhirService::new(
        Arc::new(SqliteStore::open_dir(dir.path()).expect("store")),
        Arc::new(SystemClock::default()),
        Arc::new(SequentialIds::new("t")),
    ));
    let consumer = Consumer {
        asid: "200000000359".into(),
        endpoint: "https://keel.example/".into(),
        organisation: OdsCode::parse("U12345").expect("valid"),
        product: "keel".into(),
        version: "test".into(),
    };
    let directory = Directory::open(consumer, None, None).expect("directory");
    let state = AppState::new(
        fhir,
        None,
        "test".into(),
        Authentication::Required(verifier),
    )
    .with_directory(Arc::new(directory));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let at = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, keel_api::router(Arc::new(state))).await });
    Running {
        origin: format!("http://{at}"),
        key,
        client: reqwest::Client::new(),
        _dir: dir,
    }
}

impl Running {
    async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut request = self.client.get(format!("{}{path}", self.origin));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request")
    }
}

async fn assert_refused(response: reqwest::Response, invalid_token: bool, why: &str) {
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{why}");
    let challenge = response
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(challenge.starts_with("Bearer"), "{why}: {challenge}");
    assert_eq!(
        challenge.contains("error=\"invalid_token\""),
        invalid_token,
        "{why}: {challenge}"
    );
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["resourceType"], "OperationOutcome", "{why}");
    assert_eq!(body["issue"][0]["code"], "login", "{why}");
}

#[tokio::test]
async fn bad_tokens_are_refused_with_401() {
    let running = start().await;
    let good = user_claims();
    let other_key = test_key(KID);
    let mut expired = good.clone();
    expired["exp"] = json!(now() - 3600);
    let mut not_yet = good.clone();
    not_yet["nbf"] = json!(now() + 3600);
    let mut wrong_audience = good.clone();
    wrong_audience["aud"] = json!("someone-else");
    let mut unknown_issuer = good.clone();
    unknown_issuer["iss"] = json!("https://elsewhere.test");
    let mut unselected = good.clone();
    unselected["selected_roleid"] = json!("role-9");
    let mut hs256_header = Header::new(Algorithm::HS256);
    hs256_header.kid = Some(KID.into());
    let hs256 = jsonwebtoken::encode(&hs256_header, &good, &EncodingKey::from_secret(b"secret"))
        .expect("sign");
    let alg_none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "JWT", "kid": KID}).to_string()),
        URL_SAFE_NO_PAD.encode(good.to_string())
    );
    let cases: Vec<(&str, String)> = vec![
        ("expired", es256(&running.key, KID, &expired)),
        ("not yet valid", es256(&running.key, KID, &not_yet)),
        ("wrongly signed", es256(&other_key, KID, &good)),
        ("wrong audience", es256(&running.key, KID, &wrong_audience)),
        ("unknown issuer", es256(&running.key, KID, &unknown_issuer)),
        ("unknown kid", es256(&running.key, "key-2", &good)),
        (
            "selected role not held",
            es256(&running.key, KID, &unselected),
        ),
        ("HS256", hs256),
        ("alg none", alg_none),
        ("not a JWT", "not-a-token".into()),
    ];
    for (why, token) in &cases {
        for path in ["/fhir/Patient", "/api/practices"] {
            assert_refused(running.get(path, Some(token)).await, true, why).await;
        }
    }
    assert_refused(running.get("/fhir/Patient", None).await, false, "no token").await;
}

#[tokio::test]
async fn a_good_token_reaches_the_request_context() {
    let running = start().await;
    let token = es256(&running.key, KID, &user_claims());
    let search = running.get("/fhir/Patient", Some(&token)).await;
    assert_eq!(search.status(), StatusCode::OK);
    let connection = json!({"ods": "A81001", "name": "Test Practice", "system": "emis-style",
        "interfaces": []});
    let put = running
        .client
        .put(format!("{}/api/practices/A81001", running.origin))
        .bearer_auth(&token)
        .json(&connection)
        .send()
        .await
        .expect("put");
    assert!(put.status().is_success(), "{}", put.status());
    let one: Value = running
        .get("/api/practices/A81001", Some(&token))
        .await
        .json()
        .await
        .expect("json");
    let shown = one.to_string();
    assert!(
        shown.contains("user 555021935107 (S8000:G8000:R8000)"),
        "the selected role's user is who changed it: {shown}"
    );
}

#[tokio::test]
async fn a_system_client_with_scopes_is_accepted() {
    let running = start().await;
    let claims = json!({"iss": ISSUER, "aud": AUDIENCE, "exp": now() + 600,
        "client_id": "analytics-module", "scope": "system/Patient.rs system/Observation.rs"});
    let token = es256(&running.key, KID, &claims);
    // Authenticated (not 401); the policy then refuses: the client names no organisation it
    // acts for, so it has no relationship with any patient.
    let response = running.get("/fhir/Patient", Some(&token)).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let outcome: serde_json::Value = response.json().await.expect("outcome");
    assert!(
        outcome.to_string().contains("organisation-missing"),
        "{outcome}"
    );
    let no_scope = json!({"iss": ISSUER, "aud": AUDIENCE, "exp": now() + 600, "client_id": "x"});
    let token = es256(&running.key, KID, &no_scope);
    assert_refused(
        running.get("/fhir/Patient", Some(&token)).await,
        true,
        "no scope",
    )
    .await;
}

#[tokio::test]
async fn an_unknown_purpose_is_a_bad_request_and_health_metrics_and_the_capability_statement_stay_open()
 {
    let running = start().await;
    let token = es256(&running.key, KID, &user_claims());
    let response = running
        .client
        .get(format!("{}/fhir/Patient", running.origin))
        .bearer_auth(&token)
        .header("X-Purpose-Of-Use", "curiosity")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    for open in ["/health/live", "/metrics", "/fhir/metadata"] {
        assert_eq!(
            running.get(open, None).await.status(),
            StatusCode::OK,
            "{open}"
        );
    }
}
