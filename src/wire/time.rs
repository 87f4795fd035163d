//! Timestamps as the vendors write them: Symphony uses integer milliseconds since the Unix
//! epoch; Rocket.Chat and Genesys use ISO-8601 text in UTC, which this module writes, and
//! Rocket.Chat's `from` takes ISO-8601 with optional seconds, fraction and zone, which this
//! module reads ([`parse_iso8601`]). Reading never panics: every input is either a time at or
//! after 1970 or [`Error::InvalidTimestamp`].

use std::fmt::Write;

use crate::Error;

/// Days from 1970-01-01 to the civil date `(year, month, day)` (Howard Hinnant's algorithm),
/// valid for every date the proleptic Gregorian calendar has.
pub(crate) fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date `(year, month, day)` of a day count from 1970-01-01; the inverse of
/// [`days_from_civil`].
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
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

/// Milliseconds since the Unix epoch as ISO-8601 in UTC with milliseconds, the form Genesys and
/// Rocket.Chat write: `2026-11-23T12:40:53.123Z`.
pub fn format_iso8601(ms: u64) -> String {
    let secs = ms / 1000;
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    let mut out = String::with_capacity(24);
    // Writing to a String cannot fail.
    let _ = write!(
        out,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        ms % 1000
    );
    out
}

/// Milliseconds since the Unix epoch of an ISO-8601 date and time, as Rocket.Chat's `from`
/// takes it: `2019-05-22T12:11:45.392Z`, where the seconds, the fraction (any number of digits,
/// cut to milliseconds) and the zone (`Z`, `+hh:mm`, `-hh:mm`, `+hhmm`; none means UTC) are
/// optional, and a space may stand for the `T`.
///
/// A time before 1970-01-01T00:00:00Z, or anything else, is [`Error::InvalidTimestamp`] saying
/// what is wrong; no input panics. Cost: O(length), no allocation unless it fails.
pub fn parse_iso8601(s: &str) -> Result<u64, Error> {
    let invalid = |reason| Error::InvalidTimestamp {
        value: s.chars().take(Error::ECHO_LIMIT).collect(),
        reason,
    };
    let mut text = Scanner(s.as_bytes());
    let date = text.date().map_err(invalid)?;
    let time = text.time().map_err(invalid)?;
    let offset_ms = text.zone().map_err(invalid)?;
    if !text.0.is_empty() {
        return Err(invalid("unexpected text after the time"));
    }
    let days = days_from_civil(date.0, date.1, date.2);
    let ms = days * 86_400_000 + time - offset_ms;
    u64::try_from(ms).map_err(|_| invalid("it is before 1970-01-01T00:00:00Z"))
}

/// The unread rest of a timestamp, read from the front.
struct Scanner<'a>(&'a [u8]);

impl Scanner<'_> {
    /// Exactly `n` ASCII digits as a number.
    fn digits(&mut self, n: usize, what: &'static str) -> Result<i64, &'static str> {
        let (head, rest) = self.0.split_at_checked(n).ok_or(what)?;
        if !head.iter().all(u8::is_ascii_digit) {
            return Err(what);
        }
        self.0 = rest;
        Ok(head.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0')))
    }

    /// `n` digits from `lo` to `hi`.
    fn field(
        &mut self,
        n: usize,
        lo: i64,
        hi: i64,
        what: &'static str,
    ) -> Result<i64, &'static str> {
        let v = self.digits(n, what)?;
        if (lo..=hi).contains(&v) {
            Ok(v)
        } else {
            Err(what)
        }
    }

    /// Takes `b` if it comes next.
    fn eat(&mut self, b: &[u8]) -> bool {
        match self.0.split_first() {
            Some((first, rest)) if b.contains(first) => {
                self.0 = rest;
                true
            }
            _ => false,
        }
    }

    /// Requires `b` next.
    fn expect(&mut self, b: u8, what: &'static str) -> Result<(), &'static str> {
        if self.eat(&[b]) {
            Ok(())
        } else {
            Err(what)
        }
    }

    /// `YYYY-MM-DD`, a day that exists, then the `T` (or space) that starts the time.
    fn date(&mut self) -> Result<(i64, u32, u32), &'static str> {
        let year = self.digits(4, "expected a 4-digit year first")?;
        self.expect(b'-', "expected '-' after the year")?;
        let month = self.field(2, 1, 12, "the month must be 01 to 12")?;
        self.expect(b'-', "expected '-' after the month")?;
        let day = self.field(2, 1, 31, "the day must be 01 to 31")?;
        // Both are in range (checked above), so the casts are exact.
        let (month, day) = (month as u32, day as u32);
        if day > days_in_month(year, month) {
            return Err("that month has no such day");
        }
        if !self.eat(b"Tt ") {
            return Err("expected 'T' and a time after the date");
        }
        Ok((year, month, day))
    }

    /// `hh:mm`, optional `:ss`, optional `.fraction`, as milliseconds into the day.
    fn time(&mut self) -> Result<i64, &'static str> {
        let hour = self.field(2, 0, 23, "the hour must be 00 to 23")?;
        self.expect(b':', "expected ':' after the hour")?;
        let minute = self.field(2, 0, 59, "the minutes must be 00 to 59")?;
        let mut ms = (hour * 60 + minute) * 60_000;
        if self.eat(b":") {
            ms += self.field(2, 0, 59, "the seconds must be 00 to 59")? * 1000;
            if self.eat(b".") {
                ms += self.fraction()?;
            }
        }
        Ok(ms)
    }

    /// One or more digits after the point, as milliseconds (digits past the third are cut).
    fn fraction(&mut self) -> Result<i64, &'static str> {
        let len = self.0.iter().take_while(|b| b.is_ascii_digit()).count();
        if len == 0 {
            return Err("expected digits after the decimal point");
        }
        let (digits, rest) = self.0.split_at(len);
        self.0 = rest;
        Ok((0..3).fold(0, |ms, i| {
            ms * 10 + digits.get(i).map_or(0, |d| i64::from(d - b'0'))
        }))
    }

    /// Nothing (UTC), `Z`, or `+hh:mm` / `-hh:mm` / `+hhmm`, as milliseconds east of UTC.
    fn zone(&mut self) -> Result<i64, &'static str> {
        if self.0.is_empty() || self.eat(b"Zz") {
            return Ok(0);
        }
        let (sign, rest) = match self.0.split_first() {
            Some((b'+', rest)) => (1, rest),
            Some((b'-', rest)) => (-1, rest),
            _ => return Err("expected 'Z' or an offset like +02:00 after the time"),
        };
        self.0 = rest;
        let what = "the zone offset must be +hh:mm, -hh:mm or +hhmm with hh 00 to 23";
        let hours = self.field(2, 0, 23, what)?;
        self.eat(b":");
        let minutes = self.field(2, 0, 59, what)?;
        Ok(sign * (hours * 60 + minutes) * 60_000)
    }
}

/// Whether `year` has a February 29th (proleptic Gregorian).
fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

/// How many days `month` (1 to 12) of `year` has.
fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_epoch_and_a_known_instant() {
        assert_eq!(format_iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            format_iso8601(1_795_436_453_123),
            "2026-11-23T12:20:53.123Z"
        );
        assert_eq!(format_iso8601(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn civil_days_round_trip() {
        for days in (-800_000..800_000).step_by(997) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    fn ok(s: &str) -> u64 {
        parse_iso8601(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    fn reason(s: &str) -> &'static str {
        match parse_iso8601(s) {
            Err(Error::InvalidTimestamp { reason, .. }) => reason,
            other => panic!("{s:?} gave {other:?}"),
        }
    }

    #[test]
    fn reads_the_seed_example_and_every_optional_part() {
        let t = 1_558_527_105_392; // 2019-05-22T12:11:45.392Z
        assert_eq!(ok("2019-05-22T12:11:45.392Z"), t);
        assert_eq!(ok("2019-05-22T12:11:45.392"), t);
        assert_eq!(ok("2019-05-22T12:11:45Z"), t - 392);
        assert_eq!(ok("2019-05-22T12:11Z"), t - 45_392);
        assert_eq!(ok("2019-05-22T12:11"), t - 45_392);
        assert_eq!(ok("2019-05-22 12:11:45.392Z"), t);
        assert_eq!(ok("2019-05-22t12:11:45.392z"), t);
    }

    #[test]
    fn fractions_of_any_length_keep_milliseconds() {
        let base = ok("2019-05-22T12:11:45Z");
        assert_eq!(ok("2019-05-22T12:11:45.3Z"), base + 300);
        assert_eq!(ok("2019-05-22T12:11:45.39Z"), base + 390);
        assert_eq!(ok("2019-05-22T12:11:45.392999999Z"), base + 392);
        assert_eq!(ok("2019-05-22T12:11:45.000Z"), base);
        let long = format!("2019-05-22T12:11:45.{}Z", "9".repeat(10_000));
        assert_eq!(ok(&long), base + 999);
    }

    #[test]
    fn zones_shift_to_utc() {
        let utc = ok("2019-05-22T12:11:45.392Z");
        assert_eq!(ok("2019-05-22T14:11:45.392+02:00"), utc);
        assert_eq!(ok("2019-05-22T14:11:45.392+0200"), utc);
        assert_eq!(ok("2019-05-22T06:41:45.392-05:30"), utc);
        assert_eq!(ok("2019-05-22T06:41:45.392-0530"), utc);
        assert_eq!(ok("2019-05-22T12:11:45.392+00:00"), utc);
        assert_eq!(ok("2019-05-22T12:11:45.392-00:00"), utc);
        assert_eq!(ok("2019-05-23T11:11+23:00"), utc - 45_392);
        // An offset can move the instant across a day, month and year boundary.
        assert_eq!(ok("2019-12-31T23:30-01:00"), ok("2020-01-01T00:30Z"));
    }

    #[test]
    fn leap_years_follow_the_gregorian_rules() {
        assert_eq!(ok("2000-02-29T00:00Z"), 951_782_400_000);
        assert_eq!(
            ok("2024-02-29T12:00Z") + 12 * 3_600_000,
            ok("2024-03-01T00:00Z")
        );
        for bad in [
            "1900-02-29T00:00Z",
            "2100-02-29T00:00Z",
            "2023-02-29T00:00Z",
        ] {
            assert_eq!(reason(bad), "that month has no such day", "{bad}");
        }
        assert_eq!(reason("2024-02-30T00:00Z"), "that month has no such day");
        assert_eq!(reason("2024-04-31T00:00Z"), "that month has no such day");
        assert_eq!(
            ok("2024-12-31T00:00Z") + 86_400_000,
            ok("2025-01-01T00:00Z")
        );
    }

    #[test]
    fn the_epoch_is_the_earliest_time() {
        assert_eq!(ok("1970-01-01T00:00Z"), 0);
        assert_eq!(ok("1970-01-01T00:00:00.000Z"), 0);
        assert_eq!(ok("1970-01-01T01:00+01:00"), 0);
        assert_eq!(ok("1969-12-31T23:00-01:00"), 0);
        let before = "it is before 1970-01-01T00:00:00Z";
        assert_eq!(reason("1969-12-31T23:59:59.999Z"), before);
        assert_eq!(reason("1970-01-01T00:00+00:01"), before);
        assert_eq!(reason("0000-01-01T00:00Z"), before);
    }

    #[test]
    fn the_latest_time_is_year_9999() {
        assert_eq!(ok("9999-12-31T23:59:59.999Z"), 253_402_300_799_999);
        assert_eq!(
            ok("9999-12-31T23:59:59.999-23:59"),
            253_402_300_799_999 + 86_340_000
        );
    }

    #[test]
    fn round_trips_what_format_writes() {
        for ms in (0..4_000_000_000_000u64).step_by(7_777_777_777) {
            assert_eq!(ok(&format_iso8601(ms)), ms);
        }
    }

    #[test]
    fn field_ranges_are_checked() {
        assert_eq!(reason("2019-00-22T12:11Z"), "the month must be 01 to 12");
        assert_eq!(reason("2019-13-22T12:11Z"), "the month must be 01 to 12");
        assert_eq!(reason("2019-05-00T12:11Z"), "the day must be 01 to 31");
        assert_eq!(reason("2019-05-32T12:11Z"), "the day must be 01 to 31");
        assert_eq!(reason("2019-05-22T24:00Z"), "the hour must be 00 to 23");
        assert_eq!(reason("2019-05-22T12:60Z"), "the minutes must be 00 to 59");
        assert_eq!(
            reason("2019-05-22T12:11:60Z"),
            "the seconds must be 00 to 59"
        );
        let zone = "the zone offset must be +hh:mm, -hh:mm or +hhmm with hh 00 to 23";
        assert_eq!(reason("2019-05-22T12:11+24:00"), zone);
        assert_eq!(reason("2019-05-22T12:11+02:60"), zone);
        assert_eq!(reason("2019-05-22T12:11+02"), zone);
        assert_eq!(reason("2019-05-22T12:11+2:00"), zone);
    }

    #[test]
    fn garbage_is_an_error_that_echoes_a_bounded_prefix() {
        for bad in [
            "",
            " ",
            "now",
            "1558527105392",
            "2019-05-22",
            "2019-05-22T",
            "2019-05-22T12",
            "2019-05-22T12:",
            "2019-05-22T1:11Z",
            "2019-5-22T12:11Z",
            "19-05-22T12:11Z",
            "+2019-05-22T12:11Z",
            "2019/05/22T12:11Z",
            "2019-05-22X12:11Z",
            "2019-05-22T12:11:45.Z",
            "2019-05-22T12:11.392Z",
            "2019-05-22T12:11:45.392ZZ",
            "2019-05-22T12:11:45.392Z ",
            " 2019-05-22T12:11:45.392Z",
            "2019-05-22T12:11:45.392 Z",
            "2019-05-22T12:11:45,392Z",
            "2019-05-22T12:11:45.392+",
            "2019-05-22T12:11:45.392UTC",
            "２０１９-05-22T12:11Z",
            "2019-05-22T12:1é",
            "2019-05-22T12:11:45.3é",
        ] {
            assert!(
                matches!(parse_iso8601(bad), Err(Error::InvalidTimestamp { .. })),
                "{bad:?}"
            );
        }
        let long = "x".repeat(1000);
        let Err(Error::InvalidTimestamp { value, .. }) = parse_iso8601(&long) else {
            panic!("accepted garbage");
        };
        assert_eq!(value.len(), Error::ECHO_LIMIT);
        let message = parse_iso8601("2019-13-01T00:00Z").unwrap_err().to_string();
        assert!(message.contains("month must be 01 to 12"), "{message}");
        assert!(message.contains("2019-05-22T12:11:45.392Z"), "{message}");
    }

    #[test]
    fn no_prefix_or_byte_change_of_a_valid_time_panics() {
        let valid = "2019-05-22T12:11:45.392+02:00";
        for end in 0..=valid.len() {
            let _ = parse_iso8601(&valid[..end]);
        }
        for i in 0..valid.len() {
            for b in [b'0', b'9', b'-', b':', b'T', b'Z', b'+', b'.', b' ', 0xff] {
                let mut bytes = valid.as_bytes().to_vec();
                bytes[i] = b;
                let _ = parse_iso8601(&String::from_utf8_lossy(&bytes));
            }
        }
    }
}
