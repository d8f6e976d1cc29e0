//! FHIR date, dateTime and instant values as half-open ranges of UTC milliseconds.
//!
//! A value's precision defines its range: `2010` is the whole year, `2010-03-04T10:00:00Z` one
//! second. Search semantics (eq, gt, sa ...) compare these ranges, as R4 §3.1.1.5.6 describes.

/// A half-open range `[start, end)` in milliseconds since 1970-01-01T00:00:00Z.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateRange {
    pub start: i64,
    pub end: i64,
}

impl DateRange {
    /// An open-ended period side is represented by these bounds.
    pub const MIN: i64 = i64::MIN / 4;
    pub const MAX: i64 = i64::MAX / 4;
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a FHIR date, dateTime or instant")]
pub struct DateParseError(pub String);

/// Parses `YYYY`, `YYYY-MM`, `YYYY-MM-DD`, `YYYY-MM-DDThh:mm(:ss(.fff))(Z|±hh:mm)`.
/// A time without a zone is taken as UTC (R4 requires a zone; real data sometimes lacks one).
pub fn parse_range(text: &str) -> Result<DateRange, DateParseError> {
    let err = || DateParseError(text.to_string());
    let b = text.as_bytes();
    let num = |from: usize, len: usize| -> Result<i64, DateParseError> {
        let s = text.get(from..from + len).ok_or_else(err)?;
        if !s.bytes().all(|c| c.is_ascii_digit()) {
            return Err(err());
        }
        s.parse().map_err(|_| err())
    };
    let year = num(0, 4)?;
    if b.len() == 4 {
        let start = days_from_civil(year, 1, 1) * DAY_MS;
        return Ok(DateRange {
            start,
            end: days_from_civil(year + 1, 1, 1) * DAY_MS,
        });
    }
    if b.get(4) != Some(&b'-') {
        return Err(err());
    }
    let month = num(5, 2)?;
    if !(1..=12).contains(&month) {
        return Err(err());
    }
    if b.len() == 7 {
        let start = days_from_civil(year, month, 1) * DAY_MS;
        let (ny, nm) = if month == 12 {
            (year + 1, 1)
        } else {
            (year, month + 1)
        };
        return Ok(DateRange {
            start,
            end: days_from_civil(ny, nm, 1) * DAY_MS,
        });
    }
    if b.get(7) != Some(&b'-') {
        return Err(err());
    }
    let day = num(8, 2)?;
    if day < 1 || day > days_in_month(year, month) {
        return Err(err());
    }
    let day_start = days_from_civil(year, month, day) * DAY_MS;
    if b.len() == 10 {
        return Ok(DateRange {
            start: day_start,
            end: day_start + DAY_MS,
        });
    }
    if b.get(10) != Some(&b'T') {
        return Err(err());
    }
    let hour = num(11, 2)?;
    if b.get(13) != Some(&b':') {
        return Err(err());
    }
    let minute = num(14, 2)?;
    let mut pos = 16;
    let mut second = 0;
    let mut millis = 0;
    let mut precision = 60_000;
    if b.get(pos) == Some(&b':') {
        second = num(17, 2)?;
        pos = 19;
        precision = 1000;
        if b.get(pos) == Some(&b'.') {
            let frac_start = pos + 1;
            let mut end = frac_start;
            while end < b.len() && b[end].is_ascii_digit() {
                end += 1;
            }
            if end == frac_start {
                return Err(err());
            }
            let digits = &text[frac_start..end.min(frac_start + 3)];
            millis =
                digits.parse::<i64>().map_err(|_| err())? * 10_i64.pow(3 - digits.len() as u32);
            precision = 1;
            pos = end;
        }
    }
    if hour > 24 || minute > 59 || second > 60 {
        return Err(err());
    }
    let offset_ms = match b.get(pos) {
        None => 0,
        Some(b'Z') if pos + 1 == b.len() => 0,
        Some(&sign @ (b'+' | b'-')) if b.len() == pos + 6 && b[pos + 3] == b':' => {
            let h = num(pos + 1, 2)?;
            let m = num(pos + 4, 2)?;
            let off = (h * 60 + m) * 60_000;
            if sign == b'+' { off } else { -off }
        }
        _ => return Err(err()),
    };
    let start = day_start + ((hour * 60 + minute) * 60 + second) * 1000 + millis - offset_ms;
    Ok(DateRange {
        start,
        end: start + precision,
    })
}

const DAY_MS: i64 = 86_400_000;

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Formats epoch milliseconds as an R4 instant with millisecond precision, in UTC.
pub fn format_instant(ms: i64) -> String {
    let days = ms.div_euclid(DAY_MS);
    let rem = ms.rem_euclid(DAY_MS);
    let (y, m, d) = civil_from_days(days);
    let (h, min, s, milli) = (
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000,
    );
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{min:02}:{s:02}.{milli:03}Z")
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn r(s: &str) -> DateRange {
        parse_range(s).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn precision_defines_the_range() {
        assert_eq!(
            r("1970"),
            DateRange {
                start: 0,
                end: 365 * DAY_MS
            }
        );
        assert_eq!(
            r("1970-02"),
            DateRange {
                start: 31 * DAY_MS,
                end: 59 * DAY_MS
            }
        );
        assert_eq!(
            r("1970-01-02"),
            DateRange {
                start: DAY_MS,
                end: 2 * DAY_MS
            }
        );
        assert_eq!(
            r("1970-01-01T01:00:00+01:00"),
            DateRange {
                start: 0,
                end: 1000
            }
        );
        assert_eq!(
            r("1970-01-01T00:00:00.5Z"),
            DateRange {
                start: 500,
                end: 501
            }
        );
        assert_eq!(r("1970-01-01T00:01Z").end, 120_000);
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "19",
            "2020-13",
            "2020-02-30",
            "2020-01-01T",
            "2020-01-01T10:00:00+0100",
            "abcd",
            "2020-1-1",
        ] {
            assert!(parse_range(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn instants_round_trip(ms in -2_000_000_000_000_i64..4_000_000_000_000) {
            let text = format_instant(ms);
            prop_assert_eq!(r(&text), DateRange { start: ms, end: ms + 1 });
        }

        #[test]
        fn never_panics(s in "\\PC{0,40}") {
            let _ = parse_range(&s);
        }
    }
}
