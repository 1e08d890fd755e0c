//! Server time as the model carries it: UTC with millisecond precision.

use std::fmt;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::ValidationError;

/// A point in time, UTC, truncated to whole milliseconds.
///
/// Milliseconds are the precision of the wire format (RFC 3339 with three fraction
/// digits) and of storage, so a value survives a round trip through either unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(OffsetDateTime);

impl Timestamp {
    /// Truncates `at` to milliseconds and converts it to UTC.
    pub fn new(at: OffsetDateTime) -> Self {
        let utc = at.to_offset(time::UtcOffset::UTC);
        let millis = utc.millisecond();
        Self(
            utc.replace_nanosecond(u32::from(millis) * 1_000_000)
                .unwrap_or(utc),
        )
    }

    /// The instant `millis` milliseconds after the Unix epoch.
    pub fn from_unix_millis(millis: i64) -> Result<Self, ValidationError> {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
            .map(Self)
            .map_err(|_| ValidationError::TimestampOutOfRange)
    }

    /// Milliseconds since the Unix epoch.
    pub fn unix_millis(self) -> i64 {
        // Lossless: the value was truncated to milliseconds and fits i64 for any year
        // `time` can represent.
        i64::try_from(self.0.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
    }

    /// This instant plus `duration`, or the latest representable instant should the
    /// sum overflow.
    pub fn saturating_add(self, duration: std::time::Duration) -> Self {
        let millis = i64::try_from(duration.as_millis()).unwrap_or(i64::MAX);
        Self::from_unix_millis(self.unix_millis().saturating_add(millis))
            .unwrap_or_else(|_| Self::new(time::PrimitiveDateTime::MAX.assume_utc()))
    }

    /// Parses an RFC 3339 timestamp, e.g. `2026-11-25T21:05:40.123Z`.
    pub fn parse_rfc3339(text: &str) -> Result<Self, ValidationError> {
        OffsetDateTime::parse(text, &Rfc3339)
            .map(Self::new)
            .map_err(|_| ValidationError::InvalidTimestamp(text.to_owned()))
    }

    /// The RFC 3339 form with exactly three fraction digits and a `Z` suffix.
    pub fn to_rfc3339(self) -> String {
        self.to_string()
    }

    /// Writes [`to_rfc3339`](Self::to_rfc3339)'s text to `out`.
    fn write_rfc3339(self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Every message on the wire carries a timestamp, and a history page carries
        // 50: written digit by digit into a buffer on the stack, from the date and
        // the time each worked out once, it costs a fraction of what the formatting
        // machinery does, and allocates nothing.
        let t = self.0;
        let (year, month, day) = t.to_calendar_date();
        let Some(year) = u16::try_from(year).ok().filter(|year| *year <= 9999) else {
            return write!(
                out,
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second(),
                t.millisecond()
            );
        };
        let (hour, minute, second, milli) = t.to_hms_milli();
        let mut text = *b"0000-00-00T00:00:00.000Z";
        put_digits(&mut text[0..4], year);
        put_digits(&mut text[5..7], u16::from(u8::from(month)));
        put_digits(&mut text[8..10], u16::from(day));
        put_digits(&mut text[11..13], u16::from(hour));
        put_digits(&mut text[14..16], u16::from(minute));
        put_digits(&mut text[17..19], u16::from(second));
        put_digits(&mut text[20..23], milli);
        // Only ASCII digits went in.
        out.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?)
    }

    /// The underlying `time` value.
    pub fn as_offset_date_time(self) -> OffsetDateTime {
        self.0
    }
}

/// Writes the last `digits.len()` decimal digits of `value` into `digits`,
/// zero-padded.
fn put_digits(digits: &mut [u8], mut value: u16) {
    for digit in digits.iter_mut().rev() {
        *digit = b'0' + u8::try_from(value % 10).unwrap_or(0);
        value /= 10;
    }
}

/// The RFC 3339 form, as [`Timestamp::to_rfc3339`] gives it.
impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_rfc3339(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The RFC 3339 form as `time`'s own formatting writes it: what the digit by
    /// digit writing is checked against.
    fn formatted(at: Timestamp) -> String {
        let format = time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        );
        at.0.format(format).unwrap()
    }

    #[test]
    fn rfc3339_round_trips_with_milliseconds() {
        let parsed = Timestamp::parse_rfc3339("2026-11-25T21:05:40.123456+01:00").unwrap();
        assert_eq!(parsed.to_rfc3339(), "2026-11-25T20:05:40.123Z");
        assert_eq!(
            Timestamp::parse_rfc3339(&parsed.to_rfc3339()).unwrap(),
            parsed
        );
        assert_eq!(
            Timestamp::from_unix_millis(parsed.unix_millis()).unwrap(),
            parsed
        );
    }

    #[test]
    fn the_written_form_matches_the_formatted_one_from_year_0_to_9999() {
        let instants = [
            "0000-01-01T00:00:00.000Z",
            "0009-02-03T04:05:06.007Z",
            "1970-01-01T00:00:00.000Z",
            "2024-02-29T23:59:59.999Z",
            "2026-12-06T07:10:56.055Z",
            "9999-12-31T23:59:59.999Z",
        ];
        for text in instants {
            let at = Timestamp::parse_rfc3339(text).unwrap();
            assert_eq!(at.to_rfc3339(), text);
            assert_eq!(at.to_rfc3339(), formatted(at));
        }
        // One instant in each of many days, hours and milliseconds across the range.
        let mut millis = -62_167_219_200_000_i64;
        while millis < 253_402_300_800_000 {
            let at = Timestamp::from_unix_millis(millis).unwrap();
            assert_eq!(at.to_rfc3339(), formatted(at));
            millis += 7_919_987_654;
        }
    }

    #[test]
    fn a_year_before_0_is_written_as_before() {
        let at = Timestamp::from_unix_millis(-62_167_219_200_001).unwrap();
        assert_eq!(at.to_rfc3339(), "-001-12-31T23:59:59.999Z");
    }

    #[test]
    fn garbage_is_not_a_timestamp() {
        assert!(Timestamp::parse_rfc3339("garbage").is_err());
    }
}
