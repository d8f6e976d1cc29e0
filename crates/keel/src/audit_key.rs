//! The audit signing key: an Ed25519 key created once in the data directory.
//!
//! `DATA/audit-signing-key` holds the 32-byte secret as hex (mode 0600, created with
//! `create_new`, so an existing key is never replaced); `DATA/audit-signing-key.pub` holds the
//! public key as hex. Verifying needs only the public key. If the secret key is lost, a new one
//! is never made silently: old checkpoints would then look forged.

use ed25519_dalek::{SigningKey, VerifyingKey};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

const SECRET_FILE: &str = "audit-signing-key";
const PUBLIC_FILE: &str = "audit-signing-key.pub";

fn secret_path(data: &Path) -> PathBuf {
    data.join(SECRET_FILE)
}

fn public_path(data: &Path) -> PathBuf {
    data.join(PUBLIC_FILE)
}

/// The signing key in `data`, created (with its public key) if neither file exists.
pub fn open_or_create(data: &Path) -> Result<SigningKey, String> {
    let secret = secret_path(data);
    if secret.exists() {
        let key = SigningKey::from_bytes(&read_hex(&secret)?);
        if !public_path(data).exists() {
            write_public(data, &key.verifying_key())?;
        }
        return Ok(key);
    }
    if public_path(data).exists() {
        return Err(format!(
            "{} exists but the audit signing key {} does not: restore the key from its backup \
             (a new key would make the existing checkpoints unverifiable)",
            public_path(data).display(),
            secret.display()
        ));
    }
    fs::create_dir_all(data).map_err(|e| format!("cannot create {}: {e}", data.display()))?;
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| format!("no random numbers for a key: {e}"))?;
    let key = SigningKey::from_bytes(&seed);
    write_secret(&secret, &seed)?;
    write_public(data, &key.verifying_key())?;
    Ok(key)
}

/// The public key in `data`.
pub fn public(data: &Path) -> Result<VerifyingKey, String> {
    let path = public_path(data);
    VerifyingKey::from_bytes(&read_hex(&path)?)
        .map_err(|e| format!("{} is not an Ed25519 public key: {e}", path.display()))
}

fn write_secret(path: &Path, seed: &[u8; 32]) -> Result<(), String> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    file.write_all(format!("{}\n", hex(seed)).as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn write_public(data: &Path, key: &VerifyingKey) -> Result<(), String> {
    let path = public_path(data);
    fs::write(&path, format!("{}\n", hex(key.as_bytes())))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn read_hex(path: &Path) -> Result<[u8; 32], String> {
    let text =
        fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let text = text.trim();
    let bad = || format!("{} does not hold 64 hexadecimal digits", path.display());
    if text.len() != 64 {
        return Err(bad());
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_created_once_and_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let created = open_or_create(dir.path()).expect("create");
        let again = open_or_create(dir.path()).expect("open");
        assert_eq!(created.to_bytes(), again.to_bytes());
        assert_eq!(public(dir.path()).expect("public"), created.verifying_key());
    }

    #[test]
    fn a_lost_secret_key_is_not_silently_replaced() {
        let dir = tempfile::tempdir().expect("tempdir");
        open_or_create(dir.path()).expect("create");
        fs::remove_file(secret_path(dir.path())).expect("remove");
        let refused = open_or_create(dir.path()).expect_err("refused");
        assert!(refused.contains("restore the key"), "{refused}");
    }
}
