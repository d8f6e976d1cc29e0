//! Dates and date-times as GP Connect consumers send them: whole dates `YYYY-MM-DD` and
//! date-times `YYYY-MM-DDThh:mm[:ss]` with an offset (`Z` or `±hh:mm`), turned into the
//! population's UK local time (GMT, or BST in summer).

use crate::date::{Date, DateTime};

/// A whole date `YYYY-MM-DD` (no partial dates, no time).
pub fn parse_date(s: &str) -> Option<Date> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let y: i32 = digits(&s[0..4])?.try_into().ok()?;
    let m = digits(&s[5..7])?;
    let d = digits(&s[8..10])?;
    if !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
        return None;
    }
    Some(Date::ymd(y, m, d))
}

/// A date-time with offset, as UK local time. Seconds are accepted and dropped.
pub fn parse_datetime(s: &str) -> Option<DateTime> {
    let (date, rest) = (s.get(0..10)?, s.get(10..)?);
    let date = parse_date(date)?;
    let rest = rest.strip_prefix('T')?;
    let hh = digits(rest.get(0..2)?)?;
    if rest.get(2..3)? != ":" {
        return None;
    }
    let mm = digits(rest.get(3..5)?)?;
    let mut rest = rest.get(5..)?;
    if let Some(after) = rest.strip_prefix(':') {
        let ss = digits(after.get(0..2)?)?;
        if ss > 59 {
            return None;
        }
        rest = after.get(2..)?;
    }
    if hh > 23 || mm > 59 {
        return None;
    }
    let offset_minutes: i32 = if rest == "Z" {
        0
    } else {
        let sign = match rest.get(0..1)? {
            "+" => 1,
            "-" => -1,
            _ => return None,
        };
        if rest.len() != 6 || rest.get(3..4)? != ":" {
            return None;
        }
        let oh = digits(rest.get(1..3)?)?;
        let om = digits(rest.get(4..6)?)?;
        if oh > 14 || om > 59 {
            return None;
        }
        sign * (oh * 60 + om) as i32
    };
    // To UTC, then to UK local time.
    let minutes = (hh * 60 + mm) as i32 - offset_minutes;
    let (utc_date, utc_minute) = normalise(date, minutes);
    let local_offset = if utc_date.is_bst() { 60 } else { 0 };
    let (local_date, local_minute) = normalise(utc_date, utc_minute + local_offset);
    Some(DateTime::new(local_date, local_minute as u16))
}

fn normalise(date: Date, minutes: i32) -> (Date, i32) {
    let days = minutes.div_euclid(24 * 60);
    (date.plus(days), minutes.rem_euclid(24 * 60))
}

fn digits(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn days_in_month(y: i32, m: u32) -> u32 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// `YYYY-MM-DDThh:mm:00+zz:zz` as the population writes date-times.
pub fn format_datetime(at: DateTime) -> String {
    let mut out = Vec::with_capacity(25);
    at.write_to(&mut out);
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn whole_dates_only() {
        assert_eq!(parse_date("2026-01-05"), Some(Date::ymd(2026, 1, 5)));
        assert_eq!(parse_date("2024-02-29"), Some(Date::ymd(2024, 2, 29)));
        for bad in [
            "2025-02-29",
            "2026-13-01",
            "2026-01",
            "2026",
            "2026-01-05T10:00:00Z",
            "20260105",
            "２０２６-01-05",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn datetimes_become_uk_local_time() {
        let winter = DateTime::new(Date::ymd(2026, 1, 6), 9 * 60);
        assert_eq!(parse_datetime("2026-01-06T09:00:00+00:00"), Some(winter));
        assert_eq!(parse_datetime("2026-01-06T09:00Z"), Some(winter));
        assert_eq!(parse_datetime("2026-01-06T10:00:00+01:00"), Some(winter));
        let summer = DateTime::new(Date::ymd(2026, 7, 6), 9 * 60);
        assert_eq!(parse_datetime("2026-07-06T08:00:00Z"), Some(summer));
        for bad in [
            "2026-01-06T09:00:00",
            "2026-01-06 09:00Z",
            "2026-01-06T24:00Z",
            "2026-01-06T09:00+0100",
        ] {
            assert_eq!(parse_datetime(bad), None, "{bad}");
        }
    }

    proptest! {
        #[test]
        fn never_panics(s in ".{0,40}") {
            let _ = parse_date(&s);
            let _ = parse_datetime(&s);
        }

        /// Away from the hour around midnight, where the day a clock change falls on makes the
        /// written offset ambiguous (the population never books slots then).
        #[test]
        fn written_dates_and_datetimes_parse_back(day in 0i32..40_000, minute in 60u16..(23 * 60)) {
            let date = Date(day);
            prop_assert_eq!(parse_date(&date.to_string()), Some(date));
            let at = DateTime::new(date, minute);
            prop_assert_eq!(parse_datetime(&format_datetime(at)), Some(at));
        }
    }
}
