//! The local development issuer: an ES256 (P-256) key made once in `DATA/dev-issuer/`
//! (`signing-key.p8`, PKCS#8 DER, mode 0600) with its public JWKS (`jwks.json`). `keel token`
//! signs with it; `keel serve --dev-issuer` trusts it. Both refuse a production data directory
//! (see [`crate::data_environment`]).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use std::fs;
use std::io::Write;
use std::path::Path;

/// The `iss` of development tokens.
pub const ISSUER: &str = "urn:keel:dev-issuer";

const FOLDER: &str = "dev-issuer";
const KEY_FILE: &str = "signing-key.p8";
const JWKS_FILE: &str = "jwks.json";

/// The development signing key.
pub struct DevIssuer {
    pkcs8: Vec<u8>,
    /// The key id: the start of the public key's x coordinate, base64url.
    pub kid: String,
    /// The public key as a JWKS document.
    pub jwks: String,
}

impl DevIssuer {
    /// The key in `data`, made (with its JWKS) when there is none yet.
    pub fn open_or_create(data: &Path) -> Result<DevIssuer, String> {
        let folder = data.join(FOLDER);
        let key_path = folder.join(KEY_FILE);
        let pkcs8 = if key_path.exists() {
            fs::read(&key_path).map_err(|e| format!("cannot read {}: {e}", key_path.display()))?
        } else {
            fs::create_dir_all(&folder)
                .map_err(|e| format!("cannot create {}: {e}", folder.display()))?;
            let made = EcdsaKeyPair::generate_pkcs8(
                &ECDSA_P256_SHA256_FIXED_SIGNING,
                &SystemRandom::new(),
            )
            .map_err(|_| "cannot make a development key".to_string())?;
            write_secret(&key_path, made.as_ref())?;
            made.as_ref().to_vec()
        };
        let pair = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &pkcs8,
            &SystemRandom::new(),
        )
        .map_err(|e| format!("{} is not a P-256 key: {e}", key_path.display()))?;
        // An uncompressed point: 0x04, x (32 bytes), y (32 bytes).
        let point = pair.public_key().as_ref();
        let (x, y) = (&point[1..33], &point[33..65]);
        let kid = format!("dev-{}", &URL_SAFE_NO_PAD.encode(x)[..16]);
        let jwks = serde_json::json!({"keys": [{
            "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": kid,
            "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y),
        }]})
        .to_string();
        let jwks_path = folder.join(JWKS_FILE);
        fs::write(&jwks_path, &jwks)
            .map_err(|e| format!("cannot write {}: {e}", jwks_path.display()))?;
        Ok(DevIssuer { pkcs8, kid, jwks })
    }

    /// `claims` signed with ES256 under this key's id.
    pub fn sign(&self, claims: &serde_json::Value) -> Result<String, String> {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        let key = jsonwebtoken::EncodingKey::from_ec_der(&self.pkcs8);
        jsonwebtoken::encode(&header, claims, &key).map_err(|e| format!("cannot sign: {e}"))
    }
}

fn write_secret(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}
