//! A fresh PostgreSQL schema per test, so PostgreSQL tests run in parallel; dropped with the
//! guard. The server is `KEEL_TEST_POSTGRES` (default `postgres://postgres@127.0.0.1:5432/test`,
//! which `.ci/run` starts when it is not running).

use std::sync::atomic::{AtomicUsize, Ordering};

static NEXT: AtomicUsize = AtomicUsize::new(0);

pub struct TestSchema {
    name: String,
    base: String,
    /// A URL whose connections use this schema.
    pub url: String,
}

impl TestSchema {
    pub fn create() -> TestSchema {
        let base = std::env::var("KEEL_TEST_POSTGRES")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string());
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!(
            "keel_test_{}_{}_{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut client = postgres::Client::connect(&base, postgres::NoTls)
            .unwrap_or_else(|e| panic!("PostgreSQL at {base} (start it, or run .ci/run): {e}"));
        client
            .batch_execute(&format!("CREATE SCHEMA {name}"))
            .expect("create schema");
        let separator = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{separator}options=-csearch_path%3D{name}");
        TestSchema { name, base, url }
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        if let Ok(mut client) = postgres::Client::connect(&self.base, postgres::NoTls) {
            let _ = client.batch_execute(&format!("DROP SCHEMA {} CASCADE", self.name));
        }
    }
}
