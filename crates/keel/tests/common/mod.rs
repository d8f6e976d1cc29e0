//! Shared harness for end-to-end tests: the real `keel` binary, over real HTTP.
#![allow(dead_code)] // each test binary uses a different part of the harness

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub fn keel() -> Command {
    Command::new(env!("CARGO_BIN_EXE_keel"))
}

pub fn shared_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared");
    assert!(dir.is_dir(), "the shared test assets are expected at {}", dir.display());
    dir
}

pub fn blaze_dir() -> PathBuf {
    shared_dir().join("fhir-test-assets/synthetic/blaze-synthea-120")
}

/// Runs `keel import` and returns (success, stdout, stderr).
pub fn import(data: &Path, paths: &[PathBuf]) -> (bool, String, String) {
    let output = keel().arg("import").arg("--data").arg(data).args(paths).output().expect("run keel import");
    (output.status.success(), String::from_utf8_lossy(&output.stdout).into_owned(), String::from_utf8_lossy(&output.stderr).into_owned())
}

/// A running `keel serve`, stopped when dropped.
pub struct Server {
    child: Child,
    pub base: String,
}

impl Server {
    pub fn start(data: &Path) -> Server {
        let mut child = keel()
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(data)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn keel serve");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let base = loop {
            let line = lines.next().expect("keel serve exited before listening").expect("read stdout");
            if let Some(url) = line.strip_prefix("keel: listening on ") {
                break url.trim().to_string();
            }
        };
        Server { child, base }
    }

    pub fn client() -> reqwest::blocking::Client {
        reqwest::blocking::Client::builder().timeout(Duration::from_secs(120)).build().expect("client")
    }

    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Follows `next` links from `url` and returns (number of match entries, first page total).
pub fn count_across_pages(client: &reqwest::blocking::Client, url: &str) -> (usize, Option<u64>) {
    let mut next = Some(url.to_string());
    let mut count = 0;
    let mut total = None;
    let mut pages = 0;
    while let Some(url) = next.take() {
        let response = client.get(&url).send().expect("search request");
        let status = response.status();
        let body: serde_json::Value = response.json().expect("search response is JSON");
        assert!(status.is_success(), "{url}: {status} {body}");
        if pages == 0 {
            total = body["total"].as_u64();
        }
        pages += 1;
        count += body["entry"].as_array().map_or(0, |e| e.iter().filter(|e| e["search"]["mode"] == "match").count());
        next = body["link"].as_array().and_then(|links| links.iter().find(|l| l["relation"] == "next")).and_then(|l| l["url"].as_str()).map(str::to_string);
        assert!(pages < 10_000, "paging does not end");
    }
    (count, total)
}
