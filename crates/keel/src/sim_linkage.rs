//! `keel sim linkage`: two CSV files of the same synthetic people recorded with realistic
//! errors, and the truth of who is who, for `keel match` and its benchmarks.

use clap::Args;
use keel_sim::linkage::{HEADER, LinkageOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Args)]
pub struct LinkageArgs {
    /// Records in each file.
    #[arg(long, default_value_t = 10_000)]
    people: u64,
    /// Share of the right file's people who are in the left file too.
    #[arg(long, default_value_t = 0.9)]
    overlap: f64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Output directory: left.csv, right.csv and truth.csv.
    #[arg(long)]
    out: PathBuf,
}

fn create(dir: &Path, name: &str) -> Result<std::io::BufWriter<std::fs::File>, String> {
    let path = dir.join(name);
    std::fs::File::create(&path)
        .map(|f| std::io::BufWriter::with_capacity(1 << 20, f))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

pub fn run(args: LinkageArgs) -> Result<ExitCode, String> {
    if !(0.0..=1.0).contains(&args.overlap) {
        return Err("--overlap is a share between 0 and 1".into());
    }
    std::fs::create_dir_all(&args.out)
        .map_err(|e| format!("cannot create {}: {e}", args.out.display()))?;
    let options = LinkageOptions {
        seed: args.seed,
        people: args.people,
        overlap: args.overlap,
    };
    let mut left = create(&args.out, "left.csv")?;
    let mut right = create(&args.out, "right.csv")?;
    let mut truth = create(&args.out, "truth.csv")?;
    let io = |e: std::io::Error| e.to_string();
    writeln!(left, "{HEADER}").map_err(io)?;
    writeln!(right, "{HEADER}").map_err(io)?;
    writeln!(truth, "left_id,right_id").map_err(io)?;
    let mut links = 0u64;
    for i in 0..args.people {
        writeln!(left, "{}", options.left_row(i)).map_err(io)?;
        let (row, same) = options.right_row(i);
        writeln!(right, "{row}").map_err(io)?;
        if let Some(l) = same {
            writeln!(truth, "{l},R{i}").map_err(io)?;
            links += 1;
        }
    }
    for mut w in [left, right, truth] {
        w.flush().map_err(io)?;
    }
    println!(
        "{} people in left.csv and right.csv, {links} true pairs in truth.csv ({})",
        args.people,
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}
