//! The generated population as supplier-neutral "truth": what each practice's system holds,
//! plus what really happened (which records are the same person, which details are wrong).
//!
//! Simulators of GP Connect, EMIS-style and TPP-style interfaces and PDS render these types in
//! their own shapes; the native and FHIR exports are two such renderings.

use keel_model::{NhsNumber, OdsCode};

use crate::codes::{Concept, Drug};
use crate::date::{Date, DateTime};
use crate::places::Area;

/// The Primary Care Network: its practices and the area they serve.
#[derive(Debug, Clone)]
pub struct Pcn {
    pub ods: OdsCode,
    pub name: String,
    pub area: &'static Area,
    pub practices: Vec<Practice>,
}

/// The clinical system a practice runs. The simulators render a practice's records in the
/// matching supplier's shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GpSystem {
    /// Rendered like EMIS Web.
    EmisStyle,
    /// Rendered like TPP SystmOne.
    TppStyle,
}

impl GpSystem {
    pub fn key(self) -> &'static str {
        match self {
            GpSystem::EmisStyle => "emis-style",
            GpSystem::TppStyle => "tpp-style",
        }
    }
}

/// The legacy (pre-SNOMED CT) coding scheme of a practice's historic data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegacyScheme {
    ReadV2,
    Ctv3,
}

impl LegacyScheme {
    pub fn key(self) -> &'static str {
        match self {
            LegacyScheme::ReadV2 => "read-v2",
            LegacyScheme::Ctv3 => "ctv3",
        }
    }
}

/// How a practice's historic (pre-SNOMED) entries carry their codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegacyRecording {
    /// The legacy code as recorded, with the SNOMED CT code beside it (mapped at migration).
    Beside,
    /// The legacy code only: the migration left historic entries unmapped.
    Instead,
}

/// A practice's local configuration: the differences between practices that integrations trip
/// over even on the same supplier's system.
#[derive(Debug, Clone)]
pub struct LocalConfig {
    /// Scheme of entries dated before `snomed_from`.
    pub legacy_scheme: LegacyScheme,
    pub legacy_recording: LegacyRecording,
    /// When the practice started coding in SNOMED CT (England: from April 2018).
    pub snomed_from: Date,
    /// HbA1c results before this date are in DCCT units (%) rather than IFCC (mmol/mol).
    pub hba1c_dcct_until: Date,
    /// A few practices keep receiving some HbA1c results in % after the switch (a lab or
    /// template quirk): the chance per result.
    pub hba1c_dcct_late_rate: f64,
    pub gp_slot_minutes: u16,
    pub nurse_slot_minutes: u16,
    /// Surgery hours, minutes after midnight.
    pub day_start: u16,
    pub day_end: u16,
    /// Earliest year of coded history the practice holds (computerisation / data migration).
    pub records_from_year: i32,
    /// The system the practice migrated from, if any (explains a legacy scheme that does not
    /// match the current supplier).
    pub migrated_from: Option<&'static str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StaffRole {
    Gp,
    PracticeNurse,
    HealthcareAssistant,
    Pharmacist,
    Administrator,
}

impl StaffRole {
    pub fn key(self) -> &'static str {
        match self {
            StaffRole::Gp => "gp",
            StaffRole::PracticeNurse => "nurse",
            StaffRole::HealthcareAssistant => "hca",
            StaffRole::Pharmacist => "pharmacist",
            StaffRole::Administrator => "admin",
        }
    }

    pub fn display(self) -> &'static str {
        match self {
            StaffRole::Gp => "General practitioner",
            StaffRole::PracticeNurse => "Practice nurse",
            StaffRole::HealthcareAssistant => "Healthcare assistant",
            StaffRole::Pharmacist => "Clinical pharmacist",
            StaffRole::Administrator => "Administrator",
        }
    }

    /// Sees patients in booked slots.
    pub fn is_clinical(self) -> bool {
        !matches!(self, StaffRole::Administrator)
    }
}

#[derive(Debug, Clone)]
pub struct Staff {
    pub id: String,
    pub role: StaffRole,
    pub name: HumanName,
    pub gender: Gender,
}

#[derive(Debug, Clone)]
pub struct Practice {
    pub index: usize,
    pub ods: OdsCode,
    pub name: String,
    pub system: GpSystem,
    pub config: LocalConfig,
    pub address: Address,
    pub phone: String,
    /// Number of people whose home practice this is (their primary records).
    pub list_size: u64,
    /// Global index of the first person whose home practice this is.
    pub first_person: u64,
    pub staff: Vec<Staff>,
}

impl Practice {
    /// Staff who see patients, by role.
    pub fn clinicians(&self, role: StaffRole) -> impl Iterator<Item = (usize, &Staff)> {
        self.staff
            .iter()
            .enumerate()
            .filter(move |(_, s)| s.role == role)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HumanName {
    pub prefix: Option<&'static str>,
    pub given: Vec<String>,
    pub family: String,
}

impl HumanName {
    /// `Given Middle FAMILY` style text.
    pub fn text(&self) -> String {
        let mut s = String::new();
        if let Some(p) = self.prefix {
            s.push_str(p);
            s.push(' ');
        }
        for g in &self.given {
            s.push_str(g);
            s.push(' ');
        }
        s.push_str(&self.family);
        s
    }
}

/// Sex recorded at birth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sex {
    Female,
    Male,
}

/// Administrative gender as recorded (FHIR `Patient.gender`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gender {
    Female,
    Male,
    Other,
    Unknown,
}

impl Gender {
    pub fn key(self) -> &'static str {
        match self {
            Gender::Female => "female",
            Gender::Male => "male",
            Gender::Other => "other",
            Gender::Unknown => "unknown",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub lines: Vec<String>,
    pub district: &'static str,
    pub city: &'static str,
    pub postcode: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TelecomKind {
    Mobile,
    Home,
    Email,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Telecom {
    pub kind: TelecomKind,
    pub value: String,
}

/// NHS number verification status (England code system, reference sheet §1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NhsNumberStatus {
    /// 01 Number present and verified.
    Verified,
    /// 02 Number present but not traced.
    NotTraced,
    /// 03 Trace required.
    TraceRequired,
    /// 04 Trace attempted - No match or multiple match found.
    NoMatch,
    /// 05 Trace needs to be resolved (NHS number or patient detail conflict).
    NeedsResolution,
    /// 07 Number not present and trace not required.
    NotPresent,
    /// 08 Trace postponed (baby under six weeks old).
    Postponed,
}

impl NhsNumberStatus {
    pub fn code(self) -> &'static str {
        match self {
            NhsNumberStatus::Verified => "01",
            NhsNumberStatus::NotTraced => "02",
            NhsNumberStatus::TraceRequired => "03",
            NhsNumberStatus::NoMatch => "04",
            NhsNumberStatus::NeedsResolution => "05",
            NhsNumberStatus::NotPresent => "07",
            NhsNumberStatus::Postponed => "08",
        }
    }

    pub fn display(self) -> &'static str {
        match self {
            NhsNumberStatus::Verified => "Number present and verified",
            NhsNumberStatus::NotTraced => "Number present but not traced",
            NhsNumberStatus::TraceRequired => "Trace required",
            NhsNumberStatus::NoMatch => "Trace attempted - No match or multiple match found",
            NhsNumberStatus::NeedsResolution => {
                "Trace needs to be resolved - (NHS number or patient detail conflict)"
            }
            NhsNumberStatus::NotPresent => "Number not present and trace not required",
            NhsNumberStatus::Postponed => "Trace postponed (baby under six weeks old)",
        }
    }
}

/// PDS-style confidentiality of a patient record (reference sheet §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confidentiality {
    Unrestricted,
    /// `R`: the S-flag. Address, telecom and registered practice must not be disclosed.
    Restricted,
    /// `V`: very restricted.
    VeryRestricted,
}

impl Confidentiality {
    pub fn code(self) -> &'static str {
        match self {
            Confidentiality::Unrestricted => "U",
            Confidentiality::Restricted => "R",
            Confidentiality::VeryRestricted => "V",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistrationType {
    Regular,
    /// Temporary resident (up to three months).
    Temporary,
}

impl RegistrationType {
    pub fn key(self) -> &'static str {
        match self {
            RegistrationType::Regular => "regular",
            RegistrationType::Temporary => "temporary",
        }
    }
}

/// Why a registration ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistrationEnd {
    Died,
    /// Moved out of the area (registered elsewhere, outside the PCN).
    LeftArea,
    /// Moved to another practice of the same PCN.
    TransferredWithinPcn,
    /// Left the country.
    Embarkation,
    /// A temporary registration that ran its course.
    TemporaryEnded,
    /// Removed at the practice's request or after list cleaning.
    Removed,
}

impl RegistrationEnd {
    pub fn key(self) -> &'static str {
        match self {
            RegistrationEnd::Died => "died",
            RegistrationEnd::LeftArea => "left-area",
            RegistrationEnd::TransferredWithinPcn => "transferred-within-pcn",
            RegistrationEnd::Embarkation => "embarkation",
            RegistrationEnd::TemporaryEnded => "temporary-ended",
            RegistrationEnd::Removed => "removed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub kind: RegistrationType,
    pub start: Date,
    pub end: Option<(Date, RegistrationEnd)>,
}

impl Registration {
    pub fn is_active(&self) -> bool {
        self.end.is_none()
    }
}

/// What a record is, relative to the person it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordRole {
    /// The person's record at their home practice.
    Primary,
    /// A closed record at a practice the person left for another practice of the PCN.
    PreviousRegistration,
    /// A second record for the same person, created in error.
    Duplicate,
}

impl RecordRole {
    pub fn key(self) -> &'static str {
        match self {
            RecordRole::Primary => "primary",
            RecordRole::PreviousRegistration => "previous-registration",
            RecordRole::Duplicate => "duplicate",
        }
    }
}

/// A deliberate data-quality defect in a record, so tests can check it is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QualityIssue {
    /// Two adjacent letters of the family or a given name swapped.
    TransposedLetters,
    /// Day and month of the birth date swapped.
    DayMonthSwapped,
    /// The record has no NHS number although the person has one.
    MissingNhsNumber,
    /// The NHS number is present but not verified (status 02–05).
    UnverifiedNhsNumber,
    /// The person has no NHS number the generator could allocate (the 999 test range holds
    /// about 900,000 valid numbers; see [`crate::population::NHS_NUMBER_CAPACITY`]).
    TestRangeExhausted,
}

impl QualityIssue {
    pub fn key(self) -> &'static str {
        match self {
            QualityIssue::TransposedLetters => "transposed-letters",
            QualityIssue::DayMonthSwapped => "dob-day-month-swapped",
            QualityIssue::MissingNhsNumber => "missing-nhs-number",
            QualityIssue::UnverifiedNhsNumber => "unverified-nhs-number",
            QualityIssue::TestRangeExhausted => "test-range-exhausted",
        }
    }
}

/// One human being: the truth behind one or more records.
#[derive(Debug, Clone)]
pub struct Person {
    /// Global index (0-based) across the PCN; persons are generated independently by index.
    pub index: u64,
    /// Practice index of the person's home (current or last) practice.
    pub home_practice: usize,
    pub nhs_number: Option<NhsNumber>,
    pub name: HumanName,
    pub sex: Sex,
    pub gender: Gender,
    pub birth_date: Date,
    pub death_date: Option<Date>,
    /// The records held about this person; the first is always the primary record.
    pub records: Vec<PatientRecord>,
}

impl Person {
    pub fn primary(&self) -> &PatientRecord {
        &self.records[0]
    }

    /// Clinical entries across all records.
    pub fn entry_count(&self) -> u64 {
        self.records.iter().map(|r| r.clinical.entry_count()).sum()
    }
}

/// A patient record as one practice's system holds it.
#[derive(Debug, Clone)]
pub struct PatientRecord {
    /// Resource id, unique in the population (`Y90001-0000012`, `...-m`, `...-d`).
    pub id: String,
    pub practice: usize,
    /// The practice system's own patient number.
    pub local_number: String,
    pub role: RecordRole,
    pub nhs_number: Option<NhsNumber>,
    pub nhs_status: NhsNumberStatus,
    pub name: HumanName,
    pub sex: Sex,
    pub gender: Gender,
    pub birth_date: Date,
    pub death_date: Option<Date>,
    pub address: Address,
    pub telecom: Vec<Telecom>,
    pub registration: Registration,
    pub confidentiality: Confidentiality,
    pub quality: Vec<QualityIssue>,
    /// For a duplicate, the id of the record it duplicates.
    pub duplicate_of: Option<String>,
    pub clinical: ClinicalRecord,
}

/// How one entry's code was recorded at its practice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodingStyle {
    /// SNOMED CT only.
    Snomed,
    /// The legacy code as recorded, with SNOMED CT beside it.
    LegacyBeside(LegacyScheme),
    /// The legacy code only.
    LegacyOnly(LegacyScheme),
}

impl CodingStyle {
    pub fn key(self) -> &'static str {
        match self {
            CodingStyle::Snomed => "sct",
            CodingStyle::LegacyBeside(LegacyScheme::ReadV2) => "read-v2+sct",
            CodingStyle::LegacyBeside(LegacyScheme::Ctv3) => "ctv3+sct",
            CodingStyle::LegacyOnly(LegacyScheme::ReadV2) => "read-v2",
            CodingStyle::LegacyOnly(LegacyScheme::Ctv3) => "ctv3",
        }
    }

    /// The legacy code and term for `concept` under this style, if any.
    pub fn legacy(self, concept: &Concept) -> Option<(LegacyScheme, (&'static str, &'static str))> {
        let scheme = match self {
            CodingStyle::Snomed => return None,
            CodingStyle::LegacyBeside(s) | CodingStyle::LegacyOnly(s) => s,
        };
        let code = match scheme {
            LegacyScheme::ReadV2 => concept.read_v2,
            LegacyScheme::Ctv3 => concept.ctv3,
        }?;
        Some((scheme, code))
    }

    /// Whether SNOMED CT is recorded for `concept` under this style (always, unless the
    /// legacy code stands alone).
    pub fn has_snomed(self, concept: &Concept) -> bool {
        !matches!(self, CodingStyle::LegacyOnly(_)) || self.legacy(concept).is_none()
    }
}

/// Sensitive categories of the RCGP sensitive data set (reference sheet §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sensitivity {
    SexuallyTransmittedInfection,
    AssistedConception,
    TerminationOfPregnancy,
    GenderIdentity,
}

impl Sensitivity {
    pub fn key(self) -> &'static str {
        match self {
            Sensitivity::SexuallyTransmittedInfection => "sti",
            Sensitivity::AssistedConception => "ivf",
            Sensitivity::TerminationOfPregnancy => "termination",
            Sensitivity::GenderIdentity => "gender-identity",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConditionStatus {
    Active,
    Resolved(Date),
}

/// A coded problem or diagnosis.
#[derive(Debug, Clone)]
pub struct Condition {
    pub id: u32,
    pub concept: &'static Concept,
    pub coding: CodingStyle,
    pub onset: Date,
    pub recorded: Date,
    pub status: ConditionStatus,
    /// A long-term problem on the problem list (otherwise an episode diagnosis).
    pub chronic: bool,
    pub sensitivity: Option<Sensitivity>,
    pub consultation: Option<u32>,
    pub clinician: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MedicationStatus {
    Active,
    /// Finished as planned (acute courses).
    Completed,
    /// Stopped by a clinician.
    Stopped(Date),
}

/// One prescribing course: a repeat template with its issues, or an acute prescription.
#[derive(Debug, Clone)]
pub struct MedicationCourse {
    pub id: u32,
    pub drug: &'static Drug,
    pub start: Date,
    pub status: MedicationStatus,
    pub repeat: bool,
    /// Issues authorised before review (repeat templates).
    pub authorised_issues: u16,
    pub review_date: Option<Date>,
    pub quantity: u16,
    pub dose: &'static str,
    pub issues: Vec<Date>,
    /// The condition it treats (index into `conditions`).
    pub indication: Option<u32>,
    pub clinician: usize,
}

/// The value of an observation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObservationValue {
    /// A blood pressure pair, mm[Hg].
    BloodPressure { systolic: u16, diastolic: u16 },
    /// `value / 10^scale` in `unit` (UCUM), with an optional `>`/`<` comparator.
    Quantity {
        value: i32,
        scale: u8,
        unit: &'static str,
        comparator: Option<&'static str>,
    },
    /// The code is the finding (smoking status and similar).
    None,
    /// Free text (a comment note).
    Text,
}

#[derive(Debug, Clone)]
pub struct Observation {
    pub id: u32,
    pub concept: &'static Concept,
    pub coding: CodingStyle,
    pub date: Date,
    pub value: ObservationValue,
    /// Free text for [`ObservationValue::Text`] (and optional notes).
    pub text: Option<String>,
    pub consultation: Option<u32>,
    pub laboratory: bool,
    pub clinician: usize,
    pub sensitivity: Option<Sensitivity>,
}

#[derive(Debug, Clone)]
pub struct Allergy {
    pub id: u32,
    pub concept: &'static Concept,
    pub recorded: Date,
    pub category: &'static str,
    pub reaction: Option<&'static Concept>,
    pub active: bool,
    pub clinician: usize,
}

#[derive(Debug, Clone)]
pub struct Immunisation {
    pub id: u32,
    pub procedure: &'static Concept,
    /// Vaccine product name (the product code is left out: see `codes` module docs).
    pub product: &'static str,
    pub date: Date,
    pub clinician: usize,
    pub consultation: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsultationKind {
    Surgery,
    Telephone,
    HomeVisit,
}

impl ConsultationKind {
    pub fn key(self) -> &'static str {
        match self {
            ConsultationKind::Surgery => "surgery",
            ConsultationKind::Telephone => "telephone",
            ConsultationKind::HomeVisit => "home-visit",
        }
    }
}

/// A consultation (encounter) with its free text.
#[derive(Debug, Clone)]
pub struct Consultation {
    pub id: u32,
    pub start: DateTime,
    pub minutes: u16,
    pub kind: ConsultationKind,
    pub clinician: usize,
    pub text: String,
    /// The practice marked it confidential (sensitive content).
    pub confidential: bool,
    pub appointment: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppointmentStatus {
    Booked,
    Fulfilled,
    /// Did not attend.
    NoShow,
    Cancelled,
}

impl AppointmentStatus {
    pub fn fhir(self) -> &'static str {
        match self {
            AppointmentStatus::Booked => "booked",
            AppointmentStatus::Fulfilled => "fulfilled",
            AppointmentStatus::NoShow => "noshow",
            AppointmentStatus::Cancelled => "cancelled",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Appointment {
    pub id: u32,
    pub start: DateTime,
    pub minutes: u16,
    pub clinician: usize,
    pub status: AppointmentStatus,
    pub kind: ConsultationKind,
    /// When it was booked.
    pub booked: Date,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskStatus {
    Requested,
    InProgress,
    Completed,
    Cancelled,
}

impl TaskStatus {
    pub fn fhir(self) -> &'static str {
        match self {
            TaskStatus::Requested => "requested",
            TaskStatus::InProgress => "in-progress",
            TaskStatus::Completed => "completed",
            TaskStatus::Cancelled => "cancelled",
        }
    }
}

/// A workflow task in the practice system about this patient.
#[derive(Debug, Clone)]
pub struct Task {
    pub id: u32,
    pub created: DateTime,
    pub description: &'static str,
    pub status: TaskStatus,
    pub owner: usize,
    pub requester: usize,
    pub urgent: bool,
}

/// Everything clinical in one patient record.
#[derive(Debug, Clone, Default)]
pub struct ClinicalRecord {
    pub conditions: Vec<Condition>,
    pub medications: Vec<MedicationCourse>,
    pub observations: Vec<Observation>,
    pub allergies: Vec<Allergy>,
    pub immunisations: Vec<Immunisation>,
    pub consultations: Vec<Consultation>,
    pub appointments: Vec<Appointment>,
    pub tasks: Vec<Task>,
}

impl ClinicalRecord {
    /// Entries as a clinician would count them in the journal: each condition, medication
    /// course, issue, observation, allergy, immunisation, consultation, appointment and task.
    pub fn entry_count(&self) -> u64 {
        let issues: usize = self.medications.iter().map(|m| m.issues.len()).sum();
        (self.conditions.len()
            + self.medications.len()
            + issues
            + self.observations.len()
            + self.allergies.len()
            + self.immunisations.len()
            + self.consultations.len()
            + self.appointments.len()
            + self.tasks.len()) as u64
    }
}

/// A bookable slot in a practice's appointment book (from the population's as-of date on).
#[derive(Debug, Clone)]
pub struct BookSlot {
    pub id: String,
    pub staff: usize,
    pub start: DateTime,
    pub minutes: u16,
    /// The record id of the patient booked into it, if any.
    pub booked: Option<String>,
}

/// A practice's appointment book for the days after the as-of date.
#[derive(Debug, Clone)]
pub struct AppointmentBook {
    pub practice: usize,
    pub first_day: Date,
    pub days: u16,
    pub slots: Vec<BookSlot>,
}
