//! UTC date-times at the original platform's precision (100 ns ticks).
//!
//! The original stores `datetime2(7)`; clients round-trip values with seven fraction digits and
//! expect them back unchanged, so the service keeps ticks, not microseconds.

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

/// Ticks of 100 ns per second.
const TICKS_PER_SECOND: i64 = 10_000_000;

/// A UTC instant counted in 100 ns ticks since 1970-01-01T00:00:00Z.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

/// Why a date-time text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DateError {
    #[error("is not an ISO 8601 date-time (expected e.g. 2026-01-11T21:02:31.7932294+00:00)")]
    Syntax,
    #[error("is not a Microsoft JSON date (expected e.g. \\/Date(1735787045123)\\/ or \\/Date(1735787045123+0200)\\/)")]
    MicrosoftSyntax,
    #[error("is outside the accepted range (years 1753 to 9999)")]
    OutOfRange,
}

/// Milliseconds since 1970 of .NET's default `DateTime` (0001-01-01T00:00:00), as
/// `DataContractJsonSerializer` and `JavaScriptSerializer` write an unset date.
pub const DOTNET_DEFAULT_MILLIS: i64 = -62_135_596_800_000;

impl Timestamp {
    /// 1753-01-01T00:00:00Z, the earliest accepted instant.
    pub const MIN: Timestamp = Timestamp(-6_847_804_800 * TICKS_PER_SECOND);
    /// 9999-12-31T23:59:59.9999999Z, the latest accepted instant.
    pub const MAX: Timestamp = Timestamp(253_402_300_800 * TICKS_PER_SECOND - 1);
    /// 1980-01-01T00:00:00Z: the original's "not set" value for `date_proceeded`.
    pub const UNSET_PROCEEDED: Timestamp = Timestamp(315_532_800 * TICKS_PER_SECOND);

    pub fn from_ticks(ticks: i64) -> Self {
        Timestamp(ticks)
    }

    pub fn ticks(self) -> i64 {
        self.0
    }

    /// The server clock.
    pub fn now() -> Self {
        let now = OffsetDateTime::now_utc();
        Timestamp((now.unix_timestamp_nanos() / 100) as i64)
    }

    /// The next tick.
    pub fn succ(self) -> Self {
        Timestamp(self.0 + 1)
    }

    #[cfg(test)]
    fn to_datetime(self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp_nanos(self.0 as i128 * 100)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    fn fraction_ticks(self) -> i64 {
        self.0.rem_euclid(TICKS_PER_SECOND)
    }

    /// JSON form, as the original writes it: `2026-01-11T21:02:31.7932294+00:00`.
    pub fn to_json_string(self) -> String {
        let mut out = String::with_capacity(33);
        self.write_json(&mut out);
        out
    }

    /// Appends the JSON form. Feeds write three dates per row, so this formats by hand
    /// rather than through `time`'s general-purpose machinery.
    pub fn write_json(self, out: &mut String) {
        let mut buf = [0u8; 33];
        self.write_common(&mut buf);
        buf[19] = b'.';
        put_digits(&mut buf[20..27], self.fraction_ticks() as u64);
        buf[27..33].copy_from_slice(b"+00:00");
        // Only ASCII digits and punctuation were written.
        out.push_str(std::str::from_utf8(&buf).unwrap_or_default());
    }

    /// XML form, as the original writes it: `2026-01-11T21:02:31.793Z` (milliseconds, truncated).
    pub fn to_xml_string(self) -> String {
        let mut buf = [0u8; 24];
        self.write_common(&mut buf);
        buf[19] = b'.';
        put_digits(&mut buf[20..23], (self.fraction_ticks() / 10_000) as u64);
        buf[23] = b'Z';
        String::from_utf8_lossy(&buf).into_owned()
    }

    /// Writes `YYYY-MM-DDTHH:MM:SS` into the first 19 bytes.
    fn write_common(self, buf: &mut [u8]) {
        let seconds = self.0.div_euclid(TICKS_PER_SECOND);
        let (days, of_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
        let (year, month, day) = civil_from_days(days);
        put_digits(&mut buf[0..4], year.clamp(0, 9999) as u64);
        buf[4] = b'-';
        put_digits(&mut buf[5..7], u64::from(month));
        buf[7] = b'-';
        put_digits(&mut buf[8..10], u64::from(day));
        buf[10] = b'T';
        put_digits(&mut buf[11..13], (of_day / 3600) as u64);
        buf[13] = b':';
        put_digits(&mut buf[14..16], (of_day / 60 % 60) as u64);
        buf[16] = b':';
        put_digits(&mut buf[17..19], (of_day % 60) as u64);
    }

    /// Reads any RFC 3339 / ISO 8601 form: date only, or date and time (`T` or a space between),
    /// 0 to 7 fraction digits, and `Z`, an offset (`+02:00`, `+0200`, `+02`) or no zone (UTC).
    pub fn parse(text: &str) -> Result<Self, DateError> {
        let s = text.trim().as_bytes();
        let mut p = Cursor { s, i: 0 };
        let year = p.digits(4)? as i32;
        p.expect(b'-')?;
        let month = p.digits(2)? as u8;
        p.expect(b'-')?;
        let day = p.digits(2)? as u8;
        let month = Month::try_from(month).map_err(|_| DateError::Syntax)?;
        let date = Date::from_calendar_date(year, month, day).map_err(|_| DateError::Syntax)?;
        let mut time = Time::MIDNIGHT;
        let mut fraction: i64 = 0;
        let mut offset = UtcOffset::UTC;
        if p.peek().is_some() {
            match p.next() {
                Some(b'T') | Some(b't') | Some(b' ') => {}
                _ => return Err(DateError::Syntax),
            }
            let hour = p.digits(2)? as u8;
            p.expect(b':')?;
            let minute = p.digits(2)? as u8;
            let second = if p.peek() == Some(b':') {
                p.next();
                p.digits(2)? as u8
            } else {
                0
            };
            if matches!(p.peek(), Some(b'.') | Some(b',')) {
                p.next();
                let start = p.i;
                while matches!(p.peek(), Some(b'0'..=b'9')) {
                    p.next();
                }
                let digits = &s[start..p.i];
                if digits.is_empty() || digits.len() > 7 {
                    return Err(DateError::Syntax);
                }
                for d in digits {
                    fraction = fraction * 10 + i64::from(d - b'0');
                }
                fraction *= 10_i64.pow(7 - digits.len() as u32);
            }
            time = Time::from_hms(hour, minute, second).map_err(|_| DateError::Syntax)?;
            match p.next() {
                None => {}
                Some(b'Z') | Some(b'z') => {}
                Some(sign @ (b'+' | b'-')) => {
                    let oh = p.digits(2)? as i8;
                    let om = match p.peek() {
                        Some(b':') => {
                            p.next();
                            p.digits(2)? as i8
                        }
                        Some(b'0'..=b'9') => p.digits(2)? as i8,
                        _ => 0,
                    };
                    let (oh, om) = if sign == b'-' { (-oh, -om) } else { (oh, om) };
                    offset = UtcOffset::from_hms(oh, om, 0).map_err(|_| DateError::Syntax)?;
                }
                Some(_) => return Err(DateError::Syntax),
            }
            if p.peek().is_some() {
                return Err(DateError::Syntax);
            }
        }
        let local = PrimitiveDateTime::new(date, time).assume_offset(offset);
        let ticks = local.unix_timestamp() * TICKS_PER_SECOND + fraction;
        let ts = Timestamp(ticks);
        if ts < Timestamp::MIN || ts > Timestamp::MAX {
            return Err(DateError::OutOfRange);
        }
        Ok(ts)
    }
}

/// A Microsoft JSON date as sent: milliseconds since 1970 UTC, and the sender's offset in
/// minutes when it wrote one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MicrosoftDate {
    pub millis: i64,
    pub offset_minutes: Option<i32>,
}

impl MicrosoftDate {
    /// Whether the sender's `DateTime` was .NET's default (0001-01-01T00:00:00), which means "not
    /// given". `DataContractJsonSerializer` writes a local default as the instant whose local time
    /// is midnight of year 1 in the sender's zone (`/Date(-62135578980000-0457)/` in New York),
    /// or as the default itself with the offset when that instant would fall before year 1.
    pub fn is_dotnet_default(self) -> bool {
        let local = self
            .millis
            .checked_add(i64::from(self.offset_minutes.unwrap_or(0)) * 60_000);
        self.millis == DOTNET_DEFAULT_MILLIS || local == Some(DOTNET_DEFAULT_MILLIS)
    }
}

/// A Microsoft JSON date, `/Date(1735787045123)/` or `/Date(1735787045123+0200)/` (what JSON
/// text writes as `"\\/Date(…)\\/"`), as older .NET clients send it. The number is milliseconds
/// since 1970 UTC and may be negative; the offset only tells the sender's zone and does not move
/// the instant (Json.NET, the original's reader, reads it that way). `None` when the text is not
/// in that form at all; `Some(Err)` when it starts like one but is malformed.
pub fn parse_microsoft(text: &str) -> Option<Result<MicrosoftDate, DateError>> {
    let inner = text.strip_prefix("/Date(")?;
    let Some(inner) = inner.strip_suffix(")/") else {
        return Some(Err(DateError::MicrosoftSyntax));
    };
    Some(microsoft_date(inner).ok_or(DateError::MicrosoftSyntax))
}

/// `-?DIGITS` optionally followed by `[+-]HH` or `[+-]HHMM`.
fn microsoft_date(inner: &str) -> Option<MicrosoftDate> {
    let (negative, body) = match inner.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, inner),
    };
    let digits_end = body
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(body.len());
    let (digits, zone) = body.split_at(digits_end);
    if digits.is_empty() || digits.len() > 18 {
        return None;
    }
    let mut offset_minutes = None;
    if !zone.is_empty() {
        let west = zone.starts_with('-');
        let zone = zone.strip_prefix(['+', '-'])?;
        if !(zone.len() == 2 || zone.len() == 4) || !zone.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let hours: i32 = zone[..2].parse().ok()?;
        let minutes: i32 = if zone.len() == 4 {
            zone[2..].parse().ok()?
        } else {
            0
        };
        if hours > 23 || minutes > 59 {
            return None;
        }
        let total = hours * 60 + minutes;
        offset_minutes = Some(if west { -total } else { total });
    }
    let millis: i64 = digits.parse().ok()?;
    Some(MicrosoftDate {
        millis: if negative { -millis } else { millis },
        offset_minutes,
    })
}

impl Timestamp {
    /// The instant `millis` milliseconds after 1970-01-01T00:00:00Z, within the accepted range.
    pub fn from_unix_millis(millis: i64) -> Result<Self, DateError> {
        let ticks = millis
            .checked_mul(TICKS_PER_SECOND / 1000)
            .ok_or(DateError::OutOfRange)?;
        let ts = Timestamp(ticks);
        if ts < Timestamp::MIN || ts > Timestamp::MAX {
            return Err(DateError::OutOfRange);
        }
        Ok(ts)
    }
}

/// Writes `value` as exactly `out.len()` decimal digits (zero-padded).
fn put_digits(out: &mut [u8], mut value: u64) {
    // Two digits per division: feeds write three dates per row.
    const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
        2021222324252627282930313233343536373839\
        4041424344454647484950515253545556575859\
        6061626364656667686970717273747576777879\
        8081828384858687888990919293949596979899";
    let mut end = out.len();
    while end >= 2 {
        let pair = (value % 100) as usize * 2;
        out[end - 2..end].copy_from_slice(&PAIRS[pair..pair + 2]);
        value /= 100;
        end -= 2;
    }
    if end == 1 {
        out[0] = b'0' + (value % 10) as u8;
    }
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn next(&mut self) -> Option<u8> {
        let c = self.peek();
        if c.is_some() {
            self.i += 1;
        }
        c
    }
    fn expect(&mut self, c: u8) -> Result<(), DateError> {
        if self.next() == Some(c) {
            Ok(())
        } else {
            Err(DateError::Syntax)
        }
    }
    fn digits(&mut self, n: usize) -> Result<u32, DateError> {
        let mut v = 0u32;
        for _ in 0..n {
            match self.next() {
                Some(d @ b'0'..=b'9') => v = v * 10 + u32::from(d - b'0'),
                _ => return Err(DateError::Syntax),
            }
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seven_digits_round_trip_exactly() {
        let t = Timestamp::parse("2026-01-11T21:02:31.7932294+00:00").unwrap();
        assert_eq!(t.to_json_string(), "2026-01-11T21:02:31.7932294+00:00");
        assert_eq!(t.to_xml_string(), "2026-01-11T21:02:31.793Z");
    }

    #[test]
    fn offsets_and_missing_zones_are_understood() {
        let z = Timestamp::parse("2026-01-11T21:02:31Z").unwrap();
        assert_eq!(Timestamp::parse("2026-01-11T23:02:31+02:00").unwrap(), z);
        assert_eq!(Timestamp::parse("2026-01-11T16:02:31-0500").unwrap(), z);
        assert_eq!(Timestamp::parse("2026-01-11T21:02:31").unwrap(), z);
        assert_eq!(Timestamp::parse("2026-01-11 21:02:31").unwrap(), z);
        assert_eq!(
            Timestamp::parse("2026-01-11").unwrap().to_json_string(),
            "2026-01-11T00:00:00.0000000+00:00"
        );
    }

    #[test]
    fn the_range_is_1753_to_9999() {
        assert_eq!(
            Timestamp::parse("1753-01-01T00:00:00Z").unwrap(),
            Timestamp::MIN
        );
        assert_eq!(
            Timestamp::parse("9999-12-31T23:59:59.9999999Z").unwrap(),
            Timestamp::MAX
        );
        assert_eq!(
            Timestamp::parse("1752-12-31T23:59:59Z"),
            Err(DateError::OutOfRange)
        );
        assert_eq!(
            Timestamp::MIN.to_json_string(),
            "1753-01-01T00:00:00.0000000+00:00"
        );
        assert_eq!(
            Timestamp::UNSET_PROCEEDED.to_json_string(),
            "1980-01-01T00:00:00.0000000+00:00"
        );
    }

    #[test]
    fn fast_formatting_agrees_with_the_calendar() {
        // Every week from 1753 to 9999 at varied days and times, against `time`'s calendar.
        let mut ticks = Timestamp::MIN.ticks();
        let step = 7 * 86_400 * TICKS_PER_SECOND + 3_599_123_457;
        while ticks <= Timestamp::MAX.ticks() {
            let t = Timestamp::from_ticks(ticks);
            let dt = t.to_datetime();
            let expected = format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:07}+00:00",
                dt.year(),
                dt.month() as u8,
                dt.day(),
                dt.hour(),
                dt.minute(),
                dt.second(),
                t.fraction_ticks()
            );
            assert_eq!(t.to_json_string(), expected);
            assert_eq!(Timestamp::parse(&expected).unwrap(), t);
            ticks += step;
        }
        assert_eq!(
            Timestamp::MAX.to_json_string(),
            "9999-12-31T23:59:59.9999999+00:00"
        );
        assert_eq!(Timestamp::MAX.to_xml_string(), "9999-12-31T23:59:59.999Z");
    }

    #[test]
    fn microsoft_dates_are_milliseconds_since_1970_whatever_the_offset() {
        let utc = Timestamp::parse("2025-01-02T03:04:05.123Z").unwrap();
        for text in [
            "/Date(1735787045123)/",
            "/Date(1735787045123+0200)/",
            "/Date(1735787045123-0500)/",
            "/Date(1735787045123+02)/",
        ] {
            let date = parse_microsoft(text).unwrap().unwrap();
            assert_eq!(
                Timestamp::from_unix_millis(date.millis).unwrap(),
                utc,
                "{text}"
            );
            assert!(!date.is_dotnet_default());
        }
        let before_1970 = parse_microsoft("/Date(-86400000)/")
            .unwrap()
            .unwrap()
            .millis;
        assert_eq!(
            Timestamp::from_unix_millis(before_1970)
                .unwrap()
                .to_json_string(),
            "1969-12-31T00:00:00.0000000+00:00"
        );
        assert_eq!(parse_microsoft("2025-01-02T03:04:05Z"), None);
    }

    #[test]
    fn the_dotnet_default_is_recognised_in_any_zone() {
        for text in [
            "/Date(-62135596800000)/",
            "/Date(-62135596800000+0100)/",
            "/Date(-62135578980000-0457)/",
            "/Date(-62135578800000-05)/",
        ] {
            assert!(
                parse_microsoft(text).unwrap().unwrap().is_dotnet_default(),
                "{text}"
            );
        }
        for text in ["/Date(-62135578980000)/", "/Date(-62135578980000+0457)/"] {
            assert!(
                !parse_microsoft(text).unwrap().unwrap().is_dotnet_default(),
                "{text}"
            );
        }
    }

    #[test]
    fn microsoft_dates_keep_the_range_and_refuse_malformed_forms() {
        assert_eq!(
            Timestamp::from_unix_millis(DOTNET_DEFAULT_MILLIS),
            Err(DateError::OutOfRange)
        );
        assert_eq!(
            Timestamp::from_unix_millis(253_402_300_800_000),
            Err(DateError::OutOfRange)
        );
        assert_eq!(
            Timestamp::from_unix_millis(i64::MAX),
            Err(DateError::OutOfRange)
        );
        assert_eq!(
            Timestamp::from_unix_millis(-6_847_804_800_000),
            Ok(Timestamp::MIN)
        );
        for bad in [
            "/Date()/",
            "/Date(abc)/",
            "/Date(123",
            "/Date(123)",
            "/Date(123)/x",
            "/Date(1.5)/",
            "/Date(123+2)/",
            "/Date(123+020)/",
            "/Date(123+2500)/",
            "/Date(123+0260)/",
            "/Date(123 +0200)/",
            "/Date(--1)/",
            "/Date(+1)/",
            "/Date(1234567890123456789012)/",
        ] {
            assert_eq!(
                parse_microsoft(bad),
                Some(Err(DateError::MicrosoftSyntax)),
                "{bad}"
            );
        }
    }

    #[test]
    fn malformed_texts_are_refused() {
        for bad in [
            "",
            "yesterday",
            "2026-13-01",
            "2026-02-30T00:00:00Z",
            "2026-01-11T25:00:00Z",
            "2026-01-11T21:02:31.12345678Z",
            "2026-01-11T21:02:31.Z",
            "2026-01-11T21:02:31Zjunk",
        ] {
            assert_eq!(Timestamp::parse(bad), Err(DateError::Syntax), "{bad}");
        }
    }
}
