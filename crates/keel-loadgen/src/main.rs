//! `keel-loadgen`: see the library's documentation (`cargo doc -p keel-loadgen`) or `--help`.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    keel_loadgen::cli::main_with(keel_loadgen::cli::Cli::parse())
}
