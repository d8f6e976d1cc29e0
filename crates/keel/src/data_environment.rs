//! Whether a data directory is for development or production, as `DATA/environment` says
//! (`development` or `production`, one word).
//!
//! `keel token` and `keel serve --dev-issuer` run only where the file is absent or says
//! `development`, and write `development` when it is absent. `keel serve` trusting a real
//! issuer without `--dev-issuer` writes `production` when it is absent, so a data directory
//! once served in production never issues or accepts development tokens. An operator may
//! write the file by hand.

use std::fs;
use std::path::Path;

const FILE: &str = "environment";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Development,
    Production,
}

impl Environment {
    fn word(self) -> &'static str {
        match self {
            Environment::Development => "development",
            Environment::Production => "production",
        }
    }
}

/// The environment `DATA/environment` states, if the file exists.
pub fn read(data: &Path) -> Result<Option<Environment>, String> {
    let path = data.join(FILE);
    match fs::read_to_string(&path) {
        Ok(text) => match text.trim() {
            "development" => Ok(Some(Environment::Development)),
            "production" => Ok(Some(Environment::Production)),
            other => Err(format!(
                "{} says '{other}': it must say development or production",
                path.display()
            )),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// The data directory's environment, `wanted` written when none is stated yet.
pub fn claim(data: &Path, wanted: Environment) -> Result<Environment, String> {
    if let Some(stated) = read(data)? {
        return Ok(stated);
    }
    fs::create_dir_all(data).map_err(|e| format!("cannot create {}: {e}", data.display()))?;
    let path = data.join(FILE);
    fs::write(&path, format!("{}\n", wanted.word()))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(wanted)
}

/// Refuses unless the data directory is (or now becomes) a development one.
pub fn require_development(data: &Path, what: &str) -> Result<(), String> {
    match claim(data, Environment::Development)? {
        Environment::Development => Ok(()),
        Environment::Production => Err(format!(
            "{what} is for development only, and {} says production",
            data.join(FILE).display()
        )),
    }
}
