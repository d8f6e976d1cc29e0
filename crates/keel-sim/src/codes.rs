//! The terminology the generator records: clinical concepts (SNOMED CT, with Read v2 and CTV3
//! equivalents where known), medicines (dm+d) and vaccinations.
//!
//! Provenance of every code, so nobody mistakes an invented one for a real one:
//!
//! - **SNOMED CT concept ids** are real. Those in the Keel NHS reference sheet §11 are taken from
//!   there; the others are well-known concepts, the less common of them (UK pathology and
//!   vaccination codes, comment note, the sensitive-data concepts) checked against public code
//!   lists and GP Connect material while this was written. Every id passes SNOMED CT's Verhoeff
//!   check (a test), which catches typing errors.
//! - **Read v2 and CTV3 codes** are given only for long-standing, widely used concepts (the
//!   QOF-era staples); C10E., C10F., X40J4, X40J5, 1Z12., 1Z13., 451E., Ub1na, XE0oh, XaPbt
//!   and XaERp were seen in public code lists while this was written, the rest are well known.
//!   A concept with no confident legacy code has `None`, and a practice that records legacy
//!   codes then records SNOMED CT alone for it (as a practice would after the 2018
//!   migration). No legacy code here is invented.
//! - **dm+d codes**: the few marked [`CodeOrigin::Verified`] were read from a public
//!   EMIS-derived coding table. All others are **synthetic but well-formed**: SNOMED-style ids
//!   in the dm+d extension namespace (`1000001`, partition `10`, valid Verhoeff check digit)
//!   whose item part starts `99999`, a block no real dm+d id is known to use. They are marked
//!   [`CodeOrigin::Synthetic`]; the native export lists them as such and the FHIR export puts
//!   them under the code system `https://keel.invalid/sim/CodeSystem/synthetic-dmd` (never
//!   under dm+d's own URI), so they cannot be matched against a real dm+d release.
//! - **LOINC codes** (vital signs only, as UK Core's vital-sign profiles carry them) are real.

use std::sync::OnceLock;

/// Where a code comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodeOrigin {
    /// A real code, checked against public sources.
    Verified,
    /// Invented by this generator, well-formed but not a real code (see module docs).
    Synthetic,
}

/// A clinical concept and its codes.
#[derive(Debug)]
pub struct Concept {
    /// Stable short key used by the native format (`htn`, `t2dm` ...).
    pub key: &'static str,
    /// SNOMED CT concept id.
    pub snomed: &'static str,
    /// Preferred-term-like display.
    pub display: &'static str,
    /// Read v2 code and term, where known.
    pub read_v2: Option<(&'static str, &'static str)>,
    /// CTV3 code and term, where known.
    pub ctv3: Option<(&'static str, &'static str)>,
    /// LOINC code (vital signs).
    pub loinc: Option<&'static str>,
}

macro_rules! concept {
    ($name:ident, $key:literal, $sct:literal, $display:literal $(, read2 = ($r2:literal, $r2t:literal))? $(, ctv3 = ($c3:literal, $c3t:literal))? $(, loinc = $loinc:literal)?) => {
        pub static $name: Concept = Concept {
            key: $key,
            snomed: $sct,
            display: $display,
            read_v2: concept!(@opt $(($r2, $r2t))?),
            ctv3: concept!(@opt $(($c3, $c3t))?),
            loinc: concept!(@opt $($loinc)?),
        };
    };
    (@opt $v:expr) => { Some($v) };
    (@opt) => { None };
}

// Long-term conditions.
concept!(
    HYPERTENSION,
    "htn",
    "59621000",
    "Essential hypertension",
    read2 = ("G20..", "Essential hypertension"),
    ctv3 = ("G20..", "Essential hypertension")
);
concept!(
    DIABETES_T2,
    "t2dm",
    "44054006",
    "Type 2 diabetes mellitus",
    read2 = ("C10F.", "Type 2 diabetes mellitus"),
    ctv3 = ("X40J5", "Non-insulin-dependent diabetes mellitus")
);
concept!(
    DIABETES_T1,
    "t1dm",
    "46635009",
    "Type 1 diabetes mellitus",
    read2 = ("C10E.", "Type 1 diabetes mellitus"),
    ctv3 = ("X40J4", "Insulin-dependent diabetes mellitus")
);
concept!(
    ASTHMA,
    "asthma",
    "195967001",
    "Asthma",
    read2 = ("H33..", "Asthma"),
    ctv3 = ("H33..", "Asthma")
);
concept!(
    COPD,
    "copd",
    "13645005",
    "Chronic obstructive lung disease",
    read2 = ("H3...", "Chronic obstructive pulmonary disease")
);
concept!(
    CKD3,
    "ckd3",
    "433144002",
    "Chronic kidney disease stage 3",
    read2 = ("1Z12.", "Chronic kidney disease stage 3")
);
concept!(
    CKD4,
    "ckd4",
    "431857002",
    "Chronic kidney disease stage 4",
    read2 = ("1Z13.", "Chronic kidney disease stage 4")
);
concept!(
    DEPRESSION,
    "depression",
    "35489007",
    "Depressive disorder",
    read2 = ("E2B..", "Depressive disorder NEC")
);
concept!(ANXIETY, "anxiety", "197480006", "Anxiety disorder");
concept!(
    ATRIAL_FIBRILLATION,
    "af",
    "49436004",
    "Atrial fibrillation",
    read2 = ("G573.", "Atrial fibrillation and flutter")
);
concept!(HYPOTHYROIDISM, "hypothyroid", "40930008", "Hypothyroidism");
concept!(
    MYOCARDIAL_INFARCTION,
    "mi",
    "22298006",
    "Myocardial infarction"
);
concept!(STROKE, "stroke", "230690007", "Cerebrovascular accident");
concept!(
    HEART_FAILURE,
    "hf",
    "84114007",
    "Heart failure",
    read2 = ("G58..", "Heart failure")
);
concept!(OSTEOARTHRITIS, "oa", "396275006", "Osteoarthritis");
concept!(
    FRAILTY_MILD,
    "frail-mild",
    "925791000000100",
    "Mild frailty"
);
concept!(
    FRAILTY_MODERATE,
    "frail-moderate",
    "925831000000107",
    "Moderate frailty"
);
concept!(
    FRAILTY_SEVERE,
    "frail-severe",
    "925861000000102",
    "Severe frailty"
);

// Acute problems.
concept!(URTI, "urti", "54150009", "Upper respiratory infection");
concept!(
    LRTI,
    "lrti",
    "50417007",
    "Lower respiratory tract infection"
);
concept!(UTI, "uti", "68566005", "Urinary tract infectious disease");
concept!(CYSTITIS, "cystitis", "68226007", "Acute cystitis");
concept!(LOW_BACK_PAIN, "lbp", "279039007", "Low back pain");
concept!(OTITIS_MEDIA, "otitis", "65363002", "Otitis media");
concept!(TONSILLITIS, "tonsillitis", "17741008", "Acute tonsillitis");
concept!(COUGH, "cough", "49727002", "Cough");
concept!(ECZEMA, "eczema", "43116000", "Eczema");
concept!(HEADACHE, "headache", "25064002", "Headache");
concept!(
    CONJUNCTIVITIS,
    "conjunctivitis",
    "9826008",
    "Conjunctivitis"
);
concept!(
    GASTROENTERITIS,
    "gastroenteritis",
    "25374005",
    "Gastroenteritis"
);
concept!(ANKLE_SPRAIN, "ankle-sprain", "44465007", "Sprain of ankle");
concept!(INSOMNIA, "insomnia", "193462001", "Insomnia");

// Sensitive (RCGP sensitive data set areas, reference sheet §7).
concept!(CHLAMYDIA, "chlamydia", "105629000", "Chlamydial infection");
concept!(IVF, "ivf", "52637005", "Test tube ovum fertilization");
concept!(
    TERMINATION,
    "top",
    "57797005",
    "Induced termination of pregnancy"
);
concept!(
    GENDER_DYSPHORIA,
    "gender-dysphoria",
    "93461009",
    "Gender dysphoria"
);

// Observables.
concept!(
    BLOOD_PRESSURE,
    "bp",
    "75367002",
    "Blood pressure",
    read2 = ("246..", "O/E - blood pressure reading"),
    loinc = "85354-9"
);
concept!(
    SYSTOLIC,
    "bp-sys",
    "72313002",
    "Systolic arterial pressure",
    read2 = ("2469.", "O/E - Systolic BP reading"),
    ctv3 = ("2469.", "O/E - Systolic BP reading"),
    loinc = "8480-6"
);
concept!(
    DIASTOLIC,
    "bp-dia",
    "1091811000000102",
    "Diastolic arterial pressure",
    read2 = ("246A.", "O/E - Diastolic BP reading"),
    ctv3 = ("246A.", "O/E - Diastolic BP reading"),
    loinc = "8462-4"
);
concept!(
    BMI,
    "bmi",
    "60621009",
    "Body mass index",
    read2 = ("22K..", "Body Mass Index"),
    ctv3 = ("22K..", "Body Mass Index"),
    loinc = "39156-5"
);
concept!(
    WEIGHT,
    "weight",
    "27113001",
    "Body weight",
    read2 = ("22A..", "O/E - weight"),
    ctv3 = ("22A..", "O/E - weight"),
    loinc = "29463-7"
);
concept!(
    HEIGHT,
    "height",
    "50373000",
    "Body height",
    read2 = ("229..", "O/E - height"),
    ctv3 = ("229..", "O/E - height"),
    loinc = "8302-2"
);
concept!(
    HBA1C_IFCC,
    "hba1c",
    "999791000000106",
    "Haemoglobin A1c level - IFCC standardised",
    read2 = ("42W5.", "Haemoglobin A1c level - IFCC standardised"),
    ctv3 = ("XaPbt", "Haemoglobin A1c level - IFCC standardised")
);
concept!(
    HBA1C_DCCT,
    "hba1c-dcct",
    "1019431000000105",
    "Haemoglobin A1c level - DCCT aligned",
    read2 = ("42W4.", "HbA1c level (DCCT aligned)"),
    ctv3 = ("XaERp", "HbA1c level (DCCT aligned)")
);
concept!(
    EGFR_EPI,
    "egfr",
    "1011481000000105",
    "eGFR using creatinine CKD-EPI per 1.73 square metres"
);
concept!(
    EGFR_MDRD,
    "egfr-mdrd",
    "1020291000000106",
    "GFR calculated by abbreviated MDRD",
    read2 = ("451E.", "GFR calculated abbreviated MDRD")
);
concept!(SODIUM, "na", "1000661000000107", "Serum sodium level");
concept!(POTASSIUM, "k", "1000651000000109", "Serum potassium level");
concept!(
    CREATININE,
    "creat",
    "1000731000000107",
    "Serum creatinine level"
);
concept!(
    HAEMOGLOBIN,
    "hb",
    "1022431000000105",
    "Haemoglobin estimation"
);
concept!(
    WHITE_CELLS,
    "wcc",
    "1022541000000102",
    "Total white cell count"
);
concept!(PLATELETS, "plt", "1022651000000100", "Platelet count");
concept!(ALT, "alt", "1018251000000107", "ALT/SGPT serum level");
concept!(
    BILIRUBIN,
    "bili",
    "1026761000000106",
    "Total bilirubin level"
);
concept!(ALBUMIN, "alb", "1000821000000103", "Serum albumin level");
concept!(
    SMOKER,
    "smoker",
    "77176002",
    "Smoker",
    read2 = ("137R.", "Current smoker"),
    ctv3 = ("137R.", "Current smoker")
);
concept!(
    EX_SMOKER,
    "ex-smoker",
    "8517006",
    "Ex-smoker",
    read2 = ("137S.", "Ex smoker"),
    ctv3 = ("Ub1na", "Ex-smoker")
);
concept!(
    NEVER_SMOKED,
    "never-smoked",
    "266919005",
    "Never smoked tobacco",
    read2 = ("1371.", "Never smoked tobacco"),
    ctv3 = ("XE0oh", "Never smoked tobacco")
);
concept!(COMMENT_NOTE, "comment", "37331000000100", "Comment note");
concept!(
    MEDICATION_REVIEW,
    "med-review",
    "182836005",
    "Review of medication"
);

// Encounter types.
concept!(CONSULTATION, "consultation", "11429006", "Consultation");
concept!(
    TELEPHONE_ENCOUNTER,
    "telephone",
    "185317003",
    "Telephone encounter"
);
concept!(HOME_VISIT, "home-visit", "439708006", "Home visit");

// Allergies and reactions.
concept!(
    PENICILLIN_ALLERGY,
    "allergy-penicillin",
    "91936005",
    "Allergy to penicillin"
);
concept!(
    PEANUT_ALLERGY,
    "allergy-peanut",
    "91935009",
    "Allergy to peanut"
);
concept!(LATEX_ALLERGY, "allergy-latex", "300916003", "Latex allergy");
concept!(
    NO_KNOWN_DRUG_ALLERGY,
    "nkda",
    "409137002",
    "No known drug allergy"
);
concept!(SKIN_ERUPTION, "rash", "271807003", "Eruption of skin");
concept!(URTICARIA, "urticaria", "126485001", "Urticaria");
concept!(ANAPHYLAXIS, "anaphylaxis", "39579001", "Anaphylaxis");

// Vaccination procedures.
concept!(
    FLU_VACCINATION,
    "vacc-flu",
    "86198006",
    "Influenza vaccination"
);
concept!(
    PNEUMO_VACCINATION,
    "vacc-pneumo",
    "12866006",
    "Pneumococcal vaccination"
);
concept!(
    MMR_VACCINATION,
    "vacc-mmr",
    "38598009",
    "Measles-mumps-rubella vaccination"
);
concept!(
    COVID_DOSE1,
    "vacc-covid-1",
    "1324681000000101",
    "Administration of first dose of SARS-CoV-2 vaccine"
);
concept!(
    COVID_DOSE2,
    "vacc-covid-2",
    "1324691000000104",
    "Administration of second dose of SARS-CoV-2 vaccine"
);

/// Every concept, for the native format's concept table.
pub static ALL_CONCEPTS: &[&Concept] = &[
    &HYPERTENSION,
    &DIABETES_T2,
    &DIABETES_T1,
    &ASTHMA,
    &COPD,
    &CKD3,
    &CKD4,
    &DEPRESSION,
    &ANXIETY,
    &ATRIAL_FIBRILLATION,
    &HYPOTHYROIDISM,
    &MYOCARDIAL_INFARCTION,
    &STROKE,
    &HEART_FAILURE,
    &OSTEOARTHRITIS,
    &FRAILTY_MILD,
    &FRAILTY_MODERATE,
    &FRAILTY_SEVERE,
    &URTI,
    &LRTI,
    &UTI,
    &CYSTITIS,
    &LOW_BACK_PAIN,
    &OTITIS_MEDIA,
    &TONSILLITIS,
    &COUGH,
    &ECZEMA,
    &HEADACHE,
    &CONJUNCTIVITIS,
    &GASTROENTERITIS,
    &ANKLE_SPRAIN,
    &INSOMNIA,
    &CHLAMYDIA,
    &IVF,
    &TERMINATION,
    &GENDER_DYSPHORIA,
    &BLOOD_PRESSURE,
    &SYSTOLIC,
    &DIASTOLIC,
    &BMI,
    &WEIGHT,
    &HEIGHT,
    &HBA1C_IFCC,
    &HBA1C_DCCT,
    &EGFR_EPI,
    &EGFR_MDRD,
    &SODIUM,
    &POTASSIUM,
    &CREATININE,
    &HAEMOGLOBIN,
    &WHITE_CELLS,
    &PLATELETS,
    &ALT,
    &BILIRUBIN,
    &ALBUMIN,
    &SMOKER,
    &EX_SMOKER,
    &NEVER_SMOKED,
    &COMMENT_NOTE,
    &MEDICATION_REVIEW,
    &CONSULTATION,
    &TELEPHONE_ENCOUNTER,
    &HOME_VISIT,
    &PENICILLIN_ALLERGY,
    &PEANUT_ALLERGY,
    &LATEX_ALLERGY,
    &NO_KNOWN_DRUG_ALLERGY,
    &SKIN_ERUPTION,
    &URTICARIA,
    &ANAPHYLAXIS,
    &FLU_VACCINATION,
    &PNEUMO_VACCINATION,
    &MMR_VACCINATION,
    &COVID_DOSE1,
    &COVID_DOSE2,
];

/// A medicine as prescribed (a dm+d VMP).
#[derive(Debug)]
pub struct Drug {
    /// Stable short key for the native format.
    pub key: &'static str,
    pub name: &'static str,
    /// Real dm+d id, or `None` for a synthetic one (see [`Drug::code`]).
    verified_code: Option<&'static str>,
    /// Index of the synthetic code block (unique per synthetic drug).
    synthetic_item: u16,
    /// Unit of the quantity supplied (`tablet`, `capsule`, `inhaler`, `gram` ...).
    pub unit: &'static str,
    /// Usual quantity per issue for a 28-day supply (or a course, for acute items).
    pub quantity: u16,
    pub dose: &'static str,
}

impl Drug {
    /// The dm+d code: real when verified, otherwise the synthetic id (module docs).
    pub fn code(&self) -> &'static str {
        match self.verified_code {
            Some(code) => code,
            None => synthetic_dmd_codes()[usize::from(self.synthetic_item)].as_str(),
        }
    }

    pub fn origin(&self) -> CodeOrigin {
        if self.verified_code.is_some() {
            CodeOrigin::Verified
        } else {
            CodeOrigin::Synthetic
        }
    }
}

macro_rules! drug {
    ($name:ident, $key:literal, $display:literal, verified $code:literal, $unit:literal, $qty:literal, $dose:literal) => {
        pub static $name: Drug = Drug {
            key: $key,
            name: $display,
            verified_code: Some($code),
            synthetic_item: 0,
            unit: $unit,
            quantity: $qty,
            dose: $dose,
        };
    };
    ($name:ident, $key:literal, $display:literal, synthetic $item:literal, $unit:literal, $qty:literal, $dose:literal) => {
        pub static $name: Drug = Drug {
            key: $key,
            name: $display,
            verified_code: None,
            synthetic_item: $item,
            unit: $unit,
            quantity: $qty,
            dose: $dose,
        };
    };
}

// Verified dm+d VMP ids (module docs).
drug!(NITROFURANTOIN, "nitrofurantoin", "Nitrofurantoin 100mg capsules",
    verified "41952811000001109", "capsule", 6, "One capsule twice a day for 3 days");
drug!(TRIMETHOPRIM, "trimethoprim", "Trimethoprim 200mg tablets",
    verified "41956211000001109", "tablet", 6, "One tablet twice a day for 3 days");
drug!(CEFALEXIN, "cefalexin", "Cefalexin 500mg capsules",
    verified "39694811000001102", "capsule", 21, "One capsule three times a day");
drug!(CIPROFLOXACIN, "ciprofloxacin", "Ciprofloxacin 500mg tablets",
    verified "39687811000001107", "tablet", 14, "One tablet twice a day");
drug!(CO_CODAMOL, "co-codamol", "Co-codamol 8mg/500mg capsules",
    verified "42010011000001101", "capsule", 100, "One or two capsules up to four times a day");
drug!(CO_DYDRAMOL, "co-dydramol", "Co-dydramol 10mg/500mg tablets",
    verified "42010611000001108", "tablet", 100, "One or two tablets up to four times a day");
drug!(TAMSULOSIN, "tamsulosin", "Tamsulosin 400microgram modified-release capsules",
    verified "38754011000001109", "capsule", 28, "One capsule daily");
drug!(DOXAZOSIN, "doxazosin", "Doxazosin 4mg modified-release tablets",
    verified "39020411000001106", "tablet", 28, "One tablet daily");

// Synthetic dm+d ids (module docs): the names are real medicines, the codes are not.
drug!(AMLODIPINE, "amlodipine", "Amlodipine 5mg tablets", synthetic 1, "tablet", 28, "One tablet daily");
drug!(RAMIPRIL, "ramipril", "Ramipril 5mg capsules", synthetic 2, "capsule", 28, "One capsule daily");
drug!(LOSARTAN, "losartan", "Losartan 50mg tablets", synthetic 3, "tablet", 28, "One tablet daily");
drug!(BENDROFLUMETHIAZIDE, "bendroflumethiazide", "Bendroflumethiazide 2.5mg tablets", synthetic 4, "tablet", 28, "One tablet each morning");
drug!(INDAPAMIDE, "indapamide", "Indapamide 2.5mg tablets", synthetic 5, "tablet", 28, "One tablet each morning");
drug!(METFORMIN, "metformin", "Metformin 500mg tablets", synthetic 6, "tablet", 56, "One tablet twice a day with food");
drug!(GLICLAZIDE, "gliclazide", "Gliclazide 80mg tablets", synthetic 7, "tablet", 56, "One tablet twice a day");
drug!(SITAGLIPTIN, "sitagliptin", "Sitagliptin 100mg tablets", synthetic 8, "tablet", 28, "One tablet daily");
drug!(EMPAGLIFLOZIN, "empagliflozin", "Empagliflozin 10mg tablets", synthetic 9, "tablet", 28, "One tablet daily");
drug!(INSULIN_GLARGINE, "insulin-glargine", "Insulin glargine 100units/ml solution for injection 3ml pre-filled pens", synthetic 10, "pre-filled disposable injection", 5, "Inject as directed");
drug!(SALBUTAMOL, "salbutamol", "Salbutamol 100micrograms/dose inhaler CFC free", synthetic 11, "inhaler", 1, "Two puffs when required");
drug!(BECLOMETASONE, "beclometasone", "Beclometasone 100micrograms/dose inhaler CFC free", synthetic 12, "inhaler", 1, "Two puffs twice a day");
drug!(TIOTROPIUM, "tiotropium", "Tiotropium 18microgram inhalation powder capsules", synthetic 13, "capsule", 30, "Inhale the contents of one capsule daily");
drug!(SERTRALINE, "sertraline", "Sertraline 50mg tablets", synthetic 14, "tablet", 28, "One tablet daily");
drug!(CITALOPRAM, "citalopram", "Citalopram 20mg tablets", synthetic 15, "tablet", 28, "One tablet daily");
drug!(FLUOXETINE, "fluoxetine", "Fluoxetine 20mg capsules", synthetic 16, "capsule", 30, "One capsule daily");
drug!(MIRTAZAPINE, "mirtazapine", "Mirtazapine 15mg tablets", synthetic 17, "tablet", 28, "One tablet at night");
drug!(ATORVASTATIN, "atorvastatin", "Atorvastatin 20mg tablets", synthetic 18, "tablet", 28, "One tablet at night");
drug!(SIMVASTATIN, "simvastatin", "Simvastatin 40mg tablets", synthetic 19, "tablet", 28, "One tablet at night");
drug!(LEVOTHYROXINE, "levothyroxine", "Levothyroxine sodium 50microgram tablets", synthetic 20, "tablet", 28, "One tablet each morning");
drug!(APIXABAN, "apixaban", "Apixaban 5mg tablets", synthetic 21, "tablet", 56, "One tablet twice a day");
drug!(WARFARIN, "warfarin", "Warfarin 1mg tablets", synthetic 22, "tablet", 28, "As directed by the anticoagulation clinic");
drug!(BISOPROLOL, "bisoprolol", "Bisoprolol 2.5mg tablets", synthetic 23, "tablet", 28, "One tablet daily");
drug!(FUROSEMIDE, "furosemide", "Furosemide 40mg tablets", synthetic 24, "tablet", 28, "One tablet each morning");
drug!(ASPIRIN, "aspirin", "Aspirin 75mg dispersible tablets", synthetic 25, "tablet", 28, "One tablet daily");
drug!(CLOPIDOGREL, "clopidogrel", "Clopidogrel 75mg tablets", synthetic 26, "tablet", 28, "One tablet daily");
drug!(OMEPRAZOLE, "omeprazole", "Omeprazole 20mg gastro-resistant capsules", synthetic 27, "capsule", 28, "One capsule daily");
drug!(AMOXICILLIN, "amoxicillin", "Amoxicillin 500mg capsules", synthetic 28, "capsule", 15, "One capsule three times a day for 5 days");
drug!(FLUCLOXACILLIN, "flucloxacillin", "Flucloxacillin 500mg capsules", synthetic 29, "capsule", 28, "One capsule four times a day for 7 days");
drug!(DOXYCYCLINE, "doxycycline", "Doxycycline 100mg capsules", synthetic 30, "capsule", 8, "Two on the first day then one daily");
drug!(CLARITHROMYCIN, "clarithromycin", "Clarithromycin 500mg tablets", synthetic 31, "tablet", 10, "One tablet twice a day for 5 days");
drug!(PREDNISOLONE, "prednisolone", "Prednisolone 5mg tablets", synthetic 32, "tablet", 30, "Six tablets each morning for 5 days");
drug!(PARACETAMOL, "paracetamol", "Paracetamol 500mg tablets", synthetic 33, "tablet", 100, "One or two tablets up to four times a day");
drug!(IBUPROFEN, "ibuprofen", "Ibuprofen 400mg tablets", synthetic 34, "tablet", 24, "One tablet three times a day with food");
drug!(NAPROXEN, "naproxen", "Naproxen 500mg tablets", synthetic 35, "tablet", 28, "One tablet twice a day with food");
drug!(EMOLLIENT, "emollient", "Emulsifying ointment", synthetic 36, "gram", 500, "Apply as often as needed");
drug!(HYDROCORTISONE_CREAM, "hydrocortisone-cream", "Hydrocortisone 1% cream", synthetic 37, "gram", 30, "Apply thinly twice a day");
drug!(CHLORAMPHENICOL_DROPS, "chloramphenicol-drops", "Chloramphenicol 0.5% eye drops", synthetic 38, "ml", 10, "One drop every two hours");
drug!(METHOTREXATE, "methotrexate", "Methotrexate 2.5mg tablets", synthetic 39, "tablet", 24, "Six tablets once a week on the same day");
drug!(FOLIC_ACID, "folic-acid", "Folic acid 5mg tablets", synthetic 40, "tablet", 4, "One tablet once a week, not on the methotrexate day");
drug!(ZOPICLONE, "zopiclone", "Zopiclone 7.5mg tablets", synthetic 41, "tablet", 7, "One tablet at night when required");
drug!(DESOGESTREL, "desogestrel", "Desogestrel 75microgram tablets", synthetic 42, "tablet", 84, "One tablet daily");

/// Every medicine, for the native format's drug table.
pub static ALL_DRUGS: &[&Drug] = &[
    &NITROFURANTOIN,
    &TRIMETHOPRIM,
    &CEFALEXIN,
    &CIPROFLOXACIN,
    &CO_CODAMOL,
    &CO_DYDRAMOL,
    &TAMSULOSIN,
    &DOXAZOSIN,
    &AMLODIPINE,
    &RAMIPRIL,
    &LOSARTAN,
    &BENDROFLUMETHIAZIDE,
    &INDAPAMIDE,
    &METFORMIN,
    &GLICLAZIDE,
    &SITAGLIPTIN,
    &EMPAGLIFLOZIN,
    &INSULIN_GLARGINE,
    &SALBUTAMOL,
    &BECLOMETASONE,
    &TIOTROPIUM,
    &SERTRALINE,
    &CITALOPRAM,
    &FLUOXETINE,
    &MIRTAZAPINE,
    &ATORVASTATIN,
    &SIMVASTATIN,
    &LEVOTHYROXINE,
    &APIXABAN,
    &WARFARIN,
    &BISOPROLOL,
    &FUROSEMIDE,
    &ASPIRIN,
    &CLOPIDOGREL,
    &OMEPRAZOLE,
    &AMOXICILLIN,
    &FLUCLOXACILLIN,
    &DOXYCYCLINE,
    &CLARITHROMYCIN,
    &PREDNISOLONE,
    &PARACETAMOL,
    &IBUPROFEN,
    &NAPROXEN,
    &EMOLLIENT,
    &HYDROCORTISONE_CREAM,
    &CHLORAMPHENICOL_DROPS,
    &METHOTREXATE,
    &FOLIC_ACID,
    &ZOPICLONE,
    &DESOGESTREL,
];

/// The synthetic dm+d ids, indexed by `synthetic_item` (index 0 unused).
fn synthetic_dmd_codes() -> &'static [String] {
    static CODES: OnceLock<Vec<String>> = OnceLock::new();
    CODES.get_or_init(|| (0..64u32).map(synthetic_dmd_id).collect())
}

/// `99999` + item (3 digits) + namespace `1000001` + partition `10` + Verhoeff check digit.
pub fn synthetic_dmd_id(item: u32) -> String {
    let body = format!("99999{item:03}100000110");
    let check = verhoeff_check_digit(&body);
    format!("{body}{check}")
}

const VERHOEFF_D: [[u8; 10]; 10] = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    [1, 2, 3, 4, 0, 6, 7, 8, 9, 5],
    [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
    [3, 4, 0, 1, 2, 8, 9, 5, 6, 7],
    [4, 0, 1, 2, 3, 9, 5, 6, 7, 8],
    [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
    [6, 5, 9, 8, 7, 1, 0, 4, 3, 2],
    [7, 6, 5, 9, 8, 2, 1, 0, 4, 3],
    [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
    [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
];
const VERHOEFF_P: [[u8; 10]; 8] = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    [1, 5, 7, 6, 2, 8, 3, 0, 9, 4],
    [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
    [8, 9, 1, 6, 0, 4, 3, 5, 2, 7],
    [9, 4, 5, 3, 1, 2, 6, 8, 7, 0],
    [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
    [2, 7, 9, 3, 8, 0, 6, 4, 1, 5],
    [7, 0, 4, 6, 9, 1, 3, 2, 5, 8],
];
const VERHOEFF_INV: [u8; 10] = [0, 4, 3, 2, 1, 5, 6, 7, 8, 9];

/// The Verhoeff check digit SNOMED CT ids carry, for the digits of `body`.
pub fn verhoeff_check_digit(body: &str) -> u8 {
    let mut c = 0usize;
    for (i, b) in body.bytes().rev().enumerate() {
        let digit = usize::from(b - b'0');
        c = usize::from(VERHOEFF_D[c][usize::from(VERHOEFF_P[(i + 1) % 8][digit])]);
    }
    VERHOEFF_INV[c]
}

/// True when `id` ends in the right Verhoeff check digit.
pub fn verhoeff_valid(id: &str) -> bool {
    let (body, check) = id.split_at(id.len() - 1);
    !body.is_empty()
        && id.bytes().all(|b| b.is_ascii_digit())
        && verhoeff_check_digit(body) == check.as_bytes()[0] - b'0'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_snomed_and_dmd_id_has_a_valid_check_digit() {
        for c in ALL_CONCEPTS {
            assert!(verhoeff_valid(c.snomed), "{} {}", c.key, c.snomed);
        }
        for d in ALL_DRUGS {
            assert!(verhoeff_valid(d.code()), "{} {}", d.key, d.code());
        }
        // A real dm+d VMP id from public data (opencodelists fixtures), as a known answer.
        assert!(verhoeff_valid("10514511000001106"));
    }

    #[test]
    fn synthetic_drug_codes_are_distinct_and_marked() {
        let mut seen = std::collections::HashSet::new();
        for d in ALL_DRUGS {
            assert!(seen.insert(d.code()), "duplicate code {}", d.code());
            if d.origin() == CodeOrigin::Synthetic {
                assert!(
                    d.code().starts_with("99999") && d.code().len() == 18,
                    "{}",
                    d.code()
                );
                assert_eq!(&d.code()[8..15], "1000001");
            }
        }
    }

    #[test]
    fn keys_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for c in ALL_CONCEPTS {
            assert!(seen.insert(c.key), "{}", c.key);
        }
        let mut seen = std::collections::HashSet::new();
        for d in ALL_DRUGS {
            assert!(seen.insert(d.key), "{}", d.key);
        }
    }
}
