//! UK civil time, which the TPP-style API speaks without saying so: its `Time` fields and its
//! write `Date`s are local `hh:mm` in England (GMT in winter, BST in summer).
//!
//! British Summer Time runs from 01:00 UTC on the last Sunday of March to 01:00 UTC on the
//! last Sunday of October. A local time in the hour the clocks skip (March) is read as GMT; a
//! local time in the hour that happens twice (October) is read as BST, the first of the two.

use time::{Date, Month, OffsetDateTime, UtcOffset, Weekday};

const GMT: UtcOffset = UtcOffset::UTC;
const BST_SECONDS: i32 = 3_600;

fn last_sunday(year: i32, month: Month) -> Option<Date> {
    let mut day = Date::from_calendar_date(year, month, month.length(year)).ok()?;
    while day.weekday() != Weekday::Sunday {
        day = day.previous_day()?;
    }
    Some(day)
}

fn bst() -> UtcOffset {
    UtcOffset::from_whole_seconds(BST_SECONDS).unwrap_or(GMT)
}

/// The offset of UK civil time at the local `date` and minute after midnight.
pub fn offset_of_local(date: Date, minute: u16) -> UtcOffset {
    let year = date.year();
    let (Some(starts), Some(ends)) = (
        last_sunday(year, Month::March),
        last_sunday(year, Month::October),
    ) else {
        return GMT;
    };
    let after_start = date > starts || (date == starts && minute >= 60);
    let before_end = date < ends || (date == ends && minute < 120);
    if after_start && before_end {
        bst()
    } else {
        GMT
    }
}

/// `at` in UK civil time.
pub fn to_local(at: OffsetDateTime) -> OffsetDateTime {
    let utc = at.to_offset(GMT);
    let (Some(starts), Some(ends)) = (
        last_sunday(utc.year(), Month::March),
        last_sunday(utc.year(), Month::October),
    ) else {
        return utc;
    };
    let one_am = time::Time::from_hms(1, 0, 0).unwrap_or(time::Time::MIDNIGHT);
    let start = starts.with_time(one_am).assume_utc();
    let end = ends.with_time(one_am).assume_utc();
    if utc >= start && utc < end {
        utc.to_offset(bst())
    } else {
        utc
    }
}

/// `±hh:mm` of an offset that is a whole number of minutes.
pub fn offset_text(offset: UtcOffset) -> String {
    let (h, m, _) = offset.as_hms();
    let sign = if offset.is_negative() { '-' } else { '+' };
    format!("{sign}{:02}:{:02}", h.unsigned_abs(), m.unsigned_abs())
}

/// The local `YYYY-MM-DDThh:mm` the API's writes take, for `at`.
pub fn local_minute_text(at: OffsetDateTime) -> String {
    let local = to_local(at);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}",
        local.year(),
        u8::from(local.month()),
        local.day(),
        local.hour(),
        local.minute()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime};

    #[test]
    fn summer_is_bst_and_winter_gmt_with_the_changes_on_the_last_sundays() {
        assert_eq!(
            offset_text(offset_of_local(date!(2025 - 07 - 01), 600)),
            "+01:00"
        );
        assert_eq!(
            offset_text(offset_of_local(date!(2025 - 01 - 15), 600)),
            "+00:00"
        );
        // 2025: BST from Sunday 30 March 01:00 GMT to Sunday 26 October 02:00 BST.
        assert_eq!(offset_of_local(date!(2025 - 03 - 30), 59), GMT);
        assert_eq!(offset_of_local(date!(2025 - 03 - 30), 120), bst());
        assert_eq!(offset_of_local(date!(2025 - 10 - 26), 119), bst());
        assert_eq!(offset_of_local(date!(2025 - 10 - 26), 120), GMT);
    }

    #[test]
    fn an_instant_becomes_local_minutes() {
        assert_eq!(
            local_minute_text(datetime!(2025-07-01 09:30 UTC)),
            "2025-07-01T10:30"
        );
        assert_eq!(
            local_minute_text(datetime!(2025-12-31 23:59 UTC)),
            "2025-12-31T23:59"
        );
        assert_eq!(
            local_minute_text(datetime!(2025-03-30 00:59 UTC)),
            "2025-03-30T00:59"
        );
        assert_eq!(
            local_minute_text(datetime!(2025-03-30 01:00 UTC)),
            "2025-03-30T02:00"
        );
    }
}
