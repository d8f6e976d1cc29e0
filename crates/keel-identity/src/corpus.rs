//! Records prepared for comparison: each text kept once in an arena, names and postcodes
//! interned (so that equal values compare by number and their frequencies are counted for the
//! term-frequency adjustment), Soundex codes and the date of birth computed once.

use crate::compare::{
    self, Field, NULL_LEVEL, compare_address, compare_birth_date, compare_identifier, compare_name,
    compare_postcode, compare_sex,
};
use crate::record::{PersonRecord, Sex, postcode_parts};
use std::collections::HashMap;

/// Id of an empty value.
pub(crate) const NONE: u32 = 0;
/// Id of a value the vocabulary has never seen (a query against an index).
pub(crate) const UNSEEN: u32 = u32::MAX;

/// A piece of a side's text arena.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Span {
    start: u32,
    len: u32,
}

/// Interned values shared by both sides of a link, with per-field counts for the
/// term-frequency adjustment.
#[derive(Debug, Default)]
pub(crate) struct Vocab {
    map: HashMap<Box<str>, u32>,
    /// Counts of given names, family names and postcodes by id.
    counts: [Vec<u32>; 3],
    totals: [u64; 3],
    next: u32,
}

impl Vocab {
    fn new() -> Self {
        Vocab {
            next: 1,
            ..Vocab::default()
        }
    }

    fn intern(&mut self, text: &str) -> u32 {
        if text.is_empty() {
            return NONE;
        }
        if let Some(&id) = self.map.get(text) {
            return id;
        }
        let id = self.next;
        self.next += 1;
        self.map.insert(text.into(), id);
        id
    }

    /// The id the next new value would get: ids from here on are free for values named
    /// outside this vocabulary.
    pub(crate) fn next_id(&self) -> u32 {
        self.next
    }

    pub(crate) fn lookup(&self, text: &str) -> u32 {
        if text.is_empty() {
            NONE
        } else {
            self.map.get(text).copied().unwrap_or(UNSEEN)
        }
    }

    fn count(&mut self, slot: usize, id: u32) {
        if id == NONE {
            return;
        }
        let counts = &mut self.counts[slot];
        if counts.len() <= id as usize {
            counts.resize(id as usize + 1, 0);
        }
        counts[id as usize] += 1;
        self.totals[slot] += 1;
    }

    /// How often the value `id` occurs in `field` among all records (a proportion), for the
    /// term-frequency adjustment; `None` for fields without one or unknown values.
    pub(crate) fn frequency(&self, field: Field, id: u32) -> Option<f64> {
        let slot = tf_slot(field)?;
        let count = *self.counts[slot].get(id as usize)?;
        (count > 0 && self.totals[slot] > 0).then(|| f64::from(count) / self.totals[slot] as f64)
    }
}

fn tf_slot(field: Field) -> Option<usize> {
    match field {
        Field::Given => Some(0),
        Field::Family => Some(1),
        Field::Postcode => Some(2),
        _ => None,
    }
}

/// One record ready to compare.
#[derive(Debug, Clone, Default)]
pub(crate) struct Prepared {
    pub id: Span,
    pub nhs: Span,
    pub given: Span,
    pub family: Span,
    pub postcode: Span,
    pub address: Span,
    pub source: u32,
    pub given_id: u32,
    pub family_id: u32,
    pub postcode_id: u32,
    pub district_id: u32,
    pub given_sx: u32,
    pub family_sx: u32,
    pub dob: [u8; 8],
    pub has_dob: bool,
    pub year: u16,
    pub month: u8,
    pub day: u8,
    pub sex: Sex,
}

/// The records of one side and their texts.
#[derive(Debug, Default)]
pub(crate) struct Side {
    pub records: Vec<Prepared>,
    pub arena: String,
}

impl Side {
    fn put(&mut self, text: &str) -> Span {
        let start = self.arena.len() as u32;
        self.arena.push_str(text);
        Span {
            start,
            len: text.len() as u32,
        }
    }

    pub fn text(&self, span: Span) -> &str {
        &self.arena[span.start as usize..(span.start + span.len) as usize]
    }
}

/// Prepares `record` into `side`, naming interned values with `ids` (interning them when
/// building a corpus, looking them up for a query).
fn build(side: &mut Side, record: &PersonRecord, mut ids: impl FnMut(&str) -> u32) -> Prepared {
    let district_text = match postcode_parts(&record.postcode) {
        Some((district, _)) => district,
        None if record.postcode.len() >= 2 => &record.postcode[..2],
        None => "",
    };
    let dob = record.birth_date_text();
    Prepared {
        id: side.put(&record.id),
        nhs: side.put(record.nhs_number.as_deref().unwrap_or("")),
        given: side.put(&record.given),
        family: side.put(&record.family),
        postcode: side.put(&record.postcode),
        address: side.put(&record.address),
        source: ids(&record.source),
        given_id: ids(&record.given),
        family_id: ids(&record.family),
        postcode_id: ids(&record.postcode),
        district_id: ids(district_text),
        given_sx: compare::soundex(&record.given),
        family_sx: compare::soundex(&record.family),
        dob: dob.unwrap_or([b'?'; 8]),
        has_dob: dob.is_some(),
        year: record.birth_year.unwrap_or(0),
        month: record.birth_month.unwrap_or(0),
        day: record.birth_day.unwrap_or(0),
        sex: record.sex,
    }
}

/// One record and the side holding its texts.
#[derive(Clone, Copy)]
pub(crate) struct View<'a> {
    pub rec: &'a Prepared,
    pub side: &'a Side,
}

impl<'a> View<'a> {
    pub fn text(&self, span: Span) -> &'a str {
        self.side.text(span)
    }

    fn nhs(&self) -> Option<&'a str> {
        let t = self.text(self.rec.nhs);
        (!t.is_empty()).then_some(t)
    }

    fn dob(&self) -> Option<[u8; 8]> {
        self.rec.has_dob.then_some(self.rec.dob)
    }
}

fn same_id(a: u32, b: u32) -> bool {
    a == b && a != NONE && a != UNSEEN
}

/// The agreement level of every field, packed four bits a field in [`crate::compare::FIELDS`]
/// order.
pub(crate) fn pattern(a: View<'_>, b: View<'_>) -> u32 {
    let (ra, rb) = (a.rec, b.rec);
    let nhs = compare_identifier(a.nhs(), b.nhs());
    let given = if same_id(ra.given_id, rb.given_id) {
        Field::Given.exact_level()
    } else {
        compare_name(a.text(ra.given), b.text(rb.given), ra.given_sx, rb.given_sx)
    };
    let family = if same_id(ra.family_id, rb.family_id) {
        Field::Family.exact_level()
    } else {
        compare_name(
            a.text(ra.family),
            b.text(rb.family),
            ra.family_sx,
            rb.family_sx,
        )
    };
    let dob = compare_birth_date(a.dob(), b.dob());
    let sex = compare_sex(ra.sex, rb.sex);
    let postcode = if same_id(ra.postcode_id, rb.postcode_id) {
        Field::Postcode.exact_level()
    } else {
        compare_postcode(a.text(ra.postcode), b.text(rb.postcode))
    };
    let address = compare_address(a.text(ra.address), b.text(rb.address));
    pack(&[nhs, given, family, dob, sex, postcode, address])
}

pub(crate) fn pack(levels: &[u8; 7]) -> u32 {
    levels
        .iter()
        .enumerate()
        .fold(0u32, |acc, (i, &l)| acc | (u32::from(l & 0xf) << (4 * i)))
}

pub(crate) fn level(pattern: u32, field: Field) -> u8 {
    ((pattern >> (4 * field.index())) & 0xf) as u8
}

pub(crate) fn is_null(pattern: u32, field: Field) -> bool {
    level(pattern, field) == NULL_LEVEL
}

/// Records to link (two sides) or deduplicate (one side), sharing one vocabulary.
#[derive(Debug)]
pub struct Corpus {
    pub(crate) vocab: Vocab,
    pub(crate) sides: [Side; 2],
}

impl Default for Corpus {
    fn default() -> Self {
        Corpus::new()
    }
}

/// Which side of a link a record belongs to. Deduplication uses [`Which::Left`] only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    Left,
    Right,
}

impl Corpus {
    pub fn new() -> Self {
        Corpus {
            vocab: Vocab::new(),
            sides: [Side::default(), Side::default()],
        }
    }

    /// Adds a record (its index on that side is the number of records added before it).
    pub fn push(&mut self, which: Which, record: &PersonRecord) {
        let Corpus { vocab, sides } = self;
        let side = &mut sides[which as usize];
        let prepared = build(side, record, |t| vocab.intern(t));
        vocab.count(0, prepared.given_id);
        vocab.count(1, prepared.family_id);
        vocab.count(2, prepared.postcode_id);
        side.records.push(prepared);
    }

    pub fn len(&self, which: Which) -> usize {
        self.sides[which as usize].records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sides.iter().all(|s| s.records.is_empty())
    }

    /// The source's identifier of record `index`.
    pub fn id(&self, which: Which, index: usize) -> &str {
        let side = &self.sides[which as usize];
        side.text(side.records[index].id)
    }

    /// The source (practice) of record `index`, as a number: equal numbers, one source.
    pub fn source(&self, which: Which, index: usize) -> u32 {
        self.sides[which as usize].records[index].source
    }

    pub(crate) fn view(&self, which: Which, index: usize) -> View<'_> {
        let side = &self.sides[which as usize];
        View {
            rec: &side.records[index],
            side,
        }
    }

    /// Prepares a record against this corpus's vocabulary without adding it, naming a value
    /// the vocabulary has not seen with `unseen` ([`UNSEEN`] when that does not know it either).
    pub(crate) fn prepare_with(
        &self,
        record: &PersonRecord,
        mut unseen: impl FnMut(&str) -> u32,
    ) -> Side {
        let mut side = Side::default();
        let prepared = build(&mut side, record, |t| match self.vocab.lookup(t) {
            UNSEEN => unseen(t),
            id => id,
        });
        side.records.push(prepared);
        side
    }

    /// Total number of comparisons a full link (or deduplication) would make.
    pub fn all_pairs(&self, dedupe: bool) -> u128 {
        let l = self.len(Which::Left) as u128;
        if dedupe {
            l * l.saturating_sub(1) / 2
        } else {
            l * self.len(Which::Right) as u128
        }
    }
}
