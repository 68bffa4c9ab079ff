//! PostgreSQL's text input functions (`boolin`, `numeric_in`, `byteain`, `date_in`,
//! `timestamp_in`, `interval_in`; `array_in` is `thunderdb_common::text_input::parse_array`) for the forms clients send as parameters.

use super::text::{self, MICROS_PER_DAY};
use crate::error::Error;

/// `boolin`: true/yes/on/1 and false/no/off/0, case-insensitive, with unique prefixes.
pub(crate) fn parse_bool(s: &str) -> Option<bool> {
    let lower = s.to_ascii_lowercase();
    let is_prefix = |word: &str| !lower.is_empty() && word.starts_with(lower.as_str());
    match lower.as_str() {
        "1" | "on" => Some(true),
        "0" | "of" | "off" => Some(false),
        _ if is_prefix("true") || is_prefix("yes") => Some(true),
        _ if is_prefix("false") || is_prefix("no") => Some(false),
        _ => None,
    }
}

pub(crate) fn parse_float(s: &str) -> Option<f64> {
    match s.to_ascii_lowercase().as_str() {
        "infinity" | "+infinity" | "inf" | "+inf" => Some(f64::INFINITY),
        "-infinity" | "-inf" => Some(f64::NEG_INFINITY),
        "nan" => Some(f64::NAN),
        lower if lower.contains("inf") || lower.contains("nan") => None,
        _ => s.parse().ok(),
    }
}

/// `numeric_in` into an unscaled integer at `scale`, rounding half away from zero as
/// PostgreSQL does. `Err(None)` is a syntax error; `Err(Some(_))` an overflow of `precision`.
pub(crate) fn parse_numeric(
    s: &str,
    precision: u8,
    scale: i8,
) -> std::result::Result<String, Option<Error>> {
    let (negative, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], body[i + 1..].parse::<i32>().map_err(|_| None)?),
        None => (body, 0),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if (int_part.is_empty() && frac_part.is_empty())
        || !int_part
            .bytes()
            .chain(frac_part.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return Err(None);
    }
    let overflow = || {
        Some(Error::InvalidValue {
            sqlstate: "22003",
            message: "numeric field overflow".to_owned(),
        })
    };
    // value = digits * 10^(exponent - frac_len); unscaled = value * 10^scale.
    let mut digits = format!("{int_part}{frac_part}");
    let shift = i64::from(exponent) - frac_part.len() as i64 + i64::from(scale);
    if shift >= 0 {
        if shift > 100 && digits.bytes().any(|b| b != b'0') {
            return Err(overflow());
        }
        digits.extend(std::iter::repeat_n('0', shift.min(100) as usize));
    } else {
        let drop = (-shift) as usize;
        let round_up = if drop > digits.len() {
            false
        } else {
            digits.as_bytes()[digits.len() - drop] >= b'5'
        };
        digits.truncate(digits.len().saturating_sub(drop));
        if round_up {
            digits = increment_decimal(&digits);
        }
    }
    let digits = digits.trim_start_matches('0');
    let max_digits = usize::from(precision).max(1);
    if digits.len() > max_digits {
        return Err(overflow());
    }
    if digits.is_empty() {
        return Ok("0".to_owned());
    }
    Ok(if negative {
        format!("-{digits}")
    } else {
        digits.to_owned()
    })
}

/// Adds one to a string of decimal digits.
fn increment_decimal(digits: &str) -> String {
    let mut bytes = digits.as_bytes().to_vec();
    for b in bytes.iter_mut().rev() {
        if *b == b'9' {
            *b = b'0';
        } else {
            *b += 1;
            return String::from_utf8(bytes).unwrap_or_default();
        }
    }
    let mut out = String::from("1");
    out.push_str(&String::from_utf8(bytes).unwrap_or_default());
    out
}

/// Days since 1970-01-01 of `YYYY-MM-DD[ BC]` (ISO) or `MM/DD/YYYY` (DateStyle MDY); a time
/// after the date is accepted and ignored, as `date_in` does.
pub(crate) fn parse_date(s: &str) -> Option<i64> {
    let (date_part, rest) = s.split_once([' ', 'T']).unwrap_or((s, ""));
    let bc = rest.trim().to_ascii_uppercase().ends_with("BC");
    let fields: Vec<&str> = date_part.split(['-', '/']).collect();
    let [a, b, c] = fields.as_slice() else {
        return None;
    };
    let (year, month, day) = if date_part.contains('/') {
        (c, a, b)
    } else {
        (a, b, c)
    };
    let mut year: i32 = year.parse().ok()?;
    if bc {
        year = 1 - year;
    }
    let date = chrono::NaiveDate::from_ymd_opt(year, month.parse().ok()?, day.parse().ok()?)?;
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1)?;
    Some((date - epoch).num_days())
}

/// Microseconds since midnight of `HH:MM[:SS[.ffffff]]`; a trailing zone is ignored.
pub(crate) fn parse_time(s: &str) -> Option<i64> {
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == ':' || c == '.'))
        .unwrap_or(s.len());
    let time = &s[..end];
    let mut parts = time.split(':');
    let hours: i64 = parts.next()?.parse().ok()?;
    let minutes: i64 = parts.next()?.parse().ok()?;
    let (seconds, micros) = match parts.next() {
        Some(sec) => {
            let (whole, frac) = sec.split_once('.').unwrap_or((sec, ""));
            if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            // Round to microseconds like time_in does.
            let mut frac_digits = format!("{frac:0<7}");
            frac_digits.truncate(7);
            let seventh: i64 = frac_digits.parse().ok()?;
            (whole.parse::<i64>().ok()?, (seventh + 5) / 10)
        }
        None => (0, 0),
    };
    if parts.next().is_some() || minutes > 59 || seconds > 60 {
        return None;
    }
    let total = ((hours * 60 + minutes) * 60 + seconds) * 1_000_000 + micros;
    (total <= MICROS_PER_DAY).then_some(total)
}

/// Microseconds since the Unix epoch of `date[ T]time[zone][ BC]`. Without a zone a
/// `timestamptz` is in the session time zone; a `timestamp` ignores any zone, as PostgreSQL does.
pub(crate) fn parse_timestamp(s: &str, with_tz: bool, session_offset_secs: i32) -> Option<i64> {
    if s.eq_ignore_ascii_case("epoch") {
        return Some(0);
    }
    let (date_part, rest) = s.split_once([' ', 'T']).unwrap_or((s, ""));
    let mut rest = rest.trim();
    let bc = rest.len() >= 2
        && rest
            .get(rest.len() - 2..)
            .is_some_and(|t| t.eq_ignore_ascii_case("BC"));
    if bc {
        rest = rest[..rest.len() - 2].trim_end();
    }
    let days = parse_date(&format!("{date_part}{}", if bc { " BC" } else { "" }))?;
    let time_end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == ':' || c == '.'))
        .unwrap_or(rest.len());
    let micros_of_day = if time_end == 0 {
        0
    } else {
        parse_time(&rest[..time_end])?
    };
    let zone = rest[time_end..].trim();
    let offset_secs = if !with_tz {
        0
    } else if zone.is_empty() {
        session_offset_secs
    } else if ["z", "utc", "gmt"]
        .iter()
        .any(|z| zone.eq_ignore_ascii_case(z))
    {
        0
    } else if zone.starts_with(['+', '-']) {
        // In a timestamp literal the offset follows ISO 8601: `+05:30` is east of UTC.
        -text::utc_offset_of_zone(&format!("UTC{zone}"))?
    } else {
        text::utc_offset_of_zone(zone)?
    };
    let local = days
        .checked_mul(MICROS_PER_DAY)?
        .checked_add(micros_of_day)?;
    local.checked_sub(i64::from(offset_secs) * 1_000_000)
}

/// `interval_in` for the PostgreSQL (`1 year 2 mons 3 days 04:05:06`, `@ 1 day ago`, bare
/// seconds) and ISO 8601 (`P1Y2M3DT4H5M6S`) forms. Fractions spill into smaller units.
pub(crate) fn parse_interval(s: &str) -> Option<(i32, i32, i64)> {
    let mut acc = IntervalAcc::default();
    if let Some(iso) = s.strip_prefix(['P', 'p']) {
        parse_iso_interval(iso, &mut acc)?;
        return acc.finish();
    }
    let body = s.trim_start_matches('@').trim();
    let (body, ago) = match body
        .len()
        .checked_sub(3)
        .and_then(|i| Some((i, body.get(i..)?)))
    {
        Some((i, tail)) if tail.eq_ignore_ascii_case("ago") => (body[..i].trim_end(), true),
        _ => (body, false),
    };
    let tokens: Vec<&str> = body.split_whitespace().collect();
    if tokens.is_empty() {
        return None;
    }
    let mut i = 0;
    while i < tokens.len() {
        let token = tokens[i];
        if token.contains(':') {
            let negative = token.starts_with('-');
            let micros = parse_time(token.trim_start_matches(['+', '-'])).or_else(|| {
                // Intervals allow more than 24 hours: 100:00:00.
                let (h, rest) = token.trim_start_matches(['+', '-']).split_once(':')?;
                let h: i64 = h.parse().ok()?;
                Some(h * 3_600_000_000 + parse_time(&format!("00:{rest}"))?)
            })?;
            acc.micros += if negative {
                -(micros as f64)
            } else {
                micros as f64
            };
            i += 1;
            continue;
        }
        // A number glued to its unit (`1day`, `10s`) or followed by one (`1 day`).
        let split = token
            .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+' || c == 'e'))
            .filter(|&p| p > 0);
        let (number, unit) = match split {
            Some(p) => (&token[..p], &token[p..]),
            None => match tokens.get(i + 1) {
                Some(next) if next.starts_with(|c: char| c.is_ascii_alphabetic()) => {
                    i += 1;
                    (token, *next)
                }
                _ => (token, "second"),
            },
        };
        let value: f64 = number.parse().ok()?;
        acc.add(value, unit.trim_end_matches(','))?;
        i += 1;
    }
    if ago {
        acc.months = -acc.months;
        acc.days = -acc.days;
        acc.micros = -acc.micros;
    }
    acc.finish()
}

fn parse_iso_interval(iso: &str, acc: &mut IntervalAcc) -> Option<()> {
    let mut in_time = false;
    let mut number = String::new();
    for c in iso.chars() {
        match c {
            'T' | 't' => in_time = true,
            '0'..='9' | '.' | '-' | '+' | ',' => number.push(if c == ',' { '.' } else { c }),
            unit => {
                let value: f64 = number.parse().ok()?;
                number.clear();
                let unit = match (unit.to_ascii_uppercase(), in_time) {
                    ('Y', false) => "year",
                    ('M', false) => "month",
                    ('W', false) => "week",
                    ('D', false) => "day",
                    ('H', true) => "hour",
                    ('M', true) => "minute",
                    ('S', true) => "second",
                    _ => return None,
                };
                acc.add(value, unit)?;
            }
        }
    }
    number.is_empty().then_some(())
}

#[derive(Default)]
struct IntervalAcc {
    months: f64,
    days: f64,
    micros: f64,
}

impl IntervalAcc {
    fn add(&mut self, value: f64, unit: &str) -> Option<()> {
        match unit.to_ascii_lowercase().as_str() {
            "millennium" | "millennia" | "millenniums" | "mil" | "mils" => {
                self.months += value * 12_000.0
            }
            "century" | "centuries" | "cent" | "c" => self.months += value * 1_200.0,
            "decade" | "decades" | "dec" | "decs" => self.months += value * 120.0,
            "year" | "years" | "yr" | "yrs" | "y" => self.months += value * 12.0,
            "month" | "months" | "mon" | "mons" => self.months += value,
            "week" | "weeks" | "w" => self.days += value * 7.0,
            "day" | "days" | "d" => self.days += value,
            "hour" | "hours" | "hr" | "hrs" | "h" => self.micros += value * 3_600_000_000.0,
            "minute" | "minutes" | "min" | "mins" | "m" => self.micros += value * 60_000_000.0,
            "second" | "seconds" | "sec" | "secs" | "s" => self.micros += value * 1_000_000.0,
            "millisecond" | "milliseconds" | "msec" | "msecs" | "ms" => {
                self.micros += value * 1_000.0
            }
            "microsecond" | "microseconds" | "usec" | "usecs" | "us" => self.micros += value,
            _ => return None,
        }
        Some(())
    }

    /// Whole months and days, with fractions moved down (a month is 30 days, as in PostgreSQL).
    fn finish(self) -> Option<(i32, i32, i64)> {
        let months = self.months.trunc();
        let days = self.days + (self.months - months) * 30.0;
        let whole_days = days.trunc();
        let micros = self.micros + (days - whole_days) * MICROS_PER_DAY as f64;
        let fits = |v: f64, max: f64| v.is_finite() && v.abs() <= max;
        if !fits(months, i32::MAX as f64)
            || !fits(whole_days, i32::MAX as f64)
            || !fits(micros, 9.2e18)
        {
            return None;
        }
        Some((months as i32, whole_days as i32, micros.round() as i64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals() {
        let hour = 3_600_000_000;
        assert_eq!(parse_interval("1 day 02:00:00"), Some((0, 1, 2 * hour)));
        assert_eq!(parse_interval("3 mons"), Some((3, 0, 0)));
        assert_eq!(parse_interval("1 year 2 mons"), Some((14, 0, 0)));
        assert_eq!(parse_interval("-00:00:01"), Some((0, 0, -1_000_000)));
        assert_eq!(
            parse_interval("P1Y2M3DT4H5M6S"),
            Some((14, 3, 4 * hour + 5 * 60_000_000 + 6_000_000))
        );
        assert_eq!(parse_interval("@ 1 day ago"), Some((0, -1, 0)));
        assert_eq!(parse_interval("1.5 days"), Some((0, 1, 12 * hour)));
        assert_eq!(
            parse_interval("0 years 0 mons 1 days 0 hours 0 mins 0.0 secs"),
            Some((0, 1, 0))
        );
        assert_eq!(parse_interval("90 minutes"), Some((0, 0, 90 * 60_000_000)));
        assert_eq!(parse_interval("10"), Some((0, 0, 10_000_000)));
        assert_eq!(parse_interval("100:00:00"), Some((0, 0, 100 * hour)));
        assert_eq!(parse_interval("1 fortnight"), None);
    }
}
