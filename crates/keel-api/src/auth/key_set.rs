//! An issuer's signing keys, read from its JWKS and kept by key id (`kid`). Only RS256 and
//! ES256 keys are kept: a token signed any other way finds no key.

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey};
use std::collections::HashMap;

#[derive(Debug, thiserror::Error)]
pub enum KeySetError {
    #[error("not a JWKS: {0}")]
    NotJwks(String),
    #[error("the JWKS has no RS256 or ES256 key with a key id")]
    NoUsableKey,
}

/// One verification key and the one algorithm it may be used with.
pub(super) struct VerificationKey {
    pub key: DecodingKey,
    pub algorithm: Algorithm,
}

/// The usable keys of one issuer, by key id.
pub struct KeySet {
    keys: HashMap<String, VerificationKey>,
}

impl KeySet {
    /// The RS256 and ES256 (P-256) keys of a JWKS document that carry a `kid`; others are
    /// left out.
    pub fn from_jwks(text: &str) -> Result<KeySet, KeySetError> {
        let set: JwkSet =
            serde_json::from_str(text).map_err(|e| KeySetError::NotJwks(e.to_string()))?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let Some(kid) = &jwk.common.key_id else {
                continue;
            };
            let algorithm = match (&jwk.algorithm, jwk.common.key_algorithm) {
                (AlgorithmParameters::RSA(_), None | Some(KeyAlgorithm::RS256)) => Algorithm::RS256,
                (AlgorithmParameters::EllipticCurve(ec), None | Some(KeyAlgorithm::ES256))
                    if ec.curve == EllipticCurve::P256 =>
                {
                    Algorithm::ES256
                }
                _ => continue,
            };
            let key =
                DecodingKey::from_jwk(jwk).map_err(|e| KeySetError::NotJwks(e.to_string()))?;
            keys.insert(kid.clone(), VerificationKey { key, algorithm });
        }
        if keys.is_empty() {
            return Err(KeySetError::NoUsableKey);
        }
        Ok(KeySet { keys })
    }

    pub(super) fn key(&self, kid: &str) -> Option<&VerificationKey> {
        self.keys.get(kid)
    }
}
