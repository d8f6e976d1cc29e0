//! Clinical records: long-term conditions at English prevalence, the prescribing, monitoring
//! and reviews they bring, acute illness, immunisations, allergies, appointments and tasks.
//!
//! Record size follows from a latent "health need" per patient (log-normal, with a heavy
//! upper tail), the number of long-term conditions, age, and a few drivers of very large
//! records seen in real practice: weekly dispensing (blister packs) for frail older patients,
//! monthly blood monitoring (methotrexate, advanced CKD, heart failure). Most patients get tens
//! to hundreds of entries; the heaviest few thousand to beyond ten thousand.
//!
//! Simplification: a patient's whole history is attributed to staff of the practice holding
//! the record, including entries from before they registered there.

use crate::codes::{self, Concept, Drug};
use crate::date::{Date, DateTime};
use crate::model::*;
use crate::rng::Rng;

/// What the generator needs to know about the patient and the practice.
pub struct ClinicalContext<'a> {
    pub practice: &'a Practice,
    pub as_of: Date,
    pub birth: Date,
    pub sex: Sex,
    pub gender: Gender,
    /// First day of coded history.
    pub start: Date,
    /// Last day of the record (as-of date, death or end of registration).
    pub end: Date,
    /// A short registration (temporary resident or duplicate): a consultation or two only.
    pub temporary: bool,
}

/// Generates the clinical record for `ctx`.
pub fn generate(ctx: &ClinicalContext, rng: &mut Rng) -> ClinicalRecord {
    let mut g = Gen::new(ctx, rng);
    if ctx.temporary {
        g.temporary_record();
    } else {
        g.full_record();
    }
    g.finish()
}

/// The part of `record` dated before `until`, as a practice the patient left would still hold
/// it; staff are mapped role for role from `from` to `to`.
pub fn history_until(
    record: &ClinicalRecord,
    until: Date,
    from: &Practice,
    to: &Practice,
) -> ClinicalRecord {
    let map = |i: usize| -> usize {
        let role = from.staff.get(i).map_or(StaffRole::Gp, |s| s.role);
        let same: Vec<usize> = to.clinicians(role).map(|(j, _)| j).collect();
        if same.is_empty() {
            0
        } else {
            same[i % same.len()]
        }
    };
    ClinicalRecord {
        conditions: record
            .conditions
            .iter()
            .filter(|c| c.recorded < until)
            .map(|c| Condition {
                status: match c.status {
                    ConditionStatus::Resolved(d) if d >= until => ConditionStatus::Active,
                    s => s,
                },
                clinician: map(c.clinician),
                ..c.clone()
            })
            .collect(),
        medications: record
            .medications
            .iter()
            .filter(|m| m.start < until)
            .map(|m| MedicationCourse {
                status: match m.status {
                    MedicationStatus::Stopped(d) if d >= until => MedicationStatus::Active,
                    s => s,
                },
                issues: m.issues.iter().copied().filter(|d| *d < until).collect(),
                clinician: map(m.clinician),
                review_date: None,
                ..m.clone()
            })
            .collect(),
        observations: record
            .observations
            .iter()
            .filter(|o| o.date < until)
            .map(|o| Observation {
                clinician: map(o.clinician),
                ..o.clone()
            })
            .collect(),
        allergies: record
            .allergies
            .iter()
            .filter(|a| a.recorded < until)
            .map(|a| Allergy {
                clinician: map(a.clinician),
                ..a.clone()
            })
            .collect(),
        immunisations: record
            .immunisations
            .iter()
            .filter(|i| i.date < until)
            .map(|i| Immunisation {
                clinician: map(i.clinician),
                ..i.clone()
            })
            .collect(),
        consultations: record
            .consultations
            .iter()
            .filter(|c| c.start.date < until)
            .map(|c| Consultation {
                clinician: map(c.clinician),
                ..c.clone()
            })
            .collect(),
        appointments: record
            .appointments
            .iter()
            .filter(|a| a.start.date < until)
            .map(|a| Appointment {
                clinician: map(a.clinician),
                ..a.clone()
            })
            .collect(),
        tasks: record
            .tasks
            .iter()
            .filter(|t| t.created.date < until)
            .map(|t| Task {
                owner: map(t.owner),
                requester: map(t.requester),
                status: TaskStatus::Completed,
                ..t.clone()
            })
            .collect(),
    }
}

/// A long-term condition's epidemiology.
struct ChronicDef {
    concept: &'static Concept,
    /// Prevalence by age band at the end of the record: 0–17, 18–39, 40–59, 60–79, 80+.
    prevalence: [f64; 5],
    female: f64,
    male: f64,
    min_age: i32,
    /// Chance the condition has resolved (asthma outgrown, a depressive episode over).
    resolve: f64,
}

const CHRONIC: &[ChronicDef] = &[
    ChronicDef {
        concept: &codes::HYPERTENSION,
        prevalence: [0.0, 0.03, 0.15, 0.45, 0.60],
        female: 1.0,
        male: 1.0,
        min_age: 25,
        resolve: 0.0,
    },
    ChronicDef {
        concept: &codes::DIABETES_T2,
        prevalence: [0.002, 0.02, 0.08, 0.17, 0.18],
        female: 0.9,
        male: 1.1,
        min_age: 10,
        resolve: 0.0,
    },
    ChronicDef {
        concept: &codes::ASTHMA,
        prevalence: [0.09, 0.085, 0.075, 0.07, 0.065],
        female: 1.0,
        male: 1.0,
        min_age: 2,
        resolve: 0.25,
    },
    ChronicDef {
        concept: &codes::COPD,
        prevalence: [0.0, 0.002, 0.015, 0.055, 0.08],
        female: 0.9,
        male: 1.1,
        min_age: 40,
        resolve: 0.0,
    },
    ChronicDef {
        concept: &codes::CKD3,
        prevalence: [0.0, 0.0015, 0.014, 0.075, 0.22],
        female: 1.1,
        male: 0.9,
        min_age: 30,
        resolve: 0.0,
    },
    ChronicDef {
        concept: &codes::DEPRESSION,
        prevalence: [0.01, 0.16, 0.18, 0.16, 0.13],
        female: 1.3,
        male: 0.7,
        min_age: 12,
        resolve: 0.2,
    },
    ChronicDef {
        concept: &codes::ANXIETY,
        prevalence: [0.01, 0.08, 0.07, 0.05, 0.04],
        female: 1.3,
        male: 0.7,
        min_age: 10,
        resolve: 0.5,
    },
    ChronicDef {
        concept: &codes::ATRIAL_FIBRILLATION,
        prevalence: [0.0, 0.001, 0.008, 0.06, 0.15],
        female: 0.9,
        male: 1.1,
        min_age: 35,
        resolve: 0.0,
    },
    ChronicDef {
        concept: &codes::HYPOTHYROIDISM,
        prevalence: [0.001, 0.01, 0.04, 0.07, 0.09],
        female: 1.7,
        male: 0.3,
        min_age: 10,
        resolve: 0.0,
    },
    ChronicDef {
        concept: &codes::MYOCARDIAL_INFARCTION,
        prevalence: [0.0, 0.001, 0.02, 0.08, 0.14],
        female: 0.6,
        male: 1.4,
        min_age: 35,
        resolve: 0.0,
    },
    ChronicDef {
        concept: &codes::STROKE,
        prevalence: [0.0, 0.001, 0.008, 0.04, 0.09],
        female: 1.0,
        male: 1.0,
        min_age: 35,
        resolve: 0.0,
    },
    ChronicDef {
        concept: &codes::HEART_FAILURE,
        prevalence: [0.0, 0.0, 0.003, 0.025, 0.08],
        female: 0.9,
        male: 1.1,
        min_age: 40,
        resolve: 0.0,
    },
    ChronicDef {
        concept: &codes::OSTEOARTHRITIS,
        prevalence: [0.0, 0.005, 0.06, 0.18, 0.25],
        female: 1.2,
        male: 0.8,
        min_age: 40,
        resolve: 0.0,
    },
];

/// Acute problems seen in surgery.
struct AcuteDef {
    /// `None`: recorded as free text only (no code), as many consultations are.
    concept: Option<&'static Concept>,
    min_age: i32,
    max_age: i32,
    female_only: bool,
    weight: f64,
    drugs: &'static [(&'static Drug, f64)],
    texts: &'static [&'static str],
}

const ACUTE: &[AcuteDef] = &[
    AcuteDef {
        concept: Some(&codes::URTI),
        min_age: 0,
        max_age: 120,
        female_only: false,
        weight: 14.0,
        drugs: &[],
        texts: &[
            "{d} day history of sore throat, runny nose and cough. Afebrile, chest clear. Likely viral URTI. Self-care advice, safety-netted.",
            "Coryzal for {d} days. Eating and drinking. ENT exam unremarkable. Viral illness, fluids and paracetamol.",
        ],
    },
    AcuteDef {
        concept: Some(&codes::LRTI),
        min_age: 16,
        max_age: 120,
        female_only: false,
        weight: 6.0,
        drugs: &[
            (&codes::AMOXICILLIN, 0.5),
            (&codes::DOXYCYCLINE, 0.25),
            (&codes::CLARITHROMYCIN, 0.1),
        ],
        texts: &[
            "Productive cough {d} days, fever. Crackles right base, sats 96% on air. LRTI, antibiotics, review if not improving in 48 hours.",
            "Cough with green sputum for {d} days. Chest: coarse crackles. CRB-65 score 0. Treat in community.",
        ],
    },
    AcuteDef {
        concept: Some(&codes::UTI),
        min_age: 16,
        max_age: 120,
        female_only: true,
        weight: 6.0,
        drugs: &[(&codes::NITROFURANTOIN, 0.6), (&codes::TRIMETHOPRIM, 0.3)],
        texts: &[
            "Dysuria and frequency for {d} days. No loin pain, afebrile. Urine dip: nitrites and leucocytes positive. Uncomplicated UTI.",
            "Symptoms of cystitis {d} days. Not pregnant. MSU sent. Antibiotics started.",
        ],
    },
    AcuteDef {
        concept: Some(&codes::CYSTITIS),
        min_age: 16,
        max_age: 120,
        female_only: true,
        weight: 2.0,
        drugs: &[(&codes::NITROFURANTOIN, 0.7)],
        texts: &["Burning on passing urine, {d} days. Dip positive. Acute cystitis, 3 day course."],
    },
    AcuteDef {
        concept: Some(&codes::LOW_BACK_PAIN),
        min_age: 18,
        max_age: 120,
        female_only: false,
        weight: 8.0,
        drugs: &[
            (&codes::NAPROXEN, 0.3),
            (&codes::CO_CODAMOL, 0.3),
            (&codes::IBUPROFEN, 0.2),
        ],
        texts: &[
            "Low back pain for {d} days after lifting. No red flags: no saddle anaesthesia, bladder and bowel normal. Mechanical back pain, keep active.",
            "Lumbar pain {d} days, no radiation. SLR negative bilaterally. Analgesia and physio self-referral.",
        ],
    },
    AcuteDef {
        concept: Some(&codes::OTITIS_MEDIA),
        min_age: 0,
        max_age: 12,
        female_only: false,
        weight: 7.0,
        drugs: &[(&codes::AMOXICILLIN, 0.4)],
        texts: &[
            "Earache for {d} days, fever last night. Left TM red and bulging. Acute otitis media.",
            "Pulling at ear {d} days. Red TM. Delayed antibiotic prescription given to parent.",
        ],
    },
    AcuteDef {
        concept: Some(&codes::TONSILLITIS),
        min_age: 3,
        max_age: 40,
        female_only: false,
        weight: 5.0,
        drugs: &[(&codes::AMOXICILLIN, 0.3), (&codes::CLARITHROMYCIN, 0.05)],
        texts: &[
            "Sore throat {d} days, fever, tonsillar exudate, no cough. FeverPAIN 4. Tonsillitis.",
        ],
    },
    AcuteDef {
        concept: Some(&codes::COUGH),
        min_age: 0,
        max_age: 120,
        female_only: false,
        weight: 5.0,
        drugs: &[],
        texts: &["Dry cough for {d} days. Chest clear, sats normal. Post-viral cough, reassured."],
    },
    AcuteDef {
        concept: Some(&codes::ECZEMA),
        min_age: 0,
        max_age: 60,
        female_only: false,
        weight: 4.0,
        drugs: &[
            (&codes::EMOLLIENT, 0.8),
            (&codes::HYDROCORTISONE_CREAM, 0.5),
        ],
        texts: &[
            "Itchy dry patches on flexures, flare for {d} days. Eczema. Emollients and mild steroid.",
        ],
    },
    AcuteDef {
        concept: Some(&codes::HEADACHE),
        min_age: 10,
        max_age: 120,
        female_only: false,
        weight: 4.0,
        drugs: &[(&codes::PARACETAMOL, 0.2)],
        texts: &[
            "Headaches for {d} days, worse end of day. Neuro exam normal, fundi normal, BP fine. Tension-type headache.",
        ],
    },
    AcuteDef {
        concept: Some(&codes::CONJUNCTIVITIS),
        min_age: 0,
        max_age: 120,
        female_only: false,
        weight: 3.0,
        drugs: &[(&codes::CHLORAMPHENICOL_DROPS, 0.6)],
        texts: &["Sticky red eye {d} days. Acuity normal. Bacterial conjunctivitis."],
    },
    AcuteDef {
        concept: Some(&codes::GASTROENTERITIS),
        min_age: 0,
        max_age: 120,
        female_only: false,
        weight: 4.0,
        drugs: &[],
        texts: &[
            "Diarrhoea and vomiting {d} days. Tolerating fluids, not dehydrated. Gastroenteritis, oral rehydration.",
        ],
    },
    AcuteDef {
        concept: Some(&codes::ANKLE_SPRAIN),
        min_age: 8,
        max_age: 70,
        female_only: false,
        weight: 2.0,
        drugs: &[(&codes::IBUPROFEN, 0.4)],
        texts: &["Twisted ankle {d} days ago. Ottawa rules negative. Sprain, RICE advice."],
    },
    AcuteDef {
        concept: Some(&codes::INSOMNIA),
        min_age: 18,
        max_age: 120,
        female_only: false,
        weight: 2.0,
        drugs: &[(&codes::ZOPICLONE, 0.3)],
        texts: &["Poor sleep for several weeks. Sleep hygiene discussed. Short course only."],
    },
    AcuteDef {
        concept: None,
        min_age: 16,
        max_age: 120,
        female_only: false,
        weight: 8.0,
        drugs: &[],
        texts: &[
            "Feeling tired all the time for {d} days. Bloods requested. Review with results.",
            "Fit note requested for {d} days off work. Issued.",
            "Medication query, discussed by phone. No change needed.",
            "Letter from hospital clinic reviewed with patient. Plan noted.",
            "Mole on back, present for years, no change. Benign appearance. Reassured.",
            "Travel advice and vaccination history checked.",
        ],
    },
    AcuteDef {
        concept: None,
        min_age: 0,
        max_age: 15,
        female_only: false,
        weight: 4.0,
        drugs: &[],
        texts: &[
            "Rash for {d} days, blanching, child well. Viral exanthem. Safety-netting advice to parent.",
            "Fever {d} days, eating and drinking, no focus found. Traffic light green. Advice given.",
        ],
    },
];

/// Vaccine product names for immunisations (names only: the products are not coded).
const FLU_PRODUCT: &str =
    "Influenza vaccine (surface antigen, inactivated) suspension for injection";
const PNEUMO_PRODUCT: &str = "Pneumococcal polysaccharide vaccine solution for injection";
const MMR_PRODUCT: &str =
    "Measles, mumps and rubella vaccine (live) powder and solvent for solution for injection";
const COVID_PRODUCT: &str = "COVID-19 mRNA vaccine dispersion for injection";

const TASKS: &[&str] = &[
    "Please review blood results",
    "Patient requesting call back about results",
    "Medication review due",
    "Repeat prescription query",
    "Hospital letter to action",
    "Please book annual review",
    "Referral letter to be typed",
    "Patient called, please call back about medication",
    "Update record following discharge summary",
    "Blood pressure reading required for review",
];

#[derive(Clone, Copy)]
struct Smoking {
    /// Date the patient started smoking, if ever.
    started: Option<Date>,
    quit: Option<Date>,
}

struct Gen<'a, 'r> {
    ctx: &'a ClinicalContext<'a>,
    rng: &'r mut Rng,
    rec: ClinicalRecord,
    gps: Vec<usize>,
    nurses: Vec<usize>,
    hcas: Vec<usize>,
    pharmacists: Vec<usize>,
    admins: Vec<usize>,
    /// Latent health need; multiplies contact and disease rates.
    need: f64,
    smoking: Smoking,
    sbp_offset: f64,
    bmi_base: f64,
    height_m: f64,
    egfr_offset: f64,
    hba1c_base: f64,
    /// Active long-term conditions: (concept, onset, end of activity).
    chronic: Vec<(&'static Concept, Date, Option<Date>)>,
    /// Weekly dispensing (blister packs) from this date.
    weekly_from: Option<Date>,
    next_id: u32,
}

impl<'a, 'r> Gen<'a, 'r> {
    fn new(ctx: &'a ClinicalContext<'a>, rng: &'r mut Rng) -> Self {
        let p = ctx.practice;
        let by_role = |role| -> Vec<usize> { p.clinicians(role).map(|(i, _)| i).collect() };
        let gps = by_role(StaffRole::Gp);
        let fallback = |v: Vec<usize>| if v.is_empty() { gps.clone() } else { v };
        let nurses = fallback(by_role(StaffRole::PracticeNurse));
        let hcas = fallback(by_role(StaffRole::HealthcareAssistant));
        let pharmacists = fallback(by_role(StaffRole::Pharmacist));
        let admins = fallback(by_role(StaffRole::Administrator));
        let gps = if gps.is_empty() { vec![0] } else { gps };
        let mut need = rng.lognormal(0.0, 0.55);
        if rng.chance(0.02) {
            need *= 2.5;
        }
        let smoking = {
            let teen = ctx.birth.add_years(16).plus(rng.below(5 * 365) as i32);
            let older = ctx.birth.year() < 1965;
            let ever = rng.chance(if older { 0.5 } else { 0.35 });
            if ever && teen < ctx.end {
                let quit = rng
                    .chance(0.6)
                    .then(|| teen.plus((365.0 * rng.range(3, 40) as f64) as i32));
                Smoking {
                    started: Some(teen),
                    quit: quit.filter(|q| *q < ctx.end),
                }
            } else {
                Smoking {
                    started: None,
                    quit: None,
                }
            }
        };
        let female = ctx.sex == Sex::Female;
        Gen {
            ctx,
            need,
            sbp_offset: rng.gauss(0.0, 9.0),
            bmi_base: rng.gauss(27.0, 4.5).clamp(17.0, 50.0),
            height_m: rng.gauss(if female { 1.63 } else { 1.77 }, 0.07),
            egfr_offset: rng.gauss(0.0, 8.0),
            hba1c_base: rng.gauss(54.0, 9.0),
            rng,
            rec: ClinicalRecord::default(),
            gps,
            nurses,
            hcas,
            pharmacists,
            admins,
            smoking,
            chronic: Vec::new(),
            weekly_from: None,
            next_id: 0,
        }
    }

    fn id(&mut self) -> u32 {
        self.next_id += 1;
        self.next_id
    }

    fn age_at(&self, date: Date) -> i32 {
        date.years_since(self.ctx.birth)
    }

    fn pick_staff(&mut self, role: StaffRole) -> usize {
        let list = match role {
            StaffRole::Gp => &self.gps,
            StaffRole::PracticeNurse => &self.nurses,
            StaffRole::HealthcareAssistant => &self.hcas,
            StaffRole::Pharmacist => &self.pharmacists,
            StaffRole::Administrator => &self.admins,
        };
        list[self.rng.index(list.len())]
    }

    /// How an entry about `concept` made on `date` is coded at this practice.
    fn style(&self, concept: &Concept, date: Date) -> CodingStyle {
        let cfg = &self.ctx.practice.config;
        if date >= cfg.snomed_from {
            return CodingStyle::Snomed;
        }
        let has = match cfg.legacy_scheme {
            LegacyScheme::ReadV2 => concept.read_v2.is_some(),
            LegacyScheme::Ctv3 => concept.ctv3.is_some(),
        };
        if !has {
            return CodingStyle::Snomed;
        }
        match cfg.legacy_recording {
            LegacyRecording::Beside => CodingStyle::LegacyBeside(cfg.legacy_scheme),
            LegacyRecording::Instead => CodingStyle::LegacyOnly(cfg.legacy_scheme),
        }
    }

    /// A uniformly random day in `[from, to]`, moved to a weekday.
    fn day_between(&mut self, from: Date, to: Date) -> Date {
        let span = to.since(from).max(0);
        let d = from.plus(self.rng.below(span as u64 + 1) as i32);
        let d = d.next_weekday();
        if d > to {
            // Back to the Friday before.
            match d.weekday() {
                0 => d.plus(-3),
                _ => d.plus(-1),
            }
            .max(from)
        } else {
            d
        }
    }

    /// A slot-aligned time of day for a booked contact with `role`.
    fn time_of_day(&mut self, role: StaffRole) -> (u16, u16) {
        let cfg = &self.ctx.practice.config;
        let minutes = match role {
            StaffRole::Gp => cfg.gp_slot_minutes,
            StaffRole::Pharmacist => 20,
            _ => cfg.nurse_slot_minutes,
        };
        let morning = (12 * 60 + 30 - cfg.day_start) / minutes;
        let afternoon = (cfg.day_end - 14 * 60) / minutes;
        let k = self.rng.below(u64::from(morning + afternoon)) as u16;
        let t = if k < morning {
            cfg.day_start + k * minutes
        } else {
            14 * 60 + (k - morning) * minutes
        };
        (t, minutes)
    }

    fn finish(mut self) -> ClinicalRecord {
        let rec = &mut self.rec;
        rec.consultations.sort_by_key(|c| (c.start, c.id));
        rec.appointments.sort_by_key(|a| (a.start, a.id));
        rec.observations.sort_by_key(|o| (o.date, o.id));
        rec.conditions.sort_by_key(|c| (c.recorded, c.id));
        rec.medications.sort_by_key(|m| (m.start, m.id));
        rec.immunisations.sort_by_key(|i| (i.date, i.id));
        rec.tasks.sort_by_key(|t| (t.created, t.id));
        self.rec
    }

    fn temporary_record(&mut self) {
        let n = 1 + self.rng.below(2) as usize;
        for _ in 0..n {
            let date = self.day_between(self.ctx.start, self.ctx.end);
            self.acute_consultation(date);
        }
    }

    fn full_record(&mut self) {
        let ctx = self.ctx;
        let age_end = self.age_at(ctx.end);
        self.conditions(age_end);
        self.sensitive(age_end);
        // Weekly dispensing (blister packs): frail older patients, for years at a time.
        if age_end >= 75 && self.rng.chance((0.05 * self.need * self.need).min(0.6)) {
            let years = self.rng.range(2, 12) as i32;
            self.weekly_from = Some(ctx.end.plus(-365 * years).max(ctx.start));
        }
        self.long_term_prescribing(age_end);
        self.contacts();
        self.reviews_and_monitoring();
        self.immunisations();
        self.allergies();
        self.tasks();
    }

    /// Long-term conditions, with a diagnosis consultation each.
    fn conditions(&mut self, age_end: i32) {
        let ctx = self.ctx;
        let band = match age_end {
            ..18 => 0,
            18..40 => 1,
            40..60 => 2,
            60..80 => 3,
            _ => 4,
        };
        // Mean of need^0.6 over the log-normal, so prevalence stays on target.
        let need_factor = crate::rng::powf(self.need, 0.6) / 1.056;
        for def in CHRONIC {
            if age_end < def.min_age {
                continue;
            }
            let sex = if ctx.sex == Sex::Female {
                def.female
            } else {
                def.male
            };
            let mut p = def.prevalence[band] * sex * need_factor;
            let has = |g: &Self, c: &Concept| g.chronic.iter().any(|(k, _, _)| k.key == c.key);
            if std::ptr::eq(def.concept, &codes::CKD3)
                && (has(self, &codes::HYPERTENSION) || has(self, &codes::DIABETES_T2))
            {
                p *= 1.6;
            }
            if std::ptr::eq(def.concept, &codes::HEART_FAILURE)
                && (has(self, &codes::MYOCARDIAL_INFARCTION)
                    || has(self, &codes::ATRIAL_FIBRILLATION))
            {
                p *= 2.0;
            }
            if !self.rng.chance(p.min(0.9)) {
                continue;
            }
            let mut concept = def.concept;
            let mut min_age = def.min_age;
            let mut max_age = age_end;
            if std::ptr::eq(concept, &codes::DIABETES_T2) && (age_end < 25 || self.rng.chance(0.1))
            {
                concept = &codes::DIABETES_T1;
                min_age = 5;
                max_age = age_end.min(30);
            }
            if std::ptr::eq(concept, &codes::CKD3) && self.rng.chance(0.08) {
                concept = &codes::CKD4;
            }
            let span = (max_age - min_age).max(0) as f64;
            // Onset weighted towards later life.
            let onset_age = min_age + (span * self.rng.f64().sqrt()) as i32;
            let onset = ctx
                .birth
                .add_years(onset_age)
                .plus(self.rng.below(365) as i32)
                .min(ctx.end);
            let resolved = self
                .rng
                .chance(def.resolve)
                .then(|| onset.plus(180 + self.rng.below(3 * 365) as i32));
            let resolved = resolved.filter(|r| *r < ctx.end);
            self.chronic.push((concept, onset, resolved));
            let recorded = if onset < ctx.start {
                ctx.start.plus(self.rng.below(365) as i32).min(ctx.end)
            } else {
                onset
            };
            let consultation = (onset >= ctx.start).then(|| {
                let text = format!(
                    "Diagnosis: {}. Discussed diagnosis and management plan. Leaflet given. Follow up arranged.",
                    concept.display.to_lowercase()
                );
                self.consultation(recorded, StaffRole::Gp, ConsultationKind::Surgery, text, false)
            });
            let clinician = self.pick_staff(StaffRole::Gp);
            let id = self.id();
            self.rec.conditions.push(Condition {
                id,
                concept,
                coding: self.style(concept, recorded),
                onset,
                recorded,
                status: match resolved {
                    Some(d) => ConditionStatus::Resolved(d),
                    None => ConditionStatus::Active,
                },
                chronic: true,
                sensitivity: None,
                consultation,
                clinician,
            });
        }
        // Frailty, identified in over-65s since 2017 (eFI then clinical confirmation).
        let frailty_from = Date::ymd(2017, 4, 1);
        if age_end >= 65 && ctx.end > frailty_from {
            let score =
                self.need * (0.6 + 0.02 * f64::from(age_end - 65)) * self.rng.lognormal(0.0, 0.3)
                    + 0.1 * self.chronic.len() as f64;
            let concept = if score > 2.9 {
                Some(&codes::FRAILTY_SEVERE)
            } else if score > 1.95 {
                Some(&codes::FRAILTY_MODERATE)
            } else if score > 1.2 {
                Some(&codes::FRAILTY_MILD)
            } else {
                None
            };
            if let Some(concept) = concept {
                let from = frailty_from.max(ctx.birth.add_years(65)).max(ctx.start);
                let date = self.day_between(from, ctx.end);
                let clinician = self.pick_staff(StaffRole::Gp);
                let id = self.id();
                self.rec.conditions.push(Condition {
                    id,
                    concept,
                    coding: self.style(concept, date),
                    onset: date,
                    recorded: date,
                    status: ConditionStatus::Active,
                    chronic: true,
                    sensitivity: None,
                    consultation: None,
                    clinician,
                });
            }
        }
    }

    /// Entries from the RCGP sensitive data set areas, in confidential consultations.
    fn sensitive(&mut self, age_end: i32) {
        let ctx = self.ctx;
        let female = ctx.sex == Sex::Female;
        let mut events: Vec<(&'static Concept, Sensitivity, i32, i32, &'static str)> = Vec::new();
        if age_end >= 16 && self.rng.chance(0.06) {
            events.push((&codes::CHLAMYDIA, Sensitivity::SexuallyTransmittedInfection, 16, 35,
                "Sexual health review. Chlamydia NAAT positive. Treated, partner notification discussed, retest advised."));
        }
        if female && age_end >= 28 && self.rng.chance(0.02) {
            events.push((&codes::IVF, Sensitivity::AssistedConception, 28, 45,
                "Fertility: discussed assisted conception. Referred to the assisted conception unit."));
        }
        if female && age_end >= 16 && self.rng.chance(0.04) {
            events.push((&codes::TERMINATION, Sensitivity::TerminationOfPregnancy, 16, 45,
                "Unplanned pregnancy. Options discussed; wishes termination. Referred to the termination of pregnancy service."));
        }
        let gender_differs = !matches!(
            (ctx.sex, ctx.gender),
            (Sex::Female, Gender::Female) | (Sex::Male, Gender::Male) | (_, Gender::Unknown)
        );
        if gender_differs && age_end >= 16 {
            events.push((
                &codes::GENDER_DYSPHORIA,
                Sensitivity::GenderIdentity,
                16,
                60,
                "Discussed gender identity. Referred to the gender identity clinic with consent.",
            ));
        }
        for (concept, sensitivity, min_age, max_age, text) in events {
            let from = ctx.birth.add_years(min_age).max(ctx.start);
            let to = ctx.birth.add_years(max_age.min(age_end)).min(ctx.end);
            if from >= to {
                continue;
            }
            let date = self.day_between(from, to);
            let consultation = self.consultation(
                date,
                StaffRole::Gp,
                ConsultationKind::Surgery,
                text.to_string(),
                true,
            );
            if std::ptr::eq(concept, &codes::CHLAMYDIA) {
                self.prescribe_acute(&codes::DOXYCYCLINE, date, None);
            }
            let clinician = self.pick_staff(StaffRole::Gp);
            let id = self.id();
            let resolved = !std::ptr::eq(concept, &codes::GENDER_DYSPHORIA);
            self.rec.conditions.push(Condition {
                id,
                concept,
                coding: self.style(concept, date),
                onset: date,
                recorded: date,
                status: if resolved {
                    ConditionStatus::Resolved(
                        date.plus(21 + self.rng.below(60) as i32).min(ctx.end),
                    )
                } else {
                    ConditionStatus::Active
                },
                chronic: !resolved,
                sensitivity: Some(sensitivity),
                consultation: Some(consultation),
                clinician,
            });
        }
    }

    fn condition_index(&self, concept: &Concept) -> Option<u32> {
        self.rec
            .conditions
            .iter()
            .find(|c| c.concept.key == concept.key)
            .map(|c| c.id)
    }

    /// Repeat medication for the long-term conditions, plus common long-term items without a
    /// coded indication (contraception, prostate symptoms, methotrexate).
    fn long_term_prescribing(&mut self, age_end: i32) {
        let ctx = self.ctx;
        let chronic = self.chronic.clone();
        for (concept, onset, resolved) in chronic {
            let indication = self.condition_index(concept);
            let start = onset.plus(self.rng.below(120) as i32);
            let until = resolved.map(|r| r.plus(self.rng.below(120) as i32));
            let apixaban_era = start >= Date::ymd(2014, 1, 1);
            let plan: Vec<(&'static Drug, f64)> = match concept.key {
                "htn" => vec![
                    (&codes::AMLODIPINE, 0.5),
                    (&codes::RAMIPRIL, 0.45),
                    (&codes::LOSARTAN, 0.12),
                    (&codes::BENDROFLUMETHIAZIDE, 0.12),
                    (&codes::INDAPAMIDE, 0.08),
                    (&codes::ATORVASTATIN, 0.35),
                ],
                "t2dm" => vec![
                    (&codes::METFORMIN, 0.85),
                    (&codes::GLICLAZIDE, 0.3),
                    (&codes::SITAGLIPTIN, 0.15),
                    (
                        &codes::EMPAGLIFLOZIN,
                        if start.year() >= 2015 { 0.25 } else { 0.0 },
                    ),
                    (&codes::ATORVASTATIN, 0.7),
                ],
                "t1dm" => vec![(&codes::INSULIN_GLARGINE, 1.0), (&codes::ATORVASTATIN, 0.4)],
                "asthma" => vec![(&codes::SALBUTAMOL, 0.95), (&codes::BECLOMETASONE, 0.6)],
                "copd" => vec![(&codes::SALBUTAMOL, 0.9), (&codes::TIOTROPIUM, 0.6)],
                "depression" => {
                    let drug = *self.rng.pick(&[
                        &codes::SERTRALINE,
                        &codes::SERTRALINE,
                        &codes::CITALOPRAM,
                        &codes::FLUOXETINE,
                        &codes::MIRTAZAPINE,
                    ]);
                    vec![(drug, 0.7)]
                }
                "anxiety" => vec![(&codes::SERTRALINE, 0.3)],
                "af" => vec![
                    if apixaban_era {
                        (&codes::APIXABAN, 0.75)
                    } else {
                        (&codes::WARFARIN, 0.6)
                    },
                    (&codes::BISOPROLOL, 0.5),
                ],
                "hypothyroid" => vec![(&codes::LEVOTHYROXINE, 1.0)],
                "mi" => vec![
                    (&codes::ASPIRIN, 0.85),
                    (&codes::ATORVASTATIN, 0.9),
                    (&codes::BISOPROLOL, 0.7),
                    (&codes::RAMIPRIL, 0.6),
                ],
                "stroke" => vec![(&codes::CLOPIDOGREL, 0.8), (&codes::ATORVASTATIN, 0.85)],
                "hf" => vec![
                    (&codes::FUROSEMIDE, 0.8),
                    (&codes::BISOPROLOL, 0.6),
                    (&codes::RAMIPRIL, 0.6),
                ],
                "oa" => vec![
                    (&codes::CO_CODAMOL, 0.25),
                    (&codes::NAPROXEN, 0.15),
                    (&codes::PARACETAMOL, 0.3),
                    (&codes::OMEPRAZOLE, 0.1),
                ],
                _ => Vec::new(),
            };
            for (drug, p) in plan {
                if self.rng.chance(p) {
                    let s = start.plus(self.rng.below(400) as i32);
                    self.repeat(drug, s, until, indication);
                }
            }
        }
        let female = ctx.sex == Sex::Female;
        if female && age_end >= 16 && self.rng.chance(0.18) {
            let from = ctx.birth.add_years(16).max(ctx.start);
            let s = self.day_between(from, ctx.end);
            let until = s.plus(365 * self.rng.range(1, 6) as i32);
            self.repeat(&codes::DESOGESTREL, s, Some(until), None);
        }
        if !female && age_end >= 60 && self.rng.chance(0.14) {
            let from = ctx.birth.add_years(60).max(ctx.start);
            let s = self.day_between(from, ctx.end);
            let drug = if self.rng.chance(0.75) {
                &codes::TAMSULOSIN
            } else {
                &codes::DOXAZOSIN
            };
            self.repeat(drug, s, None, None);
        }
        if age_end >= 30 && self.rng.chance(0.006 * self.need.min(3.0)) {
            let from = ctx.birth.add_years(30).max(ctx.start);
            let s = self.day_between(from, ctx.end);
            self.repeat(&codes::METHOTREXATE, s, None, None);
            self.repeat(&codes::FOLIC_ACID, s, None, None);
        }
        if age_end >= 50 && self.rng.chance(0.08 * self.need.min(2.0)) {
            let from = ctx.birth.add_years(50).max(ctx.start);
            let s = self.day_between(from, ctx.end);
            self.repeat(&codes::OMEPRAZOLE, s, None, None);
        }
    }

    /// A repeat template from `start`, issued until it is stopped, the record ends or `until`.
    fn repeat(
        &mut self,
        drug: &'static Drug,
        start: Date,
        until: Option<Date>,
        indication: Option<u32>,
    ) {
        let ctx = self.ctx;
        if start >= ctx.end {
            return;
        }
        let mut stop = until;
        if stop.is_none() && self.rng.chance(0.25) {
            stop = Some(start.plus(180 + self.rng.below(8 * 365) as i32));
        }
        let stop = stop.filter(|s| *s < ctx.end);
        let last = stop.unwrap_or(ctx.end);
        let interval: i32 = match drug.key {
            "desogestrel" => 84,
            "salbutamol" | "beclometasone" => 30 + self.rng.below(60) as i32,
            "insulin-glargine" => 56,
            _ => 28,
        };
        let mut issues = Vec::new();
        let mut d = start.max(ctx.start);
        let weekly_from = self.weekly_from;
        while d <= last {
            if !self.rng.chance(0.04) {
                issues.push(d);
            }
            let step = match weekly_from {
                Some(w) if d >= w && interval == 28 => 7,
                _ => interval,
            };
            d = d.plus(step + self.rng.range(-2, 3) as i32);
        }
        let clinician = self.pick_staff(StaffRole::Gp);
        let id = self.id();
        let authorised_issues = *self.rng.pick(&[6u16, 12, 12, 13]);
        self.rec.medications.push(MedicationCourse {
            id,
            drug,
            start,
            status: match stop {
                Some(s) => MedicationStatus::Stopped(s),
                None => MedicationStatus::Active,
            },
            repeat: true,
            authorised_issues,
            review_date: stop
                .is_none()
                .then(|| ctx.end.plus(30 + self.rng.below(330) as i32)),
            quantity: drug.quantity,
            dose: drug.dose,
            issues,
            indication,
            clinician,
        });
    }

    fn prescribe_acute(&mut self, drug: &'static Drug, date: Date, indication: Option<u32>) {
        let clinician = self.pick_staff(StaffRole::Gp);
        let id = self.id();
        self.rec.medications.push(MedicationCourse {
            id,
            drug,
            start: date,
            status: MedicationStatus::Completed,
            repeat: false,
            authorised_issues: 1,
            review_date: None,
            quantity: drug.quantity,
            dose: drug.dose,
            issues: vec![date],
            indication,
            clinician,
        });
    }

    /// Records a consultation (and, for booked kinds, its appointment) and returns its id.
    fn consultation(
        &mut self,
        date: Date,
        role: StaffRole,
        kind: ConsultationKind,
        text: String,
        confidential: bool,
    ) -> u32 {
        let clinician = self.pick_staff(role);
        let (minute, minutes) = self.time_of_day(role);
        let start = DateTime::new(date, minute);
        let appointment = if kind == ConsultationKind::HomeVisit {
            None
        } else {
            let id = self.id();
            let booked = date.plus(-(self.rng.below(15) as i32));
            self.rec.appointments.push(Appointment {
                id,
                start,
                minutes,
                clinician,
                status: AppointmentStatus::Fulfilled,
                kind,
                booked,
            });
            Some(id)
        };
        let id = self.id();
        self.rec.consultations.push(Consultation {
            id,
            start,
            minutes,
            kind,
            clinician,
            text,
            confidential,
            appointment,
        });
        id
    }

    /// Patient-initiated contacts: acute illness and everything else, year by year.
    fn contacts(&mut self) {
        let ctx = self.ctx;
        let mut year_start = ctx.start;
        while year_start < ctx.end {
            let year_end = year_start.plus(365).min(ctx.end);
            let fraction = f64::from(year_end.since(year_start)) / 365.0;
            let age = self.age_at(year_start);
            let female = ctx.sex == Sex::Female;
            let base = match age {
                ..5 => 5.0,
                5..15 => 2.0,
                15..45 => {
                    if female {
                        3.5
                    } else {
                        1.6
                    }
                }
                45..65 => 3.3,
                65..75 => 4.3,
                75..85 => 5.5,
                _ => 7.0,
            };
            let era = if year_start.year() < 2000 { 0.8 } else { 1.0 };
            let active = self
                .chronic
                .iter()
                .filter(|(_, on, res)| *on <= year_start && res.is_none_or(|r| r > year_start))
                .count() as f64;
            let rate = 0.85 * base * era * self.need * (1.0 + 0.12 * active) * fraction;
            let n = self.rng.poisson(rate);
            for _ in 0..n {
                let date = self.day_between(year_start, year_end);
                self.acute_consultation(date);
                if self.rng.chance(0.06) {
                    self.missed_appointment(date, AppointmentStatus::NoShow);
                }
                if self.rng.chance(0.04) {
                    self.missed_appointment(date, AppointmentStatus::Cancelled);
                }
            }
            year_start = year_end;
        }
    }

    fn missed_appointment(&mut self, near: Date, status: AppointmentStatus) {
        let date = near.plus(-(1 + self.rng.below(60) as i32));
        if date < self.ctx.start {
            return;
        }
        let date = date.next_weekday();
        let role = if self.rng.chance(0.7) {
            StaffRole::Gp
        } else {
            StaffRole::PracticeNurse
        };
        let clinician = self.pick_staff(role);
        let (minute, minutes) = self.time_of_day(role);
        let id = self.id();
        self.rec.appointments.push(Appointment {
            id,
            start: DateTime::new(date, minute),
            minutes,
            clinician,
            status,
            kind: ConsultationKind::Surgery,
            booked: date.plus(-(self.rng.below(20) as i32)),
        });
    }

    fn acute_consultation(&mut self, date: Date) {
        let ctx = self.ctx;
        let age = self.age_at(date);
        let female = ctx.sex == Sex::Female;
        let weights: Vec<f64> = ACUTE
            .iter()
            .map(|a| {
                if age < a.min_age || age > a.max_age || (a.female_only && !female) {
                    0.0
                } else {
                    a.weight
                }
            })
            .collect();
        let def = &ACUTE[self.rng.weighted(&weights)];
        let days = self.rng.range(2, 14);
        let text = self.rng.pick(def.texts).replace("{d}", &days.to_string());
        let year = date.year();
        let telephone_share = match year {
            ..2020 => 0.1,
            2020 => 0.6,
            _ => 0.35,
        };
        let kind = if age >= 80 && self.rng.chance(0.15) {
            ConsultationKind::HomeVisit
        } else if self.rng.chance(telephone_share) {
            ConsultationKind::Telephone
        } else {
            ConsultationKind::Surgery
        };
        let role = match self.rng.below(100) {
            0..70 => StaffRole::Gp,
            70..85 => StaffRole::PracticeNurse,
            85..92 if year >= 2016 => StaffRole::Pharmacist,
            _ => StaffRole::Gp,
        };
        let consultation = self.consultation(date, role, kind, text, false);
        let mut indication = None;
        if let Some(concept) = def.concept {
            let clinician = self.pick_staff(StaffRole::Gp);
            let id = self.id();
            indication = Some(id);
            self.rec.conditions.push(Condition {
                id,
                concept,
                coding: self.style(concept, date),
                onset: date.plus(-(days as i32)),
                recorded: date,
                status: ConditionStatus::Resolved(
                    date.plus(7 + self.rng.below(21) as i32).min(ctx.end),
                ),
                chronic: false,
                sensitivity: None,
                consultation: Some(consultation),
                clinician,
            });
        }
        for &(drug, p) in def.drugs {
            if self.rng.chance(p) {
                self.prescribe_acute(drug, date, indication);
                break;
            }
        }
        // Opportunistic measurements in adults.
        if age >= 18 && kind == ConsultationKind::Surgery {
            if self.rng.chance(0.15) {
                self.blood_pressure(date, Some(consultation), role);
            }
            if self.rng.chance(0.07) {
                self.weight_and_bmi(date, Some(consultation), role);
            }
            if self.rng.chance(0.08) {
                self.smoking_status(date, Some(consultation), role);
            }
        }
    }

    fn is_active(&self, key: &str, date: Date) -> Option<Date> {
        self.chronic
            .iter()
            .find(|(c, on, res)| c.key == key && *on <= date && res.is_none_or(|r| r > date))
            .map(|(_, on, _)| *on)
    }

    fn has_ever(&self, key: &str) -> Option<Date> {
        self.chronic
            .iter()
            .find(|(c, _, _)| c.key == key)
            .map(|(_, on, _)| *on)
    }

    /// Annual reviews of long-term conditions, medication reviews and blood monitoring.
    fn reviews_and_monitoring(&mut self) {
        let ctx = self.ctx;
        let mut year_start = ctx.start;
        let methotrexate_from = self
            .rec
            .medications
            .iter()
            .find(|m| m.drug.key == "methotrexate")
            .map(|m| m.start);
        while year_start < ctx.end {
            let year_end = year_start.plus(365).min(ctx.end);
            let mid = year_start.plus(180).min(year_end);
            let age = self.age_at(mid);
            let diabetic = self.is_active("t2dm", mid).or(self.is_active("t1dm", mid));
            if diabetic.is_some() {
                let d = self.day_between(year_start, year_end);
                let c = self.review(d, "Diabetes annual review. Feet checked: pulses present, sensation intact. Retinal screening up to date. Diet and exercise discussed.");
                self.blood_pressure(d, Some(c), StaffRole::PracticeNurse);
                self.weight_and_bmi(d, Some(c), StaffRole::PracticeNurse);
                self.smoking_status(d, Some(c), StaffRole::PracticeNurse);
                for _ in 0..2 {
                    let d = self.day_between(year_start, year_end);
                    self.hba1c(d);
                }
                let d = self.day_between(year_start, year_end);
                self.urea_and_electrolytes(d);
            } else if self.is_active("htn", mid).is_some() {
                let d = self.day_between(year_start, year_end);
                let c = self.review(d, "Hypertension review. Taking medication, no side effects. Lifestyle advice given.");
                self.blood_pressure(d, Some(c), StaffRole::HealthcareAssistant);
                if self.rng.chance(0.5) {
                    let d2 = self.day_between(year_start, year_end);
                    self.blood_pressure(d2, None, StaffRole::HealthcareAssistant);
                }
                self.weight_and_bmi(d, Some(c), StaffRole::HealthcareAssistant);
                let d3 = self.day_between(year_start, year_end);
                self.urea_and_electrolytes(d3);
            }
            if self.is_active("asthma", mid).is_some() || self.is_active("copd", mid).is_some() {
                let d = self.day_between(year_start, year_end);
                let c = self.review(
                    d,
                    "Respiratory review. Inhaler technique checked. Personal action plan updated.",
                );
                self.smoking_status(d, Some(c), StaffRole::PracticeNurse);
            }
            // Kidney and heart failure monitoring.
            let mut ue_per_year = 0u32;
            if self.is_active("ckd3", mid).is_some() {
                ue_per_year += 2;
            }
            if self.is_active("ckd4", mid).is_some() {
                ue_per_year += 6;
            }
            if self.is_active("hf", mid).is_some() {
                ue_per_year += 3;
            }
            if age >= 70 && self.need > 2.5 {
                ue_per_year += 4 + (self.need * 2.0) as u32;
            }
            if self.need > 4.0 && age >= 55 {
                // Very unwell: bloods most weeks.
                ue_per_year += (self.need * 6.0) as u32;
            }
            let mut panels_per_year = 0;
            if let Some(m) = methotrexate_from
                && mid >= m
            {
                panels_per_year = if mid.since(m) < 365 { 12 } else { 6 };
            }
            for _ in 0..ue_per_year {
                let d = self.day_between(year_start, year_end);
                self.urea_and_electrolytes(d);
                if self.rng.chance(0.5) {
                    self.full_blood_count(d);
                }
            }
            for _ in 0..panels_per_year {
                let d = self.day_between(year_start, year_end);
                self.urea_and_electrolytes(d);
                self.full_blood_count(d);
                self.liver_function(d);
            }
            // Medication review for anyone on repeats.
            let repeats = self
                .rec
                .medications
                .iter()
                .filter(|m| m.repeat && m.start <= mid)
                .count();
            if repeats > 0 && self.rng.chance(0.8) {
                let d = self.day_between(year_start, year_end);
                let role = if d.year() >= 2018 && self.rng.chance(0.5) {
                    StaffRole::Pharmacist
                } else {
                    StaffRole::Gp
                };
                let c = self.consultation(
                    d,
                    role,
                    ConsultationKind::Telephone,
                    format!("Medication review: {repeats} repeat item(s) reviewed, adherence good, no interactions of concern."),
                    false,
                );
                self.coded_finding(&codes::MEDICATION_REVIEW, d, Some(c), role);
            }
            // NHS Health Check style BP for 40-74s every five years.
            if (40..75).contains(&age) && self.rng.chance(0.2) {
                let d = self.day_between(year_start, year_end);
                self.blood_pressure(d, None, StaffRole::HealthcareAssistant);
                self.weight_and_bmi(d, None, StaffRole::HealthcareAssistant);
                self.smoking_status(d, None, StaffRole::HealthcareAssistant);
            }
            let _ = diabetic;
            year_start = year_end;
        }
    }

    fn review(&mut self, date: Date, text: &str) -> u32 {
        self.consultation(
            date,
            StaffRole::PracticeNurse,
            ConsultationKind::Surgery,
            text.to_string(),
            false,
        )
    }

    fn observation(
        &mut self,
        concept: &'static Concept,
        date: Date,
        value: ObservationValue,
        consultation: Option<u32>,
        role: StaffRole,
        laboratory: bool,
    ) {
        let clinician = self.pick_staff(role);
        let id = self.id();
        let coding = if std::ptr::eq(concept, &codes::BLOOD_PRESSURE) {
            self.style(&codes::SYSTOLIC, date)
        } else {
            self.style(concept, date)
        };
        self.rec.observations.push(Observation {
            id,
            concept,
            coding,
            date,
            value,
            text: None,
            consultation,
            laboratory,
            clinician,
            sensitivity: None,
        });
    }

    fn coded_finding(
        &mut self,
        concept: &'static Concept,
        date: Date,
        consultation: Option<u32>,
        role: StaffRole,
    ) {
        self.observation(
            concept,
            date,
            ObservationValue::None,
            consultation,
            role,
            false,
        );
    }

    fn blood_pressure(&mut self, date: Date, consultation: Option<u32>, role: StaffRole) {
        let age = f64::from(self.age_at(date));
        let mut sbp = if age < 18.0 {
            100.0 + age
        } else {
            112.0 + 0.55 * (age - 20.0).max(0.0)
        } + self.sbp_offset;
        if let Some(onset) = self.is_active("htn", date) {
            sbp += if date.since(onset) > 200 { 4.0 } else { 16.0 };
        }
        sbp += self.rng.gauss(0.0, 8.0);
        let sbp = sbp.clamp(85.0, 215.0);
        let dbp = (0.45 * sbp + 18.0 + self.rng.gauss(0.0, 6.0)).clamp(45.0, 125.0);
        self.observation(
            &codes::BLOOD_PRESSURE,
            date,
            ObservationValue::BloodPressure {
                systolic: sbp as u16,
                diastolic: dbp as u16,
            },
            consultation,
            role,
            false,
        );
    }

    fn weight_and_bmi(&mut self, date: Date, consultation: Option<u32>, role: StaffRole) {
        let age = f64::from(self.age_at(date));
        if age < 16.0 {
            return;
        }
        let bmi = (self.bmi_base + 0.06 * (age - 30.0).clamp(0.0, 40.0) + self.rng.gauss(0.0, 0.6))
            .clamp(15.0, 60.0);
        let weight = bmi * self.height_m * self.height_m;
        self.observation(
            &codes::WEIGHT,
            date,
            quantity((weight * 10.0) as i32, 1, "kg"),
            consultation,
            role,
            false,
        );
        self.observation(
            &codes::BMI,
            date,
            quantity((bmi * 10.0) as i32, 1, "kg/m2"),
            consultation,
            role,
            false,
        );
    }

    fn smoking_status(&mut self, date: Date, consultation: Option<u32>, role: StaffRole) {
        if self.age_at(date) < 15 {
            return;
        }
        let concept = match (self.smoking.started, self.smoking.quit) {
            (Some(s), _) if s > date => &codes::NEVER_SMOKED,
            (Some(_), Some(q)) if q <= date => &codes::EX_SMOKER,
            (Some(_), _) => &codes::SMOKER,
            (None, _) => &codes::NEVER_SMOKED,
        };
        self.coded_finding(concept, date, consultation, role);
    }

    fn hba1c(&mut self, date: Date) {
        let cfg = &self.ctx.practice.config;
        let ifcc = (self.hba1c_base + self.rng.gauss(0.0, 6.0)).clamp(38.0, 130.0);
        let dcct = date < cfg.hba1c_dcct_until || self.rng.chance(cfg.hba1c_dcct_late_rate);
        if dcct {
            // The IFCC–DCCT master equation: IFCC = (DCCT − 2.15) × 10.929.
            let percent = ifcc / 10.929 + 2.15;
            let value = quantity((percent * 10.0) as i32, 1, "%");
            self.observation(&codes::HBA1C_DCCT, date, value, None, StaffRole::Gp, true);
        } else {
            let value = quantity(ifcc as i32, 0, "mmol/mol");
            self.observation(&codes::HBA1C_IFCC, date, value, None, StaffRole::Gp, true);
        }
    }

    fn egfr_at(&mut self, date: Date) -> f64 {
        let age = f64::from(self.age_at(date));
        let mut egfr = 105.0 - 0.9 * (age - 30.0).max(0.0) + self.egfr_offset;
        if let Some(on) = self.has_ever("ckd4")
            && date >= on
        {
            egfr = egfr.min(24.0);
        } else if let Some(on) = self.has_ever("ckd3")
            && date >= on
        {
            egfr = egfr.min(52.0);
        }
        (egfr + self.rng.gauss(0.0, 4.0)).clamp(6.0, 140.0)
    }

    fn urea_and_electrolytes(&mut self, date: Date) {
        let egfr = self.egfr_at(date);
        let na = self.rng.range(134, 145) as i32;
        let k = (self.rng.gauss(4.4, 0.35) * 10.0) as i32;
        let creat = (7000.0 / egfr + self.rng.gauss(0.0, 5.0)).clamp(35.0, 900.0) as i32;
        let lab = StaffRole::Gp;
        self.observation(
            &codes::SODIUM,
            date,
            quantity(na, 0, "mmol/L"),
            None,
            lab,
            true,
        );
        self.observation(
            &codes::POTASSIUM,
            date,
            quantity(k, 1, "mmol/L"),
            None,
            lab,
            true,
        );
        self.observation(
            &codes::CREATININE,
            date,
            quantity(creat, 0, "umol/L"),
            None,
            lab,
            true,
        );
        let (concept, unit) = if date < Date::ymd(2015, 6, 1) {
            (&codes::EGFR_MDRD, "mL/min/{1.73_m2}")
        } else {
            (&codes::EGFR_EPI, "mL/min/{1.73_m2}")
        };
        // Laboratories report eGFR above 90 as ">90".
        let value = if egfr > 90.0 {
            ObservationValue::Quantity {
                value: 90,
                scale: 0,
                unit,
                comparator: Some(">"),
            }
        } else {
            quantity(egfr as i32, 0, unit)
        };
        self.observation(concept, date, value, None, lab, true);
    }

    fn full_blood_count(&mut self, date: Date) {
        let female = self.ctx.sex == Sex::Female;
        let hb = self.rng.gauss(if female { 135.0 } else { 148.0 }, 9.0) as i32;
        let wcc = (self.rng.gauss(7.0, 1.5).clamp(2.5, 18.0) * 10.0) as i32;
        let plt = self.rng.gauss(260.0, 50.0).clamp(90.0, 600.0) as i32;
        let lab = StaffRole::Gp;
        self.observation(
            &codes::HAEMOGLOBIN,
            date,
            quantity(hb, 0, "g/L"),
            None,
            lab,
            true,
        );
        self.observation(
            &codes::WHITE_CELLS,
            date,
            quantity(wcc, 1, "10*9/L"),
            None,
            lab,
            true,
        );
        self.observation(
            &codes::PLATELETS,
            date,
            quantity(plt, 0, "10*9/L"),
            None,
            lab,
            true,
        );
    }

    fn liver_function(&mut self, date: Date) {
        let alt = self.rng.gauss(24.0, 8.0).clamp(5.0, 200.0) as i32;
        let bili = self.rng.gauss(10.0, 4.0).clamp(2.0, 60.0) as i32;
        let alb = self.rng.gauss(42.0, 3.0).clamp(25.0, 52.0) as i32;
        let lab = StaffRole::Gp;
        self.observation(&codes::ALT, date, quantity(alt, 0, "U/L"), None, lab, true);
        self.observation(
            &codes::BILIRUBIN,
            date,
            quantity(bili, 0, "umol/L"),
            None,
            lab,
            true,
        );
        self.observation(
            &codes::ALBUMIN,
            date,
            quantity(alb, 0, "g/L"),
            None,
            lab,
            true,
        );
    }

    fn immunisations(&mut self) {
        let ctx = self.ctx;
        let at_risk_keys = ["asthma", "copd", "t2dm", "t1dm", "ckd3", "ckd4", "hf"];
        // Seasonal influenza.
        let mut year = ctx.start.year();
        while year <= ctx.end.year() {
            let season = Date::ymd(year, 10, 1);
            if season >= ctx.start && season <= ctx.end {
                let age = self.age_at(season);
                let at_risk = at_risk_keys
                    .iter()
                    .any(|k| self.is_active(k, season).is_some());
                let uptake = if age >= 65 {
                    0.72
                } else if at_risk {
                    0.5
                } else if (2..11).contains(&age) && year >= 2014 {
                    0.4
                } else {
                    0.0
                };
                if uptake > 0.0 && self.rng.chance(uptake) {
                    let d = self.day_between(season, Date::ymd(year, 12, 15).min(ctx.end));
                    self.immunise(&codes::FLU_VACCINATION, FLU_PRODUCT, d);
                }
            }
            year += 1;
        }
        // Pneumococcal at 65.
        let at65 = ctx.birth.add_years(65);
        if at65 >= ctx.start && at65 < ctx.end && self.rng.chance(0.7) {
            let d = self.day_between(at65, at65.plus(300).min(ctx.end));
            self.immunise(&codes::PNEUMO_VACCINATION, PNEUMO_PRODUCT, d);
        }
        // MMR at about 13 months and 3 years 4 months.
        for (months, uptake) in [(13, 0.91), (40, 0.86)] {
            let d = ctx.birth.plus(months * 30 + self.rng.below(40) as i32);
            if d >= ctx.start && d < ctx.end && ctx.birth.year() >= 1990 && self.rng.chance(uptake)
            {
                let d = d.next_weekday();
                self.immunise(&codes::MMR_VACCINATION, MMR_PRODUCT, d);
            }
        }
        // COVID-19 primary course in 2021 for adults.
        let first = Date::ymd(2021, 1, 4);
        if ctx.start <= first && ctx.end > Date::ymd(2021, 7, 1) && self.age_at(first) >= 18 {
            let uptake = if self.age_at(first) >= 50 { 0.9 } else { 0.72 };
            if self.rng.chance(uptake) {
                let d1 = self.day_between(first, Date::ymd(2021, 6, 30));
                self.immunise(&codes::COVID_DOSE1, COVID_PRODUCT, d1);
                let d2 = d1.plus(56 + self.rng.below(28) as i32);
                if d2 < ctx.end && self.rng.chance(0.95) {
                    self.immunise(&codes::COVID_DOSE2, COVID_PRODUCT, d2.next_weekday());
                }
            }
        }
    }

    fn immunise(&mut self, procedure: &'static Concept, product: &'static str, date: Date) {
        let clinician = self.pick_staff(StaffRole::PracticeNurse);
        let id = self.id();
        self.rec.immunisations.push(Immunisation {
            id,
            procedure,
            product,
            date,
            clinician,
            consultation: None,
        });
    }

    fn allergies(&mut self) {
        let ctx = self.ctx;
        let age_end = self.age_at(ctx.end);
        let mut any = false;
        let candidates: [(&'static Concept, f64, &'static str); 3] = [
            (&codes::PENICILLIN_ALLERGY, 0.06, "medication"),
            (
                &codes::PEANUT_ALLERGY,
                if age_end < 40 { 0.015 } else { 0.004 },
                "food",
            ),
            (&codes::LATEX_ALLERGY, 0.004, "environment"),
        ];
        for (concept, p, category) in candidates {
            if self.rng.chance(p) {
                any = true;
                let recorded = self.day_between(ctx.start, ctx.end);
                let reaction = match self.rng.below(10) {
                    0..6 => &codes::SKIN_ERUPTION,
                    6..9 => &codes::URTICARIA,
                    _ => &codes::ANAPHYLAXIS,
                };
                let clinician = self.pick_staff(StaffRole::Gp);
                let id = self.id();
                self.rec.allergies.push(Allergy {
                    id,
                    concept,
                    recorded,
                    category,
                    reaction: Some(reaction),
                    active: true,
                    clinician,
                });
            }
        }
        if !any && age_end >= 16 && self.rng.chance(0.45) {
            let recorded = self.day_between(ctx.start, ctx.end);
            let clinician = self.pick_staff(StaffRole::Gp);
            let id = self.id();
            self.rec.allergies.push(Allergy {
                id,
                concept: &codes::NO_KNOWN_DRUG_ALLERGY,
                recorded,
                category: "medication",
                reaction: None,
                active: true,
                clinician,
            });
        }
    }

    fn tasks(&mut self) {
        let ctx = self.ctx;
        let years = f64::from(ctx.end.since(ctx.start.max(Date::ymd(2008, 1, 1))).max(0)) / 365.0;
        let n = self.rng.poisson(0.35 * years * self.need.sqrt()).min(200);
        for _ in 0..n {
            let from = ctx.start.max(Date::ymd(2008, 1, 1));
            let date = self.day_between(from, ctx.end);
            let minute = self.ctx.practice.config.day_start + self.rng.below(600) as u16;
            let recent = ctx.as_of.since(date) < 30 && ctx.end == ctx.as_of;
            let status = if recent {
                *self.rng.pick(&[
                    TaskStatus::Requested,
                    TaskStatus::InProgress,
                    TaskStatus::Completed,
                ])
            } else if self.rng.chance(0.03) {
                TaskStatus::Cancelled
            } else {
                TaskStatus::Completed
            };
            let owner = if self.rng.chance(0.5) {
                self.pick_staff(StaffRole::Administrator)
            } else {
                self.pick_staff(StaffRole::Gp)
            };
            let requester = self.pick_staff(StaffRole::Gp);
            let id = self.id();
            let description = *self.rng.pick(TASKS);
            let urgent = self.rng.chance(0.1);
            self.rec.tasks.push(Task {
                id,
                created: DateTime::new(date, minute.min(23 * 60)),
                description,
                status,
                owner,
                requester,
                urgent,
            });
        }
    }
}

fn quantity(value: i32, scale: u8, unit: &'static str) -> ObservationValue {
    ObservationValue::Quantity {
        value,
        scale,
        unit,
        comparator: None,
    }
}
