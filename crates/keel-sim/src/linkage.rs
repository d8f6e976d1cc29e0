//! Record-linkage test data: the same synthetic people recorded twice, each time with the
//! errors real registration data has (typos, transposed letters, day and month swapped,
//! missing values, moves, changed family names), and the truth of who is who. Deterministic
//! by seed: record `i` of either file depends only on the seed and `i`.
//!
//! The left file holds people `0..n`; the right file `n` records of people `extra..n+extra`
//! (so a share `overlap` of them are on the left too), in a shuffled order. NHS numbers come
//! from the `999` test range only (people past its million bodies, and records whose number
//! was not taken, have none).

use crate::date::Date;
use crate::names::GROUPS;
use crate::places::{AREAS, STREETS, postcode};
use crate::rng::Rng;
use keel_model::NhsNumber;

const TAG_PERSON: u64 = 0x6c69_6e6b_0001;
const TAG_RECORD: u64 = 0x6c69_6e6b_0002;
const TAG_ORDER: u64 = 0x6c69_6e6b_0003;

/// The CSV header of both files.
pub const HEADER: &str =
    "rec_id,given_name,surname,sex,date_of_birth,postcode,street_number,address_1,nhs_number";

/// What to generate.
#[derive(Debug, Clone, Copy)]
pub struct LinkageOptions {
    pub seed: u64,
    /// Records in each file.
    pub people: u64,
    /// Share of the right file's people who are also in the left file.
    pub overlap: f64,
}

/// One person as the truth has them.
#[derive(Debug, Clone)]
struct Person {
    given: String,
    family: String,
    female: bool,
    birth: (i32, u32, u32),
    postcode: String,
    number: u32,
    street: &'static str,
    nhs: Option<String>,
}

impl LinkageOptions {
    fn extra(&self) -> u64 {
        ((1.0 - self.overlap.clamp(0.0, 1.0)) * self.people as f64).round() as u64
    }

    /// The left file's record `i` (a CSV line without its newline).
    pub fn left_row(&self, i: u64) -> String {
        let person = self.person(i);
        self.row(&format!("L{i}"), &person, 0, i, 0.5)
    }

    /// The right file's record `j` and the left record of the same person, if any.
    pub fn right_row(&self, j: u64) -> (String, Option<String>) {
        let p = self.right_person(j);
        let person = self.person(p);
        let row = self.row(&format!("R{j}"), &person, 1, j, 1.0);
        (row, (p < self.people).then(|| format!("L{p}")))
    }

    /// Which person the right file's record `j` is: an affine permutation of
    /// `extra..people+extra`.
    fn right_person(&self, j: u64) -> u64 {
        let n = self.people.max(1);
        let mut rng = Rng::derive(&[self.seed, TAG_ORDER]);
        let mut a = rng.below(n).max(1);
        while gcd(a, n) != 1 {
            a = a % n + 1;
        }
        let b = rng.below(n);
        let k = ((u128::from(a) * u128::from(j) + u128::from(b)) % u128::from(n)) as u64;
        k + self.extra()
    }

    fn person(&self, p: u64) -> Person {
        let mut rng = Rng::derive(&[self.seed, TAG_PERSON, p]);
        let weights: Vec<f64> = GROUPS.iter().map(|g| g.weight).collect();
        let group = &GROUPS[rng.weighted(&weights)];
        let female = rng.chance(0.51);
        let year = 1925 + rng.below(100) as i32;
        let birth = Date::ymd(year, 1, 1).plus(rng.below(365) as i32).civil();
        let older = year < 1975;
        let givens = match (female, older) {
            (true, true) => group.female_older,
            (true, false) => group.female_younger,
            (false, true) => group.male_older,
            (false, false) => group.male_younger,
        };
        let given = (*rng.pick(givens)).to_string();
        let family = (*rng.pick(group.surnames)).to_string();
        let area = rng.pick(AREAS);
        let postcode = postcode(&mut rng, area);
        let number = 1 + rng.below(200) as u32;
        let street: &'static str = rng.pick::<&str>(STREETS);
        Person {
            given,
            family,
            female,
            birth,
            postcode,
            number,
            street,
            nhs: nhs_number(self.seed, p),
        }
    }

    /// One record of `person` with errors at `rate` times the usual rates.
    fn row(&self, id: &str, person: &Person, side: u64, index: u64, rate: f64) -> String {
        let mut rng = Rng::derive(&[self.seed, TAG_RECORD, side, index]);
        let mut chance = |p: f64| rng.chance(p * rate);
        let swap_names = chance(0.005);
        let mut given = person.given.clone();
        let mut family = person.family.clone();
        let (mut y, mut m, mut d) = person.birth;
        let mut pc = person.postcode.clone();
        let mut number = person.number;
        let mut street = person.street.to_string();
        let mut nhs = person.nhs.clone();
        let mut sex = if person.female { "F" } else { "M" };
        let (typo_given, missing_given) = (chance(0.08), chance(0.01));
        let (typo_family, missing_family, married) = (chance(0.08), chance(0.02), chance(0.02));
        let (swap_dm, typo_dob, missing_dob) = (chance(0.03), chance(0.04), chance(0.01));
        let missing_sex = chance(0.01);
        let (moved, typo_pc, missing_pc) = (chance(0.08), chance(0.03), chance(0.02));
        let typo_street = chance(0.05);
        let (missing_nhs, typo_nhs) = (chance(0.15), chance(0.01));
        if typo_given {
            given = typo(&mut rng, &given);
        }
        if missing_given {
            given.clear();
        }
        if married {
            let group = &GROUPS[rng.index(GROUPS.len())];
            family = (*rng.pick(group.surnames)).to_string();
        }
        if typo_family {
            family = typo(&mut rng, &family);
        }
        if missing_family {
            family.clear();
        }
        if swap_names {
            std::mem::swap(&mut given, &mut family);
        }
        if swap_dm && d <= 12 {
            std::mem::swap(&mut m, &mut d);
        }
        if typo_dob {
            match rng.below(3) {
                0 => y += if rng.chance(0.5) { 1 } else { -1 },
                1 => m = 1 + (m % 12),
                _ => d = if d >= 28 { d - 10 } else { d + 1 },
            }
        }
        if moved {
            let area = rng_area(&mut rng);
            pc = postcode(&mut rng, area);
            number = 1 + rng.below(200) as u32;
            street = rng.pick(STREETS).to_string();
        }
        if typo_pc {
            pc = typo(&mut rng, &pc).to_ascii_uppercase();
        }
        if missing_pc {
            pc.clear();
        }
        if typo_street {
            street = typo(&mut rng, &street);
        }
        if missing_sex {
            sex = "";
        }
        if typo_nhs && let Some(n) = &nhs {
            let mut digits: Vec<u8> = n.bytes().collect();
            let k = 3 + rng.index(7);
            digits[k] = b'0' + ((digits[k] - b'0' + 1) % 10);
            nhs = String::from_utf8(digits).ok();
        }
        if missing_nhs {
            nhs = None;
        }
        let dob = if missing_dob {
            String::new()
        } else {
            format!("{y:04}{m:02}{d:02}")
        };
        format!(
            "{id},{given},{family},{sex},{dob},{pc},{number},{},{}",
            street.replace(',', " "),
            nhs.unwrap_or_default()
        )
    }
}

fn rng_area(rng: &mut Rng) -> &'static crate::places::Area {
    rng.pick(AREAS)
}

/// One keying error: a letter substituted, dropped, doubled or swapped with the next.
fn typo(rng: &mut Rng, text: &str) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    if chars.len() < 2 {
        return text.to_string();
    }
    let i = 1 + rng.index(chars.len() - 1);
    match rng.below(4) {
        0 => chars[i] = (b'a' + rng.below(26) as u8) as char,
        1 => {
            chars.remove(i);
        }
        2 => chars.insert(i, chars[i]),
        _ => {
            if i + 1 < chars.len() {
                chars.swap(i, i + 1);
            } else {
                chars.swap(i - 1, i);
            }
        }
    }
    chars.into_iter().collect()
}

/// Person `p`'s NHS number: the `999` bodies in an order keyed by the seed; `None` past the
/// million bodies or when the body has no valid check digit.
fn nhs_number(seed: u64, p: u64) -> Option<String> {
    const BODIES: u64 = 1_000_000;
    if p >= BODIES {
        return None;
    }
    let mut rng = Rng::derive(&[seed, 0x6e68_7300]);
    let mut a = rng.below(BODIES).max(1);
    while gcd(a, BODIES) != 1 {
        a += 1;
    }
    let b = rng.below(BODIES);
    let g = (a * p + b) % BODIES;
    NhsNumber::from_body(&format!("999{g:06}")).map(|n| n.as_str().to_string())
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_in_the_test_range() {
        let o = LinkageOptions {
            seed: 7,
            people: 1000,
            overlap: 0.9,
        };
        assert_eq!(o.left_row(5), o.left_row(5));
        assert_eq!(o.right_row(9), o.right_row(9));
        let mut linked = 0;
        for j in 0..1000 {
            let (row, left) = o.right_row(j);
            assert_eq!(row.split(',').count(), 9, "{row}");
            let nhs = row.rsplit(',').next().unwrap_or_default();
            assert!(nhs.is_empty() || nhs.starts_with("999"), "{nhs}");
            linked += usize::from(left.is_some());
        }
        assert_eq!(linked, 900);
    }
}
