//! Idempotency keys (`Idempotency-Key`): a write sent again with the key of one already done
//! gets that write's response instead of being done twice, whichever node it reaches. The key
//! and its response are recorded in the write's own transaction (under the store's write
//! lock), so a repeat either finds the record or runs first; a key reused for a different
//! request is refused.

use crate::context::{Actor, RequestContext};
use crate::error::{FhirError, FhirResult};
use serde_json::{Value, json};

/// The longest key accepted.
pub const MAX_KEY_LENGTH: usize = 255;

/// A request's idempotency key, with the fingerprint of the request it was sent with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    key: String,
    fingerprint: String,
}

impl IdempotencyKey {
    /// `key` as sent (1–255 visible ASCII characters); `fingerprint` identifies the request
    /// (method, target and body).
    pub fn new(key: &str, fingerprint: String) -> FhirResult<IdempotencyKey> {
        let ok = !key.is_empty()
            && key.len() <= MAX_KEY_LENGTH
            && key.bytes().all(|b| b.is_ascii_graphic());
        if !ok {
            return Err(FhirError::BadRequest(format!(
                "Idempotency-Key must be 1 to {MAX_KEY_LENGTH} visible ASCII characters (a UUID is a good key)"
            )));
        }
        Ok(IdempotencyKey {
            key: key.to_string(),
            fingerprint,
        })
    }

    /// The key as stored: one actor's keys never meet another's.
    pub(crate) fn store_key(&self, ctx: &RequestContext) -> String {
        let actor = match &ctx.actor {
            Actor::User { user_id, .. } => format!("user:{user_id}"),
            Actor::System { client_id, .. } => format!("system:{client_id}"),
            Actor::LocalDevelopment => "local".to_string(),
        };
        format!("{actor}\u{1f}{}", self.key)
    }

    /// The record of a write's response under this key.
    pub(crate) fn record(&self, response: Value) -> String {
        json!({ "fingerprint": self.fingerprint, "response": response }).to_string()
    }

    /// The response recorded under this key, if it was recorded for the same request.
    pub(crate) fn recorded_response(&self, record: &str) -> FhirResult<Value> {
        let mut record: Value = serde_json::from_str(record).map_err(|_| unreadable_record())?;
        if record["fingerprint"].as_str() != Some(self.fingerprint.as_str()) {
            return Err(FhirError::IdempotencyKeyReused);
        }
        Ok(record["response"].take())
    }
}

/// The response recorded under a key cannot be read back (a store written by another version).
pub(crate) fn unreadable_record() -> FhirError {
    FhirError::Conflict("the response recorded for this Idempotency-Key is unreadable".into())
}
