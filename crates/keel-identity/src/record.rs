//! The record model and its normalisation: what two records are compared on, in one canonical
//! form (lower-case ASCII names without punctuation, UK postcodes as `OUTWARD INWARD`, dates of
//! birth as separate optional parts).

/// Recorded sex (administrative gender as the source recorded it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Sex {
    Female,
    Male,
    Other,
    #[default]
    Unknown,
}

impl Sex {
    /// `f`/`female`/`2` → Female, `m`/`male`/`1` → Male, `o`/`other`/`9`... → Other; anything
    /// else (including empty) → Unknown, which compares as missing.
    pub fn parse(text: &str) -> Sex {
        match text.trim().to_ascii_lowercase().as_str() {
            "f" | "female" | "2" | "w" => Sex::Female,
            "m" | "male" | "1" => Sex::Male,
            "o" | "other" | "x" | "i" | "indeterminate" => Sex::Other,
            _ => Sex::Unknown,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Sex::Female => "female",
            Sex::Male => "male",
            Sex::Other => "other",
            Sex::Unknown => "",
        }
    }
}

/// One person as one source (a practice, a file) records them. Every text field is held
/// normalised (see the `normalise_*` functions); build records with [`PersonRecord::new`] and the
/// `with_*` setters, which normalise what they are given.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PersonRecord {
    /// The source's own identifier of the record (never compared).
    pub id: String,
    /// The practice or source that holds the record: a record never links to two people of one
    /// source without review.
    pub source: String,
    /// Digits only; `None` when absent.
    pub nhs_number: Option<String>,
    pub given: String,
    pub family: String,
    pub birth_year: Option<u16>,
    pub birth_month: Option<u8>,
    pub birth_day: Option<u8>,
    pub sex: Sex,
    /// UK postcodes as `OUTWARD INWARD` (`LS6 4AP`); other codes upper-case alphanumerics.
    pub postcode: String,
    /// House number and street, lower-case words.
    pub address: String,
}

impl PersonRecord {
    pub fn new(id: impl Into<String>) -> Self {
        PersonRecord {
            id: id.into(),
            ..PersonRecord::default()
        }
    }

    pub fn with_source(mut self, source: &str) -> Self {
        self.source = source.trim().to_string();
        self
    }

    pub fn with_nhs_number(mut self, text: &str) -> Self {
        self.nhs_number = normalise_identifier(text);
        self
    }

    pub fn with_given(mut self, text: &str) -> Self {
        self.given = normalise_name(text);
        self
    }

    pub fn with_family(mut self, text: &str) -> Self {
        self.family = normalise_name(text);
        self
    }

    /// Parses `YYYYMMDD`, `YYYY-MM-DD` or `DD/MM/YYYY`; an unreadable part is left absent.
    pub fn with_birth_date(mut self, text: &str) -> Self {
        let (y, m, d) = parse_birth_date(text);
        self.birth_year = y;
        self.birth_month = m;
        self.birth_day = d;
        self
    }

    pub fn with_birth_parts(mut self, y: Option<u16>, m: Option<u8>, d: Option<u8>) -> Self {
        self.birth_year = y;
        self.birth_month = m;
        self.birth_day = d;
        self
    }

    pub fn with_sex(mut self, text: &str) -> Self {
        self.sex = Sex::parse(text);
        self
    }

    pub fn with_postcode(mut self, text: &str) -> Self {
        self.postcode = normalise_postcode(text);
        self
    }

    pub fn with_address(mut self, text: &str) -> Self {
        self.address = normalise_address(text);
        self
    }

    /// The date of birth as eight characters `YYYYMMDD`, `?` for an absent part; `None` when
    /// every part is absent.
    pub fn birth_date_text(&self) -> Option<[u8; 8]> {
        if self.birth_year.is_none() && self.birth_month.is_none() && self.birth_day.is_none() {
            return None;
        }
        let mut out = [b'?'; 8];
        if let Some(y) = self.birth_year {
            write_digits(&mut out[0..4], u32::from(y));
        }
        if let Some(m) = self.birth_month {
            write_digits(&mut out[4..6], u32::from(m));
        }
        if let Some(d) = self.birth_day {
            write_digits(&mut out[6..8], u32::from(d));
        }
        Some(out)
    }
}

fn write_digits(out: &mut [u8], mut value: u32) {
    for slot in out.iter_mut().rev() {
        *slot = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

/// Folds one character to lower-case ASCII (`É` → `e`); `None` for characters with no plain
/// equivalent.
fn fold(c: char) -> Option<char> {
    Some(match c {
        'a'..='z' | '0'..='9' => c,
        'A'..='Z' => c.to_ascii_lowercase(),
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ą' | 'À' | 'Á' | 'Â' | 'Ã' | 'Ä' | 'Å' => {
            'a'
        }
        'ç' | 'ć' | 'č' | 'Ç' | 'Ć' | 'Č' => 'c',
        'ď' | 'Ď' => 'd',
        'è' | 'é' | 'ê' | 'ë' | 'ę' | 'ě' | 'È' | 'É' | 'Ê' | 'Ë' => 'e',
        'ì' | 'í' | 'î' | 'ï' | 'Ì' | 'Í' | 'Î' | 'Ï' => 'i',
        'ł' | 'Ł' => 'l',
        'ñ' | 'ń' | 'ň' | 'Ñ' => 'n',
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'Ò' | 'Ó' | 'Ô' | 'Õ' | 'Ö' | 'Ø' => 'o',
        'ř' | 'Ř' => 'r',
        'ś' | 'š' | 'ş' | 'Ś' | 'Š' | 'Ş' | 'ß' => 's',
        'ù' | 'ú' | 'û' | 'ü' | 'ů' | 'Ù' | 'Ú' | 'Û' | 'Ü' => 'u',
        'ý' | 'ÿ' | 'Ý' => 'y',
        'ź' | 'ż' | 'ž' | 'Ź' | 'Ż' | 'Ž' => 'z',
        _ => return None,
    })
}

/// A name as compared: lower-case ASCII letters only. Case, accents, spaces, hyphens and
/// apostrophes go (`O'Neill-Smith` → `oneillsmith`); digits and other symbols are dropped.
pub fn normalise_name(text: &str) -> String {
    text.chars()
        .filter_map(fold)
        .filter(char::is_ascii_lowercase)
        .collect()
}

/// An address line as compared: lower-case ASCII words separated by one space, punctuation as
/// space, and the common street-type abbreviations written out (`12 Mill Rd.` → `12 mill road`).
pub fn normalise_address(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .filter(|c| !matches!(c, '\'' | '’'))
        .map(|c| fold(c).unwrap_or(' '))
        .collect::<String>();
    let mut out = String::with_capacity(cleaned.len());
    let words: Vec<&str> = cleaned.split_ascii_whitespace().collect();
    for (i, &word) in words.iter().enumerate() {
        // Only the last word is a street type (`St John's Road` keeps its `st`).
        let last = i + 1 == words.len() && i > 0;
        let word = if !last {
            word
        } else {
            match word {
                "st" => "street",
                "rd" => "road",
                "ave" | "av" => "avenue",
                "ln" => "lane",
                "cres" => "crescent",
                "dr" => "drive",
                "pl" => "place",
                "cl" => "close",
                "ct" => "court",
                "gr" => "grove",
                "tce" | "terr" => "terrace",
                other => other,
            }
        };
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// A postcode as compared: upper-case alphanumerics; a UK postcode gets its one space before
/// the inward code (`ls64ap` → `LS6 4AP`).
pub fn normalise_postcode(text: &str) -> String {
    let compact: String = text
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if is_uk_compact(compact.as_bytes()) {
        let split = compact.len() - 3;
        format!("{} {}", &compact[..split], &compact[split..])
    } else {
        compact
    }
}

/// `A9 9AA`, `A99 9AA`, `A9A 9AA`, `AA9 9AA`, `AA99 9AA`, `AA9A 9AA` without the space.
fn is_uk_compact(b: &[u8]) -> bool {
    if !(5..=7).contains(&b.len()) {
        return false;
    }
    let (outward, inward) = b.split_at(b.len() - 3);
    inward[0].is_ascii_digit()
        && inward[1].is_ascii_alphabetic()
        && inward[2].is_ascii_alphabetic()
        && outward[0].is_ascii_alphabetic()
        && outward.iter().skip(1).any(u8::is_ascii_digit)
}

/// The parts of a normalised postcode: (district, sector). A UK postcode `LS6 4AP` has district
/// `LS6` and sector `LS6 4`; other codes have none.
pub fn postcode_parts(postcode: &str) -> Option<(&str, &str)> {
    let space = postcode.find(' ')?;
    Some((&postcode[..space], &postcode[..space + 2]))
}

/// An identifier (NHS number or another number) as compared: its digits, `None` when it has
/// none.
pub fn normalise_identifier(text: &str) -> Option<String> {
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    (!digits.is_empty()).then_some(digits)
}

/// Year, month and day of `YYYYMMDD`, `YYYY-MM-DD`, `YYYY/MM/DD` or `DD/MM/YYYY` (also `-`
/// and `.`). Parts out of range (month 13, day 32, year 0) are absent; nothing is checked
/// against the calendar, so a recorded 31 April still compares.
pub fn parse_birth_date(text: &str) -> (Option<u16>, Option<u8>, Option<u8>) {
    let text = text.trim();
    let parts: Vec<&str> = text.split(['-', '/', '.']).map(str::trim).collect();
    let (y, m, d) = match parts.as_slice() {
        [one] if one.len() == 8 && one.bytes().all(|b| b.is_ascii_digit()) => {
            (&one[0..4], &one[4..6], &one[6..8])
        }
        [a, b, c] if a.len() == 4 => (*a, *b, *c),
        [a, b, c] if c.len() == 4 => (*c, *b, *a),
        _ => return (None, None, None),
    };
    let number = |s: &str| -> Option<u32> {
        (!s.is_empty() && s.len() <= 4 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let year = number(y)
        .filter(|v| (1..=9999).contains(v))
        .map(|v| v as u16);
    let month = number(m).filter(|v| (1..=12).contains(v)).map(|v| v as u8);
    let day = number(d).filter(|v| (1..=31).contains(v)).map(|v| v as u8);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_lose_case_accents_and_punctuation() {
        assert_eq!(normalise_name("  O'Neill-Smith "), "oneillsmith");
        assert_eq!(normalise_name("Zoë"), "zoe");
        assert_eq!(normalise_name("elk i"), "elki");
        assert_eq!(normalise_name(""), "");
    }

    #[test]
    fn uk_postcodes_get_one_space() {
        assert_eq!(normalise_postcode("ls64ap"), "LS6 4AP");
        assert_eq!(normalise_postcode(" SW1A  1aa"), "SW1A 1AA");
        assert_eq!(normalise_postcode("4223"), "4223");
        assert_eq!(postcode_parts("LS6 4AP"), Some(("LS6", "LS6 4")));
        assert_eq!(postcode_parts("4223"), None);
    }

    #[test]
    fn addresses_expand_abbreviations() {
        assert_eq!(normalise_address("12, Mill Rd."), "12 mill road");
        assert_eq!(normalise_address("St John's  Road"), "st johns road");
        assert_eq!(normalise_address("4 Church St"), "4 church street");
    }

    #[test]
    fn birth_dates_in_three_layouts() {
        assert_eq!(
            parse_birth_date("19151111"),
            (Some(1915), Some(11), Some(11))
        );
        assert_eq!(
            parse_birth_date("1980-02-30"),
            (Some(1980), Some(2), Some(30))
        );
        assert_eq!(
            parse_birth_date("05/11/1970"),
            (Some(1970), Some(11), Some(5))
        );
        assert_eq!(parse_birth_date("19801340"), (Some(1980), None, None));
        assert_eq!(parse_birth_date("garbage"), (None, None, None));
        let r = PersonRecord::new("x").with_birth_date("1970-11");
        assert_eq!(r.birth_date_text(), None);
        let r = PersonRecord::new("x").with_birth_date("19801340");
        assert_eq!(r.birth_date_text(), Some(*b"1980????"));
    }

    #[test]
    fn identifiers_keep_digits() {
        assert_eq!(
            normalise_identifier("999 123 4560"),
            Some("9991234560".into())
        );
        assert_eq!(normalise_identifier(" "), None);
    }
}
