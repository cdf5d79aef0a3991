//! MongoDB's date format specifiers (`%Y-%m-%dT%H:%M:%S.%LZ`, ...):
//! formatting for `$dateToString`, parsing for `$dateFromString` and `$toDate`
//! (the default ISO-8601 forms or an explicit format).

use time::{Date, Weekday};

use super::calendar::{month_of, parts, to_ms, Zone};

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// Checks a `$dateToString` / `$dateFromString` format string.
pub(super) fn check_format(fmt: &str) -> Result<(), String> {
    let mut chars = fmt.chars();
    while let Some(c) = chars.next() {
        if c == '%' {
            match chars.next() {
                Some(
                    'd' | 'G' | 'H' | 'j' | 'L' | 'm' | 'M' | 'S' | 'w' | 'u' | 'U' | 'V' | 'Y'
                    | 'z' | 'Z' | '%' | 'b' | 'B',
                ) => {}
                Some(o) => return Err(format!("invalid format specifier '%{o}' in \"{fmt}\"")),
                None => return Err(format!("format \"{fmt}\" ends with an unmatched '%'")),
            }
        }
    }
    Ok(())
}

/// Formats `ms` with MongoDB's format specifiers.
pub(crate) fn format_date(ms: i64, fmt: &str, zone: Zone) -> Result<String, String> {
    let p = parts(ms, zone)?;
    let d = p.date;
    let (iso_year, iso_week, _) = d.to_iso_week_date();
    let mut out = String::with_capacity(fmt.len() + 8);
    let mut chars = fmt.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let spec = chars.next().unwrap_or('%');
        let s = match spec {
            'Y' => format!("{:04}", d.year()),
            'G' => format!("{iso_year:04}"),
            'm' => format!("{:02}", d.month() as u8),
            'd' => format!("{:02}", d.day()),
            'H' => format!("{:02}", p.ms_of_day / 3_600_000),
            'M' => format!("{:02}", p.ms_of_day / 60_000 % 60),
            'S' => format!("{:02}", p.ms_of_day / 1000 % 60),
            'L' => format!("{:03}", p.ms_of_day % 1000),
            'j' => format!("{:03}", d.ordinal()),
            'w' => d.weekday().number_from_sunday().to_string(),
            'u' => d.weekday().number_from_monday().to_string(),
            'U' => format!("{:02}", d.sunday_based_week()),
            'V' => format!("{iso_week:02}"),
            'z' => {
                let m = zone.minutes;
                format!(
                    "{}{:02}{:02}",
                    if m < 0 { '-' } else { '+' },
                    m.abs() / 60,
                    m.abs() % 60
                )
            }
            'Z' => format!(
                "{}{}",
                if zone.minutes < 0 { '-' } else { '+' },
                zone.minutes.abs()
            ),
            'b' => MONTHS[d.month() as usize - 1][..3].to_owned(),
            'B' => MONTHS[d.month() as usize - 1].to_owned(),
            '%' => "%".to_owned(),
            other => return Err(format!("invalid format specifier '%{other}'")),
        };
        out.push_str(&s);
    }
    Ok(out)
}

struct Scanner<'s> {
    s: &'s [u8],
    pos: usize,
}

impl Scanner<'_> {
    fn digits(&mut self, min: usize, max: usize) -> Option<i64> {
        let start = self.pos;
        while self.pos < self.s.len() && self.pos - start < max && self.s[self.pos].is_ascii_digit()
        {
            self.pos += 1;
        }
        if self.pos - start < min {
            return None;
        }
        std::str::from_utf8(&self.s[start..self.pos])
            .ok()?
            .parse()
            .ok()
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.s.get(self.pos) == Some(&c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn done(&self) -> bool {
        self.pos == self.s.len()
    }

    /// `Z`, `±hh`, `±hhmm`, `±hh:mm`.
    fn offset(&mut self) -> Option<Zone> {
        if self.eat(b'Z') {
            return Some(Zone::UTC);
        }
        let sign = match self.peek()? {
            b'+' => 1,
            b'-' => -1,
            _ => return None,
        };
        self.pos += 1;
        let h = self.digits(2, 2)?;
        self.eat(b':');
        let m = if self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.digits(2, 2)?
        } else {
            0
        };
        Some(Zone {
            minutes: sign * (h as i32 * 60 + m as i32),
        })
    }
}

#[derive(Default)]
struct Fields {
    year: Option<i64>,
    month: Option<i64>,
    day: Option<i64>,
    ordinal: Option<i64>,
    iso_year: Option<i64>,
    iso_week: Option<i64>,
    iso_day: Option<i64>,
    hour: i64,
    minute: i64,
    second: i64,
    milli: i64,
    zone: Option<Zone>,
}

fn millis_of(digits: &str) -> i64 {
    let mut d: String = digits.chars().take(3).collect();
    while d.len() < 3 {
        d.push('0');
    }
    d.parse().unwrap_or(0)
}

fn parse_default(s: &str) -> Option<Fields> {
    let mut sc = Scanner {
        s: s.as_bytes(),
        pos: 0,
    };
    let mut f = Fields {
        year: Some(sc.digits(4, 4)?),
        ..Fields::default()
    };
    if !sc.eat(b'-') {
        return None;
    }
    f.month = Some(sc.digits(1, 2)?);
    if !sc.eat(b'-') {
        return None;
    }
    f.day = Some(sc.digits(1, 2)?);
    let sep = sc.eat(b'T') || sc.eat(b' ');
    if sep && sc.peek().is_some_and(|c| c.is_ascii_digit()) {
        f.hour = sc.digits(2, 2)?;
        if !sc.eat(b':') {
            return None;
        }
        f.minute = sc.digits(2, 2)?;
        if sc.eat(b':') {
            f.second = sc.digits(2, 2)?;
            if sc.eat(b'.') {
                let start = sc.pos;
                sc.digits(1, 9)?;
                f.milli = millis_of(std::str::from_utf8(&sc.s[start..sc.pos]).ok()?);
            }
        }
        if !sc.done() {
            f.zone = Some(sc.offset()?);
        }
    } else if !sc.done() {
        // "2018-03-05 +10:00": a date with an offset and no time.
        f.zone = Some(sc.offset()?);
    }
    sc.done().then_some(f)
}

fn parse_with(s: &str, fmt: &str) -> Option<Fields> {
    let mut sc = Scanner {
        s: s.as_bytes(),
        pos: 0,
    };
    let mut f = Fields::default();
    let mut chars = fmt.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                if !sc.eat(b) {
                    return None;
                }
            }
            continue;
        }
        match chars.next()? {
            'Y' => f.year = Some(sc.digits(4, 4)?),
            'G' => f.iso_year = Some(sc.digits(4, 4)?),
            'm' => f.month = Some(sc.digits(1, 2)?),
            'd' => f.day = Some(sc.digits(1, 2)?),
            'j' => f.ordinal = Some(sc.digits(1, 3)?),
            'V' => f.iso_week = Some(sc.digits(1, 2)?),
            'u' => f.iso_day = Some(sc.digits(1, 1)?),
            'H' => f.hour = sc.digits(1, 2)?,
            'M' => f.minute = sc.digits(1, 2)?,
            'S' => f.second = sc.digits(1, 2)?,
            'L' => {
                let start = sc.pos;
                sc.digits(1, 3)?;
                f.milli = millis_of(std::str::from_utf8(&sc.s[start..sc.pos]).ok()?);
            }
            'z' => f.zone = Some(sc.offset()?),
            'Z' => {
                let sign = match sc.peek()? {
                    b'+' => 1,
                    b'-' => -1,
                    _ => return None,
                };
                sc.pos += 1;
                let m = sc.digits(1, 4)?;
                f.zone = Some(Zone {
                    minutes: sign * m as i32,
                });
            }
            '%' => {
                if !sc.eat(b'%') {
                    return None;
                }
            }
            _ => return None,
        }
    }
    sc.done().then_some(f)
}

/// Parses a date string (MongoDB's ISO-8601 forms, or `format`), in `zone`
/// unless the string carries its own offset.
pub(crate) fn parse_date(s: &str, format: Option<&str>, zone: Zone) -> Result<i64, String> {
    let bad = || {
        format!(
            "cannot parse '{s}' as a date{}",
            format.map_or(String::new(), |f| format!(" with format \"{f}\""))
        )
    };
    let f = match format {
        Some(fmt) => parse_with(s, fmt),
        None => parse_default(s),
    }
    .ok_or_else(bad)?;
    let date = if let Some(y) = f.iso_year {
        let week = u8::try_from(f.iso_week.unwrap_or(1)).map_err(|_| bad())?;
        let wd = match f.iso_day.unwrap_or(1) {
            1 => Weekday::Monday,
            2 => Weekday::Tuesday,
            3 => Weekday::Wednesday,
            4 => Weekday::Thursday,
            5 => Weekday::Friday,
            6 => Weekday::Saturday,
            7 => Weekday::Sunday,
            _ => return Err(bad()),
        };
        Date::from_iso_week_date(i32::try_from(y).map_err(|_| bad())?, week, wd)
            .map_err(|_| bad())?
    } else {
        let y = i32::try_from(f.year.unwrap_or(1970)).map_err(|_| bad())?;
        if let Some(o) = f.ordinal {
            Date::from_ordinal_date(y, u16::try_from(o).map_err(|_| bad())?).map_err(|_| bad())?
        } else {
            let m = f.month.unwrap_or(1);
            if !(1..=12).contains(&m) {
                return Err(bad());
            }
            let d = u8::try_from(f.day.unwrap_or(1)).map_err(|_| bad())?;
            Date::from_calendar_date(y, month_of(m), d).map_err(|_| bad())?
        }
    };
    if f.hour > 23 || f.minute > 59 || f.second > 59 {
        return Err(bad());
    }
    let tod = ((f.hour * 60 + f.minute) * 60 + f.second) * 1000 + f.milli;
    Ok(to_ms(date, tod, f.zone.unwrap_or(zone)))
}

pub(super) fn has_offset(s: &str, format: Option<&str>) -> bool {
    match format {
        Some(f) => f.contains("%z") || f.contains("%Z"),
        None => parse_default(s).is_some_and(|f| f.zone.is_some()),
    }
}
