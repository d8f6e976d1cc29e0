//! Writing a population to a directory: persons are generated in batches on worker threads
//! and written in index order by the calling thread, so the output is byte-identical whatever
//! the number of threads, and memory stays bounded (each worker holds at most a few batches).

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, sync_channel};
use std::time::{Duration, Instant};

use crate::fhir::{self, FhirBuffers, RESOURCE_TYPES};
use crate::json::Json;
use crate::model::AppointmentBook;
use crate::native;
use crate::population::Population;

/// Which renderings to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Native,
    Fhir,
    Both,
}

impl Format {
    pub fn native(self) -> bool {
        matches!(self, Format::Native | Format::Both)
    }

    pub fn fhir(self) -> bool {
        matches!(self, Format::Fhir | Format::Both)
    }
}

#[derive(Clone, Debug)]
pub struct WriteOptions {
    pub out: PathBuf,
    pub format: Format,
    /// Generator threads (the calling thread writes). 0 or 1: generate on the calling thread.
    pub threads: usize,
}

/// Where the run has got to.
#[derive(Clone, Debug, Default)]
pub struct Progress {
    pub persons_done: u64,
    pub persons_total: u64,
    pub records: u64,
    pub entries: u64,
    pub bytes: u64,
}

/// What was written.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    pub persons: u64,
    /// Patient records (primary, previous registrations, duplicates).
    pub records: u64,
    /// Clinical entries (see [`crate::model::ClinicalRecord::entry_count`]).
    pub entries: u64,
    /// The largest record's entry count.
    pub max_entries: u64,
    /// FHIR resources per type (empty without FHIR output).
    pub fhir: Vec<(&'static str, u64)>,
    pub bytes: u64,
    pub elapsed: Duration,
}

/// Persons per batch handed to a worker.
const BATCH: u64 = 32;
/// Batches a worker may have finished ahead of the writer.
const AHEAD: usize = 3;

struct Batch {
    /// Native lines per practice.
    native: Vec<Vec<u8>>,
    fhir: Option<FhirBuffers>,
    persons: u64,
    records: u64,
    entries: u64,
    max_entries: u64,
}

fn make_batch(pop: &Population, format: Format, first: u64, last: u64) -> Batch {
    let practices = pop.pcn().practices.len();
    let mut batch = Batch {
        native: vec![Vec::new(); if format.native() { practices } else { 0 }],
        fhir: format.fhir().then(FhirBuffers::default),
        persons: last - first,
        records: 0,
        entries: 0,
        max_entries: 0,
    };
    for index in first..last {
        let person = pop.person(index);
        for record in &person.records {
            batch.records += 1;
            let n = record.clinical.entry_count();
            batch.entries += n;
            batch.max_entries = batch.max_entries.max(n);
            if format.native() {
                native::record_line(&mut batch.native[record.practice], &person, record);
            }
            if let Some(f) = batch.fhir.as_mut() {
                fhir::write_record(f, pop.pcn(), record);
            }
        }
    }
    batch
}

struct Files {
    native: Vec<BufWriter<File>>,
    fhir: Vec<BufWriter<File>>,
    bytes: u64,
}

fn create(path: &Path) -> io::Result<BufWriter<File>> {
    let file = File::create(path)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot create {}: {e}", path.display())))?;
    Ok(BufWriter::with_capacity(1 << 20, file))
}

impl Files {
    fn write_batch(&mut self, batch: &Batch) -> io::Result<()> {
        for (file, bytes) in self.native.iter_mut().zip(&batch.native) {
            file.write_all(bytes)?;
            self.bytes += bytes.len() as u64;
        }
        if let Some(f) = &batch.fhir {
            for (file, bytes) in self.fhir.iter_mut().zip(&f.bufs) {
                file.write_all(bytes)?;
                self.bytes += bytes.len() as u64;
            }
        }
        Ok(())
    }
}

/// Writes `pop` under `options.out` (FHIR NDJSON at the top level, one file per resource type;
/// the native form under `native/`), calling `progress` after each batch.
pub fn write(
    pop: &Population,
    options: &WriteOptions,
    mut progress: impl FnMut(&Progress),
) -> io::Result<Summary> {
    let started = Instant::now();
    let format = options.format;
    let out = &options.out;
    fs::create_dir_all(out)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot create {}: {e}", out.display())))?;
    let pcn = pop.pcn();
    let books: Vec<AppointmentBook> = (0..pcn.practices.len())
        .map(|p| pop.appointment_book(p))
        .collect();
    let mut files = Files {
        native: Vec::new(),
        fhir: Vec::new(),
        bytes: 0,
    };
    let native_dir = out.join("native");
    if format.native() {
        fs::create_dir_all(&native_dir)?;
        let pcn_json = native::pcn_json(pop.options(), pcn);
        fs::write(native_dir.join("pcn.json"), &pcn_json)?;
        files.bytes += pcn_json.len() as u64;
        for (p, book) in pcn.practices.iter().zip(&books) {
            let mut lines = Vec::new();
            native::book_lines(&mut lines, book);
            fs::write(native_dir.join(format!("{}.book.jsonl", p.ods)), &lines)?;
            files.bytes += lines.len() as u64;
            files.native.push(create(
                &native_dir.join(format!("{}.patients.jsonl", p.ods)),
            )?);
        }
    }
    let mut fhir_counts = [0u64; 16];
    if format.fhir() {
        for rt in RESOURCE_TYPES {
            files
                .fhir
                .push(create(&out.join(format!("{}.ndjson", rt.name())))?);
        }
        let mut buffers = FhirBuffers::default();
        fhir::write_pcn(&mut buffers, pcn, &books);
        for (i, c) in buffers.counts.iter().enumerate() {
            fhir_counts[i] += c;
        }
        for (file, bytes) in files.fhir.iter_mut().zip(&buffers.bufs) {
            file.write_all(bytes)?;
            files.bytes += bytes.len() as u64;
        }
    }
    drop(books);

    let total = pop.len();
    let batches = total.div_ceil(BATCH);
    let mut state = Progress {
        persons_total: total,
        ..Progress::default()
    };
    let mut max_entries = 0;
    let mut consume = |batch: Batch, files: &mut Files| -> io::Result<()> {
        files.write_batch(&batch)?;
        if let Some(f) = &batch.fhir {
            for (i, c) in f.counts.iter().enumerate() {
                fhir_counts[i] += c;
            }
        }
        state.persons_done += batch.persons;
        state.records += batch.records;
        state.entries += batch.entries;
        state.bytes = files.bytes;
        max_entries = max_entries.max(batch.max_entries);
        progress(&state);
        Ok(())
    };
    let range = |b: u64| (b * BATCH, ((b + 1) * BATCH).min(total));
    let threads = options.threads.max(1) as u64;
    if threads == 1 {
        for b in 0..batches {
            let (first, last) = range(b);
            consume(make_batch(pop, format, first, last), &mut files)?;
        }
    } else {
        std::thread::scope(|scope| -> io::Result<()> {
            let mut receivers: Vec<Receiver<Batch>> = Vec::new();
            for w in 0..threads {
                let (tx, rx) = sync_channel::<Batch>(AHEAD);
                receivers.push(rx);
                scope.spawn(move || {
                    let mut b = w;
                    while b < batches {
                        let (first, last) = range(b);
                        if tx.send(make_batch(pop, format, first, last)).is_err() {
                            return;
                        }
                        b += threads;
                    }
                });
            }
            for b in 0..batches {
                let batch = receivers[(b % threads) as usize]
                    .recv()
                    .map_err(|_| io::Error::other("a generator thread stopped early"))?;
                consume(batch, &mut files)?;
            }
            Ok(())
        })?;
    }
    for f in files.native.iter_mut().chain(files.fhir.iter_mut()) {
        f.flush()?;
    }
    let persons = state.persons_done;
    let summary = Summary {
        persons,
        records: state.records,
        entries: state.entries,
        max_entries,
        fhir: if format.fhir() {
            RESOURCE_TYPES
                .iter()
                .map(|rt| (rt.name(), fhir_counts[rt.index()]))
                .collect()
        } else {
            Vec::new()
        },
        bytes: files.bytes,
        elapsed: started.elapsed(),
    };
    if format.native() {
        let mut manifest = Vec::new();
        let mut j = Json::new(&mut manifest);
        j.begin()
            .kstr("format", native::FORMAT)
            .ku64("persons", summary.persons)
            .ku64("records", summary.records)
            .ku64("entries", summary.entries)
            .ku64("maxEntriesInOneRecord", summary.max_entries);
        j.arr("fhirResources");
        for (name, count) in &summary.fhir {
            j.begin().kstr("type", name).ku64("count", *count).end();
        }
        j.end_array().end().newline();
        fs::write(native_dir.join("manifest.json"), &manifest)?;
    }
    Ok(summary)
}
