//! Same seed and options → byte-identical output, whatever the thread count; a different seed
//! → different output.

use std::collections::BTreeMap;
use std::path::Path;

use keel_sim::output::{self, Format, WriteOptions};
use keel_sim::population::{Options, Population};

fn options(seed: u64) -> Options {
    Options {
        seed,
        patients: 150,
        practices: 3,
        ..Options::default()
    }
}

/// Generates into a fresh directory and returns every file's bytes by relative path.
fn generate(seed: u64, threads: usize) -> BTreeMap<String, Vec<u8>> {
    let dir = tempfile::tempdir().expect("tempdir");
    let population = Population::generate(options(seed));
    output::write(
        &population,
        &WriteOptions {
            out: dir.path().to_path_buf(),
            format: Format::Both,
            threads,
        },
        |_| {},
    )
    .expect("write");
    let mut files = BTreeMap::new();
    read_tree(dir.path(), dir.path(), &mut files);
    files
}

fn read_tree(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            read_tree(root, &path, out);
        } else {
            let rel = path
                .strip_prefix(root)
                .expect("prefix")
                .display()
                .to_string();
            out.insert(rel, std::fs::read(&path).expect("read"));
        }
    }
}

#[test]
fn same_seed_gives_byte_identical_output_on_any_number_of_threads() {
    let one = generate(42, 1);
    let two = generate(42, 2);
    let three = generate(42, 3);
    assert!(one.contains_key("Patient.ndjson"), "{:?}", one.keys());
    assert!(
        one.keys().any(|k| k.ends_with(".patients.jsonl")),
        "{:?}",
        one.keys()
    );
    assert_eq!(
        one.keys().collect::<Vec<_>>(),
        two.keys().collect::<Vec<_>>()
    );
    for (name, bytes) in &one {
        assert!(
            two[name] == *bytes,
            "{name} differs between 1 and 2 threads"
        );
        assert!(
            three[name] == *bytes,
            "{name} differs between 1 and 3 threads"
        );
    }
    let total: usize = one.values().map(Vec::len).sum();
    assert!(
        total > 1_000_000,
        "suspiciously little output: {total} bytes"
    );
}

#[test]
fn a_different_seed_gives_different_output() {
    let a = generate(1, 2);
    let b = generate(2, 2);
    for name in ["Patient.ndjson", "Observation.ndjson", "native/pcn.json"] {
        assert_ne!(a[name], b[name], "{name} is the same for seeds 1 and 2");
    }
}

#[test]
fn persons_can_be_generated_alone_and_out_of_order() {
    let population = Population::generate(options(9));
    let in_order: Vec<_> = population.persons().collect();
    for index in [149u64, 0, 77, 3] {
        let alone = population.person(index);
        let streamed = &in_order[index as usize];
        assert_eq!(alone.name, streamed.name);
        assert_eq!(alone.entry_count(), streamed.entry_count());
        assert_eq!(alone.records.len(), streamed.records.len());
    }
}
