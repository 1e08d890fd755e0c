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
        let t = self.0;
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            t.millisecond()
        )
    }

    /// The underlying `time` value.
    pub fn as_offset_date_time(self) -> OffsetDateTime {
        self.0
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn garbage_is_not_a_timestamp() {
        assert!(Timestamp::parse_rfc3339("garbage").is_err());
    }
}
