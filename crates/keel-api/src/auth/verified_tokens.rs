//! Tokens whose signature has already been checked. A client sends the same bearer token with
//! every request until it expires; checking its ES256 or RS256 signature each time cost more
//! than the read it guarded (BENCHMARKS.md, issue 5). A token seen again is looked up by the
//! SHA-256 of its exact text and skips the signature check — never the time checks, which are
//! made again on every use against the claims verified the first time.

use super::claims::Claims;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;

/// Most tokens remembered; when full, the expired ones go, and if none has expired, all go.
const CAPACITY: usize = 10_000;

#[derive(Default)]
pub(super) struct VerifiedTokens {
    by_digest: Mutex<HashMap<[u8; 32], Claims>>,
}

/// Why a remembered token is no longer in force.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum NotInForce {
    Expired,
    NotYetValid,
}

impl VerifiedTokens {
    pub(super) fn digest(token: &str) -> [u8; 32] {
        Sha256::digest(token.as_bytes()).into()
    }

    /// The claims of a token verified before, checked against `now` (seconds since the epoch)
    /// with `leeway` seconds of clock skew; `None` if it was not verified before.
    pub(super) fn get(
        &self,
        digest: &[u8; 32],
        now: u64,
        leeway: u64,
    ) -> Option<Result<Claims, NotInForce>> {
        let tokens = self.by_digest.lock().unwrap_or_else(|e| e.into_inner());
        let claims = tokens.get(digest)?;
        Some(in_force(claims, now, leeway).map(|()| claims.clone()))
    }

    /// Forgets every token: after an issuer's keys changed, a remembered token may be signed
    /// by a key no longer trusted.
    pub(super) fn forget_all(&self) {
        self.by_digest
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// Remembers the claims of a token whose signature and claims have just been verified.
    pub(super) fn insert(&self, digest: [u8; 32], claims: Claims, now: u64, leeway: u64) {
        let mut tokens = self.by_digest.lock().unwrap_or_else(|e| e.into_inner());
        if tokens.len() >= CAPACITY {
            tokens.retain(|_, c| in_force(c, now, leeway) != Err(NotInForce::Expired));
            if tokens.len() >= CAPACITY {
                tokens.clear();
            }
        }
        tokens.insert(digest, claims);
    }
}

/// The same rule as the signature check's: expired when `exp` is more than `leeway` in the
/// past, not yet valid when `nbf` is more than `leeway` in the future.
fn in_force(claims: &Claims, now: u64, leeway: u64) -> Result<(), NotInForce> {
    if claims.exp.saturating_add(leeway) < now {
        return Err(NotInForce::Expired);
    }
    if claims
        .nbf
        .is_some_and(|nbf| nbf > now.saturating_add(leeway))
    {
        return Err(NotInForce::NotYetValid);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: u64, nbf: Option<u64>) -> Claims {
        serde_json::from_value(serde_json::json!({"exp": exp, "nbf": nbf, "client_id": "m"}))
            .expect("claims")
    }

    #[test]
    fn a_remembered_token_is_checked_against_the_clock_on_every_use() {
        let tokens = VerifiedTokens::default();
        let digest = VerifiedTokens::digest("token");
        assert!(tokens.get(&digest, 1_000, 60).is_none());
        tokens.insert(digest, claims(2_000, Some(500)), 1_000, 60);
        assert!(matches!(tokens.get(&digest, 1_000, 60), Some(Ok(_))));
        assert!(matches!(tokens.get(&digest, 2_060, 60), Some(Ok(_))));
        assert!(matches!(
            tokens.get(&digest, 2_061, 60),
            Some(Err(NotInForce::Expired))
        ));
        assert!(matches!(
            tokens.get(&digest, 439, 60),
            Some(Err(NotInForce::NotYetValid))
        ));
        assert!(
            tokens
                .get(&VerifiedTokens::digest("token "), 1_000, 60)
                .is_none()
        );
    }

    #[test]
    fn a_full_cache_drops_expired_tokens_first() {
        let tokens = VerifiedTokens::default();
        for n in 0..CAPACITY {
            let exp = if n == 0 { 3_000 } else { 1_500 };
            tokens.insert(
                VerifiedTokens::digest(&n.to_string()),
                claims(exp, None),
                1_000,
                0,
            );
        }
        tokens.insert(VerifiedTokens::digest("new"), claims(3_000, None), 2_000, 0);
        assert!(tokens.get(&VerifiedTokens::digest("0"), 2_000, 0).is_some());
        assert!(tokens.get(&VerifiedTokens::digest("1"), 2_000, 0).is_none());
        assert!(
            tokens
                .get(&VerifiedTokens::digest("new"), 2_000, 0)
                .is_some()
        );
    }
}
