//! `keel-fhir-gen [PACKAGE_DIR] [OUTPUT]`: writes keel-fhir's compact R4 definitions.
//!
//! Defaults: PACKAGE_DIR = `$KEEL_TEST_ASSETS/hl7.fhir.r4.examples/package`
//! (`<repo>/.test-assets/...`, filled by `scripts/fetch-test-assets.sh`), OUTPUT =
//! `<repo>/crates/keel-fhir/data/r4-definitions.json.gz`.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let package = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(keel_fhir_gen::default_package_dir);
    let output = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(keel_fhir_gen::default_output_path);
    let gz = match keel_fhir_gen::generate(&package) {
        Ok(gz) => gz,
        Err(e) => {
            eprintln!("keel-fhir-gen: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(parent) = output.parent()
        && let Err(e) = std::fs::create_dir_all(parent)
    {
        eprintln!("keel-fhir-gen: cannot create {}: {e}", parent.display());
        return ExitCode::FAILURE;
    }
    if let Err(e) = std::fs::write(&output, &gz) {
        eprintln!("keel-fhir-gen: cannot write {}: {e}", output.display());
        return ExitCode::FAILURE;
    }
    println!(
        "keel-fhir-gen: wrote {} ({} bytes)",
        output.display(),
        gz.len()
    );
    ExitCode::SUCCESS
}
