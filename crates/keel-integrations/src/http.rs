//! The HTTP side every adapter shares: one connection pool per endpoint, a timeout per call,
//! and the classification of failures.
//!
//! A failure to *connect* means nothing reached the other side. Any later failure (timeout
//! after sending, connection closed before the answer) means the other side may have acted:
//! harmless for a read, an unknown outcome for a write.

use std::time::Duration;

use keel_core::integration::IntegrationError;
use keel_model::{Instant, OdsCode};

/// Where an interface is reached and how long Keel waits for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The base URL, without a trailing slash (e.g. `http://127.0.0.1:9100/personal-demographics/FHIR/R4`).
    pub base_url: String,
    /// The longest Keel waits for one call, connection included.
    pub timeout: Duration,
}

impl Endpoint {
    pub fn new(base_url: impl Into<String>, timeout: Duration) -> Endpoint {
        let base_url = base_url.into().trim_end_matches('/').to_string();
        Endpoint { base_url, timeout }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }
}

/// An HTTP client for one endpoint.
///
/// # Errors
/// If the TLS or connection pool cannot be set up.
pub fn client(endpoint: &Endpoint) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .timeout(endpoint.timeout)
        .connect_timeout(endpoint.timeout.min(Duration::from_secs(5)))
        .pool_idle_timeout(Duration::from_secs(30))
        .build()
}

/// A fresh request id (a UUID), as NHS APIs require per request.
pub fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Now, as a FHIR instant in UTC to the second, for `Provenance.retrieved`.
pub fn now() -> Instant {
    let now = time::OffsetDateTime::now_utc();
    let text = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    );
    Instant::parse(&text).expect("a UTC timestamp to the second is a FHIR instant")
}

/// A transport failure of a read: nothing changed, it may be asked again later.
pub fn read_failed(
    source: &OdsCode,
    endpoint: &Endpoint,
    err: &reqwest::Error,
) -> IntegrationError {
    IntegrationError::Unavailable {
        practice: source.clone(),
        reason: describe(endpoint, err),
    }
}

/// A transport failure of a write: if the request may have been received, its outcome is
/// unknown; if the connection was never made, nothing was sent.
pub fn write_failed(
    source: &OdsCode,
    endpoint: &Endpoint,
    err: &reqwest::Error,
) -> IntegrationError {
    if err.is_connect() {
        IntegrationError::Unavailable {
            practice: source.clone(),
            reason: describe(endpoint, err),
        }
    } else {
        IntegrationError::OutcomeUnknown {
            practice: source.clone(),
            reason: describe(endpoint, err),
        }
    }
}

const COULD_NOT_CONNECT: &str = "could not connect";
const CUT_OFF: &str = "the answer was cut off";
const CLOSED_EARLY: &str = "the connection closed before an answer";

/// Words for a transport failure, without the URL (which may hold identifiers).
fn describe(endpoint: &Endpoint, err: &reqwest::Error) -> String {
    if err.is_timeout() {
        format!("no answer within {} ms", endpoint.timeout.as_millis())
    } else if err.is_connect() {
        COULD_NOT_CONNECT.into()
    } else if err.is_body() || err.is_decode() {
        CUT_OFF.into()
    } else {
        CLOSED_EARLY.into()
    }
}

/// Whether `reason` (of an [`IntegrationError::Unavailable`] read) is a transport failure that
/// ended before the timeout: the connection could not be made, was closed, or the answer was
/// cut off. Asking once more may succeed. A timeout (the wait is used up) and an HTTP status
/// (the system answered, e.g. that it is overloaded) are not.
pub fn is_early_transport_failure(reason: &str) -> bool {
    [COULD_NOT_CONNECT, CUT_OFF, CLOSED_EARLY].contains(&reason)
}

/// An answer that is neither success nor a known refusal: the source is not working properly.
pub fn unexpected_status(source: &OdsCode, status: u16) -> IntegrationError {
    if status == 429 || status >= 500 {
        IntegrationError::Unavailable {
            practice: source.clone(),
            reason: format!("answered HTTP {status}"),
        }
    } else {
        IntegrationError::Malformed {
            practice: source.clone(),
            reason: format!("answered HTTP {status} unexpectedly"),
        }
    }
}
