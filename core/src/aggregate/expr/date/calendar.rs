//! Calendar arithmetic for the date operators: fixed-offset time zones, a
//! date broken into local parts, month arithmetic with day clamping. Dates
//! themselves come from the `time` crate.

use time::{Date, Month};

pub(super) const DAY_MS: i64 = 86_400_000;
/// The Julian day number of 1970-01-01.
pub(super) const EPOCH_JD: i64 = 2_440_588;

/// A fixed offset from UTC, in minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Zone {
    pub(super) minutes: i32,
}

impl Zone {
    /// UTC.
    pub(crate) const UTC: Zone = Zone { minutes: 0 };

    /// Parses `UTC`, `GMT`, `Z` or a fixed offset `±hh`, `±hhmm`, `±hh:mm`.
    pub(crate) fn parse(s: &str) -> Result<Zone, String> {
        if matches!(s, "UTC" | "GMT" | "Z" | "Etc/UTC" | "Etc/GMT") {
            return Ok(Zone::UTC);
        }
        let bad = || {
            if s.contains('/') || s.chars().all(|c| c.is_ascii_alphabetic()) {
                format!(
                    "time zone '{s}' is not supported: collection-store has no time-zone database; \
                     use \"UTC\" or a fixed offset such as \"+05:30\""
                )
            } else {
                format!(
                    "'{s}' is not a time zone; use \"UTC\" or a fixed offset such as \"+05:30\""
                )
            }
        };
        let (sign, rest) = match s.as_bytes().first() {
            Some(b'+') => (1, &s[1..]),
            Some(b'-') => (-1, &s[1..]),
            _ => return Err(bad()),
        };
        let digits: String = rest.chars().filter(|c| *c != ':').collect();
        if !digits.bytes().all(|b| b.is_ascii_digit()) || rest.matches(':').count() > 1 {
            return Err(bad());
        }
        let (h, m) = match digits.len() {
            2 => (&digits[..2], "0"),
            4 => (&digits[..2], &digits[2..]),
            _ => return Err(bad()),
        };
        let h: i32 = h.parse().map_err(|_| bad())?;
        let m: i32 = m.parse().map_err(|_| bad())?;
        if h > 23 || m > 59 {
            return Err(bad());
        }
        Ok(Zone {
            minutes: sign * (h * 60 + m),
        })
    }

    pub(super) fn offset_ms(self) -> i64 {
        i64::from(self.minutes) * 60_000
    }
}

/// A date broken into local calendar parts.
#[derive(Debug, Clone, Copy)]
pub(super) struct Parts {
    pub(super) date: Date,
    /// Milliseconds since local midnight.
    pub(super) ms_of_day: i64,
}

pub(super) fn parts(ms: i64, zone: Zone) -> Result<Parts, String> {
    let local = ms
        .checked_add(zone.offset_ms())
        .ok_or_else(|| "date out of range".to_string())?;
    let days = local.div_euclid(DAY_MS);
    let jd = i32::try_from(EPOCH_JD + days).map_err(|_| "date out of range".to_string())?;
    let date =
        Date::from_julian_day(jd).map_err(|_| "date out of range (years 1-9999)".to_string())?;
    Ok(Parts {
        date,
        ms_of_day: local.rem_euclid(DAY_MS),
    })
}

/// Milliseconds since the epoch of a local date and time of day in `zone`.
pub(super) fn to_ms(date: Date, ms_of_day: i64, zone: Zone) -> i64 {
    let days = i64::from(date.to_julian_day()) - EPOCH_JD;
    days * DAY_MS + ms_of_day - zone.offset_ms()
}

pub(super) fn month_of(m: i64) -> Month {
    match m {
        1 => Month::January,
        2 => Month::February,
        3 => Month::March,
        4 => Month::April,
        5 => Month::May,
        6 => Month::June,
        7 => Month::July,
        8 => Month::August,
        9 => Month::September,
        10 => Month::October,
        11 => Month::November,
        _ => Month::December,
    }
}

/// The date `months` calendar months after `year-month-day`, the day clamped
/// to the end of the month (January 31 + 1 month = February 28 or 29).
pub(super) fn add_months(date: Date, months: i64) -> Result<Date, String> {
    let total = i64::from(date.year()) * 12 + i64::from(date.month() as u8) - 1 + months;
    let year = i32::try_from(total.div_euclid(12)).map_err(|_| "date out of range".to_string())?;
    let month = month_of(total.rem_euclid(12) + 1);
    let last = time::util::days_in_month(month, year);
    Date::from_calendar_date(year, month, date.day().min(last))
        .map_err(|_| "date out of range (years 1-9999)".to_string())
}
