//! `PersonIndex::best_candidates` against an index of 1,000,000 synthetic people (the FHIR
//! `$match` target: p99 under 20 ms). Prints the index build time and the p50/p99 of 10,000
//! single queries first, then the criterion measurement.
//!
//!     cargo bench -p keel-identity --bench best_candidates
//!     BENCH_PEOPLE=100000 cargo bench -p keel-identity --bench best_candidates

use criterion::{Criterion, criterion_group, criterion_main};
use keel_identity::{PersonIndex, PersonRecord, Quiet, Settings, csv};
use keel_sim::linkage::LinkageOptions;
use std::hint::black_box;
use std::time::Instant;

fn record(line: &str) -> PersonRecord {
    let mut rows = csv::parse(line).unwrap_or_default();
    let r = rows.pop().unwrap_or_default();
    let f = |i: usize| r.get(i).map_or("", String::as_str);
    PersonRecord::new(f(0))
        .with_given(f(1))
        .with_family(f(2))
        .with_sex(f(3))
        .with_birth_date(f(4))
        .with_postcode(f(5))
        .with_address(&format!("{} {}", f(6), f(7)))
        .with_nhs_number(f(8))
}

fn bench(c: &mut Criterion) {
    let people: u64 = std::env::var("BENCH_PEOPLE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let options = LinkageOptions {
        seed: 1,
        people,
        overlap: 0.9,
    };
    let started = Instant::now();
    let index = PersonIndex::build(
        (0..people).map(|i| record(&options.left_row(i))),
        &Settings::default(),
        &Quiet,
    );
    eprintln!(
        "index of {people} people built and trained in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let queries: Vec<PersonRecord> = (0..10_000)
        .map(|j| record(&options.right_row(j * (people / 10_000).max(1)).0))
        .collect();
    let mut times: Vec<f64> = queries
        .iter()
        .map(|q| {
            let t = Instant::now();
            black_box(index.best_candidates(q, 10));
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    let at = |p: f64| times[((times.len() as f64 * p) as usize).min(times.len() - 1)];
    eprintln!(
        "best_candidates over {people}: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms ({} queries)",
        at(0.5),
        at(0.99),
        at(1.0),
        times.len()
    );
    let mut k = 0;
    c.bench_function(&format!("best_candidates_{people}"), |b| {
        b.iter(|| {
            k = (k + 1) % queries.len();
            black_box(index.best_candidates(&queries[k], 10))
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(50);
    targets = bench
}
criterion_main!(benches);
