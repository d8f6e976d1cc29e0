//! Decoding the unsigned JWT GP Connect consumers send as `Authorization: Bearer <token>`
//! (reference sheet §3.2): `base64url(header).base64url(claims).` with header
//! `{"alg":"none","typ":"JWT"}` and an empty signature (the token ends with `.`).
//!
//! This module only decodes; [`super::checks`] checks the claims.

use base64::Engine;
use base64::alphabet::URL_SAFE;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde_json::{Map, Value};

/// base64url, padding optional (JWTs are unpadded; a padded part is tolerated).
const BASE64URL: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why a token could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwtError {
    /// Not three dot-separated parts.
    Shape,
    /// The signature part is not empty (the token must be unsigned and end with `.`).
    Signed,
    /// A part is not base64url.
    Encoding(&'static str),
    /// A part is not a JSON object.
    NotJsonObject(&'static str),
    /// The header's `alg` is not `none`.
    Algorithm,
}

impl std::fmt::Display for JwtError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JwtError::Shape => f.write_str("the JWT must have three dot-separated parts"),
            JwtError::Signed => {
                f.write_str("the JWT must be unsigned (empty signature, trailing '.')")
            }
            JwtError::Encoding(part) => write!(f, "the JWT {part} is not base64url"),
            JwtError::NotJsonObject(part) => write!(f, "the JWT {part} is not a JSON object"),
            JwtError::Algorithm => f.write_str("the JWT header alg must be 'none'"),
        }
    }
}

/// Decodes an unsigned JWT; returns its claims.
pub fn decode(token: &str) -> Result<Map<String, Value>, JwtError> {
    let mut parts = token.split('.');
    let (Some(header), Some(claims), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Shape);
    };
    if !signature.is_empty() {
        return Err(JwtError::Signed);
    }
    let header = object(header, "header")?;
    if header.get("alg").and_then(Value::as_str) != Some("none") {
        return Err(JwtError::Algorithm);
    }
    object(claims, "claims")
}

fn object(part: &str, name: &'static str) -> Result<Map<String, Value>, JwtError> {
    let bytes = BASE64URL
        .decode(part)
        .map_err(|_| JwtError::Encoding(name))?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(JwtError::NotJsonObject(name)),
    }
}

/// Encodes `claims` as an unsigned JWT (for tests and consumers of the simulator).
pub fn encode_unsigned(claims: &Value) -> String {
    let header = BASE64URL.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let body = BASE64URL.encode(claims.to_string().as_bytes());
    format!("{header}.{body}.")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn decodes_an_unsigned_token_and_rejects_the_rest() {
        let claims = json!({"iss": "https://consumer.example", "exp": 1_700_000_300});
        let token = encode_unsigned(&claims);
        assert_eq!(decode(&token).map(Value::Object), Ok(claims));
        assert_eq!(decode(&format!("{token}sig")), Err(JwtError::Signed));
        assert_eq!(decode(token.trim_end_matches('.')), Err(JwtError::Shape));
        let signed_alg = format!(
            "{}.{}.",
            BASE64URL.encode(br#"{"alg":"HS256"}"#),
            BASE64URL.encode(b"{}")
        );
        assert_eq!(decode(&signed_alg), Err(JwtError::Algorithm));
        assert_eq!(decode("!!.e30."), Err(JwtError::Encoding("header")));
        let array = format!(
            "{}.{}.",
            BASE64URL.encode(br#"{"alg":"none"}"#),
            BASE64URL.encode(b"[1]")
        );
        assert_eq!(decode(&array), Err(JwtError::NotJsonObject("claims")));
    }

    fn json_leaf() -> impl Strategy<Value = Value> {
        prop_oneof![
            any::<i64>().prop_map(Value::from),
            any::<bool>().prop_map(Value::from),
            ".{0,20}".prop_map(Value::from),
        ]
    }

    proptest! {
        #[test]
        fn never_panics_on_any_input(token in ".{0,200}") {
            let _ = decode(&token);
        }

        #[test]
        fn never_panics_on_dotted_base64ish_input(token in "[A-Za-z0-9_=.-]{0,120}") {
            let _ = decode(&token);
        }

        #[test]
        fn round_trips_any_claims(claims in proptest::collection::btree_map("[a-z_]{1,12}", json_leaf(), 0..8)) {
            let claims = Value::Object(claims.into_iter().collect());
            let token = encode_unsigned(&claims);
            prop_assert_eq!(decode(&token).map(Value::Object), Ok(claims));
        }

        #[test]
        fn any_signature_is_refused(claims in proptest::collection::btree_map("[a-z]{1,8}", json_leaf(), 0..4), sig in "[A-Za-z0-9_-]{1,40}") {
            let token = format!("{}{sig}", encode_unsigned(&Value::Object(claims.into_iter().collect())));
            prop_assert_eq!(decode(&token), Err(JwtError::Signed));
        }
    }
}
