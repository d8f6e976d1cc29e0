//! Calendar dates and local date-times, with UK clock rules (GMT/BST) for rendering.

use std::fmt;

/// A proleptic Gregorian date, held as days since 1970-01-01.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Date(pub i32);

impl Date {
    /// The date `y-m-d` (month 1..=12, day 1..=31; not checked beyond debug builds).
    pub fn ymd(y: i32, m: u32, d: u32) -> Date {
        debug_assert!((1..=12).contains(&m) && (1..=31).contains(&d));
        // Howard Hinnant's days_from_civil.
        let y = if m <= 2 { y - 1 } else { y };
        let era = if y >= 0 { y } else { y - 399 } / 400;
        let yoe = y - era * 400;
        let mp = (m + 9) % 12;
        let doy = (153 * mp + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy as i32;
        Date(era * 146_097 + doe - 719_468)
    }

    /// Year, month and day.
    pub fn civil(self) -> (i32, u32, u32) {
        let z = self.0 + 719_468;
        let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let y = yoe + era * 400;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        (if m <= 2 { y + 1 } else { y }, m, d)
    }

    pub fn year(self) -> i32 {
        self.civil().0
    }

    /// The date `days` later (or earlier, when negative).
    pub fn plus(self, days: i32) -> Date {
        Date(self.0 + days)
    }

    /// Days from `other` to `self`.
    pub fn since(self, other: Date) -> i32 {
        self.0 - other.0
    }

    /// Day of the week, 0 = Monday .. 6 = Sunday.
    pub fn weekday(self) -> u32 {
        // 1970-01-01 was a Thursday (3).
        (self.0 + 3).rem_euclid(7) as u32
    }

    /// Whole years from `birth` to `self` (an age).
    pub fn years_since(self, birth: Date) -> i32 {
        let (y1, m1, d1) = birth.civil();
        let (y2, m2, d2) = self.civil();
        let mut years = y2 - y1;
        if (m2, d2) < (m1, d1) {
            years -= 1;
        }
        years
    }

    /// The same day and month `years` later (29 February becomes 28 February when needed).
    pub fn add_years(self, years: i32) -> Date {
        let (y, m, d) = self.civil();
        let d = if m == 2 && d == 29 && !is_leap(y + years) {
            28
        } else {
            d
        };
        Date::ymd(y + years, m, d)
    }

    /// The next weekday (Monday to Friday) on or after this date.
    pub fn next_weekday(self) -> Date {
        match self.weekday() {
            5 => self.plus(2),
            6 => self.plus(1),
            _ => self,
        }
    }

    /// True when UK clocks are on British Summer Time on this date (last Sunday of March to
    /// the last Sunday of October; the change-over days count as summer time).
    pub fn is_bst(self) -> bool {
        let (y, m, _) = self.civil();
        if !(3..=10).contains(&m) {
            return false;
        }
        let start = last_sunday(y, 3);
        let end = last_sunday(y, 10);
        self >= start && self < end
    }

    /// Writes `YYYY-MM-DD`.
    pub fn write_to(self, out: &mut Vec<u8>) {
        let (y, m, d) = self.civil();
        push_num(out, y.max(0) as u32, 4);
        out.push(b'-');
        push_num(out, m, 2);
        out.push(b'-');
        push_num(out, d, 2);
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = self.civil();
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

fn is_leap(y: i32) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn last_sunday(y: i32, m: u32) -> Date {
    let last = Date::ymd(y, m, 31);
    last.plus(-(((last.weekday() + 1) % 7) as i32))
}

/// Appends `n` zero-padded to `width` digits.
pub fn push_num(out: &mut Vec<u8>, n: u32, width: usize) {
    let digits = n.checked_ilog10().map_or(1, |d| d as usize + 1);
    out.extend(std::iter::repeat_n(b'0', width.saturating_sub(digits)));
    crate::json::push_u64(out, u64::from(n));
}

/// A local (UK wall-clock) date and time, to the minute.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct DateTime {
    pub date: Date,
    /// Minutes after local midnight.
    pub minute: u16,
}

impl DateTime {
    pub fn new(date: Date, minute: u16) -> Self {
        DateTime { date, minute }
    }

    /// This time plus `minutes` (within the same day; clamped to 23:59).
    pub fn plus_minutes(self, minutes: u16) -> Self {
        DateTime {
            date: self.date,
            minute: (self.minute + minutes).min(23 * 60 + 59),
        }
    }

    /// Writes a FHIR `instant`/`dateTime`: `YYYY-MM-DDThh:mm:00+01:00` (or `+00:00` in winter).
    pub fn write_to(self, out: &mut Vec<u8>) {
        self.date.write_to(out);
        out.push(b'T');
        push_num(out, u32::from(self.minute / 60), 2);
        out.push(b':');
        push_num(out, u32::from(self.minute % 60), 2);
        out.extend_from_slice(if self.date.is_bst() {
            b":00+01:00"
        } else {
            b":00+00:00"
        });
    }

    /// Writes the local time as `hh:mm` (no date, no zone).
    pub fn write_hhmm(self, out: &mut Vec<u8>) {
        push_num(out, u32::from(self.minute / 60), 2);
        out.push(b':');
        push_num(out, u32::from(self.minute % 60), 2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trips() {
        for days in -40_000..40_000 {
            let d = Date(days);
            let (y, m, dd) = d.civil();
            assert_eq!(Date::ymd(y, m, dd), d);
        }
        assert_eq!(Date::ymd(1970, 1, 1), Date(0));
        assert_eq!(Date::ymd(2000, 3, 1).to_string(), "2000-03-01");
        assert_eq!(Date::ymd(2026, 1, 5).weekday(), 0);
    }

    #[test]
    fn ages_and_summer_time() {
        let birth = Date::ymd(1980, 6, 15);
        assert_eq!(Date::ymd(2020, 6, 14).years_since(birth), 39);
        assert_eq!(Date::ymd(2020, 6, 15).years_since(birth), 40);
        assert!(!Date::ymd(2024, 3, 30).is_bst());
        assert!(Date::ymd(2024, 3, 31).is_bst());
        assert!(Date::ymd(2024, 10, 26).is_bst());
        assert!(!Date::ymd(2024, 10, 27).is_bst());
        let mut out = Vec::new();
        DateTime::new(Date::ymd(2024, 7, 1), 9 * 60 + 5).write_to(&mut out);
        assert_eq!(out, b"2024-07-01T09:05:00+01:00");
    }
}
