//! Bearer token validation: the issuer must be configured, the key found by `kid` in that
//! issuer's JWKS, the algorithm RS256 or ES256 and the one the key is for, the signature
//! good, `aud` Keel's audience, and `exp`/`nbf` in force within the clock skew.

use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::claims::Claims;
use super::jwks_url::PublishedKeys;
use super::key_set::KeySet;
use super::verified_tokens::{NotInForce, VerifiedTokens};

/// Why a token was refused. Every case is a 401.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("no bearer token was presented")]
    Missing,
    #[error("the token is malformed: {0}")]
    Malformed(String),
    #[error("the token's algorithm {0:?} is not accepted (RS256 and ES256 only)")]
    Algorithm(Algorithm),
    #[error("the token names no key id (kid)")]
    NoKeyId,
    #[error("the token's issuer is not trusted")]
    UnknownIssuer,
    #[error("the issuer has no key with the token's key id")]
    UnknownKey,
    #[error("the token was refused: {0}")]
    Refused(String),
    #[error("the token's claims name no usable identity: {0}")]
    Claims(String),
}

/// The issuers Keel trusts and the audience it answers to.
pub struct TokenVerifier {
    issuers: HashMap<String, IssuerKeys>,
    audience: String,
    clock_skew_secs: u64,
    verified: VerifiedTokens,
    http: reqwest::Client,
}

/// Where an issuer's keys come from.
enum IssuerKeys {
    /// Given once (a JWKS file).
    Fixed(Arc<KeySet>),
    /// Published at a URL and kept current.
    Published(PublishedKeys),
}

impl IssuerKeys {
    fn current(&self) -> Arc<KeySet> {
        match self {
            IssuerKeys::Fixed(keys) => keys.clone(),
            IssuerKeys::Published(published) => published.current(),
        }
    }
}

#[derive(Deserialize)]
struct IssuerOnly {
    iss: String,
}

impl TokenVerifier {
    pub fn new(audience: String, clock_skew_secs: u64) -> TokenVerifier {
        TokenVerifier {
            issuers: HashMap::new(),
            audience,
            clock_skew_secs,
            verified: VerifiedTokens::default(),
            http: reqwest::Client::new(),
        }
    }

    /// Trusts `issuer` (its `iss` value, exactly) with the keys of its JWKS.
    pub fn trust(mut self, issuer: String, keys: KeySet) -> TokenVerifier {
        self.issuers
            .insert(issuer, IssuerKeys::Fixed(Arc::new(keys)));
        self
    }

    /// Trusts `issuer` with the keys published at `url` (fetched first with
    /// [`super::fetch_jwks`]): fetched again every `interval`, and when a token names a key
    /// they lack (at most once per `interval`).
    pub fn trust_published(
        mut self,
        issuer: String,
        url: String,
        keys: KeySet,
        interval: Duration,
    ) -> TokenVerifier {
        self.issuers.insert(
            issuer,
            IssuerKeys::Published(PublishedKeys::new(url, keys, interval)),
        );
        self
    }

    /// Fetches the published keys that are due (tokens verified with earlier keys are checked
    /// again). For a periodic task.
    pub async fn refresh_published_keys(&self) {
        for keys in self.issuers.values() {
            if let IssuerKeys::Published(published) = keys
                && published.refresh_if_due(&self.http).await
            {
                self.verified.forget_all();
            }
        }
    }

    /// As [`TokenVerifier::verify`]; a token naming a key its issuer's published keys lack
    /// has them fetched again (when due) and is checked once more.
    pub(super) async fn verify_fetching_keys(&self, token: &str) -> Result<Claims, TokenError> {
        match self.verify(token) {
            Err(TokenError::UnknownKey) => {
                let issuer = decode_header(token)
                    .ok()
                    .and_then(|h| self.claimed_issuer(token, h.alg).ok());
                if let Some(IssuerKeys::Published(published)) =
                    issuer.and_then(|i| self.issuers.get(&i))
                    && published.due()
                    && published.refresh_if_due(&self.http).await
                {
                    self.verified.forget_all();
                    return self.verify(token);
                }
                Err(TokenError::UnknownKey)
            }
            other => other,
        }
    }

    /// The token's claims once every check has passed. A token verified before skips the
    /// signature check but not the time checks.
    pub(super) fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let now = jsonwebtoken::get_current_timestamp();
        let digest = VerifiedTokens::digest(token);
        match self.verified.get(&digest, now, self.clock_skew_secs) {
            Some(Ok(claims)) => return Ok(claims),
            Some(Err(NotInForce::Expired)) => {
                return Err(TokenError::Refused("the token has expired".into()));
            }
            Some(Err(NotInForce::NotYetValid)) => {
                return Err(TokenError::Refused("the token is not valid yet".into()));
            }
            None => {}
        }
        let claims = self.verify_signature_and_claims(token)?;
        self.verified
            .insert(digest, claims.clone(), now, self.clock_skew_secs);
        Ok(claims)
    }

    fn verify_signature_and_claims(&self, token: &str) -> Result<Claims, TokenError> {
        let header = decode_header(token).map_err(|e| TokenError::Malformed(e.to_string()))?;
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
            return Err(TokenError::Algorithm(header.alg));
        }
        let kid = header.kid.ok_or(TokenError::NoKeyId)?;
        let issuer = self.claimed_issuer(token, header.alg)?;
        let keys = self
            .issuers
            .get(&issuer)
            .ok_or(TokenError::UnknownIssuer)?
            .current();
        let key = keys.key(&kid).ok_or(TokenError::UnknownKey)?;
        if key.algorithm != header.alg {
            return Err(TokenError::Algorithm(header.alg));
        }
        let mut validation = Validation::new(key.algorithm);
        validation.leeway = self.clock_skew_secs;
        validation.validate_nbf = true;
        validation.set_audience(&[&self.audience]);
        validation.set_issuer(&[&issuer]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        decode::<Claims>(token, &key.key, &validation)
            .map(|data| data.claims)
            .map_err(|e| TokenError::Refused(e.to_string()))
    }

    /// The `iss` the token claims, read before its signature is checked only to choose the
    /// keys that check it.
    fn claimed_issuer(&self, token: &str, alg: Algorithm) -> Result<String, TokenError> {
        let mut peek = Validation::new(alg);
        peek.insecure_disable_signature_validation();
        peek.validate_exp = false;
        peek.validate_aud = false;
        peek.set_required_spec_claims::<&str>(&[]);
        decode::<IssuerOnly>(token, &DecodingKey::from_secret(&[]), &peek)
            .map(|data| data.claims.iss)
            .map_err(|e| TokenError::Malformed(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use jsonwebtoken::{EncodingKey, Header};
    use proptest::prelude::*;
    use ring::rand::SystemRandom;
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};

    /// A verifier trusting one fresh ES256 key, and a valid system token signed with it.
    fn verifier_and_token() -> (TokenVerifier, String) {
        let rng = SystemRandom::new();
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).expect("key");
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .expect("key");
        let point = pair.public_key().as_ref();
        let jwks = serde_json::json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "k",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..65])}]});
        let verifier = TokenVerifier::new("keel".into(), 0).trust(
            "iss".into(),
            KeySet::from_jwks(&jwks.to_string()).expect("jwks"),
        );
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some("k".into());
        let claims = serde_json::json!({"iss": "iss", "aud": "keel", "exp": 4_000_000_000u64,
            "client_id": "module", "scope": "system/Patient.rs"});
        let token =
            jsonwebtoken::encode(&header, &claims, &EncodingKey::from_ec_der(pkcs8.as_ref()))
                .expect("sign");
        (verifier, token)
    }

    #[test]
    fn the_untouched_token_is_accepted() {
        let (verifier, token) = verifier_and_token();
        assert!(verifier.verify(&token).is_ok());
        // Again, from the verified tokens.
        assert!(verifier.verify(&token).is_ok());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Changing any one character of a valid token (header, claims or signature) gets it
        /// refused.
        #[test]
        fn any_changed_character_is_refused(at in any::<prop::sample::Index>(), by in 0u8..64) {
            let (verifier, token) = verifier_and_token();
            let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
            let mut bytes = token.into_bytes();
            let i = at.index(bytes.len());
            let replacement = alphabet[usize::from(by)];
            prop_assume!(bytes[i] != replacement);
            bytes[i] = replacement;
            let tampered = String::from_utf8(bytes).expect("ascii");
            prop_assert!(verifier.verify(&tampered).is_err());
        }
    }
}
