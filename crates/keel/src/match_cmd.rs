//! `keel match`: links two CSV files of people (or deduplicates one) with the probabilistic
//! matcher of `keel-identity`, writes every pair at or above the threshold with its
//! probability and evidence, and prints precision, recall and F1 when given the truth.

use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use keel_identity::outcome::{Decision, Outcome, Thresholds, apply_one_source_rule};
use keel_identity::{Corpus, FIELDS, PersonRecord, Progress, Settings, Which, csv};
use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Instant;

#[derive(Args)]
pub struct MatchArgs {
    /// Records to link from (CSV with a header row).
    #[arg(long, required_unless_present = "dedupe", conflicts_with = "dedupe")]
    left: Option<PathBuf>,
    /// Records to link to.
    #[arg(long, requires = "left")]
    right: Option<PathBuf>,
    /// Find the duplicates within one file instead.
    #[arg(long)]
    dedupe: Option<PathBuf>,
    /// Where to write the pairs (CSV).
    #[arg(long)]
    out: PathBuf,
    /// The true pairs (CSV with a header and two id columns) to measure precision, recall and
    /// F1 against.
    #[arg(long)]
    truth: Option<PathBuf>,
    /// Pairs with at least this probability are written and count as predicted matches; it is
    /// also the review threshold.
    #[arg(long, default_value_t = 0.5)]
    threshold: f64,
    /// Pairs with at least this probability link (below it they need review).
    #[arg(long, default_value_t = 0.99)]
    link_threshold: f64,
    #[arg(long, default_value = "rec_id")]
    id_column: String,
    #[arg(long, default_value = "given_name")]
    given_column: String,
    #[arg(long, default_value = "surname")]
    family_column: String,
    /// Date of birth: YYYYMMDD, YYYY-MM-DD or DD/MM/YYYY.
    #[arg(long, default_value = "date_of_birth")]
    dob_column: String,
    #[arg(long, default_value = "sex")]
    sex_column: String,
    #[arg(long, default_value = "postcode")]
    postcode_column: String,
    /// Columns joined (with spaces) into the address line.
    #[arg(long, default_value = "street_number,address_1", value_delimiter = ',')]
    address_columns: Vec<String>,
    /// The NHS number (FEBRL's `soc_sec_id` plays that part in its data sets).
    #[arg(long, default_value = "soc_sec_id")]
    nhs_number_column: String,
    /// The practice or source of each record (none: each file is one source).
    #[arg(long)]
    source_column: Option<String>,
    /// Worker threads (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
    /// No progress display.
    #[arg(long)]
    quiet: bool,
}

/// Where each field is in a file's columns.
struct Columns {
    id: usize,
    given: Option<usize>,
    family: Option<usize>,
    dob: Option<usize>,
    sex: Option<usize>,
    postcode: Option<usize>,
    address: Vec<usize>,
    nhs: Option<usize>,
    source: Option<usize>,
}

impl Columns {
    fn find(args: &MatchArgs, header: &[String], file: &Path) -> Result<Columns, String> {
        let position = |name: &str| header.iter().position(|h| h.trim() == name);
        let optional = |flag: &str, name: &str| {
            let found = position(name);
            if found.is_none() {
                eprintln!(
                    "keel match: {}: no column {name:?} ({flag}); that field is treated as absent",
                    file.display()
                );
            }
            found
        };
        Ok(Columns {
            id: position(&args.id_column).ok_or_else(|| {
                format!(
                    "{}: no id column {:?} (--id-column)",
                    file.display(),
                    args.id_column
                )
            })?,
            given: optional("--given-column", &args.given_column),
            family: optional("--family-column", &args.family_column),
            dob: optional("--dob-column", &args.dob_column),
            sex: position(&args.sex_column),
            postcode: optional("--postcode-column", &args.postcode_column),
            address: args
                .address_columns
                .iter()
                .filter_map(|c| optional("--address-columns", c))
                .collect(),
            nhs: optional("--nhs-number-column", &args.nhs_number_column),
            source: match &args.source_column {
                Some(c) => Some(
                    position(c)
                        .ok_or_else(|| format!("{}: no source column {c:?}", file.display()))?,
                ),
                None => None,
            },
        })
    }

    fn record(&self, row: &[String], default_source: &str) -> PersonRecord {
        let get = |i: Option<usize>| i.and_then(|i| row.get(i)).map_or("", |s| s.trim());
        let mut address = String::new();
        for &i in &self.address {
            let part = get(Some(i));
            if !part.is_empty() {
                if !address.is_empty() {
                    address.push(' ');
                }
                address.push_str(part);
            }
        }
        let source = match self.source {
            Some(_) => get(self.source),
            None => default_source,
        };
        PersonRecord::new(get(Some(self.id)))
            .with_source(source)
            .with_given(get(self.given))
            .with_family(get(self.family))
            .with_birth_date(get(self.dob))
            .with_sex(get(self.sex))
            .with_postcode(get(self.postcode))
            .with_address(&address)
            .with_nhs_number(get(self.nhs))
    }
}

fn load(args: &MatchArgs, corpus: &mut Corpus, which: Which, file: &Path) -> Result<usize, String> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let mut reader = csv::CsvReader::new(&text);
    let mut header = Vec::new();
    if !reader
        .next_record(&mut header)
        .map_err(|e| format!("{}: {e}", file.display()))?
    {
        return Err(format!("{}: empty file", file.display()));
    }
    let columns = Columns::find(args, &header, file)?;
    let default_source = match which {
        Which::Left => "left",
        Which::Right => "right",
    };
    let mut row = Vec::new();
    let mut n = 0;
    while reader
        .next_record(&mut row)
        .map_err(|e| format!("{}: {e}", file.display()))?
    {
        corpus.push(which, &columns.record(&row, default_source));
        n += 1;
    }
    Ok(n)
}

/// The progress display: one bar per stage on stderr.
struct Bar {
    bar: Mutex<Option<ProgressBar>>,
    quiet: bool,
    started: Instant,
}

impl Progress for Bar {
    fn stage(&self, name: &str, total: u64) {
        let Ok(mut slot) = self.bar.lock() else {
            return;
        };
        if let Some(old) = slot.take() {
            old.finish();
        }
        if self.quiet {
            return;
        }
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{msg:32} [{bar:30}] {pos}/{len} {elapsed_precise}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_message(name.to_string());
        if bar.is_hidden() {
            eprintln!(
                "keel match: {:>7.2}s {name} ({total})",
                self.started.elapsed().as_secs_f64()
            );
        }
        *slot = Some(bar);
    }

    fn advance(&self, n: u64) {
        if let Ok(slot) = self.bar.lock()
            && let Some(bar) = slot.as_ref()
        {
            bar.inc(n);
        }
    }
}

impl Bar {
    fn finish(&self) {
        if let Ok(mut slot) = self.bar.lock()
            && let Some(bar) = slot.take()
        {
            bar.finish();
        }
    }
}

pub fn run(args: MatchArgs) -> Result<ExitCode, String> {
    let started = Instant::now();
    if !(0.0..=1.0).contains(&args.threshold) || !(0.0..=1.0).contains(&args.link_threshold) {
        return Err("thresholds are probabilities between 0 and 1".into());
    }
    let mut corpus = Corpus::new();
    let dedupe = args.dedupe.is_some();
    if let Some(file) = &args.dedupe {
        load(&args, &mut corpus, Which::Left, file)?;
    } else {
        let (Some(left), Some(right)) = (&args.left, &args.right) else {
            return Err("give --left and --right, or --dedupe".into());
        };
        load(&args, &mut corpus, Which::Left, left)?;
        load(&args, &mut corpus, Which::Right, right)?;
    }
    let mut settings = Settings::default();
    if let Some(t) = args.threads {
        settings.threads = t.max(1);
    }
    let bar = Bar {
        bar: Mutex::new(None),
        quiet: args.quiet,
        started,
    };
    let result = if dedupe {
        keel_identity::dedupe(&corpus, &settings, &bar)
    } else {
        keel_identity::link(&corpus, &settings, &bar)
    };
    bar.finish();
    let right = if dedupe { Which::Left } else { Which::Right };
    let offset = if dedupe {
        0
    } else {
        corpus.len(Which::Left) as u32
    };

    // Outcomes: thresholds, then the one-source rule.
    let thresholds = Thresholds {
        link: args.link_threshold,
        review: args.threshold,
    };
    let kept: Vec<usize> = (0..result.pairs.len())
        .filter(|&k| result.pairs[k].probability() >= args.threshold)
        .collect();
    let mut decisions: Vec<Decision> = kept
        .iter()
        .map(|&k| {
            let p = &result.pairs[k];
            Decision {
                a: p.left,
                b: p.right + offset,
                source_a: corpus.source(Which::Left, p.left as usize),
                source_b: corpus.source(right, p.right as usize),
                outcome: thresholds.outcome(p.probability()),
            }
        })
        .collect();
    let reviewed = apply_one_source_rule(&mut decisions);

    // The pairs, best first.
    let mut order: Vec<usize> = (0..kept.len()).collect();
    order.sort_by(|&x, &y| {
        result.pairs[kept[y]]
            .weight
            .total_cmp(&result.pairs[kept[x]].weight)
    });
    let file = std::fs::File::create(&args.out)
        .map_err(|e| format!("cannot write {}: {e}", args.out.display()))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let mut line = String::new();
    let mut header: Vec<String> = vec![
        "left_id".into(),
        "right_id".into(),
        "probability".into(),
        "match_weight".into(),
        "outcome".into(),
        "prior_weight".into(),
    ];
    for f in FIELDS {
        header.push(format!("{}_level", f.name()));
        header.push(format!("{}_weight", f.name()));
    }
    csv::write_record(&mut line, &header);
    let mut counts = [0usize; 3];
    for &o in &order {
        let pair = &result.pairs[kept[o]];
        let outcome = decisions[o].outcome;
        counts[outcome as usize] += 1;
        let evidence = result.evidence(&corpus, pair);
        let mut fields: Vec<String> = vec![
            corpus.id(Which::Left, pair.left as usize).to_string(),
            corpus.id(right, pair.right as usize).to_string(),
            format!("{:.6}", evidence.probability),
            format!("{:.3}", evidence.match_weight),
            outcome.code().to_string(),
            format!("{:.3}", evidence.prior_weight),
        ];
        for f in &evidence.fields {
            fields.push(f.level_name.to_string());
            fields.push(format!("{:.3}", f.weight));
        }
        csv::write_record(&mut line, &fields);
        if line.len() > 1 << 16 {
            out.write_all(line.as_bytes()).map_err(|e| e.to_string())?;
            line.clear();
        }
    }
    out.write_all(line.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| format!("cannot write {}: {e}", args.out.display()))?;

    let model = &result.model;
    println!(
        "records: {} left{}; candidate pairs: {}; EM: {} iterations, lambda {:.3e}; u from {} random pairs",
        corpus.len(Which::Left),
        if dedupe {
            String::new()
        } else {
            format!(", {} right", corpus.len(Which::Right))
        },
        result.pairs.len(),
        model.em_iterations,
        model.lambda,
        model.u_samples,
    );
    println!(
        "pairs at probability >= {}: {} (linked {}, needs review {} of which {} by the one-source rule)",
        args.threshold,
        kept.len(),
        counts[Outcome::Linked as usize],
        counts[Outcome::NeedsReview as usize],
        reviewed,
    );
    if let Some(truth) = &args.truth {
        let truth = read_truth(truth, dedupe)?;
        let predicted: HashSet<(String, String)> = kept
            .iter()
            .map(|&k| {
                let p = &result.pairs[k];
                key(
                    corpus.id(Which::Left, p.left as usize),
                    corpus.id(right, p.right as usize),
                    dedupe,
                )
            })
            .collect();
        let tp = predicted.intersection(&truth).count();
        let precision = if predicted.is_empty() {
            0.0
        } else {
            tp as f64 / predicted.len() as f64
        };
        let recall = if truth.is_empty() {
            0.0
        } else {
            tp as f64 / truth.len() as f64
        };
        let f1 = if precision + recall == 0.0 {
            0.0
        } else {
            2.0 * precision * recall / (precision + recall)
        };
        println!(
            "truth: {} pairs; true positives {tp}, false positives {}, false negatives {}",
            truth.len(),
            predicted.len() - tp,
            truth.len() - tp
        );
        println!("precision {precision:.4} recall {recall:.4} F1 {f1:.4}");
    }
    println!("time {:.2}s", started.elapsed().as_secs_f64());
    Ok(ExitCode::SUCCESS)
}

fn key(a: &str, b: &str, dedupe: bool) -> (String, String) {
    if dedupe && b < a {
        (b.to_string(), a.to_string())
    } else {
        (a.to_string(), b.to_string())
    }
}

/// The true pairs: a CSV with a header and the two ids in its first two columns.
fn read_truth(file: &Path, dedupe: bool) -> Result<HashSet<(String, String)>, String> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let mut reader = csv::CsvReader::new(&text);
    let mut row = Vec::new();
    let mut set = HashSet::new();
    let mut first = true;
    while reader
        .next_record(&mut row)
        .map_err(|e| format!("{}: {e}", file.display()))?
    {
        if std::mem::take(&mut first) {
            continue;
        }
        if let [a, b, ..] = row.as_slice() {
            set.insert(key(a.trim(), b.trim(), dedupe));
        }
    }
    Ok(set)
}
