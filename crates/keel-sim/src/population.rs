//! The population: a PCN's practices and, person by person, their patients.
//!
//! Every person is generated from their own random stream, derived from (seed, purpose, person
//! index), so any person can be generated alone, in any order, on any thread, and the result is
//! the same. The PCN itself (practices, staff, configuration) comes from a stream of its own.
//!
//! Data-quality cases are assigned by low-discrepancy (Weyl) sequences over the person index
//! rather than by independent coin flips, so their rates hold closely even in a small
//! population (a 2,000-patient run has every case).

use keel_model::{NhsNumber, OdsCode};

use crate::clinical::{self, ClinicalContext};
use crate::date::{Date, DateTime};
use crate::model::*;
use crate::names::{self, GROUPS, NameGroup};
use crate::places::{self, AREAS, Area, STREETS};
use crate::rng::{Rng, mix, weyl};

/// How many distinct valid NHS numbers the generator can allocate from the `999` test range:
/// 99,999 blocks of nine (each block of ten final digits holds at least nine valid numbers).
/// Persons beyond this get no NHS number ([`QualityIssue::TestRangeExhausted`]).
pub const NHS_NUMBER_CAPACITY: u64 = 99_999 * 9;

/// What to generate.
#[derive(Debug, Clone)]
pub struct Options {
    pub seed: u64,
    /// People in the PCN (each has one primary record; some have more records).
    pub patients: u64,
    pub practices: usize,
    /// Demographics and registrations only (no clinical records).
    pub demographics_only: bool,
    /// "Today" for the population: nothing happens after it except booked appointments.
    pub as_of: Date,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            seed: 1,
            patients: 40_000,
            practices: 5,
            demographics_only: false,
            as_of: Date::ymd(2026, 1, 5),
        }
    }
}

const TAG_PCN: u64 = 1;
const TAG_PERSON: u64 = 2;
const TAG_CLINICAL: u64 = 3;
const TAG_BOOK: u64 = 4;
const TAG_NHS: u64 = 5;

// Weyl multipliers: fractional parts of the golden ratio and of square roots of primes.
const ALPHA_STORY: u64 = 0x9E37_79B9_7F4A_7C15;
const ALPHA_DUPLICATE: u64 = 0x6A09_E667_F3BC_C909;
const ALPHA_NHS: u64 = 0xBB67_AE85_84CA_A73B;
const ALPHA_RESTRICTED: u64 = 0x3C6E_F372_FE94_F82B;

// Rates of the registration stories (fractions of persons).
const RATE_DECEASED: f64 = 0.012;
const RATE_DEREGISTERED: f64 = 0.025;
const RATE_TEMPORARY: f64 = 0.008;
const RATE_MOVED: f64 = 0.03;
// Independent data-quality rates.
const RATE_DUPLICATE: f64 = 0.008;
const RATE_NO_NHS_NUMBER: f64 = 0.006;
const RATE_UNVERIFIED: f64 = 0.02;
const RATE_RESTRICTED: f64 = 0.003;
const RATE_VERY_RESTRICTED: f64 = 0.0005;

/// A person's registration history, chosen per person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Story {
    Regular,
    Deceased,
    Deregistered,
    Temporary,
    Moved,
}

/// England's population by five-year age band (0–4 ... 85–89, 90+), in percent: ONS mid-year
/// estimates, rounded.
const PYRAMID: [f64; 19] = [
    5.4, 5.9, 6.0, 5.6, 6.0, 6.7, 7.0, 6.8, 6.3, 6.4, 6.9, 6.8, 5.9, 5.0, 5.0, 3.7, 2.5, 1.5, 0.9,
];
/// Age at death by band (for deceased records): mostly old.
const DEATH_AGES: [f64; 19] = [
    0.3, 0.05, 0.05, 0.1, 0.2, 0.2, 0.3, 0.4, 0.6, 0.9, 1.4, 2.0, 3.0, 4.5, 6.5, 9.0, 12.0, 14.0,
    16.0,
];

/// The generated population. Cheap to create (only the PCN is built); persons are generated
/// on demand, independently, by index.
///
/// Iterating yields every practice, then every person in index order:
///
/// ```
/// use keel_sim::population::{Options, Population, PopulationItem};
/// let options = Options { patients: 20, practices: 2, ..Options::default() };
/// let mut people = 0;
/// for item in Population::generate(options) {
///     if let PopulationItem::Person(person) = item {
///         assert!(!person.records.is_empty());
///         people += 1;
///     }
/// }
/// assert_eq!(people, 20);
/// ```
#[derive(Debug, Clone)]
pub struct Population {
    options: Options,
    pcn: Pcn,
    nhs: NhsAllocator,
    offsets: [u64; 4],
    cursor: Cursor,
}

#[derive(Debug, Clone, Copy)]
enum Cursor {
    Practice(usize),
    Person(u64),
}

/// One item of the population stream.
#[derive(Debug, Clone)]
pub enum PopulationItem {
    Practice(Box<Practice>),
    Person(Box<Person>),
}

impl Iterator for Population {
    type Item = PopulationItem;

    fn next(&mut self) -> Option<PopulationItem> {
        match self.cursor {
            Cursor::Practice(i) if i < self.pcn.practices.len() => {
                self.cursor = Cursor::Practice(i + 1);
                Some(PopulationItem::Practice(Box::new(
                    self.pcn.practices[i].clone(),
                )))
            }
            Cursor::Practice(_) => {
                self.cursor = Cursor::Person(0);
                self.next()
            }
            Cursor::Person(i) if i < self.options.patients => {
                self.cursor = Cursor::Person(i + 1);
                Some(PopulationItem::Person(Box::new(self.person(i))))
            }
            Cursor::Person(_) => None,
        }
    }
}

impl Population {
    /// Builds the PCN for `options`; persons are generated as they are asked for.
    pub fn generate(options: Options) -> Population {
        let options = Options {
            practices: options.practices.max(1),
            ..options
        };
        let pcn = build_pcn(&options);
        let nhs = NhsAllocator::new(options.seed);
        let offsets = [
            mix(&[options.seed, 10]),
            mix(&[options.seed, 11]),
            mix(&[options.seed, 12]),
            mix(&[options.seed, 13]),
        ];
        Population {
            options,
            pcn,
            nhs,
            offsets,
            cursor: Cursor::Practice(0),
        }
    }

    pub fn options(&self) -> &Options {
        &self.options
    }

    pub fn pcn(&self) -> &Pcn {
        &self.pcn
    }

    /// Number of persons.
    pub fn len(&self) -> u64 {
        self.options.patients
    }

    pub fn is_empty(&self) -> bool {
        self.options.patients == 0
    }

    /// The persons, in index order (generated one at a time).
    pub fn persons(&self) -> impl Iterator<Item = Person> + '_ {
        (0..self.options.patients).map(|i| self.person(i))
    }

    /// The practice whose list person `index` is on.
    pub fn home_practice(&self, index: u64) -> usize {
        let practices = &self.pcn.practices;
        practices
            .partition_point(|p| p.first_person <= index)
            .saturating_sub(1)
    }

    /// The NHS number allocated to person `index`, if the test range still has one.
    pub fn nhs_number(&self, index: u64) -> Option<NhsNumber> {
        self.nhs.number(index)
    }

    /// Generates person `index` (0-based, below [`Population::len`]).
    pub fn person(&self, index: u64) -> Person {
        let mut rng = Rng::derive(&[self.options.seed, TAG_PERSON, index]);
        let mut person = self.demographics(index, &mut rng);
        if !self.options.demographics_only {
            let mut crng = Rng::derive(&[self.options.seed, TAG_CLINICAL, index]);
            self.add_clinical(&mut person, &mut crng);
        }
        person
    }

    fn story(&self, index: u64) -> Story {
        let u = weyl(self.offsets[0], ALPHA_STORY, index);
        let mut edge = RATE_DECEASED;
        if u < edge {
            return Story::Deceased;
        }
        edge += RATE_DEREGISTERED;
        if u < edge {
            return Story::Deregistered;
        }
        edge += RATE_TEMPORARY;
        if u < edge {
            return Story::Temporary;
        }
        edge += RATE_MOVED;
        if u < edge && self.pcn.practices.len() > 1 {
            return Story::Moved;
        }
        Story::Regular
    }

    /// The person with their records' demographics and registrations (no clinical content).
    fn demographics(&self, index: u64, rng: &mut Rng) -> Person {
        let as_of = self.options.as_of;
        let home = self.home_practice(index);
        let practice = &self.pcn.practices[home];
        let area = self.pcn.area;
        let story = self.story(index);

        // Age and dates of birth and death.
        let (birth, death) = match story {
            Story::Deceased => {
                let death = as_of.plus(-(rng.below(8 * 365) as i32) - 1);
                let band = rng.weighted(&DEATH_AGES);
                let age_days = age_days_in_band(rng, band);
                (death.plus(-age_days), Some(death))
            }
            Story::Temporary => {
                let age_years = rng.range(16, 60) as i32;
                (as_of.plus(-(age_years * 365 + rng.below(365) as i32)), None)
            }
            _ => {
                let band = rng.weighted(&PYRAMID);
                (as_of.plus(-age_days_in_band(rng, band)), None)
            }
        };
        let age = death.unwrap_or(as_of).years_since(birth);
        let female_share = match age {
            ..60 => 0.49,
            60..80 => 0.52,
            _ => 0.60,
        };
        let sex = if rng.chance(female_share) {
            Sex::Female
        } else {
            Sex::Male
        };
        let gender = if age >= 16 && rng.chance(0.004) {
            if rng.chance(0.3) {
                Gender::Other
            } else if sex == Sex::Female {
                Gender::Male
            } else {
                Gender::Female
            }
        } else if rng.chance(0.0005) {
            Gender::Unknown
        } else if sex == Sex::Female {
            Gender::Female
        } else {
            Gender::Male
        };
        let name = person_name(rng, birth, age, gender, sex);
        let address = home_address(rng, area);
        let telecom = telecoms(rng, area, &name, age);
        let nhs_number = self.nhs.number(index);

        // The primary record's registration.
        let min_start = birth.plus(10 + rng.below(30) as i32);
        let tenure = |rng: &mut Rng, until: Date| -> Date {
            let years = rng.exponential(11.0).min(60.0);
            until.plus(-((years * 365.25) as i32)).max(min_start)
        };
        let mut previous: Option<(usize, Registration)> = None;
        let registration = match story {
            Story::Regular => Registration {
                kind: RegistrationType::Regular,
                start: tenure(rng, as_of).min(as_of),
                end: None,
            },
            Story::Deceased => {
                let death = death.unwrap_or(as_of);
                let end = death.plus(1 + rng.below(20) as i32).min(as_of);
                Registration {
                    kind: RegistrationType::Regular,
                    start: tenure(rng, death).min(death),
                    end: Some((end, RegistrationEnd::Died)),
                }
            }
            Story::Deregistered => {
                let end = as_of
                    .plus(-(10 + rng.below(6 * 365) as i32))
                    .max(min_start.plus(30));
                let reason = match rng.below(100) {
                    0..70 => RegistrationEnd::LeftArea,
                    70..85 => RegistrationEnd::Embarkation,
                    _ => RegistrationEnd::Removed,
                };
                Registration {
                    kind: RegistrationType::Regular,
                    start: tenure(rng, end).min(end.plus(-30)),
                    end: Some((end.min(as_of), reason)),
                }
            }
            Story::Temporary => {
                let start = as_of.plus(-(rng.below(700) as i32));
                let end = start.plus(7 + rng.below(86) as i32);
                Registration {
                    kind: RegistrationType::Temporary,
                    start,
                    end: (end < as_of).then_some((end, RegistrationEnd::TemporaryEnded)),
                }
            }
            Story::Moved => {
                let earliest = min_start.plus(60);
                let span = as_of.since(earliest).max(61);
                let moved = as_of
                    .plus(-(30 + rng.below(u64::from((span - 30).clamp(1, 8 * 365) as u32)) as i32))
                    .max(earliest);
                let other = other_practice(rng, home, self.pcn.practices.len());
                previous = Some((
                    other,
                    Registration {
                        kind: RegistrationType::Regular,
                        start: tenure(rng, moved).min(moved.plus(-30)).max(min_start),
                        end: Some((moved, RegistrationEnd::TransferredWithinPcn)),
                    },
                ));
                Registration {
                    kind: RegistrationType::Regular,
                    start: moved.plus(rng.below(14) as i32).min(as_of),
                    end: None,
                }
            }
        };

        let registration = Registration {
            start: registration.start.clamp(birth, as_of),
            ..registration
        };

        // NHS number on the primary record, and its verification status.
        let mut quality = Vec::new();
        let u_nhs = weyl(self.offsets[2], ALPHA_NHS, index);
        let mut record_nhs = nhs_number;
        let mut status = NhsNumberStatus::Verified;
        if nhs_number.is_none() {
            quality.push(QualityIssue::TestRangeExhausted);
            status = NhsNumberStatus::NotPresent;
        } else if u_nhs < RATE_NO_NHS_NUMBER || (story == Story::Temporary && rng.chance(0.25)) {
            record_nhs = None;
            quality.push(QualityIssue::MissingNhsNumber);
            status = if rng.chance(0.6) {
                NhsNumberStatus::NotPresent
            } else {
                NhsNumberStatus::TraceRequired
            };
        } else if u_nhs < RATE_NO_NHS_NUMBER + RATE_UNVERIFIED
            || (story == Story::Temporary && rng.chance(0.4))
        {
            quality.push(QualityIssue::UnverifiedNhsNumber);
            status = *rng.pick(&[
                NhsNumberStatus::NotTraced,
                NhsNumberStatus::TraceRequired,
                NhsNumberStatus::NoMatch,
                NhsNumberStatus::NeedsResolution,
            ]);
        } else if as_of.since(birth) < 42 {
            status = NhsNumberStatus::Postponed;
        }

        let u_restricted = weyl(self.offsets[3], ALPHA_RESTRICTED, index);
        let confidentiality = if u_restricted < RATE_VERY_RESTRICTED {
            Confidentiality::VeryRestricted
        } else if u_restricted < RATE_VERY_RESTRICTED + RATE_RESTRICTED {
            Confidentiality::Restricted
        } else {
            Confidentiality::Unrestricted
        };

        let primary_id = format!("{}-{index:07}", practice.ods);
        let local_in_practice = index - practice.first_person;
        let primary = PatientRecord {
            id: primary_id.clone(),
            practice: home,
            local_number: local_number(practice.system, local_in_practice, index, false),
            role: RecordRole::Primary,
            nhs_number: record_nhs,
            nhs_status: status,
            name: name.clone(),
            sex,
            gender,
            birth_date: birth,
            death_date: death,
            address: address.clone(),
            telecom: telecom.clone(),
            registration,
            confidentiality,
            quality,
            duplicate_of: None,
            clinical: ClinicalRecord::default(),
        };
        let mut records = vec![primary];

        if let Some((other, registration)) = previous {
            let p = &self.pcn.practices[other];
            // The old address, from before the move (same area).
            let old_address = if rng.chance(0.8) {
                home_address(rng, area)
            } else {
                address.clone()
            };
            records.push(PatientRecord {
                id: format!("{}-{index:07}-m", p.ods),
                practice: other,
                local_number: local_number(p.system, 0, index, true),
                role: RecordRole::PreviousRegistration,
                nhs_number,
                nhs_status: if nhs_number.is_some() {
                    NhsNumberStatus::Verified
                } else {
                    NhsNumberStatus::NotPresent
                },
                name: name.clone(),
                sex,
                gender,
                birth_date: birth,
                death_date: None,
                address: old_address,
                telecom: telecom.clone(),
                registration,
                confidentiality,
                quality: Vec::new(),
                duplicate_of: None,
                clinical: ClinicalRecord::default(),
            });
        }

        let u_dup = weyl(self.offsets[1], ALPHA_DUPLICATE, index);
        if u_dup < RATE_DUPLICATE {
            let kind = u_dup / RATE_DUPLICATE;
            records.push(self.duplicate(rng, &records[0], index, kind));
        }

        Person {
            index,
            home_practice: home,
            nhs_number,
            name,
            sex,
            gender,
            birth_date: birth,
            death_date: death,
            records,
        }
    }

    /// A second record for the person, created in error, with the defects `kind` (in [0, 1))
    /// selects: transposed letters, day/month swapped, or no NHS number.
    fn duplicate(
        &self,
        rng: &mut Rng,
        primary: &PatientRecord,
        index: u64,
        kind: f64,
    ) -> PatientRecord {
        let as_of = self.options.as_of;
        let practices = self.pcn.practices.len();
        let same_practice = practices == 1 || rng.chance(0.6);
        let holder = if same_practice {
            primary.practice
        } else {
            other_practice(rng, primary.practice, practices)
        };
        let p = &self.pcn.practices[holder];
        let mut quality = Vec::new();
        let mut name = primary.name.clone();
        let mut birth = primary.birth_date;
        let mut nhs = primary.nhs_number;
        let (_, m, d) = birth.civil();
        let mut want_transpose = kind < 0.25;
        if (0.25..0.75).contains(&kind) {
            if d <= 12 && d != m {
                let (y, m, d) = birth.civil();
                birth = Date::ymd(y, d, m);
                quality.push(QualityIssue::DayMonthSwapped);
            } else {
                want_transpose = true;
            }
        }
        if want_transpose {
            if !transpose_letters(rng, &mut name) {
                // A name too short to garble: drop the NHS number instead.
                nhs = None;
                quality.push(QualityIssue::MissingNhsNumber);
            } else {
                quality.push(QualityIssue::TransposedLetters);
            }
        }
        if (kind >= 0.75 || rng.chance(0.3)) && nhs.is_some() {
            nhs = None;
            quality.push(QualityIssue::MissingNhsNumber);
        }
        // Made while the person was alive and registered: a duplicate is not created after
        // death (but is not closed at death either, as happens).
        let latest = primary.death_date.unwrap_or(as_of).min(as_of);
        let earliest = primary
            .registration
            .start
            .max(latest.plus(-10 * 365))
            .min(latest);
        let created = earliest.plus(rng.below(latest.since(earliest).max(1) as u64) as i32);
        let (kind_reg, end) = if same_practice {
            // Registered twice at the same practice; sometimes spotted and closed.
            let end = rng.chance(0.3).then(|| {
                (
                    created.plus(30 + rng.below(300) as i32).min(as_of),
                    RegistrationEnd::Removed,
                )
            });
            (RegistrationType::Regular, end)
        } else {
            // Seen elsewhere as a temporary resident and not linked.
            let end = created.plus(7 + rng.below(80) as i32);
            (
                RegistrationType::Temporary,
                (end < as_of).then_some((end, RegistrationEnd::TemporaryEnded)),
            )
        };
        let address = if rng.chance(0.4) {
            home_address(rng, self.pcn.area)
        } else {
            primary.address.clone()
        };
        PatientRecord {
            id: format!("{}-{index:07}-d", p.ods),
            practice: holder,
            local_number: local_number(p.system, 0, index + 7_000_000, true),
            role: RecordRole::Duplicate,
            nhs_number: nhs,
            nhs_status: if nhs.is_some() {
                NhsNumberStatus::NotTraced
            } else {
                NhsNumberStatus::TraceRequired
            },
            name,
            sex: primary.sex,
            gender: primary.gender,
            birth_date: birth,
            death_date: None,
            address,
            telecom: primary.telecom.iter().take(1).cloned().collect(),
            registration: Registration {
                kind: kind_reg,
                start: created,
                end,
            },
            confidentiality: primary.confidentiality,
            quality,
            duplicate_of: Some(primary.id.clone()),
            clinical: ClinicalRecord::default(),
        }
    }

    fn add_clinical(&self, person: &mut Person, rng: &mut Rng) {
        let as_of = self.options.as_of;
        let primary = &person.records[0];
        let practice = &self.pcn.practices[primary.practice];
        let reg = &primary.registration;
        let mut end = as_of;
        if let Some((e, _)) = reg.end {
            end = end.min(e);
        }
        if let Some(d) = person.death_date {
            end = end.min(d);
        }
        let records_from =
            Date::ymd(practice.config.records_from_year, 1, 1).plus(rng.below(3 * 365) as i32);
        let start = match reg.kind {
            RegistrationType::Temporary => reg.start,
            RegistrationType::Regular => person.birth_date.max(records_from),
        };
        let ctx = ClinicalContext {
            practice,
            as_of,
            birth: person.birth_date,
            sex: person.sex,
            gender: person.gender,
            start,
            end: end.max(start),
            temporary: reg.kind == RegistrationType::Temporary,
        };
        let clinical = clinical::generate(&ctx, rng);

        for i in 1..person.records.len() {
            let record = &person.records[i];
            let holder = &self.pcn.practices[record.practice];
            let part = match record.role {
                RecordRole::PreviousRegistration => {
                    let until = record.registration.end.map_or(as_of, |(d, _)| d);
                    clinical::history_until(&clinical, until, practice, holder)
                }
                RecordRole::Duplicate => {
                    let ctx = ClinicalContext {
                        practice: holder,
                        as_of,
                        birth: record.birth_date,
                        sex: record.sex,
                        gender: record.gender,
                        start: record.registration.start,
                        end: record
                            .registration
                            .end
                            .map_or(as_of, |(d, _)| d)
                            .min(person.death_date.unwrap_or(as_of))
                            .max(record.registration.start),
                        temporary: true,
                    };
                    clinical::generate(&ctx, rng)
                }
                RecordRole::Primary => ClinicalRecord::default(),
            };
            person.records[i].clinical = part;
        }
        person.records[0].clinical = clinical;
    }

    /// The appointment book of `practice` for the ten working days after the as-of date:
    /// every clinician's slots, about two thirds of them booked by patients of the practice
    /// who are alive and registered there.
    pub fn appointment_book(&self, practice: usize) -> AppointmentBook {
        let p = &self.pcn.practices[practice];
        let mut rng = Rng::derive(&[self.options.seed, TAG_BOOK, practice as u64]);
        let first_day = self.options.as_of.plus(1).next_weekday();
        let mut slots = Vec::new();
        let mut day = first_day;
        let days = 10u16;
        for offset in 0..days {
            for (staff_index, staff) in p.staff.iter().enumerate() {
                if !staff.role.is_clinical() {
                    continue;
                }
                let minutes = match staff.role {
                    StaffRole::Gp => p.config.gp_slot_minutes,
                    StaffRole::Pharmacist => 20,
                    _ => p.config.nurse_slot_minutes,
                };
                // Part-timers: not every clinician works every day.
                if rng.chance(0.2) {
                    continue;
                }
                let busy = 0.92 - 0.05 * f64::from(offset);
                for (from, to) in [
                    (p.config.day_start, 12 * 60 + 30),
                    (14 * 60, p.config.day_end),
                ] {
                    let mut t = from;
                    while t + minutes <= to {
                        let start = DateTime::new(day, t);
                        let booked = if rng.chance(busy) {
                            self.bookable_patient(&mut rng, p)
                        } else {
                            None
                        };
                        let mut id = String::with_capacity(40);
                        id.push_str(p.ods.as_str());
                        id.push_str("-slot-");
                        id.push_str(&staff_index.to_string());
                        id.push('-');
                        id.push_str(&compact_datetime(start));
                        slots.push(BookSlot {
                            id,
                            staff: staff_index,
                            start,
                            minutes,
                            booked,
                        });
                        t += minutes;
                    }
                }
            }
            day = day.plus(1).next_weekday();
        }
        AppointmentBook {
            practice,
            first_day,
            days,
            slots,
        }
    }

    /// A random living patient currently registered at `p` (record id), or `None` after a few
    /// tries (the slot is then busy without a patient, as admin time is).
    fn bookable_patient(&self, rng: &mut Rng, p: &Practice) -> Option<String> {
        if p.list_size == 0 {
            return None;
        }
        for _ in 0..4 {
            let index = p.first_person + rng.below(p.list_size);
            let story = self.story(index);
            if matches!(story, Story::Regular | Story::Moved) {
                return Some(format!("{}-{index:07}", p.ods));
            }
        }
        None
    }
}

/// `yyyymmdd-hhmm` for ids.
pub fn compact_datetime(at: DateTime) -> String {
    let (y, m, d) = at.date.civil();
    format!(
        "{y:04}{m:02}{d:02}-{:02}{:02}",
        at.minute / 60,
        at.minute % 60
    )
}

fn age_days_in_band(rng: &mut Rng, band: usize) -> i32 {
    let years = if band == 18 {
        // 90+: thinning out to about 104.
        90.0 + rng.exponential(4.0).min(14.0)
    } else {
        (band * 5) as f64 + rng.f64() * 5.0
    };
    (years * 365.25) as i32
}

fn other_practice(rng: &mut Rng, home: usize, practices: usize) -> usize {
    if practices < 2 {
        return home;
    }
    (home + 1 + rng.index(practices - 1)) % practices
}

/// The practice system's own patient number: EMIS-style numbers are plain sequences, TPP-style
/// ones longer numbers; records created later (moves, duplicates) get numbers from a later
/// range.
fn local_number(system: GpSystem, in_practice: u64, index: u64, later: bool) -> String {
    let n = if later {
        500_000 + index % 400_000
    } else {
        1_000 + in_practice
    };
    match system {
        GpSystem::EmisStyle => n.to_string(),
        GpSystem::TppStyle => format!("{:012}", 411_000_000_000u64 + n * 7),
    }
}

fn person_name(rng: &mut Rng, birth: Date, age: i32, gender: Gender, sex: Sex) -> HumanName {
    let weights: Vec<f64> = GROUPS.iter().map(|g| g.weight).collect();
    let group: &NameGroup = &GROUPS[rng.weighted(&weights)];
    let older = birth.year() < 1975;
    let older = if rng.chance(0.2) { !older } else { older };
    let female = match gender {
        Gender::Female => true,
        Gender::Male => false,
        _ => sex == Sex::Female,
    };
    let list = match (female, older) {
        (true, true) => group.female_older,
        (true, false) => group.female_younger,
        (false, true) => group.male_older,
        (false, false) => group.male_younger,
    };
    let mut given = vec![rng.pick(list).to_string()];
    if rng.chance(0.55) {
        let middle = rng.pick(list);
        if *middle != given[0] {
            given.push(middle.to_string());
        }
    }
    let mut family = rng.pick(group.surnames).to_string();
    if rng.chance(group.hyphenated) {
        let second = rng.pick(group.surnames);
        if *second != family {
            family = format!("{family}-{second}");
        }
    }
    let prefix = if age < 16 {
        None
    } else if gender == Gender::Other {
        Some("Mx")
    } else if female {
        let t = if age < 25 {
            if rng.chance(0.8) { "Miss" } else { "Ms" }
        } else {
            let w: Vec<f64> = names::TITLES_FEMALE.iter().map(|t| t.1).collect();
            names::TITLES_FEMALE[rng.weighted(&w)].0
        };
        Some(t)
    } else {
        let w: Vec<f64> = names::TITLES_MALE.iter().map(|t| t.1).collect();
        Some(names::TITLES_MALE[rng.weighted(&w)].0)
    };
    HumanName {
        prefix,
        given,
        family,
    }
}

fn home_address(rng: &mut Rng, area: &'static Area) -> Address {
    let mut lines = Vec::with_capacity(2);
    if rng.chance(0.15) {
        lines.push(format!("Flat {}", rng.range(1, 24)));
    }
    lines.push(format!("{} {}", rng.range(1, 220), rng.pick(STREETS)));
    Address {
        lines,
        district: area.neighbourhoods[rng.index(area.neighbourhoods.len())],
        city: area.city,
        postcode: places::postcode(rng, area),
    }
}

fn telecoms(rng: &mut Rng, area: &Area, name: &HumanName, age: i32) -> Vec<Telecom> {
    let mut out = Vec::new();
    if age >= 14 && rng.chance(0.88) {
        out.push(Telecom {
            kind: TelecomKind::Mobile,
            value: places::mobile(rng),
        });
    }
    if rng.chance(if age >= 60 { 0.55 } else { 0.2 }) {
        out.push(Telecom {
            kind: TelecomKind::Home,
            value: places::landline(rng, area),
        });
    }
    if (16..75).contains(&age) && rng.chance(0.35) {
        let given = names::ascii_fold(&name.given[0]);
        let family = names::ascii_fold(&name.family);
        out.push(Telecom {
            kind: TelecomKind::Email,
            value: format!("{given}.{family}{}@example.com", rng.below(100)),
        });
    }
    out
}

/// Swaps two adjacent, different letters of the family name (or the first given name).
/// Returns false if neither has such a pair.
fn transpose_letters(rng: &mut Rng, name: &mut HumanName) -> bool {
    fn swap(rng: &mut Rng, s: &str) -> Option<String> {
        let chars: Vec<char> = s.chars().collect();
        let candidates: Vec<usize> = (1..chars.len().saturating_sub(1))
            .filter(|&i| {
                chars[i].is_alphabetic() && chars[i + 1].is_alphabetic() && chars[i] != chars[i + 1]
            })
            .collect();
        if candidates.is_empty() {
            return None;
        }
        let i = *rng.pick(&candidates);
        let mut chars = chars;
        chars.swap(i, i + 1);
        Some(chars.into_iter().collect())
    }
    if rng.chance(0.6)
        && let Some(f) = swap(rng, &name.family)
    {
        name.family = f;
        return true;
    }
    if let Some(g) = swap(rng, &name.given[0]) {
        name.given[0] = g;
        return true;
    }
    if let Some(f) = swap(rng, &name.family) {
        name.family = f;
        return true;
    }
    false
}

/// Allocates unique NHS numbers from the `999` test range by person index: an affine
/// permutation of the capacity keyed by the seed, then the j-th valid final digit of a block.
#[derive(Debug, Clone)]
struct NhsAllocator {
    a: u64,
    b: u64,
    rotate: u64,
}

impl NhsAllocator {
    fn new(seed: u64) -> Self {
        let mut state = mix(&[seed, TAG_NHS]);
        let mut a = crate::rng::splitmix64(&mut state) % NHS_NUMBER_CAPACITY;
        while gcd(a, NHS_NUMBER_CAPACITY) != 1 {
            a = (a + 1) % NHS_NUMBER_CAPACITY;
        }
        let b = crate::rng::splitmix64(&mut state) % NHS_NUMBER_CAPACITY;
        let rotate = crate::rng::splitmix64(&mut state) % 10;
        NhsAllocator { a, b, rotate }
    }

    fn number(&self, index: u64) -> Option<NhsNumber> {
        if index >= NHS_NUMBER_CAPACITY {
            return None;
        }
        let g = ((u128::from(self.a) * u128::from(index) + u128::from(self.b))
            % u128::from(NHS_NUMBER_CAPACITY)) as u64;
        let block = g / 9;
        let wanted = g % 9;
        let mut seen = 0;
        for k in 0..10 {
            let last = (self.rotate + block + k) % 10;
            let body = format!("999{block:05}{last}");
            if let Some(n) = NhsNumber::from_body(&body) {
                if seen == wanted {
                    return Some(n);
                }
                seen += 1;
            }
        }
        None
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

fn build_pcn(options: &Options) -> Pcn {
    let mut rng = Rng::derive(&[options.seed, TAG_PCN]);
    let area: &'static Area = rng.pick(AREAS);
    let quarter = rng.pick(&[
        "North", "South", "East", "West", "Central", "Inner", "Outer",
    ]);
    let pcn_ods = OdsCode::parse(&format!("U9{:04}", 1000 + rng.below(9000)))
        .expect("U9 and four digits is an ODS code");
    let n = options.practices;

    // Systems: about 57% EMIS-style (at least one of each when there are two or more).
    let mut emis = ((n as f64) * 0.57).round() as usize;
    if n >= 2 {
        emis = emis.clamp(1, n - 1);
    } else {
        emis = n;
    }
    let mut systems: Vec<GpSystem> = (0..n)
        .map(|i| {
            if i < emis {
                GpSystem::EmisStyle
            } else {
                GpSystem::TppStyle
            }
        })
        .collect();
    for i in (1..n).rev() {
        let j = rng.index(i + 1);
        systems.swap(i, j);
    }

    // List sizes: log-normal shares of the total, exact by largest remainder.
    let weights: Vec<f64> = (0..n).map(|_| rng.lognormal(0.0, 0.45)).collect();
    let total: f64 = weights.iter().sum();
    let mut sizes: Vec<u64> = Vec::with_capacity(n);
    let mut remainders: Vec<(f64, usize)> = Vec::with_capacity(n);
    for (i, w) in weights.iter().enumerate() {
        let exact = options.patients as f64 * w / total;
        sizes.push(exact.floor() as u64);
        remainders.push((exact - exact.floor(), i));
    }
    let mut short = options.patients - sizes.iter().sum::<u64>();
    remainders.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, i) in remainders.iter().cycle() {
        if short == 0 {
            break;
        }
        sizes[*i] += 1;
        short -= 1;
    }

    // Practice codes `Y9` + four digits: a start and a step coprime to 9000, so up to 9000
    // practices get distinct codes.
    let ods_start = rng.below(9000);
    let step = *rng.pick(&[7u64, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47]);
    let mut first = 0;
    let mut practices = Vec::with_capacity(n);
    let mut used_names = Vec::new();
    for (i, &system) in systems.iter().enumerate() {
        let ods = OdsCode::parse(&format!(
            "Y9{:04}",
            (ods_start + step * i as u64) % 9000 + 1000
        ))
        .expect("Y9 and four digits is an ODS code");
        let mut name = practice_name(&mut rng, area);
        for attempt in 0.. {
            if !used_names.contains(&name) {
                break;
            }
            name = if attempt < 20 {
                practice_name(&mut rng, area)
            } else {
                format!("{} ({})", practice_name(&mut rng, area), attempt)
            };
        }
        used_names.push(name.clone());
        let config = local_config(&mut rng, system);
        let list_size = sizes[i];
        let staff = build_staff(&mut rng, &ods, list_size);
        let address = home_address(&mut rng, area);
        practices.push(Practice {
            index: i,
            ods,
            name,
            system,
            config,
            address,
            phone: places::landline(&mut rng, area),
            list_size,
            first_person: first,
            staff,
        });
        first += list_size;
    }
    Pcn {
        ods: pcn_ods,
        name: format!("{} {} Primary Care Network (synthetic)", area.city, quarter),
        area,
        practices,
    }
}

fn practice_name(rng: &mut Rng, area: &Area) -> String {
    let hood = rng.pick(area.neighbourhoods);
    let street = rng.pick(STREETS);
    let street_base = street.rsplit_once(' ').map_or(*street, |(a, _)| a);
    match rng.below(5) {
        0 => format!("{hood} Medical Practice"),
        1 => format!("{street_base} Surgery"),
        2 => format!("The {hood} Health Centre"),
        3 => format!("{hood} Family Practice"),
        _ => {
            let group = &GROUPS[0];
            format!("Dr {} and Partners", rng.pick(group.surnames))
        }
    }
}

fn local_config(rng: &mut Rng, system: GpSystem) -> LocalConfig {
    // Most EMIS-style practices have Read v2 history, most TPP-style ones CTV3; a practice
    // that migrated between suppliers keeps the scheme of its old system.
    let (legacy_scheme, migrated_from) = match system {
        GpSystem::EmisStyle if rng.chance(0.15) => (LegacyScheme::Ctv3, Some("SystmOne")),
        GpSystem::EmisStyle => (LegacyScheme::ReadV2, None),
        GpSystem::TppStyle if rng.chance(0.25) => (
            LegacyScheme::ReadV2,
            Some(*rng.pick(&["EMIS LV", "Vision"])),
        ),
        GpSystem::TppStyle => (LegacyScheme::Ctv3, None),
    };
    let legacy_recording = if rng.chance(0.7) {
        LegacyRecording::Beside
    } else {
        LegacyRecording::Instead
    };
    LocalConfig {
        legacy_scheme,
        legacy_recording,
        snomed_from: Date::ymd(2018, 4, 1).plus(rng.below(450) as i32),
        hba1c_dcct_until: Date::ymd(2009, 6, 1).plus(rng.below(900) as i32),
        hba1c_dcct_late_rate: if rng.chance(0.35) { 0.04 } else { 0.0 },
        gp_slot_minutes: *rng.pick(&[10, 10, 12, 15]),
        nurse_slot_minutes: *rng.pick(&[15, 15, 20]),
        day_start: *rng.pick(&[8 * 60, 8 * 60 + 30]),
        day_end: *rng.pick(&[18 * 60, 18 * 60 + 30]),
        records_from_year: rng.range(1990, 1998) as i32,
        migrated_from,
    }
}

fn build_staff(rng: &mut Rng, ods: &OdsCode, list_size: u64) -> Vec<Staff> {
    let gps = (list_size.div_ceil(1800)).clamp(2, 14);
    let nurses = (list_size.div_ceil(4500)).clamp(1, 6);
    let hcas = (list_size.div_ceil(7000)).clamp(1, 4);
    let mut roles = Vec::new();
    roles.extend(std::iter::repeat_n(StaffRole::Gp, gps as usize));
    roles.extend(std::iter::repeat_n(
        StaffRole::PracticeNurse,
        nurses as usize,
    ));
    roles.extend(std::iter::repeat_n(
        StaffRole::HealthcareAssistant,
        hcas as usize,
    ));
    roles.push(StaffRole::Pharmacist);
    roles.push(StaffRole::Administrator);
    roles.push(StaffRole::Administrator);
    roles
        .into_iter()
        .enumerate()
        .map(|(i, role)| {
            let sex = if rng.chance(0.55) {
                Sex::Female
            } else {
                Sex::Male
            };
            let gender = if sex == Sex::Female {
                Gender::Female
            } else {
                Gender::Male
            };
            let age = rng.range(28, 64) as i32;
            let birth = Date::ymd(2026 - age, 6, 1);
            let mut name = person_name(rng, birth, age, gender, sex);
            if role == StaffRole::Gp {
                name.prefix = Some("Dr");
            }
            name.given.truncate(1);
            Staff {
                id: format!("{ods}-S{i:02}"),
                role,
                name,
                gender,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small(seed: u64) -> Population {
        Population::generate(Options {
            seed,
            patients: 3_000,
            practices: 5,
            demographics_only: true,
            ..Options::default()
        })
    }

    #[test]
    fn practices_partition_the_persons() {
        let pop = small(3);
        let sizes: u64 = pop.pcn().practices.iter().map(|p| p.list_size).sum();
        assert_eq!(sizes, 3_000);
        for (i, p) in pop.pcn().practices.iter().enumerate() {
            if p.list_size > 0 {
                assert_eq!(pop.home_practice(p.first_person), i);
                assert_eq!(pop.home_practice(p.first_person + p.list_size - 1), i);
            }
        }
        let emis = pop
            .pcn()
            .practices
            .iter()
            .filter(|p| p.system == GpSystem::EmisStyle)
            .count();
        assert_eq!(emis, 3);
    }

    #[test]
    fn nhs_numbers_are_unique_and_in_the_test_range() {
        let pop = small(9);
        let mut seen = std::collections::HashSet::new();
        for i in 0..20_000 {
            let n = pop.nhs_number(i).expect("within capacity");
            assert!(n.is_test_range());
            assert!(seen.insert(n), "duplicate at {i}");
        }
        assert!(pop.nhs_number(NHS_NUMBER_CAPACITY - 1).is_some());
        assert!(pop.nhs_number(NHS_NUMBER_CAPACITY).is_none());
    }

    #[test]
    fn persons_are_reproducible() {
        let pop = small(5);
        let a = pop.person(1234);
        let b = pop.person(1234);
        assert_eq!(a.name, b.name);
        assert_eq!(a.birth_date, b.birth_date);
        assert_eq!(a.nhs_number, b.nhs_number);
    }
}
