//! The wire representation of the model's `Timestamp` shape.
//!
//! In the rest-json protocol botocore serializes `Timestamp` members of a
//! request body as epoch seconds (a JSON number: an integer by default, a
//! fraction with millisecond precision when asked to), and parses response
//! timestamps from a number or a string. [`EpochSeconds`] therefore accepts
//! on input:
//!
//! * a JSON number (integer or fractional epoch seconds);
//! * a JSON string holding such a number (`"1480615200.010"`);
//! * a JSON string holding an ISO-8601 / RFC 3339 date-time
//!   (`"2016-12-01T18:00:00.010Z"`, `"2016-12-01T10:00:00-08:00"`,
//!   `"2016-12-01"`; a date-time without an offset is taken as UTC),
//!
//! and always serializes as a JSON number of (possibly fractional) seconds.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A point in time as seconds since the Unix epoch (1970-01-01T00:00:00Z),
/// possibly fractional; the wire form of the model's `Timestamp` shape.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default)]
pub struct EpochSeconds(pub f64);

impl EpochSeconds {
    /// The number of seconds since the Unix epoch.
    pub fn as_f64(self) -> f64 {
        self.0
    }

    /// Whether the value is a finite number (neither NaN nor infinite).
    pub fn is_finite(self) -> bool {
        self.0.is_finite()
    }
}

impl From<f64> for EpochSeconds {
    fn from(secs: f64) -> Self {
        EpochSeconds(secs)
    }
}

impl From<EpochSeconds> for f64 {
    fn from(ts: EpochSeconds) -> Self {
        ts.0
    }
}

impl fmt::Display for EpochSeconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// Why a string could not be read as a timestamp.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid timestamp {input:?}: {reason}")]
pub struct TimestampParseError {
    input: String,
    reason: &'static str,
}

impl TimestampParseError {
    fn new(input: &str, reason: &'static str) -> Self {
        // Keep error messages bounded even for absurd inputs.
        let input: String = input.chars().take(64).collect();
        TimestampParseError { input, reason }
    }
}

impl FromStr for EpochSeconds {
    type Err = TimestampParseError;

    /// Parses epoch seconds written as a number (`"1480615200.010"`,
    /// `"1.48061520001E9"`) or an ISO-8601 / RFC 3339 date-time.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        if t.is_empty() {
            return Err(TimestampParseError::new(s, "empty string"));
        }
        let looks_numeric = t
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'))
            && !looks_like_date(t);
        if looks_numeric {
            return match t.parse::<f64>() {
                Ok(v) if v.is_finite() => Ok(EpochSeconds(v)),
                Ok(_) => Err(TimestampParseError::new(s, "number is not finite")),
                Err(_) => Err(TimestampParseError::new(s, "not a number")),
            };
        }
        parse_iso8601(t)
            .map(EpochSeconds)
            .map_err(|reason| TimestampParseError::new(s, reason))
    }
}

/// `YYYY-MM-DD...`: four digits then a dash.
fn looks_like_date(t: &str) -> bool {
    let b = t.as_bytes();
    b.len() >= 5 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-'
}

impl Serialize for EpochSeconds {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(self.0)
    }
}

struct EpochSecondsVisitor;

impl Visitor<'_> for EpochSecondsVisitor {
    type Value = EpochSeconds;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a timestamp as epoch seconds (number or numeric string) or an ISO-8601 string")
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        if v.is_finite() {
            Ok(EpochSeconds(v))
        } else {
            Err(E::custom("timestamp is not a finite number"))
        }
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(EpochSeconds(v as f64))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(EpochSeconds(v as f64))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        v.parse::<EpochSeconds>().map_err(E::custom)
    }
}

impl<'de> Deserialize<'de> for EpochSeconds {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(EpochSecondsVisitor)
    }
}

/// A cursor over the ASCII bytes of a date-time string.
struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    /// Exactly `n` ASCII digits as a number.
    fn digits(&mut self, n: usize, what: &'static str) -> Result<u32, &'static str> {
        let end = self.i + n;
        let slice = self.b.get(self.i..end).ok_or(what)?;
        let mut v: u32 = 0;
        for &d in slice {
            if !d.is_ascii_digit() {
                return Err(what);
            }
            v = v * 10 + u32::from(d - b'0');
        }
        self.i = end;
        Ok(v)
    }
}

/// Parses `YYYY-MM-DD[(T|t| )hh:mm[:ss[(.|,)fraction]][Z|z|(+|-)hh[[:]mm]]]`
/// into epoch seconds. A missing offset means UTC.
fn parse_iso8601(s: &str) -> Result<f64, &'static str> {
    let mut c = Cursor {
        b: s.as_bytes(),
        i: 0,
    };
    let year = c.digits(4, "expected a four-digit year")?;
    if !c.eat(b'-') {
        return Err("expected '-' after the year");
    }
    let month = c.digits(2, "expected a two-digit month")?;
    if !c.eat(b'-') {
        return Err("expected '-' after the month");
    }
    let day = c.digits(2, "expected a two-digit day")?;
    if !(1..=12).contains(&month) {
        return Err("month out of range");
    }
    if day < 1 || day > days_in_month(i64::from(year), month) {
        return Err("day out of range");
    }
    let days = days_from_civil(i64::from(year), month, day);
    if c.peek().is_none() {
        return Ok((days * 86_400) as f64);
    }
    if !(c.eat(b'T') || c.eat(b't') || c.eat(b' ')) {
        return Err("expected 'T' between date and time");
    }
    let hour = c.digits(2, "expected a two-digit hour")?;
    if !c.eat(b':') {
        return Err("expected ':' after the hour");
    }
    let minute = c.digits(2, "expected two-digit minutes")?;
    let mut second = 0;
    let mut fraction = 0.0_f64;
    if c.eat(b':') {
        second = c.digits(2, "expected two-digit seconds")?;
        if c.eat(b'.') || c.eat(b',') {
            let start = c.i;
            while c.peek().is_some_and(|d| d.is_ascii_digit()) {
                c.i += 1;
            }
            if c.i == start {
                return Err("expected digits after the decimal separator");
            }
            let digits = std::str::from_utf8(&c.b[start..c.i]).map_err(|_| "invalid fraction")?;
            fraction = format!("0.{digits}")
                .parse::<f64>()
                .map_err(|_| "invalid fraction")?;
        }
    }
    // 24:00:00 is allowed by ISO 8601 as the end of the day; 60 seconds
    // allows for a leap second.
    if hour > 24 || (hour == 24 && (minute != 0 || second != 0 || fraction != 0.0)) {
        return Err("hour out of range");
    }
    if minute > 59 {
        return Err("minutes out of range");
    }
    if second > 60 {
        return Err("seconds out of range");
    }
    let offset_secs: i64 = match c.peek() {
        None => 0,
        Some(b'Z' | b'z') => {
            c.i += 1;
            0
        }
        Some(sign @ (b'+' | b'-')) => {
            c.i += 1;
            let oh = c.digits(2, "expected a two-digit offset hour")?;
            let om = if c.peek().is_none() {
                0
            } else {
                c.eat(b':');
                c.digits(2, "expected two-digit offset minutes")?
            };
            if oh > 23 || om > 59 {
                return Err("offset out of range");
            }
            let off = i64::from(oh * 3600 + om * 60);
            if sign == b'-' { -off } else { off }
        }
        Some(_) => return Err("unexpected characters after the time"),
    };
    if c.peek().is_some() {
        return Err("unexpected trailing characters");
    }
    let secs = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second) - offset_secs;
    Ok(secs as f64 + fraction)
}

fn is_leap_year(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(y) => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<EpochSeconds, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn number_forms() {
        assert_eq!(parse("1480615200").unwrap(), EpochSeconds(1_480_615_200.0));
        assert_eq!(
            parse("1480615200.01").unwrap(),
            EpochSeconds(1_480_615_200.01)
        );
        assert_eq!(
            parse("1.48061520001E9").unwrap(),
            EpochSeconds(1_480_615_200.01)
        );
        assert_eq!(parse("-1").unwrap(), EpochSeconds(-1.0));
    }

    #[test]
    fn numeric_string_forms() {
        assert_eq!(
            parse("\"1480615200\"").unwrap(),
            EpochSeconds(1_480_615_200.0)
        );
        assert_eq!(
            parse("\" 1480615200.5 \"").unwrap(),
            EpochSeconds(1_480_615_200.5)
        );
        assert!(parse("\"NaN\"").is_err());
        assert!(parse("\"inf\"").is_err());
        assert!(parse("\"\"").is_err());
        assert!(parse("\"12abc\"").is_err());
    }

    #[test]
    fn iso8601_forms() {
        // 10:00AM December 2nd, 2016 PST = 1480615200 (from the X-Ray docs)
        let cases = [
            ("2016-12-01T18:00:00Z", 1_480_615_200.0),
            ("2016-12-01T18:00:00z", 1_480_615_200.0),
            ("2016-12-01T18:00:00", 1_480_615_200.0),
            ("2016-12-01 18:00:00Z", 1_480_615_200.0),
            ("2016-12-01T10:00:00-08:00", 1_480_615_200.0),
            ("2016-12-01T10:00:00-0800", 1_480_615_200.0),
            ("2016-12-01T19:30:00+01:30", 1_480_615_200.0),
            ("2016-12-01T20:00:00+02", 1_480_615_200.0),
            ("2016-12-01T18:00Z", 1_480_615_200.0),
            ("2016-12-01T18:00:00.5Z", 1_480_615_200.5),
            ("2016-12-01T18:00:00,25Z", 1_480_615_200.25),
            ("2016-12-01", 1_480_550_400.0),
            ("1970-01-01T00:00:00Z", 0.0),
            ("1969-12-31T23:59:59Z", -1.0),
            ("2000-02-29T00:00:00Z", 951_782_400.0),
            ("2016-12-01T24:00:00Z", 1_480_636_800.0),
        ];
        for (input, want) in cases {
            let got = parse(&format!("\"{input}\"")).unwrap();
            assert!(
                (got.0 - want).abs() < 1e-6,
                "{input}: got {}, want {want}",
                got.0
            );
        }
    }

    #[test]
    fn millisecond_fraction_is_kept() {
        let got = parse("\"2016-12-01T18:00:00.010Z\"").unwrap();
        assert!((got.0 - 1_480_615_200.010).abs() < 1e-6, "{}", got.0);
    }

    #[test]
    fn invalid_dates_are_rejected() {
        for bad in [
            "2016-13-01T00:00:00Z",
            "2016-02-30T00:00:00Z",
            "2015-02-29",
            "2016-12-01T25:00:00Z",
            "2016-12-01T18:60:00Z",
            "2016-12-01T18:00:00.Z",
            "2016-12-01T18:00:00Zjunk",
            "2016-12-01T18:00:00+24:00",
            "2016-12-1",
            "Thu, 01 Dec 2016 18:00:00 GMT",
        ] {
            assert!(parse(&format!("\"{bad}\"")).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn wrong_json_types_are_rejected() {
        assert!(parse("true").is_err());
        assert!(parse("null").is_err());
        assert!(parse("{}").is_err());
    }

    #[test]
    fn serializes_as_number() {
        assert_eq!(
            serde_json::to_string(&EpochSeconds(1_480_615_200.01)).unwrap(),
            "1480615200.01"
        );
        let v = serde_json::to_value(EpochSeconds(1_480_615_200.0)).unwrap();
        assert_eq!(v.as_f64(), Some(1_480_615_200.0));
    }

    #[test]
    fn parse_error_message_is_bounded() {
        let long = "x".repeat(10_000);
        let err = long.parse::<EpochSeconds>().unwrap_err();
        assert!(err.to_string().len() < 200, "{}", err);
    }
}
