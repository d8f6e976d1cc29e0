//! Issuer keys published at a JWKS URL: fetched when Keel starts, fetched again periodically
//! (an issuer's rotated or revoked keys reach Keel without a restart), and at once when a token
//! names a key id the issuer's current keys lack — at most once per refresh interval, so tokens
//! with made-up key ids cannot make Keel hammer the issuer.

use super::key_set::KeySet;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// The longest a JWKS fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// An issuer's keys, kept current from their URL.
pub(super) struct PublishedKeys {
    url: String,
    interval: Duration,
    keys: RwLock<Arc<KeySet>>,
    /// When the keys were last fetched (or a fetch last tried).
    fetched: Mutex<Instant>,
}

impl PublishedKeys {
    pub(super) fn new(url: String, keys: KeySet, interval: Duration) -> PublishedKeys {
        PublishedKeys {
            url,
            interval,
            keys: RwLock::new(Arc::new(keys)),
            fetched: Mutex::new(Instant::now()),
        }
    }

    pub(super) fn current(&self) -> Arc<KeySet> {
        self.keys.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Is a fetch due: the interval has passed since the last one?
    pub(super) fn due(&self) -> bool {
        self.fetched
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .elapsed()
            >= self.interval
    }

    /// Fetches the keys if a fetch is due; keeps the current ones when it fails. Says whether
    /// the keys were replaced.
    pub(super) async fn refresh_if_due(&self, client: &reqwest::Client) -> bool {
        {
            let mut fetched = self.fetched.lock().unwrap_or_else(|e| e.into_inner());
            if fetched.elapsed() < self.interval {
                return false;
            }
            *fetched = Instant::now();
        }
        match fetch(client, &self.url).await {
            Ok(keys) => {
                *self.keys.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(keys);
                true
            }
            Err(e) => {
                tracing::warn!(target: "keel::auth", url = %self.url, error = %e, "JWKS refresh failed; the issuer's previous keys stay in use");
                false
            }
        }
    }
}

/// The keys of the JWKS at `url` (for the first fetch, before serving).
pub async fn fetch_jwks(url: &str) -> Result<KeySet, String> {
    fetch(&reqwest::Client::new(), url).await
}

async fn fetch(client: &reqwest::Client, url: &str) -> Result<KeySet, String> {
    let response = client
        .get(url)
        .timeout(FETCH_TIMEOUT)
        .send()
        .await
        .map_err(|e| format!("cannot fetch the JWKS at {url}: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("the JWKS at {url} answered {}", response.status()));
    }
    let text = response
        .text()
        .await
        .map_err(|e| format!("cannot read the JWKS at {url}: {e}"))?;
    KeySet::from_jwks(&text).map_err(|e| format!("the JWKS at {url}: {e}"))
}
